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
use std::sync::Arc;

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
    blob: Arc<[u8]>,
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
        let diff_id = Digest::of(&tar);
        let tar_len = tar.len() as u64;
        let blob: Arc<[u8]> = match compression {
            Compression::None => tar.into(),
            Compression::Gzip => Codec::Gzip.compress(&tar, Effort::Default).into(),
        };
        Self {
            diff_id,
            tar_len,
            compression,
            digest: Digest::of(&blob),
            blob,
        }
    }

    /// Reads a layer blob from outside, plain or gzip, inflating at most `limit` bytes;
    /// returns the layer and its tar.
    pub fn from_blob(blob: Vec<u8>, limit: u64) -> Result<(Self, Vec<u8>), LayerReadError> {
        let (compression, tar) = match Codec::sniff(&blob) {
            None => (Compression::None, blob.clone()),
            Some(Codec::Gzip) => (Compression::Gzip, Codec::Gzip.decompress(&blob, limit)?),
            Some(other) => return Err(LayerReadError::Codec(other.name())),
        };
        let layer = Self {
            diff_id: Digest::of(&tar),
            tar_len: tar.len() as u64,
            compression,
            digest: Digest::of(&blob),
            blob: blob.into(),
        };
        Ok((layer, tar))
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
