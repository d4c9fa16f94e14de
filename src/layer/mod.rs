//! Layers: entries in, immutable byte-exact blobs out.
//!
//! Owns the tar encoding ([`tar`]) and which layer compression a blob has (the codecs
//! themselves are [`crate::compress`]'s). Knows nothing of image configs, manifests or
//! where a layer is written: [`crate::image`] and [`crate::write`] do that.

mod entry;
pub mod tar;

pub use entry::{Entry, EntryKind, PathError, Step, Walked, canonical, image_path, resolve, walk_links};
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
    pub fn from_hashed_blob(blob: impl Into<bytes::Bytes>, digest: Digest, limit: u64) -> Result<Self, LayerReadError> {
        let blob = blob.into();
        let mut inflating = Inflating::new(limit);
        inflating.update(&blob)?;
        inflating.finish(blob, digest)
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

/// A layer's diff_id computed while its blob arrives, chunk by chunk in order (a
/// download inflates as it goes instead of after).
pub struct Inflating {
    state: Inflation,
    limit: u64,
}

enum Inflation {
    /// The first bytes, until the codec is known.
    Sniffing(Vec<u8>),
    Plain,
    Gzip(Box<flate2::write::MultiGzDecoder<Hashing>>),
    Refused(Codec),
}

/// Bytes that tell every codec's magic number apart.
const SNIFF_LEN: usize = 8;

impl Inflating {
    /// Starts on a blob that may inflate to at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            state: Inflation::Sniffing(Vec::new()),
            limit,
        }
    }

    /// The next bytes of the blob.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), LayerReadError> {
        use std::io::Write as _;
        if let Inflation::Sniffing(head) = &mut self.state {
            // Only the first bytes are held back: a whole blob given at once is not copied.
            let wanted = (SNIFF_LEN - head.len()).min(bytes.len());
            head.extend_from_slice(&bytes[..wanted]);
            if head.len() < SNIFF_LEN {
                return Ok(());
            }
            let head = std::mem::take(head);
            self.decide(&head);
            self.update(&head)?;
            return self.update(&bytes[wanted..]);
        }
        if let Inflation::Gzip(decoder) = &mut self.state {
            decoder.write_all(bytes)?;
            if decoder.get_ref().1 > self.limit {
                return Err(too_large(self.limit));
            }
        }
        Ok(())
    }

    fn decide(&mut self, head: &[u8]) {
        self.state = match Codec::sniff(head) {
            None => Inflation::Plain,
            Some(Codec::Gzip) => {
                Inflation::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Hashing(Sha256::new(), 0))))
            }
            Some(other) => Inflation::Refused(other),
        };
    }

    /// The layer, once every byte of `blob` (whose sha256 is `digest`) went through
    /// [`Self::update`].
    pub fn finish(mut self, blob: impl Into<bytes::Bytes>, digest: Digest) -> Result<Layer, LayerReadError> {
        let blob = blob.into();
        if let Inflation::Sniffing(head) = &self.state {
            let head = head.clone();
            self.decide(&head);
            self.update(&head)?;
        }
        let (compression, diff_id, tar_len) = match self.state {
            Inflation::Plain => (Compression::None, digest, blob.len() as u64),
            Inflation::Gzip(decoder) => {
                let hashing = decoder.finish()?;
                if hashing.1 > self.limit {
                    return Err(too_large(self.limit));
                }
                (
                    Compression::Gzip,
                    Digest::from_bytes(hashing.0.finalize().into()),
                    hashing.1,
                )
            }
            Inflation::Refused(codec) => return Err(LayerReadError::Codec(codec.name())),
            Inflation::Sniffing(_) => unreachable!("decided above"),
        };
        Ok(Layer {
            diff_id,
            tar_len,
            compression,
            digest,
            blob,
        })
    }
}

fn too_large(limit: u64) -> LayerReadError {
    LayerReadError::Inflate(std::io::Error::other(format!(
        "the layer inflates to more than {limit} bytes"
    )))
}

/// An `io::Write` that hashes and counts what it is given.
struct Hashing(Sha256, u64);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        self.1 += bytes.len() as u64;
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

    #[test]
    fn inflating_in_pieces_gives_the_diff_id_of_the_whole() {
        let entries = [Entry::file("a", 0o644, b"speck".repeat(1000)).unwrap()];
        let options = LayerOptions {
            form: TarForm::Minimal,
            mtime: 0,
            compression: Compression::Gzip,
        };
        let built = Layer::build(&entries, &options).unwrap();
        let blob = built.blob().to_vec();
        for piece in [1, 3, 7, 4096] {
            let mut inflating = Inflating::new(1 << 20);
            for chunk in blob.chunks(piece) {
                inflating.update(chunk).unwrap();
            }
            let layer = inflating.finish(blob.clone(), built.digest()).unwrap();
            assert_eq!(
                (layer.diff_id(), layer.tar_len()),
                (built.diff_id(), built.tar_len()),
                "pieces of {piece}"
            );
        }
        let too_small = Layer::from_blob(blob.clone(), 100).unwrap_err().to_string();
        assert!(too_small.contains("more than 100 bytes"), "{too_small}");
        let xz = Codec::Xz.compress(b"not a layer codec", Effort::Default);
        assert!(Layer::from_blob(xz, 1 << 20).unwrap_err().to_string().contains("xz"));
    }
}
