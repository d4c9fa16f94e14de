//! Publishing an [`Image`]: files on disk in every format engines read, or a local engine.
//!
//! Each format is first a list of [`Member`]s (paths and exact bytes); a sink then places
//! those members in a directory or a tar. This module reads nothing from outside and
//! builds nothing: images arrive finished.

mod atomic;
mod docker_archive;
pub mod golf;
mod oci_layout;

pub use atomic::replace_file;
pub use golf::{Compress, Compressed, Golf};

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
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// The format.
    pub format: Format,
    /// Names the image is given (`RepoTags`, `org.opencontainers.image.ref.name`).
    pub tags: Vec<Reference>,
    /// The tar form of the outer archive (layers carry their own).
    pub tar_form: TarForm,
    /// The modification time of archive members.
    pub mtime: u64,
    /// Shrink a docker-archive to this level: one-letter member names, minimal tar. The
    /// images should have been built with the level's [`Golf::config_form`].
    pub golf: Option<Golf>,
    /// Whole-file compression of a tar output.
    pub compress: Compress,
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

/// The files that make up `index` as `options` say, sorted by path, each path once.
/// Formats that hold one platform get the host's image, or the first if the host's is absent.
pub fn members<'a>(index: &'a ImageIndex, options: &WriteOptions) -> Vec<Member<'a>> {
    let (format, tags) = (options.format, &options.tags[..]);
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
        add(docker_archive::members(&images[0], tags, options.golf.is_some()));
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

/// `index` as one archive file (any format but the OCI layout directory), compressed as
/// `options` say.
pub fn archive(index: &ImageIndex, options: &WriteOptions) -> Compressed {
    let form = if options.golf.is_some() {
        TarForm::Bare
    } else {
        options.tar_form
    };
    let tar = to_tar(&members(index, options), form, options.mtime);
    golf::compress(tar, options.compress, options.golf)
}

/// What [`write()`] placed.
#[derive(Clone, Debug)]
pub struct Written {
    /// Bytes written.
    pub bytes: u64,
    /// The whole-file compression, and what else was tried.
    pub compressed: Option<Compressed>,
}

/// Writes `index` to `dest`.
pub fn write(index: &ImageIndex, dest: &Path, options: &WriteOptions) -> Result<Written, WriteError> {
    let result = match options.format {
        Format::Oci => {
            let members = members(index, options);
            let total = members.iter().map(|m| m.bytes.len() as u64).sum();
            atomic::replace_dir(dest, |dir| {
                for member in &members {
                    let path = dir.join(&member.path);
                    std::fs::create_dir_all(path.parent().expect("members are inside the layout"))?;
                }
                // Large files (layers, most of the time) are written on threads of their
                // own; small ones at once.
                let (large, small): (Vec<&Member>, Vec<&Member>) =
                    members.iter().partition(|member| member.bytes.len() >= 1 << 20);
                for member in small {
                    std::fs::write(dir.join(&member.path), &member.bytes)?;
                }
                std::thread::scope(|scope| {
                    let writers: Vec<_> = large
                        .into_iter()
                        .map(|member| scope.spawn(move || std::fs::write(dir.join(&member.path), &member.bytes)))
                        .collect();
                    writers
                        .into_iter()
                        .try_for_each(|writer| writer.join().expect("a file writer does not panic"))
                })
            })
            .map(|()| Written {
                bytes: total,
                compressed: None,
            })
        }
        _ => {
            let compressed = archive(index, options);
            atomic::replace_file(dest, &compressed.bytes).map(|()| Written {
                bytes: compressed.bytes.len() as u64,
                compressed: compressed.codec.is_some().then_some(compressed),
            })
        }
    };
    result.map_err(|cause| WriteError {
        dest: dest.display().to_string(),
        cause,
    })
}
