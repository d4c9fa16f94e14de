//! `speck inspect`: the config, platform and files of each image, what each ELF program
//! needs, and where every byte of the archive goes.

use crate::collect::executable::Executable;
use crate::layer::{Entry, EntryKind};
use crate::read::{Layout, Read, Stored};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Everything `speck inspect` reports about one target.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The target as the user named it.
    pub target: String,
    /// `docker-archive` or `oci layout`.
    pub format: &'static str,
    /// Whole-file compression, if any.
    pub compression: Option<&'static str>,
    /// Bytes of the file (or directory).
    pub bytes: u64,
    /// Where the bytes of an archive go (none for a directory).
    pub breakdown: Option<Breakdown>,
    /// The images.
    pub images: Vec<ImageReport>,
}

/// One image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    /// The image ID (config digest).
    pub id: String,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Its names.
    pub tags: Vec<String>,
    /// What the container runs.
    pub config: crate::image::Config,
    /// Every file of every layer, bottom layer first.
    pub files: Vec<FileReport>,
}

/// One file in a layer.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// Absolute path in the image.
    pub path: String,
    /// `file`, `dir`, `symlink -> TARGET` or `hardlink -> TARGET`.
    pub kind: String,
    /// Permission bits, in octal.
    pub mode: String,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Bytes of content.
    pub size: u64,
    /// For an ELF file: what runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elf: Option<ElfReport>,
}

/// What an ELF file is and needs.
#[derive(Clone, Debug, Serialize)]
pub struct ElfReport {
    /// Machine and class, e.g. `X86_64 64-bit`.
    pub machine: String,
    /// The platform it runs on, if known.
    pub platform: Option<String>,
    /// `static` or `dynamic`.
    pub linking: &'static str,
    /// The interpreter it needs, and whether the image has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// Whether the interpreter is in the image (dynamic programs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter_present: Option<bool>,
}

/// Where an archive's bytes go. The parts add up to the uncompressed archive.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Breakdown {
    /// 512-byte tar headers of the archive's own members.
    pub archive_headers: u64,
    /// JSON: manifests, indexes, configs, `oci-layout`.
    pub json: u64,
    /// Of the JSON, `sha256:` digests (71 bytes each).
    pub json_digests: u64,
    /// Tar headers inside plain layers.
    pub layer_headers: u64,
    /// File contents inside plain layers.
    pub layer_files: u64,
    /// Padding and end markers inside plain layers.
    pub layer_padding: u64,
    /// Compressed layer blobs, whole.
    pub compressed_layers: u64,
    /// Padding and end markers of the archive itself.
    pub archive_padding: u64,
    /// The archive before whole-file compression.
    pub uncompressed: u64,
    /// The file as stored (after whole-file compression).
    pub stored: u64,
}

/// Reports on everything read from `target`.
pub fn inspect(target: &str, read: &Read) -> Report {
    let container = &read.container;
    Report {
        target: target.to_owned(),
        format: match container.layout {
            Layout::DockerArchive => "docker-archive",
            Layout::Oci => "oci layout",
            Layout::Registry => "registry",
        },
        compression: container.codec.map(|codec| codec.name()),
        bytes: container.bytes,
        breakdown: container.tar.as_ref().map(|tar| breakdown(tar, read)),
        images: read.images.iter().map(image_report).collect(),
    }
}

fn image_report(stored: &Stored) -> ImageReport {
    let present: BTreeMap<&str, &Entry> = stored.entries.iter().flatten().map(|e| (e.path.as_str(), e)).collect();
    ImageReport {
        id: stored.image.config_blob().digest.to_string(),
        platform: super::platform_name(&stored.image),
        tags: stored.tags.clone(),
        config: stored.image.config().clone(),
        files: stored
            .entries
            .iter()
            .flatten()
            .map(|entry| file_report(entry, &present))
            .collect(),
    }
}

fn file_report(entry: &Entry, present: &BTreeMap<&str, &Entry>) -> FileReport {
    let (kind, size, elf) = match &entry.kind {
        EntryKind::File(data) => ("file".to_owned(), data.len() as u64, elf_report(data, present)),
        EntryKind::Dir => ("dir".to_owned(), 0, None),
        EntryKind::Symlink(target) => (format!("symlink -> {target}"), 0, None),
        EntryKind::Hardlink(target) => (format!("hardlink -> /{target}"), 0, None),
    };
    FileReport {
        path: format!("/{}", entry.path),
        kind,
        mode: format!("{:04o}", entry.mode & 0o7777),
        uid: entry.uid,
        gid: entry.gid,
        size,
        elf,
    }
}

