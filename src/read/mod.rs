//! Reading images from outside: archive files (docker-archive, OCI archive, either one
//! whole-file compressed), OCI layout directories, and the images of local engines (as
//! `docker save` / `podman save` export them).
//!
//! Produces [`Image`] values that keep the exact bytes they were read from. Every
//! digest is verified: blobs named by digest, and each layer against the config's
//! `rootfs.diff_ids`. Owns these formats' parsing; writes nothing.

use crate::compress::Codec;
use crate::digest::Digest;
use crate::engine::{self, Engine};
use crate::image::document::{Described, Document};
use crate::image::{Blob, Image, ImageReadError, StoredIndex};
use crate::layer::{Entry, Layer, LayerReadError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The most bytes one archive, or one layer, may inflate to.
const INFLATE_LIMIT: u64 = 64 << 30;

/// Where an image is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An archive file or an OCI layout directory.
    Path(PathBuf),
    /// An image in the local Docker engine: `docker:REF`.
    Docker(String),
    /// An image in podman's store: `podman:REF`.
    Podman(String),
    /// An image in a registry: `registry:REF`.
    Registry(String),
}

impl std::str::FromStr for Target {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.split_once(':') {
            Some(("docker", reference)) => Target::Docker(reference.to_owned()),
            Some(("podman", reference)) => Target::Podman(reference.to_owned()),
            Some(("registry", reference)) => Target::Registry(reference.to_owned()),
            _ => Target::Path(PathBuf::from(text)),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Path(path) => write!(f, "{}", path.display()),
            Target::Docker(reference) => write!(f, "docker:{reference}"),
            Target::Podman(reference) => write!(f, "podman:{reference}"),
            Target::Registry(reference) => write!(f, "registry:{reference}"),
        }
    }
}

/// How the images were stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A docker-archive (`manifest.json`).
    DockerArchive,
    /// An OCI image layout (`index.json`), as a directory or a tar.
    Oci,
    /// A registry's manifests and blobs.
    Registry,
}

/// The container the images came in.
#[derive(Clone, Debug)]
pub struct Container {
    /// Which format.
    pub layout: Layout,
    /// Bytes of the file (or the sum of the directory's files, or what a registry pull
    /// downloaded: manifests, config and layers).
    pub bytes: u64,
    /// Whole-file compression, if any.
    pub codec: Option<Codec>,
    /// The uncompressed archive (none for a directory).
    pub tar: Option<Vec<u8>>,
}

/// One image as it was stored.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The image: exact config bytes and layer blobs.
    pub image: Image,
    /// The manifest as stored (OCI layouts, registries); docker-archives have none.
    pub manifest: Option<Blob>,
    /// Names given to it (`RepoTags`, `org.opencontainers.image.ref.name`).
    pub tags: Vec<String>,
    /// Each layer's entries, bottom first.
    pub entries: Vec<Vec<Entry>>,
}

/// Images read from one target.
#[derive(Clone, Debug)]
pub struct Read {
    /// What was read.
    pub container: Container,
    /// The images in it (one per platform for multi-platform OCI).
    pub images: Vec<Stored>,
    /// The index over them, exact bytes, with its media type, when the target names
    /// one that lists exactly these images (an OCI layout's image index, a registry's).
    pub index: Option<StoredIndex>,
}

/// A target that cannot be read, naming it.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {target}: {reason}")]
pub struct ReadError {
    target: String,
    reason: String,
}

