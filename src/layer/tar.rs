//! Tar bytes, chosen one by one.
//!
//! The tar crate's `Builder` always appends the 1024-byte end marker and fills every header
//! field, so speck writes the 512-byte blocks itself, and reads through the tar crate. It
//! owns header encoding and member order, and knows nothing about images.
//!
//! Two forms, both read back by docker, podman, skopeo, umoci and containerd:
//! - [`TarForm::Minimal`]: V7 headers with numbers in their shortest octal form and
//!   nothing else but names and the type, no directory entries
//!   that a file path already implies, no end marker and no padding after the last member.
//! - [`TarForm::Bare`]: minimal, and numbers that are zero (owners, times) left empty,
//!   which Go's and Python's readers take as 0 and which compresses better; Rust's tar
//!   crate refuses such fields. For golfed archives, read by Go tools.
//! - [`TarForm::Conventional`]: what Go's `archive/tar` writes (ustar, every numeric field
//!   zero-padded, a directory entry for every parent, the end marker), for readers that
//!   insist on it.
//!
//! Names that do not fit a header use the ustar prefix field, then a PAX extended header.
//!
//! Reading ([`read`]) goes through the tar crate's reader, which knows every dialect.

use super::entry::{Entry, EntryKind};
use std::collections::{BTreeMap, BTreeSet};

const BLOCK: usize = 512;

/// How much of the tar format to spell out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TarForm {
    /// The smallest tar every tested engine accepts: V7 headers with shortest octal
    /// numbers, no implied directory entries, no end marker, no trailing padding.
    #[default]
    Minimal,
    /// Minimal, with zero owners and times left as empty fields (Go reads them as 0).
    #[value(skip)]
    Bare,
    /// ustar as Go's archive/tar writes it: directory entries for every parent, every
    /// field filled, the 1024-byte end marker.
    Conventional,
}

/// A layer or archive that cannot be read as a tar.
#[derive(Debug, thiserror::Error)]
#[error("not a readable tar: {0}")]
pub struct TarReadError(String);

/// The entries of a tar, in archive order: files with their contents, directories,
/// links. Owners, modes and times that a header leaves empty read as 0, as Go reads
/// them; device nodes and FIFOs are skipped; paths are normalised (`./a` → `a`).
pub fn read(tar: &[u8]) -> Result<Vec<Entry>, TarReadError> {
    use std::io::Read as _;
    if !starts_as_tar(tar) {
        return Err(TarReadError("it does not start with a tar header".into()));
    }
    // The tar crate's messages quote the header's raw bytes: printable, and not too many.
    let error = |e: std::io::Error| TarReadError(e.to_string().escape_debug().take(200).collect());
    let mut archive = reader(tar);
    let mut entries = Vec::new();
    for member in archive.entries().map_err(error)? {
        let mut member = member.map_err(error)?;
        let path = String::from_utf8_lossy(&member.path_bytes()).into_owned();
        let link = member
            .link_name_bytes()
            .map(|link| String::from_utf8_lossy(&link).into_owned())
            .unwrap_or_default();
        let header = member.header();
        let mode = header.mode().unwrap_or(0);
        let (uid, gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        let kind = header.entry_type();
        let entry = match kind {
            ::tar::EntryType::Regular | ::tar::EntryType::Continuous => {
                let mut data = Vec::with_capacity(member.size() as usize);
                member.read_to_end(&mut data).map_err(error)?;
                Entry::file(&path, mode, data)
            }
            ::tar::EntryType::Directory => Entry::dir(&path, mode),
            ::tar::EntryType::Symlink => Entry::symlink(&path, &link),
            ::tar::EntryType::Link => Entry::hardlink(&path, &link),
            _ => continue,
        };
        let Ok(mut entry) = entry else {
            continue; // the root directory, or a path that escapes: nothing an engine unpacks
        };
        (entry.mode, entry.uid, entry.gid) = (mode, uid as u32, gid as u32);
        entries.push(entry);
    }
    Ok(entries)
}

/// Whether `tar` starts as a tar does: empty (a minimal empty layer), with a zero block
/// (the end marker), or with a header whose checksum holds.
fn starts_as_tar(tar: &[u8]) -> bool {
    let Some(header) = tar.get(..BLOCK) else {
        return tar.is_empty();
    };
    let stored = std::str::from_utf8(&header[148..156])
        .ok()
        .and_then(|field| u32::from_str_radix(field.trim_matches(|c| c == ' ' || c == '\0'), 8).ok());
    let sum = |bytes: &[u8]| bytes.iter().map(|&b| u32::from(b)).sum::<u32>();
    let computed = sum(&header[..148]) + 8 * u32::from(b' ') + sum(&header[156..]);
    header.iter().all(|&b| b == 0) || stored == Some(computed)
}

/// The tar crate's reader over `tar`, padded as the crate needs: it skips each member's
/// padding, which the minimal forms leave off the last one, and wants an end marker.
pub fn reader(tar: &[u8]) -> ::tar::Archive<impl std::io::Read + '_> {
    use std::io::Read as _;
    let padding = (tar.len().next_multiple_of(BLOCK) - tar.len() + 2 * BLOCK) as u64;
    ::tar::Archive::new(tar.chain(std::io::repeat(0).take(padding)))
}

