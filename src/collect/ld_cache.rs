//! `/etc/ld.so.cache`, the index `ldconfig` writes and glibc's loader reads: which file
//! stands for a library name, in the directories of `/etc/ld.so.conf`.
//!
//! Owns the file format (glibc's "new" format, `glibc-ld.so.cache1.1`, alone or after the
//! old `ld.so-1.7.0` table) both ways: read, to resolve names as the host's loader does,
//! and written, so that an image's loader finds libraries outside its default
//! directories. Knows nothing about ELF files or images.

/// The new format's magic and version.
const MAGIC_NEW: &[u8] = b"glibc-ld.so.cache1.1";
/// The old format's magic; glibc 2.32 and later write only the new format.
const MAGIC_OLD: &[u8] = b"ld.so-1.7.0";
/// `magic[17] version[3] nlibs len_strings flags padding[3] extension_offset unused[3]`.
const HEADER_NEW: usize = 48;
/// `flags key value osversion hwcap`.
const ENTRY_NEW: usize = 24;
/// `flags key value`.
const ENTRY_OLD: usize = 12;
/// `FLAG_ELF_LIBC6`: a glibc ELF library, the only type the loader uses.
const FLAG_ELF_LIBC6: i32 = 0x0003;
/// Entries are written in the host's byte order; this flag says little-endian.
const FLAG_LITTLE_ENDIAN: u8 = 2;

/// One library of the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// The name programs ask for (`libc.so.6`).
    pub name: String,
    /// The file that provides it.
    pub path: String,
    /// `FLAG_*` bits: the type (low byte) and the architecture (`0x0300` x86-64, ...).
    pub flags: i32,
    /// Non-zero for a `glibc-hwcaps` variant tuned for some CPUs.
    pub hwcap: u64,
}

/// Reads a cache file's entries in file order (the loader's order of preference).
/// Anything that is not a cache, or a damaged one, gives an empty list: the loader then
/// searches its default directories, and so does speck.
pub fn read(bytes: &[u8]) -> Vec<CacheEntry> {
    let start = if bytes.starts_with(MAGIC_OLD) {
        let count = u32_at(bytes, 12).unwrap_or(0) as usize;
        let end = 16usize.saturating_add(count.saturating_mul(ENTRY_OLD));
        end.next_multiple_of(8)
    } else {
        0
    };
    let Some(new) = bytes.get(start..).filter(|new| new.starts_with(MAGIC_NEW)) else {
        return Vec::new();
    };
    let count = u32_at(new, 20).unwrap_or(0) as usize;
    (0..count)
        .map_while(|i| {
            let at = HEADER_NEW + i * ENTRY_NEW;
            let entry = new.get(at..at + ENTRY_NEW)?;
            Some(CacheEntry {
                flags: i32::from_le_bytes(entry[0..4].try_into().ok()?),
                name: string_at(new, u32_at(entry, 4)?)?,
                path: string_at(new, u32_at(entry, 8)?)?,
                hwcap: u64::from_le_bytes(entry[16..24].try_into().ok()?),
            })
        })
        .collect()
}

/// Writes a new-format cache holding `entries` (name, path, flags), sorted as ldconfig
/// sorts them, so that the loader's binary search finds every name.
pub fn write(entries: &[CacheEntry]) -> Vec<u8> {
    let mut sorted: Vec<&CacheEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| library_order(&b.name, &a.name));
    let strings_at = HEADER_NEW + sorted.len() * ENTRY_NEW;
    let mut strings = Vec::new();
    let mut offset_of = |text: &str| {
        let offset = strings_at + strings.len();
        strings.extend_from_slice(text.as_bytes());
        strings.push(0);
        offset as u32
    };
    let mut table = Vec::new();
    for entry in &sorted {
        table.extend_from_slice(&entry.flags.to_le_bytes());
        table.extend_from_slice(&offset_of(&entry.name).to_le_bytes());
        table.extend_from_slice(&offset_of(&entry.path).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&entry.hwcap.to_le_bytes());
    }
    let mut out = Vec::with_capacity(strings_at + strings.len());
    out.extend_from_slice(b"glibc-ld.so.cache");
    out.extend_from_slice(b"1.1");
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&[FLAG_LITTLE_ENDIAN, 0, 0, 0]);
    out.extend_from_slice(&[0; 16]); // no extensions, unused
    out.extend(table);
    out.extend(strings);
    out
}

/// The cache flags glibc gives a library of this ELF machine and class.
pub fn flags_for(machine: u16, wide: bool) -> i32 {
    use goblin::elf::header::{EM_AARCH64, EM_RISCV, EM_X86_64};
    FLAG_ELF_LIBC6
        | match (machine, wide) {
            (EM_X86_64, true) => 0x0300,
            (EM_AARCH64, true) => 0x0a00,
            (EM_RISCV, true) => 0x1000, // FLAG_RISCV_FLOAT_ABI_DOUBLE | 64-bit is 0x1100; soft: 0x1000
            _ => 0,
        }
}

/// glibc's `_dl_cache_libcmp`: digit runs compare as numbers, so `libfoo.so.10` sorts
/// after `libfoo.so.9`. ldconfig sorts in descending order of this comparison.
fn library_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let number = |s: &[u8], at: &mut usize| {
                let mut value = 0u64;
                while *at < s.len() && s[*at].is_ascii_digit() {
                    value = value.saturating_mul(10).saturating_add(u64::from(s[*at] - b'0'));
                    *at += 1;
                }
                value
            };
            match number(a, &mut i).cmp(&number(b, &mut j)) {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        // glibc: a digit sorts after any other character
        match (a[i].is_ascii_digit(), b[j].is_ascii_digit()) {
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        match a[i].cmp(&b[j]) {
            Ordering::Equal => (i, j) = (i + 1, j + 1),
            other => return other,
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn string_at(bytes: &[u8], at: u32) -> Option<String> {
    let rest = bytes.get(at as usize..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, path: &str) -> CacheEntry {
        CacheEntry {
            name: name.into(),
            path: path.into(),
            flags: flags_for(goblin::elf::header::EM_X86_64, true),
            hwcap: 0,
        }
    }

    #[test]
    fn a_written_cache_reads_back_in_ldconfig_order() {
        let entries = [
            entry("libfoo.so.9", "/opt/lib/libfoo.so.9"),
            entry("libc.so.6", "/usr/local/lib/libc.so.6"),
            entry("libfoo.so.10", "/opt/lib/libfoo.so.10"),
        ];
        let read_back = read(&write(&entries));
        let names: Vec<&str> = read_back.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["libfoo.so.10", "libfoo.so.9", "libc.so.6"]);
        assert_eq!(read_back[2], entries[1]);
    }

    #[test]
    fn the_hosts_cache_names_libc_when_there_is_one() {
        let Ok(bytes) = std::fs::read("/etc/ld.so.cache") else {
            return; // a host without glibc: nothing to compare with
        };
        assert!(
            read(&bytes)
                .iter()
                .any(|e| e.name == "libc.so.6" && e.path.ends_with("/libc.so.6"))
        );
    }

    #[test]
    fn damaged_caches_read_as_empty() {
        assert!(read(b"glibc-ld.so.cache1.1\xff\xff\xff\xff").is_empty());
        assert!(read(b"ld.so-1.7.0\xff\xff\xff\xff").is_empty());
        assert!(read(b"").is_empty());
    }
}
