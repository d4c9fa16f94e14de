//! Compression codecs, in both directions: layers (gzip) and whole archives (any codec).
//!
//! Owns which codec is used how hard, and which tools are known not to read each one
//! (measured here: docker 20.10, podman 4.3, skopeo 1.9, containerd 1.6). Knows nothing of
//! images or tars: bytes in, bytes out.
//!
//! Every encoder is deterministic (fixed headers, no timestamps or names), so equal input
//! gives equal bytes.

use std::io::{Read as _, Write as _};

/// A compression format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Codec {
    /// gzip (deflate).
    Gzip,
    /// xz (LZMA2) with a CRC32 check.
    Xz,
    /// bzip2.
    Bzip2,
    /// zstd.
    Zstd,
}

/// How hard to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    /// Fast and good: zlib's default level and the like (for layers).
    Default,
    /// Smallest output this crate can make: zopfli for gzip, a search over the LZMA
    /// literal/position parameters for xz, the top levels of bzip2 and zstd. Slow on large
    /// inputs, so the searches narrow above [`SEARCH_LIMIT`].
    Smallest,
}

/// Inputs longer than this get one set of parameters rather than a search.
pub const SEARCH_LIMIT: usize = 256 * 1024;

impl Codec {
    /// Every codec, in the order `best` tries them.
    pub const ALL: [Codec; 4] = [Codec::Gzip, Codec::Xz, Codec::Bzip2, Codec::Zstd];

    /// The name users type and read.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Xz => "xz",
            Codec::Bzip2 => "bzip2",
            Codec::Zstd => "zstd",
        }
    }

    /// Tools known not to read a whole docker-archive compressed with this codec, and why.
    pub fn archive_breaks(self) -> &'static [&'static str] {
        match self {
            Codec::Gzip => &[
                "podman load 4.3 and skopeo 1.9 (their parallel gunzip fails: podman#15944)",
                CTR,
            ],
            Codec::Xz | Codec::Bzip2 => &[CTR],
            Codec::Zstd => &["docker load 20.10 (no zstd)", CTR],
        }
    }

    /// Compresses `data`.
    pub fn compress(self, data: &[u8], effort: Effort) -> Vec<u8> {
        match self {
            Codec::Gzip => gzip(data, effort),
            Codec::Xz => xz(data, effort),
            Codec::Bzip2 => bzip2(data),
            Codec::Zstd => zstd(data, effort),
        }
    }

    /// The codec whose magic number starts `data`, if any.
    pub fn sniff(data: &[u8]) -> Option<Codec> {
        const MAGIC: [(&[u8], Codec); 4] = [
            (&[0x1f, 0x8b], Codec::Gzip),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0], Codec::Xz),
            (b"BZh", Codec::Bzip2),
            (&[0x28, 0xb5, 0x2f, 0xfd], Codec::Zstd),
        ];
        MAGIC
            .iter()
            .find(|(magic, _)| data.starts_with(magic))
            .map(|&(_, codec)| codec)
    }

    /// Decompresses `data`, reading at most `limit` bytes of output.
    pub fn decompress(self, data: &[u8], limit: u64) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.decompress_into(data, limit, &mut out)?;
        Ok(out)
    }

    /// Inflates `data` into `out` as it goes (nothing held in memory), refusing more than
    /// `limit` bytes; the number of bytes written.
    pub fn decompress_into(self, data: &[u8], limit: u64, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
        let reader: Box<dyn std::io::Read + '_> = match self {
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
            Codec::Xz => Box::new(lzma_rust2::XzReader::new(data, true)),
            Codec::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(data)),
            Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(data)?),
        };
        let written = std::io::copy(&mut reader.take(limit.saturating_add(1)), out)?;
        if written > limit {
            return Err(std::io::Error::other(format!(
                "{} data inflates to more than {limit} bytes",
                self.name()
            )));
        }
        Ok(written)
    }
}

const CTR: &str = "containerd's ctr import 1.6 (plain tar only)";