impl TarForm {
    /// Whether this form drops what readers do not need (every form but conventional).
    fn is_terse(self) -> bool {
        self != TarForm::Conventional
    }
}

/// Entries that cannot form one valid layer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TarError {
    /// Two entries share a path (docker refuses such layers).
    #[error("the path /{0} is given twice; each path may appear once in a layer")]
    DuplicatePath(String),
    /// A hard link names a path that is not a regular file earlier in the layer.
    #[error("the hard link /{link} points to /{target}, which is not a regular file in the same layer")]
    DanglingHardlink {
        /// The link's path.
        link: String,
        /// The missing target.
        target: String,
    },
}

/// Writes `entries` as one tar archive in `form`, every member stamped with `mtime`
/// (seconds since the Unix epoch).
///
/// Entries are sorted by path first, so the bytes depend only on the set of entries.
pub fn archive(entries: &[Entry], form: TarForm, mtime: u64) -> Result<Vec<u8>, TarError> {
    let members = ordered_members(entries, form)?;
    let mut out = Vec::with_capacity(members.iter().map(|e| BLOCK * 2 + e.content_len() as usize).sum());
    for (index, entry) in members.iter().enumerate() {
        let last = index + 1 == members.len();
        write_member(&mut out, entry, form, mtime, last);
    }
    if form == TarForm::Conventional {
        out.resize(out.len() + 2 * BLOCK, 0);
    }
    Ok(out)
}

/// Sorts entries, refuses duplicates and dangling hard links, gives each hard link its
/// target's mode and owner (the header's mode applies to the shared inode), and in the
/// conventional form adds the parent directories that are not listed.
fn ordered_members(entries: &[Entry], form: TarForm) -> Result<Vec<Entry>, TarError> {
    let mut by_path: BTreeMap<&str, &Entry> = BTreeMap::new();
    for entry in entries {
        if by_path.insert(&entry.path, entry).is_some() {
            return Err(TarError::DuplicatePath(entry.path.clone()));
        }
    }
    let mut members: Vec<Entry> = by_path.values().map(|e| (*e).clone()).collect();
    if form == TarForm::Conventional {
        let listed: BTreeSet<&str> = by_path.keys().copied().collect();
        let implied: BTreeSet<String> = members
            .iter()
            .flat_map(|e| parents(&e.path))
            .filter(|p| !listed.contains(p.as_str()))
            .collect();
        members.extend(implied.into_iter().map(|path| Entry {
            path,
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
        }));
        members.sort_by(|a, b| a.path.cmp(&b.path));
    }
    for index in 0..members.len() {
        if let EntryKind::Hardlink(target) = &members[index].kind {
            let found = members[..index]
                .iter()
                .find(|e| &e.path == target && matches!(e.kind, EntryKind::File(_)));
            let Some(found) = found else {
                return Err(TarError::DanglingHardlink {
                    link: members[index].path.clone(),
                    target: target.clone(),
                });
            };
            let (mode, uid, gid) = (found.mode, found.uid, found.gid);
            let link = &mut members[index];
            (link.mode, link.uid, link.gid) = (mode, uid, gid);
        }
    }
    Ok(members)
}

