//! Golf: docker-archives at the smallest size their readers still load, and whole-file
//! compression chosen for those readers.
//!
//! Owns the levels (what each keeps working, what each is known to break) and the choice
//! of codec. The config forms themselves belong to [`crate::image`]; the codecs to
//! [`crate::compress`].

use crate::compress::{Codec, Effort};
use crate::image::{ConfigForm, ManifestForm};

/// How far to shrink a docker-archive, named for what keeps working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Golf {
    /// The smallest docker-archive that docker, podman, skopeo and containerd's ctr all
    /// load and run: one-letter member names, V7 tar headers, a config with only the
    /// platform, the command and the layer digests.
    Portable,
    /// The smallest docker-archive that docker loads and runs: the config keeps only the
    /// command and the layer digests, and the image is untagged unless --tag names it.
    Docker,
}

impl Golf {
    /// The name users type and read.
    pub fn name(self) -> &'static str {
        match self {
            Golf::Portable => "portable",
            Golf::Docker => "docker",
        }
    }

    /// How much of the image config this level writes.
    pub fn config_form(self) -> ConfigForm {
        match self {
            Golf::Portable => ConfigForm::Portable,
            Golf::Docker => ConfigForm::DockerOnly,
        }
    }

    /// How a push at this level writes the config and the manifest: the config without
    /// a platform for both (podman pulls and runs it when the manifest names the config's
    /// media type), the manifest with only that media type (`portable`) or none.
    pub fn wire_forms(self) -> (ConfigForm, ManifestForm) {
        match self {
            Golf::Portable => (ConfigForm::DockerOnly, ManifestForm::ConfigTypeOnly),
            Golf::Docker => (ConfigForm::DockerOnly, ManifestForm::Untyped),
        }
    }

    /// Tools known not to pull this level's pushes.
    pub fn wire_breaks(self) -> &'static [&'static str] {
        match self {
            Golf::Portable => &["containerd's ctr pull (a layer without a media type)"],
            Golf::Docker => &[
                "podman pull (a config without a media type)",
                "containerd's ctr pull (a layer without a media type)",
            ],
        }
    }

    /// Tools known not to read this level's archives (before any whole-file compression).
    pub fn breaks(self) -> &'static [&'static str] {
        match self {
            Golf::Portable => &[],
            Golf::Docker => &[
                "containerd's ctr import (it drops an image without a platform)",
                "docker run warns that the image's platform is unknown",
            ],
        }
    }

    /// The codecs every reader this level is for can read, as whole-file compression.
    pub fn readable_codecs(golf: Option<Golf>) -> &'static [Codec] {
        match golf {
            // docker 20.10 reads gzip, xz and bzip2 archives; not zstd.
            Some(Golf::Docker) => &[Codec::Gzip, Codec::Xz, Codec::Bzip2],
            // podman 4.3 and skopeo 1.9 cannot read gzip (podman#15944).
            Some(Golf::Portable) | None => &[Codec::Xz, Codec::Bzip2],
        }
    }
}

/// Whole-file compression of an archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compress {
    /// A plain tar.
    #[default]
    None,
    /// gzip, deflate by zopfli.
    Gzip,
    /// xz with a CRC32 check, LZMA parameters searched.
    Xz,
    /// bzip2 -9.
    Bzip2,
    /// zstd -19.
    Zstd,
    /// Each codec the targeted readers all read; the smallest result is kept.
    Best,
}

/// An archive after whole-file compression.
#[derive(Clone, Debug)]
pub struct Compressed {
    /// The bytes to write.
    pub bytes: Vec<u8>,
    /// The codec used, if any.
    pub codec: Option<Codec>,
    /// Each codec tried and its size in bytes, for `best`.
    pub tried: Vec<(Codec, usize)>,
}

/// Compresses `archive` as `choice` says, for the readers of `golf`.
pub fn compress(archive: Vec<u8>, choice: Compress, golf: Option<Golf>) -> Compressed {
    let one = |codec: Codec| vec![codec];
    let codecs = match choice {
        Compress::None => {
            return Compressed {
                bytes: archive,
                codec: None,
                tried: Vec::new(),
            };
        }
        Compress::Gzip => one(Codec::Gzip),
        Compress::Xz => one(Codec::Xz),
        Compress::Bzip2 => one(Codec::Bzip2),
        Compress::Zstd => one(Codec::Zstd),
        Compress::Best => Golf::readable_codecs(golf).to_vec(),
    };
    let results: Vec<(Codec, Vec<u8>)> = codecs
        .into_iter()
        .map(|codec| (codec, codec.compress(&archive, Effort::Smallest)))
        .collect();
    let tried = results.iter().map(|(codec, bytes)| (*codec, bytes.len())).collect();
    let (codec, bytes) = results
        .into_iter()
        .min_by_key(|(_, bytes)| bytes.len())
        .expect("at least one codec");
    Compressed {
        bytes,
        codec: Some(codec),
        tried,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_keeps_the_smallest_readable_codec() {
        let archive: Vec<u8> = (0..3000u32).map(|i| (i * i % 7) as u8).collect();
        let docker = compress(archive.clone(), Compress::Best, Some(Golf::Docker));
        assert_eq!(docker.tried.len(), 3);
        assert_eq!(docker.bytes.len(), docker.tried.iter().map(|t| t.1).min().unwrap());
        let portable = compress(archive.clone(), Compress::Best, None);
        assert!(portable.tried.iter().all(|(codec, _)| *codec != Codec::Gzip));
        let none = compress(archive.clone(), Compress::None, None);
        assert_eq!((none.bytes, none.codec), (archive, None));
    }
}