/// gzip with a fixed header (no name, mtime 0), so equal input gives equal bytes.
fn gzip(data: &[u8], effort: Effort) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    match effort {
        Effort::Default => {
            let mut encoder = flate2::GzBuilder::new()
                .operating_system(255)
                .write(&mut out, flate2::Compression::default());
            encoder.write_all(data).expect("writing to memory cannot fail");
            encoder.finish().expect("writing to memory cannot fail");
        }
        Effort::Smallest => {
            // zopfli: deflate streams 3-8% smaller than zlib -9, at 100x the time. More
            // iterations than 50 gained no byte on archives of tiny programs (measured up
            // to 1000).
            let iterations = if data.len() <= SEARCH_LIMIT { 50 } else { 15 };
            let options = zopfli::Options {
                iteration_count: std::num::NonZeroU64::new(iterations).expect("not zero"),
                ..zopfli::Options::default()
            };
            zopfli::compress(options, zopfli::Format::Gzip, data, &mut out).expect("writing to memory cannot fail");
        }
    }
    out
}

/// xz with a CRC32 check (Go's xz reader, in podman and skopeo, refuses a stream without
/// one), trying every literal-context/position split on small inputs.
fn xz(data: &[u8], effort: Effort) -> Vec<u8> {
    let encode = |lc, lp, pb| {
        let mut options = lzma_rust2::XzOptions::with_preset(9);
        options.set_check_sum_type(lzma_rust2::CheckType::Crc32);
        let lzma = &mut options.lzma_options;
        (lzma.lc, lzma.lp, lzma.pb) = (lc, lp, pb);
        lzma.nice_len = lzma_rust2::LzmaOptions::NICE_LEN_MAX;
        let mut writer = lzma_rust2::XzWriter::new(Vec::new(), options).expect("the options are valid");
        writer.write_all(data).expect("writing to memory cannot fail");
        writer.finish().expect("writing to memory cannot fail")
    };
    if effort == Effort::Default || data.len() > SEARCH_LIMIT {
        return encode(3, 0, 2);
    }
    let mut candidates = Vec::new();
    for lc in 0..=4 {
        for lp in 0..=(4 - lc).min(2) {
            for pb in 0..=2 {
                candidates.push(encode(lc, lp, pb));
            }
        }
    }
    candidates
        .into_iter()
        .min_by_key(Vec::len)
        .expect("at least one candidate")
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    encoder.write_all(data).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// zstd without its optional checksum (the frame's content size is kept).
fn zstd(data: &[u8], effort: Effort) -> Vec<u8> {
    let level = match effort {
        Effort::Default => 3,
        Effort::Smallest => 19,
    };
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), level).expect("the level is valid");
    encoder.include_checksum(false).expect("a valid parameter");
    encoder
        .set_pledged_src_size(Some(data.len() as u64))
        .expect("a valid parameter");
    encoder.write_all(data).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_is_recognised() {
        let data: Vec<u8> = (0..1000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for codec in Codec::ALL {
            for effort in [Effort::Default, Effort::Smallest] {
                let packed = codec.compress(&data, effort);
                assert!(packed.len() < data.len() / 4, "{codec:?} {effort:?}: {}", packed.len());
                assert_eq!(Codec::sniff(&packed), Some(codec));
                assert_eq!(codec.decompress(&packed, 1 << 20).unwrap(), data, "{codec:?}");
            }
        }
    }

    #[test]
    fn decompression_stops_at_the_limit() {
        let packed = Codec::Gzip.compress(&vec![0; 100_000], Effort::Default);
        let error = Codec::Gzip.decompress(&packed, 1000).unwrap_err();
        assert!(error.to_string().contains("more than 1000 bytes"), "{error}");
    }

    #[test]
    fn smallest_effort_is_never_larger() {
        let data = &include_bytes!("compress.rs")[..2000];
        for codec in Codec::ALL {
            let default = codec.compress(data, Effort::Default).len();
            let smallest = codec.compress(data, Effort::Smallest).len();
            assert!(smallest <= default, "{codec:?}: {smallest} > {default}");
        }
    }
}
