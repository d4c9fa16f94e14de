//! Layers: entries in, immutable byte-exact blobs out.
//!
//! Owns the tar encoding ([`tar`]) and layer compression. Knows nothing of image configs,
//! manifests or where a layer is written: [`crate::image`] and [`crate::write`] do that.

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
        let blob: Arc<[u8]> = match compression {
            Compression::None => tar.into(),
            Compression::Gzip => Codec::Gzip.compress(&tar, Effort::Default).into(),
        };
        Self {
            diff_id,
            compression,
            digest: Digest::of(&blob),
            blob,
        }
    }

    /// The digest of the uncompressed tar, as listed in the config's `rootfs.diff_ids`.
    pub fn diff_id(&self) -> Digest {
        self.diff_id
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
