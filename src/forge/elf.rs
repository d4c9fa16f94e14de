//! ELF file layout for generated programs: the only place that knows ELF headers and
//! the tricks that overlap them.
//!
//! A program is one loadable segment holding the headers and the program's body (data
//! then code), mapped at [`LOAD_ADDRESS`]. The loader needs nothing else: no sections, no
//! symbols, no dynamic table. What Linux's loader checks (and so what must stay exact) is
//! the magic, `e_type`, `e_machine`, `e_phentsize`, `e_phnum` and the program header;
//! qemu-user also checks `e_ident`, `e_ehsize` and `e_phentsize`.
//!
//! - **ELF64** (amd64, arm64; qemu-safe): the program header starts 8 bytes before the
//!   end of the ELF header. Those 8 bytes are `e_phnum`, `e_shentsize`, `e_shnum` and
//!   `e_shstrndx`; as the start of the program header they read `p_type = 1` (so
//!   `e_phnum = 1`, `e_shentsize = 0`) and `p_flags = 5` (so `e_shnum = 5`, ignored: there
//!   is no section table). 112 bytes of headers.
//! - **ELF32** (386): the program header starts at byte 4, inside `e_ident`, and the ELF
//!   header's fields double as its fields (see [`elf32`]). 46 bytes of headers; code
//!   that fits 10 bytes and uses no absolute address lives in the headers themselves.

use super::Arch;

/// Where the single segment is mapped. At or above 0x10000 so that hosts with
/// `vm.mmap_min_addr=65536` (the common default) still map it.
pub const LOAD_ADDRESS: u64 = 0x10000;

/// The size of the headers that precede the body.
pub fn headers_len(arch: Arch) -> usize {
    match arch {
        Arch::I386 => ELF32_HEADERS,
        Arch::Amd64 | Arch::Arm64 => ELF64_HEADERS,
    }
}

/// The address the first byte of the body is mapped at.
pub fn body_address(arch: Arch) -> u64 {
    LOAD_ADDRESS + headers_len(arch) as u64
}

/// Lays out a static executable for `arch`: headers, then `body`, execution starting
/// `entry` bytes into the body. A `relocatable` body (no absolute addresses in it) may
/// be moved into the headers when it fits there.
pub fn executable(arch: Arch, body: &[u8], entry: usize, relocatable: bool) -> Vec<u8> {
    match arch {
        Arch::I386 => elf32(body, entry, relocatable),
        Arch::Amd64 | Arch::Arm64 => elf64(arch, body, entry),
    }
}

const ELF64_HEADERS: usize = 64 + 56 - 8;

