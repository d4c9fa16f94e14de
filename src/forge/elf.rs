//! ELF file layout for generated programs: the only place that knows ELF headers and
//! the tricks that overlap them.
//!
//! A program is one loadable segment holding the headers and the program's body (data
//! then code), mapped at [`LOAD_ADDRESS`]. The loader needs nothing else: no sections, no
//! symbols, no dynamic table. What Linux's loader checks (and so what must stay exact) is
//! the magic, `e_type`, `e_machine`, `e_phentsize`, `e_phnum` and the program header;
//! qemu-user also checks `e_ident`, `e_ehsize` and `e_phentsize`.
//!
//! - **amd64** (see [`amd64`]): the program header starts at byte 24, so headers end at
//!   byte 80 and the body starts at 72, over the unchecked `p_align`. Execution starts at
//!   file offset 1, where "ELF" reads as REX prefixes to a jump into the body. 72 bytes.
//! - **arm64** (qemu-safe ELF64): the program header starts 8 bytes before the
//!   end of the ELF header. Those 8 bytes are `e_phnum`, `e_shentsize`, `e_shnum` and
//!   `e_shstrndx`; as the start of the program header they read `p_type = 1` (so
//!   `e_phnum = 1`, `e_shentsize = 0`) and `p_flags = 5` (so `e_shnum = 5`, ignored: there
//!   is no section table). 112 bytes of headers.
//! - **ELF32** (386): the program header starts at byte 4, inside `e_ident`, and the ELF
//!   header's fields double as its fields (see [`elf32`]). 46 bytes of headers; code
//!   that fits 10 bytes and uses no absolute address lives in the headers themselves.

use super::Arch;

/// Where the single segment is mapped on 386 and arm64. At or above 0x10000 so that
/// hosts with `vm.mmap_min_addr=65536` (the common default) still map it.
pub const LOAD_ADDRESS: u64 = 0x10000;

/// Where the amd64 layout maps the file: `p_flags` (5) is the high half of `e_entry`.
const AMD64_LOAD_ADDRESS: u64 = 5 << 32;

/// The size of the headers that precede the body.
pub fn headers_len(arch: Arch) -> usize {
    match arch {
        Arch::I386 => ELF32_HEADERS,
        Arch::Amd64 => AMD64_HEADERS,
        Arch::Arm64 => ELF64_HEADERS,
    }
}

/// The address the first byte of the body is mapped at.
pub fn body_address(arch: Arch) -> u64 {
    let load = if arch == Arch::Amd64 {
        AMD64_LOAD_ADDRESS
    } else {
        LOAD_ADDRESS
    };
    load + headers_len(arch) as u64
}

/// How freely the layout may move a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Movable {
    /// It holds absolute addresses: it must start at [`body_address`].
    No,
    /// Position-independent: it may start anywhere, in one piece.
    Whole,
    /// No references at all: it may even be cut between instructions and spread over
    /// the fields of the headers that the loader ignores.
    ByInstruction,
}

/// Lays out a static executable for `arch`: headers, then `body`, execution starting
/// `entry` bytes into the body. A movable body may go into the headers when it fits.
pub fn executable(arch: Arch, body: &[u8], entry: usize, movable: Movable) -> Vec<u8> {
    match arch {
        Arch::I386 => elf32(body, entry, movable != Movable::No),
        Arch::Amd64 => {
            assert!(
                movable != Movable::No,
                "amd64 bodies are position-independent: the load address is above 4 GiB"
            );
            amd64(body, entry)
        }
        Arch::Arm64 if movable == Movable::ByInstruction && entry == 0 => {
            arm64_in_headers(body).unwrap_or_else(|| elf64(arch, body, entry))
        }
        Arch::Arm64 => elf64(arch, body, entry),
    }
}

/// Fields of the arm64 headers neither Linux nor qemu reads, as (offset, instructions):
/// `e_ident[8..16]`; `e_shoff` and `e_flags`; `p_paddr`; `p_align`.
const ARM64_HOLES: [(usize, usize); 4] = [(8, 2), (40, 3), (80, 2), (104, 2)];

/// Places instructions in [`ARM64_HOLES`], the last slot of each hole branching to the
/// next, so a short program adds nothing to the 112 bytes of headers. `None` if the
/// instructions need more room than the holes have.
fn arm64_in_headers(code: &[u8]) -> Option<Vec<u8>> {
    let mut instructions = code.chunks(4);
    let mut elf = elf64(Arch::Arm64, &[], 0);
    let mut remaining = code.len() / 4;
    for (index, &(at, slots)) in ARM64_HOLES.iter().enumerate() {
        let last = remaining <= slots;
        let taken = if last { remaining } else { slots - 1 };
        for slot in 0..taken {
            elf[at + 4 * slot..at + 4 * slot + 4].copy_from_slice(instructions.next()?);
        }
        remaining -= taken;
        if last {
            let entry = LOAD_ADDRESS + ARM64_HOLES[0].0 as u64; // e_entry: the first hole
            elf[24..32].copy_from_slice(&entry.to_le_bytes());
            return Some(elf);
        }
        let (next, _) = *ARM64_HOLES.get(index + 1)?;
        let from = at + 4 * taken;
        let branch = 0x1400_0000 | ((next - from) / 4) as u32; // b next (forward)
        elf[from..from + 4].copy_from_slice(&branch.to_le_bytes());
    }
    None
}

/// Bytes of the amd64 layout before the body: the body overlaps `p_align`.
const AMD64_HEADERS: usize = 72;

