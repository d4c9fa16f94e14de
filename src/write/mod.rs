//! Publishing an [`Image`]: files on disk in every format engines read, or a local engine.
//!
//! Each format is first a list of [`Member`]s (paths and exact bytes); a sink then places
//! those members in a directory or a tar. This module reads nothing from outside and
//! builds nothing: images arrive finished.

mod atomic;
mod docker_archive;
pub mod engine;
mod oci_layout;

use crate::digest::Digest;
use crate::image::{Image, ImageIndex, Platform, Reference};
use crate::layer::{Entry, TarForm, tar};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// An on-disk image format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A tar for `docker load` / `podman load` (manifest.json + blobs).
    #[default]
    Docker,
    /// An OCI image layout directory (oci-layout, index.json, blobs/).
    Oci,
    /// An OCI image layout in one tar file.
    OciArchive,
    /// One tar that is both a docker-archive and an OCI layout, as Docker 25+ saves.
    #[value(name = "docker+oci")]
    DockerOci,
}

impl Format {
    /// The name users type and read.
    pub fn name(self) -> &'static str {
        match self {
            Format::Docker => "docker-archive",
            Format::Oci => "oci layout",
            Format::OciArchive => "oci-archive",
            Format::DockerOci => "docker-archive + oci layout",
        }
    }
}

/// How to write an image.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// The format.
    pub format: Format,
    /// Names the image is given (`RepoTags`, `org.opencontainers.image.ref.name`).
    pub tags: Vec<Reference>,
    /// The tar form of the outer archive (layers carry their own).
    pub tar_form: TarForm,
    /// The modification time of archive members.
    pub mtime: u64,
}

/// A file in an output: a path and its exact bytes.
#[derive(Clone, Debug)]
pub struct Member<'a> {
    /// Relative path.
    pub path: String,
    /// Contents.
    pub bytes: Cow<'a, [u8]>,
}

/// A failure to write an output, naming the destination.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {dest}: {cause}")]
pub struct WriteError {
    dest: String,
    cause: std::io::Error,
}

/// Where blobs live in both docker-archives and OCI layouts.
fn blob_path(digest: Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// The image's own blobs, config then layers, under their digests: shared by every format.
fn image_blobs(image: &Image) -> impl Iterator<Item = Member<'_>> {
    let config = image.config_blob();
    std::iter::once(Member {
        path: blob_path(config.digest),
        bytes: Cow::Borrowed(&config.bytes),
    })
    .chain(image.layers().iter().map(|layer| Member {
        path: blob_path(layer.digest()),
        bytes: Cow::Borrowed(layer.blob()),
    }))
}

/// Whether `format` holds one platform only (docker-archives do).
pub fn single_platform(format: Format) -> bool {
    matches!(format, Format::Docker | Format::DockerOci)
}

/// The files that make up `index` in `format`, sorted by path, each path once. Formats
/// that hold one platform get the host's image, or the first if the host's is absent.
pub fn members<'a>(index: &'a ImageIndex, format: Format, tags: &[Reference]) -> Vec<Member<'a>> {
    let images = if single_platform(format) {
        std::slice::from_ref(index.pick(&Platform::host()))
    } else {
        index.images()
    };
    let mut by_path = BTreeMap::new();
    let mut add = |members: Vec<Member<'a>>| {
        for member in members {
            by_path.insert(member.path.clone(), member);
        }
    };
    if matches!(format, Format::Docker | Format::DockerOci) {
        add(docker_archive::members(&images[0], tags));
    }
    if matches!(format, Format::Oci | Format::OciArchive | Format::DockerOci) {
        add(oci_layout::members(images, tags));
    }
    by_path.into_values().collect()
}

/// Members as one tar archive.
pub fn to_tar(members: &[Member], form: TarForm, mtime: u64) -> Vec<u8> {
    let entries: Vec<Entry> = members
        .iter()
        .map(|m| Entry::file(&m.path, 0o644, m.bytes.as_ref()).expect("member paths are relative and clean"))
        .collect();
    tar::archive(&entries, form, mtime).expect("member paths are unique")
}

/// Writes `index` to `dest` and returns the number of bytes written.
pub fn write(index: &ImageIndex, dest: &Path, options: &WriteOptions) -> Result<u64, WriteError> {
    let members = members(index, options.format, &options.tags);
    let result = match options.format {
        Format::Oci => {
            let total = members.iter().map(|m| m.bytes.len() as u64).sum();
            atomic::replace_dir(dest, |dir| {
                for member in &members {
                    let path = dir.join(&member.path);
                    std::fs::create_dir_all(path.parent().expect("members are inside the layout"))?;
                    std::fs::write(path, &member.bytes)?;
                }
                Ok(())
            })
            .map(|()| total)
        }
        _ => {
            let bytes = to_tar(&members, options.tar_form, options.mtime);
            atomic::replace_file(dest, &bytes).map(|()| bytes.len() as u64)
        }
    };
    result.map_err(|cause| WriteError {
        dest: dest.display().to_string(),
        cause,
    })
}