fn elf64(arch: Arch, body: &[u8], entry: usize) -> Vec<u8> {
    let file_size = (ELF64_HEADERS + body.len()) as u64;
    let mut elf = Vec::with_capacity(file_size as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V, padding.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put(&mut elf, 2, 2); // e_type: ET_EXEC
    put(&mut elf, 2, arch.elf_machine().into()); // e_machine
    put(&mut elf, 4, 1); // e_version
    put(&mut elf, 8, body_address(arch) + entry as u64); // e_entry
    put(&mut elf, 8, 64 - 8); // e_phoff: the overlapping program header
    put(&mut elf, 8, 0); // e_shoff: no section headers
    put(&mut elf, 4, 0); // e_flags
    put(&mut elf, 2, 64); // e_ehsize
    put(&mut elf, 2, 56); // e_phentsize
    put(&mut elf, 4, 1); // p_type = PT_LOAD  | e_phnum = 1, e_shentsize = 0
    put(&mut elf, 4, 5); // p_flags = R + X   | e_shnum = 5, e_shstrndx = 0
    put(&mut elf, 8, 0); // p_offset: map the file from its first byte ...
    put(&mut elf, 8, LOAD_ADDRESS); // p_vaddr: ... at the load address
    put(&mut elf, 8, LOAD_ADDRESS); // p_paddr
    put(&mut elf, 8, file_size); // p_filesz
    put(&mut elf, 8, file_size); // p_memsz: nothing beyond the file, no huge mapping
    put(&mut elf, 8, 0x1000); // p_align
    debug_assert_eq!(elf.len(), ELF64_HEADERS);
    elf.extend_from_slice(body);
    elf
}

/// Bytes of the ELF32 layout before the body: through `e_phnum`.
const ELF32_HEADERS: usize = 46;
/// Where code may live inside the ELF32 headers: `e_shoff`, `e_flags`, `e_ehsize`.
const ELF32_HOLE: std::ops::Range<usize> = 32..42;

/// The ELF32 layout. Field by field (ELF header | program header at byte 4):
///
/// ```text
///  0  7f 'E' 'L' 'F'    magic
///  4  p_type = 1        | EI_CLASS = 1 (32-bit), EI_DATA, EI_VERSION, EI_OSABI = 0
///  8  p_offset = 0      | e_ident padding
/// 12  p_vaddr           | e_ident padding
/// 16  p_paddr           | e_type = 2 (ET_EXEC), e_machine = 3 (386)
/// 20  p_filesz          | e_version (unchecked): equal to p_memsz, so no zero-fill
/// 24  p_memsz           | e_entry: the segment reaches from the load address to past
///                       |   the entry point, which is past the end of the file
/// 28  p_flags = 4 (R)   | e_phoff = 4. Executable all the same: a 32-bit program without
///                       |   PT_GNU_STACK runs with READ_IMPLIES_EXEC
/// 32  p_align           | e_shoff, e_flags, e_ehsize (unchecked): the code hole
/// 42                      e_phentsize = 32
/// 44                      e_phnum = 1 (a file ending at byte 45 leaves its high byte
///                         to the loader's zero padding)
/// 46  body                e_shentsize, e_shnum, e_shstrndx: unchecked
/// ```
fn elf32(body: &[u8], entry: usize, relocatable: bool) -> Vec<u8> {
    let in_hole = relocatable && body.len() <= ELF32_HOLE.len();
    let entry_offset = if in_hole {
        ELF32_HOLE.start + entry
    } else {
        ELF32_HEADERS + entry
    };
    let entry_address = LOAD_ADDRESS as u32 + entry_offset as u32;
    let mut elf = vec![0u8; ELF32_HEADERS];
    elf[..4].copy_from_slice(b"\x7fELF");
    let mut set = |at: usize, value: u32| elf[at..at + 4].copy_from_slice(&value.to_le_bytes());
    set(4, 1); // p_type: PT_LOAD
    set(12, LOAD_ADDRESS as u32); // p_vaddr
    set(16, 2 | 3 << 16); // e_type: ET_EXEC, e_machine: EM_386
    // The segment covers the load address up to the entry point: at least the whole
    // file, as the entry lies past the headers and the code is shorter than the 64 KiB
    // between the load address and the file's first byte in the segment.
    set(20, entry_address); // p_filesz
    set(24, entry_address); // p_memsz, e_entry
    set(28, 4); // p_flags = PF_R, e_phoff = 4
    elf[42] = 32; // e_phentsize
    elf[44] = 1; // e_phnum
    if in_hole {
        elf[ELF32_HOLE.start..ELF32_HOLE.start + body.len()].copy_from_slice(body);
        elf.truncate(45);
    } else {
        elf.extend_from_slice(body);
    }
    elf
}

/// Appends the low `bytes` bytes of `value`, little-endian.
fn put(out: &mut Vec<u8>, bytes: usize, value: u64) {
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::kernel_elf;

    #[test]
    fn the_loader_reads_every_layout_back() {
        for arch in Arch::ALL {
            let elf = executable(arch, &[0xcc; 30], 1, false);
            assert_eq!(elf.len(), headers_len(arch) + 30);
            let view = kernel_elf::read(&elf).unwrap();
            assert_eq!(view.machine, arch.elf_machine(), "{arch:?}");
            assert_eq!(view.entry, body_address(arch) + 1);
            let load = &view.segments[0];
            assert_eq!(
                (view.segments.len(), load.kind, load.vaddr),
                (1, kernel_elf::PT_LOAD, LOAD_ADDRESS)
            );
            assert!(
                load.filesz >= elf.len() as u64 && load.filesz == load.memsz,
                "{arch:?}: {load:?}"
            );
            assert!(view.interpreter.is_none());
        }
    }

    #[test]
    fn small_relocatable_code_lives_in_the_elf32_headers() {
        let elf = executable(Arch::I386, &[0x90; 10], 0, true);
        assert_eq!(elf.len(), 45);
        assert_eq!(&elf[32..42], &[0x90; 10]);
        let view = kernel_elf::read(&elf).unwrap();
        assert_eq!(view.entry, LOAD_ADDRESS + 32);
        // Not relocatable, or too long: after the headers.
        assert_eq!(executable(Arch::I386, &[0x90; 10], 0, false).len(), 56);
        assert_eq!(executable(Arch::I386, &[0x90; 11], 0, true).len(), 57);
    }
}