/// The amd64 layout: 80 bytes of headers, the program header starting at byte 24.
///
/// ```text
///  0  7f 'E' 'L' 'F'     magic; execution starts at offset 1, where 45 4c 46 are
///                        REX prefixes to the jump that follows
///  4  jmp body           EI_CLASS.. (Linux's loader picks the 64-bit reader by
///                        e_machine and never reads EI_CLASS or EI_DATA)
/// 16  e_type = 2, e_machine = 62
/// 20  e_version          (unchecked)
/// 24  p_type = 1, p_flags = 5 (R+X)   | e_entry = 5 << 32 | 1: file offset 1
/// 32  p_offset = 24                   | e_phoff = 24
/// 40  p_vaddr = 5 << 32 | 24          | e_shoff (unchecked); congruent to p_offset
///                                       modulo the page size, as mmap needs
/// 48  p_paddr (unchecked)             | e_flags, e_ehsize, e_phentsize = 56 at 54
/// 56  p_filesz = 1 + 65536 k          | e_phnum = 1 at 56, then e_shentsize.. (unchecked)
/// 64  p_memsz = p_filesz: no zero-filled tail
/// 72  p_align (unchecked for ET_EXEC) = the body's first bytes
/// ```
fn amd64(body: &[u8], entry: usize) -> Vec<u8> {
    let file_size = (AMD64_HEADERS + body.len()).max(80);
    // The segment maps whole pages from file offset 0: k grows until they cover the file.
    let covered = |k: u64| (24 + 1 + 65536 * k).next_multiple_of(4096);
    let k = (0..)
        .find(|&k| covered(k) >= file_size as u64)
        .expect("some k covers any file");
    let filesz = 1 + 65536 * k;
    let mut elf = vec![0u8; file_size];
    elf[..4].copy_from_slice(b"\x7fELF");
    let target = AMD64_HEADERS + entry;
    match i8::try_from(target - 6) {
        Ok(near) => elf[4..6].copy_from_slice(&[0xeb, near as u8]), // jmp rel8
        Err(_) => {
            elf[4] = 0xe9; // jmp rel32
            elf[5..9].copy_from_slice(&((target - 9) as u32).to_le_bytes());
        }
    }
    let mut set = |at: usize, value: u64| elf[at..at + 8].copy_from_slice(&value.to_le_bytes());
    set(16, 2 | 62 << 16); // e_type, e_machine, e_version = 0
    set(24, AMD64_LOAD_ADDRESS | 1); // e_entry = p_type 1, p_flags 5
    set(32, 24); // e_phoff = p_offset
    set(40, AMD64_LOAD_ADDRESS | 24); // p_vaddr
    set(48, 56 << 48); // e_phentsize
    set(56, filesz); // p_filesz; its low 16 bits are e_phnum = 1
    set(64, filesz); // p_memsz
    elf[AMD64_HEADERS..AMD64_HEADERS + body.len()].copy_from_slice(body);
    elf
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
            let movable = if arch == Arch::Amd64 {
                Movable::Whole
            } else {
                Movable::No
            };
            let elf = executable(arch, &[0xcc; 30], 1, movable);
            assert_eq!(elf.len(), headers_len(arch) + 30);
            let view = kernel_elf::read(&elf).unwrap();
            assert_eq!(view.machine, arch.elf_machine(), "{arch:?}");
            let load = &view.segments[0];
            assert_eq!((view.segments.len(), load.kind), (1, kernel_elf::PT_LOAD));
            assert_eq!(load.filesz, load.memsz, "{arch:?}: no zero-filled tail");
            // The mapping starts at the page holding file offset 0 and covers the file.
            let page = load.vaddr - load.offset;
            assert_eq!(page % 4096, 0, "{arch:?}");
            assert!(
                (load.offset + load.filesz).next_multiple_of(4096) >= elf.len() as u64,
                "{arch:?}"
            );
            if arch == Arch::Amd64 {
                // Execution starts at offset 1; at offset 4 a jump leads to the body's entry.
                assert_eq!(view.entry - page, 1);
                assert_eq!(&elf[4..6], &[0xeb, (AMD64_HEADERS + 1 - 6) as u8]);
            } else {
                assert_eq!(view.entry, body_address(arch) + 1);
            }
            assert!(view.interpreter.is_none());
        }
    }

    #[test]
    fn amd64_segments_grow_with_the_file_and_far_entries_jump_far() {
        let big = executable(Arch::Amd64, &vec![0x90; 100_000], 99_999, Movable::Whole);
        let load = &kernel_elf::read(&big).unwrap().segments[0];
        assert!((load.offset + load.filesz).next_multiple_of(4096) >= big.len() as u64);
        assert_eq!(big[4], 0xe9);
        let target = 9 + u32::from_le_bytes(big[5..9].try_into().unwrap()) as usize;
        assert_eq!(target, AMD64_HEADERS + 99_999);
        assert_eq!(
            executable(Arch::Amd64, &[0x90; 3], 0, Movable::Whole).len(),
            80,
            "the headers end at 80"
        );
    }

    #[test]
    fn small_relocatable_code_lives_in_the_elf32_headers() {
        let elf = executable(Arch::I386, &[0x90; 10], 0, Movable::ByInstruction);
        assert_eq!(elf.len(), 45);
        assert_eq!(&elf[32..42], &[0x90; 10]);
        let view = kernel_elf::read(&elf).unwrap();
        assert_eq!(view.entry, LOAD_ADDRESS + 32);
        // Not relocatable, or too long: after the headers.
        assert_eq!(executable(Arch::I386, &[0x90; 10], 0, Movable::No).len(), 56);
        assert_eq!(executable(Arch::I386, &[0x90; 11], 0, Movable::ByInstruction).len(), 57);
    }
}
