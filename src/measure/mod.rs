//! Measuring images: size the way each tool counts it ([`sizes`]), and what is inside
//! ([`inspect`]).
//!
//! Works on what [`crate::read`] produced; reads and writes nothing itself. Each figure's
//! doc says which tool's number it reproduces; the engine tests compare them.

pub mod inspect;

use crate::compress::{Codec, Effort};
use crate::image::Blob;
use crate::layer::EntryKind;
use crate::read::{Layout, Read, Stored};
use serde::Serialize;

/// One image's size, counted as each tool counts it.
#[derive(Clone, Debug, Serialize)]
pub struct Sizes {
    /// The target as the user named it.
    pub target: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The image ID (config digest).
    pub id: String,
    /// `docker images` SIZE on a graph-driver store: bytes of regular files (and symlink
    /// targets) in the layers.
    pub files: u64,
    /// `podman images` SIZE: uncompressed layer tars + config + the manifest, stored twice.
    pub uncompressed: u64,
    /// `ctr images ls` / crictl SIZE: manifest + config + layer blobs as stored.
    pub blobs: u64,
    /// What a registry pull downloads once speck pushes it: OCI manifest + config + layers.
    pub pull: u64,
    /// Bytes of the file (or directory) as it is.
    pub archive: u64,
    /// The archive's bytes with no whole-file compression and under each codec.
    pub archive_as: Vec<CodecBytes>,
}

/// The archive under one whole-file compression.
#[derive(Clone, Debug, Serialize)]
pub struct CodecBytes {
    /// `none`, `gzip`, `xz`, `bzip2` or `zstd`.
    pub codec: &'static str,
    /// Bytes.
    pub bytes: u64,
}

/// The sizes of every image read from `target`.
pub fn sizes(target: &str, read: &Read) -> Vec<Sizes> {
    let archive_as = archive_as(read);
    read.images
        .iter()
        .map(|stored| {
            let image = &stored.image;
            let config = image.config_blob().bytes.len() as u64;
            let layers = image.layers();
            let manifest = stored_manifest(stored, read.container.layout);
            let blob_bytes: u64 = layers.iter().map(|layer| layer.blob().len() as u64).sum();
            Sizes {
                target: target.to_owned(),
                platform: platform_name(image),
                id: image.config_blob().digest.to_string(),
                files: stored.entries.iter().flatten().map(file_bytes).sum(),
                uncompressed: layers.iter().map(|layer| layer.tar_len()).sum::<u64>()
                    + config
                    + 2 * manifest.bytes.len() as u64,
                blobs: manifest.bytes.len() as u64 + config + blob_bytes,
                pull: pulled_manifest(stored, read.container.layout).bytes.len() as u64 + config + blob_bytes,
                archive: read.container.bytes,
                archive_as: archive_as.clone(),
            }
        })
        .collect()
}

/// `os/arch[/variant]`, or `unknown` for a config that names none (a docker-golfed one).
pub fn platform_name(image: &crate::image::Image) -> String {
    if image.platform().os.is_empty() {
        "unknown".to_owned()
    } else {
        image.platform().to_string()
    }
}

/// What a file adds to `docker images` SIZE: its bytes; a symlink, its target's length
/// (the size `lstat` gives it); directories and hard links nothing.
fn file_bytes(entry: &crate::layer::Entry) -> u64 {
    match &entry.kind {
        EntryKind::File(data) => data.len() as u64,
        EntryKind::Symlink(target) => target.len() as u64,
        EntryKind::Dir | EntryKind::Hardlink(_) => 0,
    }
}

/// The manifest engines keep for the image: the stored one, or for a docker-archive the
/// Docker schema 2 manifest that podman (and containerd) make when they load it, which
/// names every layer as gzip, whatever it is, with its size in the archive.
fn stored_manifest(stored: &Stored, layout: Layout) -> Blob {
    if let (Some(manifest), Layout::Oci | Layout::Registry) = (&stored.manifest, layout) {
        return manifest.clone();
    }
    let config = stored.image.config_blob();
    let layers: Vec<String> = stored
        .image
        .layers()
        .iter()
        .map(|layer| {
            format!(
                r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}"#,
                layer.blob().len(),
                layer.diff_id()
            )
        })
        .collect();
    Blob::new(
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{}]}}"#,
            config.bytes.len(),
            config.digest,
            layers.join(",")
        )
        .into_bytes(),
    )
}

/// The manifest a pull fetches: the registry's own, or the OCI manifest speck pushes.
fn pulled_manifest(stored: &Stored, layout: Layout) -> Blob {
    match (&stored.manifest, layout) {
        (Some(manifest), Layout::Registry) => manifest.clone(),
        _ => stored.image.oci_manifest(),
    }
}

/// The plain archive, and the archive under each codec at its smallest.
fn archive_as(read: &Read) -> Vec<CodecBytes> {
    let Some(tar) = &read.container.tar else {
        return Vec::new();
    };
    std::iter::once(CodecBytes {
        codec: "none",
        bytes: tar.len() as u64,
    })
    .chain(Codec::ALL.iter().map(|codec| CodecBytes {
        codec: codec.name(),
        bytes: codec.compress(tar, Effort::Smallest).len() as u64,
    }))
    .collect()
}