impl ReadError {
    fn new(target: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Self {
            target: target.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// What can go wrong inside a container, before the target's name is added.
#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tar(#[from] crate::layer::tar::TarReadError),
    #[error("{0}")]
    Layer(#[from] LayerReadError),
    #[error("{0}")]
    Image(#[from] ImageReadError),
    #[error("{0} is not valid JSON here: {1}")]
    Json(&'static str, serde_json::Error),
    #[error("{0} is missing")]
    Missing(String),
    #[error("{path} holds {actual}, not the {expected} its name or descriptor says")]
    Digest {
        path: String,
        expected: String,
        actual: Digest,
    },
    #[error("{0}")]
    Other(String),
}

/// Reads every image in `target`, with each layer's entries.
pub fn read(target: &Target) -> Result<Read, ReadError> {
    read_with(target, true)
}

/// Reads every image in `target` without listing layer entries ([`Stored::entries`] is
/// empty): every digest is still verified. For copying, where entries are not looked at.
pub fn read_images(target: &Target) -> Result<Read, ReadError> {
    read_with(target, false)
}

fn read_with(target: &Target, with_entries: bool) -> Result<Read, ReadError> {
    let fail = |problem: Problem| ReadError::new(target, problem);
    let read_archive = |bytes| read_archive(bytes, with_entries);
    match target {
        Target::Path(path) if path.is_dir() => read_dir(path, with_entries).map_err(fail),
        Target::Path(path) => {
            let bytes = std::fs::read(path).map_err(|e| fail(unreadable_path(path, e)))?;
            read_archive(bytes).map_err(fail)
        }
        Target::Docker(reference) => {
            let bytes = engine::save(Engine::Docker, reference).map_err(|e| fail(Problem::Other(e.to_string())))?;
            read_archive(bytes).map_err(fail)
        }
        Target::Podman(reference) => {
            let bytes = engine::save(Engine::Podman, reference).map_err(|e| fail(Problem::Other(e.to_string())))?;
            read_archive(bytes).map_err(fail)
        }
        Target::Registry(reference) => read_registry(reference, with_entries).map_err(fail),
    }
}

/// Why a path could not be read; for a missing one that reads as an image reference
/// with a tag, a digest or no file extension (`alpine:3`, `nginx`, not `out.tar`), how
/// to name an image in a registry or an engine instead.
fn unreadable_path(path: &Path, error: std::io::Error) -> Problem {
    let text = path.to_string_lossy();
    let looks_like_reference = error.kind() == std::io::ErrorKind::NotFound
        && text.parse::<crate::image::Reference>().is_ok()
        && (text.contains([':', '@']) || !text.contains('.'));
    if !looks_like_reference {
        return error.into();
    }
    Problem::Other(format!(
        "{error}; for an image in a registry write registry:{text}, in an engine docker:{text} or podman:{text}"
    ))
}

/// Pulls every platform of a registry image, with every digest verified.
fn read_registry(reference: &str, with_entries: bool) -> Result<Read, Problem> {
    use crate::registry::{Options, Repository, pull::Platforms};
    let reference: crate::image::Reference = reference.parse().map_err(|e| Problem::Other(format!("{e}")))?;
    let other = |e: crate::registry::RegistryError| Problem::Other(e.to_string());
    let repository = Repository::connect(&reference, false, &[], &Options::default()).map_err(other)?;
    let pulled = repository
        .pull(&reference, &Platforms::All, with_entries, &crate::registry::quiet)
        .map_err(other)?;
    let images = pulled
        .images
        .into_iter()
        .map(|pulled| Stored {
            image: pulled.image,
            manifest: Some(pulled.manifest),
            tags: vec![reference.to_string()],
            entries: pulled.entries,
        })
        .collect();
    Ok(Read {
        container: Container {
            layout: Layout::Registry,
            bytes: repository.traffic().received.load(std::sync::atomic::Ordering::Relaxed),
            codec: None,
            tar: None,
        },
        images,
        index: pulled.index,
    })
}

/// Files of a container by path, and whether to list layer entries.
struct Files {
    // Bytes: layers share the file's bytes instead of copying them.
    by_path: BTreeMap<String, bytes::Bytes>,
    with_entries: bool,
}

fn read_archive(bytes: Vec<u8>, with_entries: bool) -> Result<Read, Problem> {
    let file_bytes = bytes.len() as u64;
    let codec = Codec::sniff(&bytes);
    let tar = match codec {
        Some(codec) => codec.decompress(&bytes, INFLATE_LIMIT)?,
        None => bytes,
    };
    let mut files = Files {
        by_path: BTreeMap::new(),
        with_entries,
    };
    for entry in crate::layer::tar::read(&tar)? {
        if let crate::layer::EntryKind::File(data) = entry.kind {
            files.by_path.insert(entry.path, data.to_vec().into());
        }
    }
    let (layout, images, index) = read_files(&files)?;
    Ok(Read {
        container: Container {
            layout,
            bytes: file_bytes,
            codec,
            tar: Some(tar),
        },
        images,
        index,
    })
}

fn read_dir(dir: &Path, with_entries: bool) -> Result<Read, Problem> {
    let mut files = Files {
        by_path: BTreeMap::new(),
        with_entries,
    };
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("inside the directory");
                files
                    .by_path
                    .insert(relative.to_string_lossy().into_owned(), std::fs::read(&path)?.into());
            }
        }
    }
    let bytes = files.by_path.values().map(|data| data.len() as u64).sum();
    let (layout, images, index) = read_files(&files)?;
    Ok(Read {
        container: Container {
            layout,
            bytes,
            codec: None,
            tar: None,
        },
        images,
        index,
    })
}

/// A docker-archive when `manifest.json` is there (as `docker load` reads a Docker 25+
/// save), otherwise an OCI layout.
fn read_files(files: &Files) -> Result<(Layout, Vec<Stored>, Option<StoredIndex>), Problem> {
    if files.by_path.contains_key("manifest.json") {
        Ok((Layout::DockerArchive, docker_archive(files)?, None))
    } else if files.by_path.contains_key("index.json") {
        let (images, index) = oci_layout(files)?;
        Ok((Layout::Oci, images, index))
    } else {
        Err(Problem::Other(
            "neither manifest.json (a docker-archive) nor index.json (an OCI layout) is in it".into(),
        ))
    }
}

fn file<'a>(files: &'a Files, path: &str) -> Result<&'a bytes::Bytes, Problem> {
    let path = crate::layer::image_path(path).map_err(|e| Problem::Other(e.to_string()))?;
    files.by_path.get(&path).ok_or(Problem::Missing(path))
}

/// Checks a blob against the digest its path or descriptor names, when it names one.
fn verified(path: &str, bytes: &[u8], expected: Option<&str>) -> Result<(), Problem> {
    verified_digest(path, Digest::of(bytes), expected)
}