/// `a/b/c` → `a`, `a/b`.
fn parents(path: &str) -> impl Iterator<Item = String> + '_ {
    path.match_indices('/').map(|(at, _)| path[..at].to_owned())
}

fn write_member(out: &mut Vec<u8>, entry: &Entry, form: TarForm, mtime: u64, last: bool) {
    let (typeflag, link, data): (u8, &str, &[u8]) = match &entry.kind {
        // V7 regular files have a NUL type; ustar readers take both.
        EntryKind::File(data) => (if form.is_terse() { 0 } else { b'0' }, "", data),
        EntryKind::Dir => (b'5', "", &[]),
        EntryKind::Symlink(target) => (b'2', target, &[]),
        EntryKind::Hardlink(target) => (b'1', target, &[]),
    };
    let name = match (&entry.kind, form) {
        (EntryKind::Dir, TarForm::Conventional) => format!("{}/", entry.path),
        _ => entry.path.clone(),
    };
    let fields = Fields {
        name: &name,
        link,
        typeflag,
        mode: entry.mode as u64,
        uid: entry.uid as u64,
        gid: entry.gid as u64,
        size: data.len() as u64,
        mtime,
    };
    let pax = fields.pax_records();
    if !pax.is_empty() {
        let pax_name = format!("PaxHeaders.0/{}", leaf(&name));
        let pax_fields = Fields {
            name: truncate(&pax_name, 100),
            link: "",
            typeflag: b'x',
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: pax.len() as u64,
            mtime,
        };
        out.extend_from_slice(&pax_fields.header(form, true));
        push_data(out, &pax, false);
    }
    out.extend_from_slice(&fields.header(form, !pax.is_empty()));
    push_data(out, data, last && form.is_terse());
}

/// Appends member data, padded to a whole block unless it is the very end of a minimal tar.
fn push_data(out: &mut Vec<u8>, data: &[u8], unpadded: bool) {
    out.extend_from_slice(data);
    if !unpadded {
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
}

fn leaf(name: &str) -> &str {
    name.trim_end_matches('/').rsplit('/').next().unwrap_or(name)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One member's header values, before encoding.
struct Fields<'a> {
    name: &'a str,
    link: &'a str,
    typeflag: u8,
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
}

// Header field offsets and lengths (POSIX ustar).
const NAME: (usize, usize) = (0, 100);
const MODE: (usize, usize) = (100, 8);
const UID: (usize, usize) = (108, 8);
const GID: (usize, usize) = (116, 8);
const SIZE: (usize, usize) = (124, 12);
const MTIME: (usize, usize) = (136, 12);
const CHKSUM: (usize, usize) = (148, 8);
const TYPEFLAG: usize = 156;
const LINKNAME: (usize, usize) = (157, 100);
const MAGIC: (usize, usize) = (257, 8);
const DEVMAJOR: (usize, usize) = (329, 8);
const DEVMINOR: (usize, usize) = (337, 8);
const PREFIX: (usize, usize) = (345, 155);

impl Fields<'_> {
    /// PAX records for the values a ustar header cannot hold; empty when none is needed.
    fn pax_records(&self) -> Vec<u8> {
        let mut records = Vec::new();
        if split_ustar_name(self.name).is_none() {
            pax_record(&mut records, "path", self.name);
        }
        if self.link.len() > LINKNAME.1 {
            pax_record(&mut records, "linkpath", self.link);
        }
        for (key, value, field) in [
            ("gid", self.gid, GID),
            ("mtime", self.mtime, MTIME),
            ("size", self.size, SIZE),
            ("uid", self.uid, UID),
        ] {
            if !fits_octal(value, field.1) {
                pax_record(&mut records, key, &value.to_string());
            }
        }
        records
    }

    /// One 512-byte header. Values that do not fit were already given in PAX records, so
    /// here they are truncated (names) or left zero (numbers), as Go's writer does.
    fn header(&self, form: TarForm, ustar: bool) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        let (prefix, name) = split_ustar_name(self.name).unwrap_or(("", truncate(self.name, NAME.1)));
        put_str(&mut block, NAME, name);
        put_str(&mut block, LINKNAME, truncate(self.link, LINKNAME.1));
        // The bare form empties zero owners and times only: readers that refuse an empty
        // field (Rust's tar crate) still find every entry's size.
        let sized = if form == TarForm::Bare { TarForm::Minimal } else { form };
        put_octal(&mut block, MODE, self.mode, sized);
        put_octal(&mut block, UID, self.uid, form);
        put_octal(&mut block, GID, self.gid, form);
        put_octal(&mut block, SIZE, self.size, sized);
        put_octal(&mut block, MTIME, self.mtime, form);
        block[TYPEFLAG] = self.typeflag;
        if ustar || form == TarForm::Conventional || !prefix.is_empty() {
            put_str(&mut block, MAGIC, "ustar\u{0}00");
            put_str(&mut block, PREFIX, prefix);
        }
        if form == TarForm::Conventional {
            put_octal(&mut block, DEVMAJOR, 0, form);
            put_octal(&mut block, DEVMINOR, 0, form);
        }
        let field = &mut block[CHKSUM.0..CHKSUM.0 + CHKSUM.1];
        field.fill(b' ');
        let sum: u32 = block.iter().map(|&b| b as u32).sum();
        let field = &mut block[CHKSUM.0..CHKSUM.0 + CHKSUM.1];
        match form {
            // Readers trim spaces and NULs around the digits.
            TarForm::Minimal | TarForm::Bare => {
                field.fill(0);
                let digits = format!("{sum:o}");
                field[..digits.len()].copy_from_slice(digits.as_bytes());
            }
            // The traditional layout: six digits, NUL, space.
            TarForm::Conventional => field.copy_from_slice(format!("{sum:06o}\0 ").as_bytes()),
        }
        block
    }
}

