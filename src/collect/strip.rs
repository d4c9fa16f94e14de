//! `speck pack --strip`: the sstrip cut of an ELF file. Everything after the last byte a
//! program header maps (symbol tables, debug sections, `.comment`, the section header
//! table) is dropped, and the header stops pointing at section headers.
//!
//! Only bytes the kernel and the dynamic loader never read are removed: the loader works
//! from program headers (`PT_DYNAMIC`, `.dynsym` is inside a `PT_LOAD`). A file with
//! bytes after its segments that no section accounts for (a self-extracting payload, an
//! appended archive) is left alone, as is anything goblin cannot read. Works on copies
//! in memory; never touches a host file.

use goblin::elf::Elf;
use goblin::elf::section_header::{SHF_ALLOC, SHT_NOBITS};

/// Gaps of zeros between sections that alignment explains.
const MAX_PADDING: u64 = 4096;

/// The stripped bytes, or `None` when stripping would not help or might change what runs.
pub fn strip(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(b"\x7fELF") {
        return None;
    }
    let elf = Elf::parse(bytes).ok()?;
    if elf.section_headers.is_empty() {
        return None;
    }
    let header_end = elf.header.e_phoff + u64::from(elf.header.e_phnum) * u64::from(elf.header.e_phentsize);
    let end = elf
        .program_headers
        .iter()
        .map(|ph| ph.p_offset.saturating_add(ph.p_filesz))
        .chain([u64::from(elf.header.e_ehsize), header_end])
        .max()?;
    let len = bytes.len() as u64;
    // The cut keeps at least the whole ELF header, whatever the header claims (found by
    // fuzzing: an `e_ehsize` of 0 and no program headers).
    let header_len = if elf.is_64 { 64 } else { 52 };
    if end >= len || end < header_len {
        return None;
    }
    // What lies after `end` must be sections nothing maps, or the section header table.
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for section in &elf.section_headers {
        if section.sh_type == SHT_NOBITS || section.sh_size == 0 {
            continue;
        }
        let range = (section.sh_offset, section.sh_offset.saturating_add(section.sh_size));
        if range.1 > end && section.sh_flags & u64::from(SHF_ALLOC) != 0 {
            return None; // loaded data outside every segment: not a layout to second-guess
        }
        covered.push(range);
    }
    let table = u64::from(elf.header.e_shnum) * u64::from(elf.header.e_shentsize);
    covered.push((elf.header.e_shoff, elf.header.e_shoff.saturating_add(table)));
    covered.sort_unstable();
    let mut at = end;
    for (start, stop) in covered.into_iter().filter(|&(_, stop)| stop > end) {
        if start > at {
            let gap = bytes.get(at as usize..start as usize)?;
            if gap.len() as u64 > MAX_PADDING || gap.iter().any(|&b| b != 0) {
                return None;
            }
        }
        at = at.max(stop);
    }
    if at < len {
        return None; // unexplained trailing bytes
    }
    let mut out = bytes[..end as usize].to_vec();
    forget_sections(&mut out, elf.is_64);
    Some(out)
}

/// Zeroes `e_shoff`, `e_shnum` and `e_shstrndx`, as sstrip does.
fn forget_sections(header: &mut [u8], is_64: bool) {
    let (shoff, shoff_len, shnum) = if is_64 { (0x28, 8, 0x3c) } else { (0x20, 4, 0x30) };
    header[shoff..shoff + shoff_len].fill(0);
    // e_shnum then e_shstrndx, two bytes each; zero reads the same in either byte order.
    header[shnum..shnum + 4].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripped_copies_keep_every_segment_and_lose_sections() {
        let original = std::fs::read("/proc/self/exe").unwrap();
        let stripped = strip(&original).expect("a test binary has symbols to drop");
        assert!(stripped.len() < original.len());
        let elf = Elf::parse(&stripped).unwrap();
        assert!(elf.section_headers.is_empty());
        let before = Elf::parse(&original).unwrap();
        assert_eq!(elf.program_headers.len(), before.program_headers.len());
        assert_eq!(
            stripped[0x40..],
            original[0x40..stripped.len()],
            "only the header changes"
        );
        assert!(strip(&stripped).is_none(), "nothing left to strip");
    }

    #[test]
    fn appended_payloads_are_left_alone() {
        let mut with_payload = std::fs::read("/proc/self/exe").unwrap();
        with_payload.extend_from_slice(b"PAYLOAD");
        assert!(strip(&with_payload).is_none());
        assert!(strip(b"not elf").is_none());
    }
}
