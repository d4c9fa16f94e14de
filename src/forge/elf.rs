//! ELF file layout for generated programs: the only place that knows ELF headers.
//!
//! A program here is one loadable segment holding the headers, the code and its data,
//! mapped read+execute at [`LOAD_ADDRESS`]. The loader needs nothing else: no sections,
//! no symbols, no dynamic table.

/// Where the single segment is mapped. At or above 0x10000 so that hosts with
/// `vm.mmap_min_addr=65536` (the common default) still map it.
pub const LOAD_ADDRESS: u64 = 0x10000;

const EHDR_SIZE: u16 = 64;
const PHDR_SIZE: u16 = 56;

/// ELF machine numbers for the architectures speck generates code for.
pub mod machine {
    /// x86-64.
    pub const X86_64: u16 = 62;
}

/// Lays out a 64-bit little-endian static executable: ELF header, one `PT_LOAD`
/// program header, then `body`. Execution starts at the first byte of `body`.
pub fn executable64(machine: u16, body: &[u8]) -> Vec<u8> {
    let headers = u64::from(EHDR_SIZE + PHDR_SIZE);
    let file_size = headers + body.len() as u64;
    let mut elf = Vec::with_capacity(file_size as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI, padding.
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    put16(&mut elf, 2); // e_type: ET_EXEC
    put16(&mut elf, machine); // e_machine
    put32(&mut elf, 1); // e_version
    put64(&mut elf, LOAD_ADDRESS + headers); // e_entry: the first byte of the body
    put64(&mut elf, u64::from(EHDR_SIZE)); // e_phoff: program header right after this one
    put64(&mut elf, 0); // e_shoff: no section headers
    put32(&mut elf, 0); // e_flags
    put16(&mut elf, EHDR_SIZE); // e_ehsize
    put16(&mut elf, PHDR_SIZE); // e_phentsize
    put16(&mut elf, 1); // e_phnum
    put16(&mut elf, 0); // e_shentsize
    put16(&mut elf, 0); // e_shnum
    put16(&mut elf, 0); // e_shstrndx
    put32(&mut elf, 1); // p_type: PT_LOAD
    put32(&mut elf, 5); // p_flags: read + execute
    put64(&mut elf, 0); // p_offset: map the file from its first byte ...
    put64(&mut elf, LOAD_ADDRESS); // p_vaddr: ... at the load address
    put64(&mut elf, LOAD_ADDRESS); // p_paddr
    put64(&mut elf, file_size); // p_filesz
    put64(&mut elf, file_size); // p_memsz: nothing beyond the file, so no huge mapping
    put64(&mut elf, 0x1000); // p_align
    elf.extend_from_slice(body);
    elf
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goblin_reads_the_layout_back() {
        let elf = executable64(machine::X86_64, &[0xcc; 3]);
        assert_eq!(elf.len(), 64 + 56 + 3);
        let parsed = goblin::elf::Elf::parse(&elf).unwrap();
        assert_eq!(parsed.header.e_machine, machine::X86_64);
        assert_eq!(parsed.entry, LOAD_ADDRESS + 120);
        assert_eq!(parsed.program_headers.len(), 1);
        assert_eq!(parsed.program_headers[0].p_filesz, elf.len() as u64);
        assert!(parsed.interpreter.is_none());
    }
}