/// Splits a name into ustar prefix and name fields, or `None` if it cannot fit.
fn split_ustar_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= NAME.1 {
        return Some(("", name));
    }
    if name.len() > PREFIX.1 + 1 + NAME.1 {
        return None;
    }
    // The split must fall on a '/' that leaves at most 155 bytes before and 100 after.
    // Search bytes: a '/' is never inside a multi-byte UTF-8 character.
    let window = &name.as_bytes()[..=PREFIX.1.min(name.len() - 1)];
    let at = window.iter().rposition(|&b| b == b'/')?;
    let (prefix, rest) = (&name[..at], &name[at + 1..]);
    (!prefix.is_empty() && !rest.is_empty() && rest.len() <= NAME.1).then_some((prefix, rest))
}

/// Whether `value` fits the field as octal digits followed by a NUL.
fn fits_octal(value: u64, len: usize) -> bool {
    value < 1u64 << (3 * (len - 1))
}

fn put_str(block: &mut [u8; BLOCK], (at, len): (usize, usize), value: &str) {
    let bytes = &value.as_bytes()[..value.len().min(len)];
    block[at..at + bytes.len()].copy_from_slice(bytes);
}

fn put_octal(block: &mut [u8; BLOCK], (at, len): (usize, usize), value: u64, form: TarForm) {
    let value = if fits_octal(value, len) { value } else { 0 };
    let digits = match form {
        // Shortest octal, "0" included: Go reads an empty field as 0 too, but the tar
        // crate refuses one, and a fixed-size header gains nothing from the NUL.
        TarForm::Minimal => format!("{value:o}"),
        // Empty reads as 0 in Go and Python, and a run of NULs compresses better.
        TarForm::Bare if value == 0 => String::new(),
        TarForm::Bare => format!("{value:o}"),
        TarForm::Conventional => format!("{value:0width$o}", width = len - 1),
    };
    block[at..at + digits.len()].copy_from_slice(digits.as_bytes());
}