/// Checks a blob's digest, already computed, against the one its path or descriptor
/// names, when it names one.
fn verified_digest(path: &str, actual: Digest, expected: Option<&str>) -> Result<(), Problem> {
    let named = expected.map(str::to_owned).or_else(|| {
        let leaf = path
            .rsplit('/')
            .next()?
            .trim_end_matches(".json")
            .trim_end_matches(".tar");
        (leaf.len() == 64 && leaf.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{leaf}"))
    });
    match named {
        Some(expected) if expected != actual.to_string() => Err(Problem::Digest {
            path: path.to_owned(),
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

fn image(
    files: &Files,
    config_path: &str,
    config_digest: Option<&str>,
    layers: &[(String, Option<String>)],
) -> Result<Stored, Problem> {
    let config = file(files, config_path)?;
    verified(config_path, config, config_digest)?;
    // Layers are hashed and inflated on every core: that is most of the reading time.
    let read_layers: Vec<Result<(Layer, Vec<Entry>), Problem>> = std::thread::scope(|scope| {
        let workers: Vec<_> = layers
            .iter()
            .map(|(path, digest)| scope.spawn(move || read_layer(files, path, digest.as_deref())))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a layer reader does not panic"))
            .collect()
    });
    let mut image_layers = Vec::new();
    let mut entries = Vec::new();
    for read in read_layers {
        let (layer, layer_entries) = read?;
        image_layers.push(layer);
        if files.with_entries {
            entries.push(layer_entries);
        }
    }
    Ok(Stored {
        image: Image::from_config_blob(Blob::new(config.to_vec()), image_layers)?,
        manifest: None,
        tags: Vec::new(),
        entries,
    })
}

/// One layer, its digest checked, with its entries when they are wanted.
fn read_layer(files: &Files, path: &str, digest: Option<&str>) -> Result<(Layer, Vec<Entry>), Problem> {
    let blob = file(files, path)?;
    let actual = Digest::of(blob);
    verified_digest(path, actual, digest)?;
    let layer = Layer::from_hashed_blob(blob.clone(), actual, INFLATE_LIMIT)?;
    let entries = if files.with_entries {
        crate::layer::tar::read(&layer.tar(INFLATE_LIMIT)?)?
    } else {
        Vec::new()
    };
    Ok((layer, entries))
}

fn docker_archive(files: &Files) -> Result<Vec<Stored>, Problem> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> =
        serde_json::from_slice(file(files, "manifest.json")?).map_err(|e| Problem::Json("manifest.json", e))?;
    entries
        .into_iter()
        .map(|entry| {
            let layers: Vec<(String, Option<String>)> = entry.layers.into_iter().map(|path| (path, None)).collect();
            let mut stored = image(files, &entry.config, None, &layers)?;
            stored.tags = entry.repo_tags.unwrap_or_default();
            Ok(stored)
        })
        .collect()
}

fn blob_path(digest: &str) -> Result<String, Problem> {
    match digest.split_once(':') {
        Some((algorithm, hex)) if !hex.contains('/') => Ok(format!("blobs/{algorithm}/{hex}")),
        _ => Err(Problem::Other(format!("{digest:?} is not a digest"))),
    }
}

/// The images of an OCI layout, and the image index its `index.json` names when that is
/// its only entry and lists only images (no nested index).
fn oci_layout(files: &Files) -> Result<(Vec<Stored>, Option<StoredIndex>), Problem> {
    let index: Document =
        serde_json::from_slice(file(files, "index.json")?).map_err(|e| Problem::Json("index.json", e))?;
    let mut pending: Vec<Described> = index.manifests.unwrap_or_default();
    let only_entry = pending.len() == 1;
    let mut indexes = Vec::new();
    let mut images = Vec::new();
    while let Some(descriptor) = pending.pop() {
        let path = blob_path(&descriptor.digest)?;
        let bytes = file(files, &path)?;
        verified(&path, bytes, Some(&descriptor.digest))?;
        let document: Document = serde_json::from_slice(bytes).map_err(|e| Problem::Json("a manifest or index", e))?;
        let kind = document.kind();
        if let Some(nested) = document.manifests {
            indexes.push((Blob::new(bytes.to_vec()), kind));
            pending.extend(nested);
            continue;
        }
        let config = document
            .config
            .ok_or_else(|| Problem::Other(format!("the manifest {path} has no config")))?;
        let layers = document
            .layers
            .iter()
            .map(|layer| Ok((blob_path(&layer.digest)?, Some(layer.digest.clone()))))
            .collect::<Result<Vec<_>, Problem>>()?;
        let mut stored = image(files, &blob_path(&config.digest)?, Some(&config.digest), &layers)?;
        stored.manifest = Some(Blob::new(bytes.to_vec()));
        stored.tags = descriptor
            .annotations
            .get("org.opencontainers.image.ref.name")
            .cloned()
            .into_iter()
            .collect();
        images.push(stored);
    }
    images.reverse();
    let index = match indexes.pop() {
        Some(index) if only_entry && indexes.is_empty() => Some(index),
        _ => None,
    };
    Ok((images, index))
}