fn elf_report(data: &[u8], present: &BTreeMap<&str, &Entry>) -> Option<ElfReport> {
    let Executable::Elf(facts) = Executable::of(data) else {
        return None;
    };
    let interpreter_present = facts
        .interpreter
        .as_deref()
        .map(|path| crate::layer::resolve(present, path).is_some()); // through the image's symlinks
    Some(ElfReport {
        machine: facts.machine_name,
        platform: facts.platform.map(|p| p.to_string()),
        linking: if facts.interpreter.is_some() {
            "dynamic"
        } else {
            "static"
        },
        interpreter: facts.interpreter,
        interpreter_present,
    })
}

/// Splits the uncompressed archive into headers, JSON, layers and padding.
fn breakdown(tar: &[u8], read: &Read) -> Breakdown {
    let layer_blobs: BTreeSet<&[u8]> = read
        .images
        .iter()
        .flat_map(|stored| stored.image.layers().iter().map(|layer| layer.blob()))
        .collect();
    let mut parts = Breakdown {
        uncompressed: tar.len() as u64,
        stored: read.container.bytes,
        ..Breakdown::default()
    };
    for (header, data) in tar_parts(tar) {
        parts.archive_headers += header;
        if layer_blobs.contains(data) {
            if crate::compress::Codec::sniff(data).is_some() {
                parts.compressed_layers += data.len() as u64;
            } else {
                let (mut headers, mut files) = (0, 0);
                for (header, content) in tar_parts(data) {
                    headers += header;
                    files += content.len() as u64;
                }
                parts.layer_headers += headers;
                parts.layer_files += files;
                parts.layer_padding += data.len() as u64 - headers - files;
            }
        } else {
            parts.json += data.len() as u64;
            parts.json_digests += 71 * count_digests(data);
        }
    }
    let accounted = parts.archive_headers
        + parts.json
        + parts.compressed_layers
        + parts.layer_headers
        + parts.layer_files
        + parts.layer_padding;
    parts.archive_padding = parts.uncompressed.saturating_sub(accounted);
    parts
}

/// Each member of a tar: the bytes of its header(s) and its data.
fn tar_parts(tar: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut archive = crate::layer::tar::reader(tar);
    let members: Vec<(u64, u64, u64)> = archive
        .entries()
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .map(|member| {
            let header_at = member.raw_header_position();
            let data_at = member.raw_file_position();
            (data_at - header_at, data_at, member.size())
        })
        .collect();
    members.into_iter().map(move |(header, at, size)| {
        let end = (at + size).min(tar.len() as u64) as usize;
        (header, &tar[at as usize..end])
    })
}

fn count_digests(json: &[u8]) -> u64 {
    json.windows(7).filter(|window| *window == b"sha256:").count() as u64
}

/// The report as text for a terminal.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let compression = report.compression.map(|c| format!(", {c}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {}{compression}, {} bytes",
        report.target, report.format, report.bytes
    );
    for image in &report.images {
        let _ = writeln!(out, "\nimage {} ({})", image.id, image.platform);
        if !image.tags.is_empty() {
            let _ = writeln!(out, "  tags: {}", image.tags.join(", "));
        }
        let config = serde_json::to_string(&image.config).expect("a config always serialises");
        let _ = writeln!(out, "  config: {config}");
        let _ = writeln!(out, "  files:");
        for file in &image.files {
            let _ = writeln!(
                out,
                "    {} {}:{} {:>9}  {}  {}",
                file.mode, file.uid, file.gid, file.size, file.path, file.kind
            );
            if let Some(elf) = &file.elf {
                let needs = match (&elf.interpreter, elf.interpreter_present) {
                    (Some(interpreter), Some(true)) => format!("dynamic, interpreter {interpreter} (present)"),
                    (Some(interpreter), _) => format!("dynamic, interpreter {interpreter} (MISSING from the image)"),
                    (None, _) => "static".to_owned(),
                };
                let platform = elf.platform.as_deref().unwrap_or("unknown platform");
                let _ = writeln!(out, "{:>26}ELF {}, {platform}, {needs}", "", elf.machine);
            }
        }
    }
    if let Some(parts) = &report.breakdown {
        let _ = writeln!(out, "\nwhere the {} bytes of the archive go:", parts.uncompressed);
        for (what, bytes) in [
            ("archive tar headers", parts.archive_headers),
            ("JSON (manifests, configs)", parts.json),
            ("  of which sha256 digests", parts.json_digests),
            ("layer tar headers", parts.layer_headers),
            ("layer file contents", parts.layer_files),
            ("layer padding", parts.layer_padding),
            ("compressed layers", parts.compressed_layers),
            ("archive padding", parts.archive_padding),
        ] {
            let _ = writeln!(out, "  {what:<28}{bytes:>10}");
        }
        if let Some(codec) = report.compression {
            let _ = writeln!(
                out,
                "  {:<28}{:>10}  ({} of {} bytes)",
                format!("stored with {codec}"),
                parts.stored,
                percent(parts.stored, parts.uncompressed),
                parts.uncompressed
            );
        }
    }
    out
}

fn percent(part: u64, whole: u64) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole.max(1) as f64)
}