/// Appends `"<len> <key>=<value>\n"`, where `<len>` counts the whole record, itself included.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &[u8]) -> Entry {
        Entry::file(path, 0o755, data.to_vec()).unwrap()
    }

    #[test]
    fn every_form_reads_back() {
        let entries = [file("a/t", b"hello"), Entry::symlink("l", "/a/t").unwrap()];
        for form in [TarForm::Minimal, TarForm::Bare, TarForm::Conventional] {
            let read = read(&archive(&entries, form, 0).unwrap()).unwrap();
            let files: Vec<_> = read.iter().filter(|e| !matches!(e.kind, EntryKind::Dir)).collect();
            assert_eq!(files.len(), 2, "{form:?}");
            assert_eq!(files[0].path, "a/t");
            assert_eq!(files[0].mode, 0o755);
            assert!(matches!(&files[0].kind, EntryKind::File(data) if &data[..] == b"hello"));
            assert!(matches!(&files[1].kind, EntryKind::Symlink(target) if target == "/a/t"));
        }
    }

    #[test]
    fn minimal_one_file_layer_is_one_header_plus_the_bytes() {
        let tar = archive(&[file("t", b"hello")], TarForm::Minimal, 0).unwrap();
        assert_eq!(tar.len(), 512 + 5);
        assert_eq!(&tar[..2], b"t\0");
        assert_eq!(&tar[100..104], b"755\0");
        let bare = archive(&[file("t", b"hello")], TarForm::Bare, 0).unwrap();
        // mode, uid, gid, size, mtime: only the mode and the size are written.
        let mut numbers = [0u8; 48];
        numbers[..3].copy_from_slice(b"755");
        numbers[24] = b'5';
        assert_eq!(bare[100..148], numbers);
        assert_eq!(&tar[124..126], b"5\0");
        assert_eq!(&tar[136..148], b"0\0\0\0\0\0\0\0\0\0\0\0", "mtime 0 is a lone digit");
        assert_eq!(&tar[257..262], &[0u8; 5], "no ustar magic");
    }

    #[test]
    fn conventional_form_adds_parents_and_the_end_marker() {
        let tar = archive(&[file("a/b/t", b"x")], TarForm::Conventional, 7).unwrap();
        // a/, a/b/, a/b/t (+ 1 data block), end marker.
        assert_eq!(tar.len(), 512 * 3 + 512 + 1024);
        assert_eq!(&tar[..3], b"a/\0");
        assert_eq!(&tar[512..517], b"a/b/\0");
        assert_eq!(&tar[136..148], b"00000000007\0");
        assert_eq!(&tar[257..265], b"ustar\x0000");
    }

    #[test]
    fn checksum_is_the_sum_with_spaces_in_the_field() {
        for form in [TarForm::Minimal, TarForm::Conventional] {
            let tar = archive(&[file("x", b"")], form, 0).unwrap();
            let mut copy = tar[..512].to_vec();
            copy[148..156].fill(b' ');
            let sum: u32 = copy.iter().map(|&b| b as u32).sum();
            let field = String::from_utf8_lossy(&tar[148..156]);
            let stored = u32::from_str_radix(field.trim_matches(['\0', ' ']), 8).unwrap();
            assert_eq!(stored, sum, "{form:?}");
        }
    }

    #[test]
    fn duplicates_and_dangling_hardlinks_are_refused() {
        let twice = [file("a", b"1"), file("/a", b"2")];
        assert_eq!(
            archive(&twice, TarForm::Minimal, 0),
            Err(TarError::DuplicatePath("a".into()))
        );
        let dangling = [Entry::hardlink("b", "a").unwrap()];
        assert!(matches!(
            archive(&dangling, TarForm::Minimal, 0),
            Err(TarError::DanglingHardlink { .. })
        ));
    }

    #[test]
    fn long_names_use_the_prefix_then_pax() {
        let mid = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        assert_eq!(split_ustar_name(&mid), Some((&mid[..120], &mid[121..])));
        let long = "n".repeat(300);
        assert_eq!(split_ustar_name(&long), None);
        let tar = archive(&[file(&long, b"")], TarForm::Minimal, 0).unwrap();
        assert_eq!(tar[156], b'x');
        let record = format!("310 path={long}\n");
        assert_eq!(record.len(), 310);
        assert_eq!(&tar[512..512 + record.len()], record.as_bytes());
    }

    #[test]
    fn ustar_split_respects_multibyte_names() {
        let name = format!("{}/{}é/f", "d".repeat(150), "é".repeat(3));
        let (prefix, rest) = split_ustar_name(&name).unwrap();
        assert_eq!(format!("{prefix}/{rest}"), name);
        assert!(prefix.len() <= 155 && rest.len() <= 100);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", &"x".repeat(90));
        assert!(out.starts_with(b"99 path=") && out.len() == 99);
        out.clear();
        // One more byte of value makes the length field itself grow a digit.
        pax_record(&mut out, "path", &"x".repeat(91));
        assert!(out.starts_with(b"101 path=") && out.len() == 101);
    }
}
