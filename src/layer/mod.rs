//! Layers: entries in, immutable byte-exact blobs out.
//!
//! Owns the tar encoding ([`tar`]) and which layer compression a blob has (the codecs
//! themselves are [`crate::compress`]'s). Knows nothing of image configs, manifests or
//! where a layer is written: [`crate::image`] and [`crate::write`] do that.

mod entry;
pub mod tar;

pub use entry::{Entry, EntryKind, PathError, image_path};
pub use tar::{TarError, TarForm};

use crate::compress::{Codec, Effort};
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip at zlib's default level: read by every engine and registry.
    Gzip,
}

/// A layer blob from outside that speck cannot read.
#[derive(Debug, thiserror::Error)]
pub enum LayerReadError {
    /// A codec layers do not come in here.
    #[error("the layer is compressed with {0}; speck reads plain and gzip layers")]
    Codec(&'static str),
    /// Corrupt or oversized data.
    #[error("the layer cannot be inflated: {0}")]
    Inflate(#[from] std::io::Error),
}

/// How to turn entries into a layer.
#[derive(Clone, Copy, Debug)]
pub struct LayerOptions {
    /// Which tar form to write.
    pub form: TarForm,
    /// The modification time of every member, in seconds since the Unix epoch.
    pub mtime: u64,
    /// How to compress the blob.
    pub compression: Compression,
}

/// One layer: its uncompressed identity (`diff_id`) and the blob that is shipped.
///
/// Cloning is cheap: the blob is shared.
#[derive(Clone, Debug)]
pub struct Layer {
    diff_id: Digest,
    tar_len: u64,
    compression: Compression,
    // Bytes: a Vec becomes one without a copy (an Arc<[u8]> would copy it).
    blob: bytes::Bytes,
    digest: Digest,
}

impl Layer {
    /// Builds a layer from entries; see [`tar::archive`] for what is refused.
    pub fn build(entries: &[Entry], options: &LayerOptions) -> Result<Self, TarError> {
        let tar = tar::archive(entries, options.form, options.mtime)?;
        Ok(Self::from_tar(tar, options.compression))
    }

    /// Wraps existing tar bytes, compressing them as asked.
    pub fn from_tar(tar: Vec<u8>, compression: Compression) -> Self {
        Self::from_tar_with(tar, compression, Effort::Default)
    }

    /// [`Self::from_tar`], trying as hard as `effort` says (zopfli for `Smallest`).
    pub fn from_tar_with(tar: Vec<u8>, compression: Compression, effort: Effort) -> Self {
        let diff_id = Digest::of(&tar);
        let tar_len = tar.len() as u64;
        let blob: bytes::Bytes = match compression {
            Compression::None => tar.into(),
            Compression::Gzip => Codec::Gzip.compress(&tar, effort).into(),
        };
        Self {
            diff_id,
            tar_len,
            compression,
            digest: Digest::of(&blob),
            blob,
        }
    }

    /// Reads a layer blob from outside, plain or gzip, inflating at most `limit` bytes
    /// (as it goes, to hash the tar: the tar is not kept; see [`Self::tar`]).
    pub fn from_blob(blob: Vec<u8>, limit: u64) -> Result<Self, LayerReadError> {
        let digest = Digest::of(&blob);
        Self::from_hashed_blob(blob, digest, limit)
    }

    /// [`Self::from_blob`] for a blob whose digest the caller computed (while
    /// downloading, or to check it before inflating): `digest` must be its sha256.
    pub fn from_hashed_blob(blob: Vec<u8>, digest: Digest, limit: u64) -> Result<Self, LayerReadError> {
        let (compression, diff_id, tar_len) = match Codec::sniff(&blob) {
            None => (Compression::None, digest, blob.len() as u64),
            Some(Codec::Gzip) => {
                let mut hasher = Hashing(Sha256::new());
                let tar_len = Codec::Gzip.decompress_into(&blob, limit, &mut hasher)?;
                (
                    Compression::Gzip,
                    Digest::from_bytes(hasher.0.finalize().into()),
                    tar_len,
                )
            }
            Some(other) => return Err(LayerReadError::Codec(other.name())),
        };
        Ok(Self {
            diff_id,
            tar_len,
            compression,
            digest,
            blob: blob.into(),
        })
    }

    /// The uncompressed tar (inflated again for a gzip layer, at most `limit` bytes).
    pub fn tar(&self, limit: u64) -> Result<Vec<u8>, LayerReadError> {
        Ok(match self.compression {
            Compression::None => self.blob.to_vec(),
            Compression::Gzip => Codec::Gzip.decompress(&self.blob, limit)?,
        })
    }

    /// The digest of the uncompressed tar, as listed in the config's `rootfs.diff_ids`.
    pub fn diff_id(&self) -> Digest {
        self.diff_id
    }

    /// Length of the uncompressed tar.
    pub fn tar_len(&self) -> u64 {
        self.tar_len
    }

    /// The bytes that are shipped (compressed or not).
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The digest of [`Self::blob`].
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// How [`Self::blob`] is compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }
}

/// An `io::Write` that hashes what it is given.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn gzip_layers_keep_the_uncompressed_diff_id() {
        let entries = [Entry::file("a", 0o644, b"aaaaaaaaaaaaaaaa".to_vec()).unwrap()];
        let options = |compression| LayerOptions {
            form: TarForm::Minimal,
            mtime: 0,
            compression,
        };
        let plain = Layer::build(&entries, &options(Compression::None)).unwrap();
        let gz = Layer::build(&entries, &options(Compression::Gzip)).unwrap();
        assert_eq!(plain.diff_id(), gz.diff_id());
        assert_eq!(plain.digest(), plain.diff_id());
        assert_ne!(gz.digest(), gz.diff_id());
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(gz.blob())
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, plain.blob());
    }
}
