//! ELF file layout for generated programs: the only place that knows ELF headers.
//!
//! A program is one loadable segment holding the headers and the program's body (data
//! then code), mapped read+execute at [`LOAD_ADDRESS`]. The loader needs nothing else:
//! no sections, no symbols, no dynamic table.
//!
//! Layout trick: the program header starts 8 bytes before the end of the ELF header.
//! Those 8 bytes are `e_phnum`, `e_shentsize`, `e_shnum` and `e_shstrndx`; as the
//! start of the program header they read `p_type = 1` (PT_LOAD, so `e_phnum = 1` and
//! `e_shentsize = 0`) and `p_flags = 5` (so `e_shnum = 5`, ignored: there is no section
//! table, `e_shoff = 0`). Linux and qemu-user check neither `e_shnum` nor
//! `e_shentsize`; qemu does check `e_ehsize` and `e_phentsize`, which stay untouched.

use super::Arch;

/// Where the single segment is mapped. At or above 0x10000 so that hosts with
/// `vm.mmap_min_addr=65536` (the common default) still map it.
pub const LOAD_ADDRESS: u64 = 0x10000;

/// Bytes the program header shares with the end of the ELF header.
const OVERLAP: usize = 8;

/// The ELF class's header sizes.
struct Class {
    ehdr: usize,
    phdr: usize,
}

fn class(arch: Arch) -> Class {
    match arch {
        Arch::I386 => Class { ehdr: 52, phdr: 32 },
        Arch::Amd64 | Arch::Arm64 => Class { ehdr: 64, phdr: 56 },
    }
}

/// The size of the headers that precede the body.
pub fn headers_len(arch: Arch) -> usize {
    let class = class(arch);
    class.ehdr + class.phdr - OVERLAP
}

/// The address the first byte of the body is mapped at.
pub fn body_address(arch: Arch) -> u64 {
    LOAD_ADDRESS + headers_len(arch) as u64
}

/// Lays out a static executable for `arch`: headers, then `body`, execution starting
/// `entry` bytes into the body.
pub fn executable(arch: Arch, body: &[u8], entry: usize) -> Vec<u8> {
    let class = class(arch);
    let file_size = (headers_len(arch) + body.len()) as u64;
    let entry = body_address(arch) + entry as u64;
    let mut elf = Vec::with_capacity(file_size as usize);
    let wide = class.ehdr == 64;
    // e_ident: magic, class (1 = 32-bit, 2 = 64-bit), little-endian, version 1, System V.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', if wide { 2 } else { 1 }, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    put(&mut elf, 2, 2); // e_type: ET_EXEC
    put(&mut elf, 2, arch.elf_machine().into()); // e_machine
    put(&mut elf, 4, 1); // e_version
    let word = if wide { 8 } else { 4 };
    put(&mut elf, word, entry); // e_entry
    put(&mut elf, word, (class.ehdr - OVERLAP) as u64); // e_phoff: the overlapping header
    put(&mut elf, word, 0); // e_shoff: no section headers
    put(&mut elf, 4, 0); // e_flags
    put(&mut elf, 2, class.ehdr as u64); // e_ehsize
    put(&mut elf, 2, class.phdr as u64); // e_phentsize
    // Program header, its first 8 bytes doubling as e_phnum..e_shstrndx.
    put(&mut elf, 4, 1); // p_type: PT_LOAD
    if wide {
        put(&mut elf, 4, 5); // p_flags: read + execute
    }
    put(&mut elf, word, 0); // p_offset: map the file from its first byte ...
    put(&mut elf, word, LOAD_ADDRESS); // p_vaddr: ... at the load address
    put(&mut elf, word, LOAD_ADDRESS); // p_paddr
    put(&mut elf, word, file_size); // p_filesz
    put(&mut elf, word, file_size); // p_memsz: nothing beyond the file, no huge mapping
    if !wide {
        put(&mut elf, 4, 5); // p_flags: read + execute (ELF32 puts it after the sizes)
    }
    put(&mut elf, word, 0x1000); // p_align
    debug_assert_eq!(elf.len(), headers_len(arch));
    elf.extend_from_slice(body);
    elf
}

/// Appends the low `bytes` bytes of `value`, little-endian.
fn put(out: &mut Vec<u8>, bytes: usize, value: u64) {
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goblin_reads_every_layout_back() {
        for arch in Arch::ALL {
            let elf = executable(arch, &[0xcc; 3], 1);
            assert_eq!(elf.len(), headers_len(arch) + 3);
            let parsed = goblin::elf::Elf::parse(&elf).unwrap();
            assert_eq!(parsed.header.e_machine, arch.elf_machine(), "{arch:?}");
            assert_eq!(parsed.entry, body_address(arch) + 1);
            assert_eq!(parsed.program_headers.len(), 1);
            let load = &parsed.program_headers[0];
            assert_eq!((load.p_type, load.p_flags), (1, 5), "{arch:?}");
            assert_eq!((load.p_vaddr, load.p_filesz), (LOAD_ADDRESS, elf.len() as u64));
            assert!(parsed.interpreter.is_none());
        }
    }
}
