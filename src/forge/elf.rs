//! ELF file layout for generated programs: the only place that knows ELF headers and
//! the tricks that overlap them.
//!
//! A program is one loadable segment holding the headers and the program's body (code,
//! then data), mapped at [`LOAD_ADDRESS`] on 386 (higher for a program that starts
//! writing: see below), and higher on amd64 and arm64, where the entry point's address is
//! code too. The loader needs nothing else: no sections, no
//! symbols, no dynamic table. What Linux's loader checks (and so what must stay exact) is
//! the magic, `e_type`, `e_machine`, `e_phentsize`, `e_phnum` and the program header;
//! qemu-user also checks `e_ident`, `e_ehsize` and `e_phentsize`.
//!
//! - **amd64** (see [`amd64_headers`]): the program header starts at byte 24, so headers
//!   end at byte 80 and the body starts at 72, over the unchecked `p_align`. Execution
//!   starts at file offset 1, where "ELF" reads as REX prefixes to the first piece of
//!   code, at byte 4. 72 bytes. A program's final `syscall` may be the header's own, two
//!   bytes of the segment's size (see [`AMD64_HEADER_SYSCALL`]).
//! - **arm64** (qemu-safe ELF64): the program header starts 8 bytes before the
//!   end of the ELF header. Those 8 bytes are `e_phnum`, `e_shentsize`, `e_shnum` and
//!   `e_shstrndx`; as the start of the program header they read `p_type = 1` (so
//!   `e_phnum = 1`, `e_shentsize = 0`) and `p_flags = 5` (so `e_shnum = 5`, ignored: there
//!   is no section table). 112 bytes of headers. Execution starts at `e_version`, and
//!   `e_entry`'s low word, the entry point's address, is a branch onward (see
//!   [`ARM64_LOAD_ADDRESS`]). `e_ident` holds no code: the first 20 bytes stay as the
//!   binfmt_misc entry qemu registers matches them (see [`ARM64_HOLES`]), so an x86 host
//!   with emulation runs arm64 images too.
//! - **ELF32** (386): the program header starts at byte 4, inside `e_ident`, and the ELF
//!   header's fields double as its fields (see [`elf32`]). 46 bytes of headers. A program
//!   that writes first may start with the registers for it and a zero on the stack, set
//!   by header bytes run as code (see [`ELF32_WRITING_LOAD`]).
//!
//! - **conventional amd64** (see [`conventional_amd64`]): the headers as a linker writes
//!   them and the code after them, 120 bytes, for the init `speck pack --init` adds,
//!   which must run where amd64 is emulated.
//!
//! Code comes in pieces (see [`in_pieces`]) that run through the fields no loader reads
//! ([`Hole`]s), hole to hole, then on into the body: a short program adds nothing to the
//! headers, a longer one saves what the holes hold. The file ends at its last byte that
//! is not zero: past a file's end, the loader's mapping of its last page reads as zeros.
//!
//! Some header bytes are worth reading as data, and this module names them: on 386,
//! [`ELF32_TAIL`] (a value that costs nothing to load) and [`ELF32_IGNORE_ACTION`] (a
//! ready-made `struct sigaction`); on arm64, [`ARM64_IGNORE_ACTION`] (another) and
//! [`ARM64_ENTRY_ACTION`] (one whose handler is the entry point).

use super::Arch;

/// Where the single segment is mapped on 386. At or above 0x10000 so that hosts with
/// `vm.mmap_min_addr=65536` (the common default) still map it.
pub const LOAD_ADDRESS: u64 = 0x10000;

/// Where arm64 code starts: `e_version`, which no loader reads (see [`ARM64_HOLES`]).
const ARM64_ENTRY: usize = 20;

/// `e_entry`'s low word, which follows the entry's one instruction: `b` to `p_align`'s
/// hole, 80 bytes on. Being the entry point's address too, it decides where the file is
/// mapped ([`ARM64_LOAD_ADDRESS`]).
const ARM64_ENTRY_BRANCH: u32 = 0x1400_0000 | ((104 - 24) / 4);

/// Where the arm64 layout maps the file: 320 MiB up, where the entry point's address
/// ([`ARM64_ENTRY`] bytes in) is [`ARM64_ENTRY_BRANCH`]. Only the file's page is mapped.
const ARM64_LOAD_ADDRESS: u64 = ARM64_ENTRY_BRANCH as u64 - ARM64_ENTRY as u64;
const _: () = assert!(ARM64_LOAD_ADDRESS.is_multiple_of(4096) && ARM64_LOAD_ADDRESS == 0x1400_0000);

/// The ELF32 headers' last four bytes, `e_phentsize` (32) and `e_phnum` (1), as a
/// little-endian word. A piece that ends with them overlaps them as the way out of the
/// hole before them (see [`spread`]), so `mov ecx, ELF32_TAIL` costs one byte there, as
/// the `cmp eax` it replaces does. As an address it lies in the file's first 256 bytes,
/// every one of which a `mov cl` then points ecx at.
pub const ELF32_TAIL: u32 = 32 | 1 << 16;
const _: () = assert!(ELF32_TAIL >> 8 == LOAD_ADDRESS as u32 >> 8);

/// The ELF32 program header's first two words, `p_type` (1) and `p_offset` (0), read as
/// a `struct sigaction`: handler SIG_IGN, no flags. What follows as its restorer and
/// mask (`p_vaddr`, `p_paddr`, `p_filesz`) goes unused, as no handler runs.
pub const ELF32_IGNORE_ACTION: u32 = LOAD_ADDRESS as u32 + 4;

/// The arm64 program header from `p_offset` (1) on, read as a `struct sigaction`:
/// handler SIG_IGN. Its flags (`p_vaddr`, the load address plus 1: SA_NOCLDSTOP,
/// SA_RESTORER and SA_RESTART), restorer and mask (`p_paddr`, code in a hole, and
/// `p_filesz`) only matter to a handler, and no handler runs.
pub const ARM64_IGNORE_ACTION: u64 = ARM64_LOAD_ADDRESS + 64;

/// The arm64 ELF header from `e_entry` on, read as a `struct sigaction`: its handler is
/// the entry point; its flags, `e_phoff` (56), hold only bits AArch64 leaves undefined
/// (the kernel clears them); its restorer (`e_shoff`, code in a hole) goes unused, as no
/// flag asks for one, and its mask (`e_flags`.., code and header) only holds signals
/// back while the handler runs.
pub const ARM64_ENTRY_ACTION: u64 = ARM64_LOAD_ADDRESS + 24;

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

/// The address the first byte of the body is mapped at when the program starts
/// [`Start::Zeroed`] (a 386 one that starts [`Start::Writing`] is mapped higher).
pub fn body_address(arch: Arch) -> u64 {
    let load = match arch {
        Arch::Amd64 => AMD64_LOAD_ADDRESS,
        Arch::I386 => LOAD_ADDRESS,
        Arch::Arm64 => ARM64_LOAD_ADDRESS,
    };
    load + headers_len(arch) as u64
}

/// A run of header bytes that neither Linux nor qemu reads, where code may run.
struct Hole {
    at: usize,
    end: usize,
    /// Bytes at the hole's very end that carry execution on, without a jump, to the
    /// offset given (the gap before them filled with no-ops), when that is where the
    /// next hole or the code in the body starts; otherwise a jump follows the last piece
    /// in the hole.
    onward: Option<(&'static [u8], usize)>,
}

/// The amd64 holes, after execution enters at byte 4 (see [`amd64`]): `e_ident[4..16]`,
/// left through `mov ecx, imm32` (b9), whose immediate swallows `e_type` and
/// `e_machine`; `e_version`; `e_flags` and `e_ehsize`. Execution then jumps to the body.
const AMD64_HOLES: [Hole; 3] = [
    Hole {
        at: 4,
        end: 16,
        onward: Some((&[0xb9], 20)),
    },
    Hole {
        at: 20,
        end: 24,
        onward: None,
    },
    Hole {
        at: 48,
        end: 54,
        onward: None,
    },
];

/// x86-64's `syscall`.
const SYSCALL: &[u8] = &[0x0f, 0x05];

/// Where the amd64 header can hold a program's final `syscall`: the third and fourth
/// bytes of `p_filesz`, entered from the third hole through `cmp eax, imm32` (3d), whose
/// immediate swallows `e_phentsize` and `e_phnum`. The segment's size is then
/// [`AMD64_SYSCALL_SEGMENT`]; the bytes after the `syscall` never run, as exit does not
/// return.
const AMD64_HEADER_SYSCALL: usize = 58;

/// `p_filesz` (and `p_memsz`) whose bytes at [`AMD64_HEADER_SYSCALL`] are `syscall`:
/// 81 MiB of address space, of which the process touches the file's one page. A program
/// still runs under `ulimit -v 100000` (97.6 MiB).
const AMD64_SYSCALL_SEGMENT: u64 = 1 | 0x050f << 16;
const _: () = assert!(AMD64_SYSCALL_SEGMENT >> 16 == 0x050f && SYSCALL[0] == 0x0f && SYSCALL[1] == 0x05);

/// Where a 386 program that starts [`Start::Writing`] is mapped, its entry point
/// [`ELF32_WRITING_ENTRY`] bytes in: `e_entry`'s second byte. From there `e_entry`'s high
/// bytes, which are this address's, run as `push eax` (50: a zero), `inc ebx` (43) and
/// `add eax, imm32` (05), whose immediate swallows `e_phoff` (4), into the hole. As
/// `e_entry` is `p_memsz` too, the segment spans 84 MiB of address space, of which the
/// process touches the file's page; it still runs under `ulimit -v 100000`.
const ELF32_WRITING_LOAD: u32 = 0x0543_5000;
const ELF32_WRITING_ENTRY: usize = 25;
const _: () = assert!(ELF32_WRITING_LOAD >> 8 == 0x05_43_50 && ELF32_WRITING_LOAD & 0xfff == 0);

/// The ELF32 hole: `e_shoff`, `e_flags`, `e_ehsize` (see [`elf32`]), left into code
/// right after the headers through `cmp eax, imm32` (3d), whose immediate swallows
/// `e_phentsize` and `e_phnum` and which changes nothing but flags.
const ELF32_HOLES: [Hole; 1] = [Hole {
    at: 32,
    end: 42,
    onward: Some((&[0x3d], ELF32_HEADERS)),
}];

/// The arm64 holes, in the order the code runs through them when it fills them all:
/// `e_version`, where execution starts, left through `e_entry`, whose low word is a `b`
/// to the next ([`ARM64_ENTRY_BRANCH`]); `p_align`, which runs straight on into the body;
/// `e_shoff` and `e_flags`; `p_paddr`. The last two may instead hold the program's end,
/// the body jumping to them (see [`arm64_ending_in_holes`]).
///
/// Not `e_ident[8..16]`, which Linux and qemu ignore: the binfmt_misc entry qemu
/// registers for arm64 (`qemu-binfmt-conf.sh`, and with it docker/setup-qemu-action,
/// tonistiigi/binfmt and Debian's qemu-user-static) matches those bytes as zeros, and a
/// file it does not match fails on an x86 host with "exec format error" (`docker run
/// --platform linux/arm64`).
const ARM64_HOLES: [Hole; 4] = [
    Hole {
        at: ARM64_ENTRY,
        end: 24,
        onward: Some((&[], 104)),
    },
    Hole {
        at: 104,
        end: 112,
        onward: Some((&[], 112)),
    },
    Hole {
        at: 40,
        end: 52,
        onward: None,
    },
    Hole {
        at: 80,
        end: 88,
        onward: None,
    },
];

/// Whether amd64 code may start at byte 4, right after the magic. Its first instruction
/// must be one that "ELF", read as the REX prefixes 45 4c 46 at amd64's entry, does not
/// change: no ModRM operand (push, pop, mov reg/imm, xchg with eax, jumps), or a prefix
/// of its own that overrides it. And byte 5, `EI_DATA`, must not say big-endian (2):
/// Linux never reads it, but other readers of the file (speck's own among them) do.
/// Code that may not start there gets a `nop` first.
fn fits_amd64_entry(code: &[u8]) -> bool {
    let immune = |opcode| matches!(opcode, 0x40..=0x5f | 0x66 | 0x68 | 0x6a | 0x70..=0x7f | 0x90..=0x97 | 0xb0..=0xbf | 0xe9 | 0xeb);
    code.first().is_none_or(|&first| immune(first)) && code.get(1) != Some(&2)
}

/// An executable laid out by [`in_pieces`], with the addresses it gave the data and
/// each piece.
pub struct Placed {
    /// The ELF file.
    pub elf: Vec<u8>,
    /// The address of the data.
    pub data: u64,
    /// The address of each piece, in order.
    pub pieces: Vec<u64>,
}

/// Lays out a static executable whose code comes in `pieces`, run in order from the
/// first, each whole instructions whose labels are their own: the layout spreads
/// them over the headers' holes (see [`Hole`]), joined by jumps, the pieces that do not
/// fit following the headers, then `data`. A piece may refer to the data, to itself and
/// to other pieces by address, absolute or relative, so the caller assembles the pieces again for the
/// addresses returned; each piece must keep its length (see `forge::in_pieces`).
///
/// On amd64, with [`Ending::MayBeInHeader`], a program whose last piece is a lone
/// `syscall` ends in the header's instead when that makes the file shorter. On arm64 the
/// last pieces may wait in holes the body jumps to (see [`arm64_ending_in_holes`]), so
/// nothing may run on past the last piece: programs end in `exit` or a loop. `start` says
/// what the registers hold when the first piece runs.
///
/// # Panics
/// If `start` is [`Start::Writing`] on another architecture than 386.
pub fn in_pieces(arch: Arch, data: &[u8], pieces: &[Vec<u8>], ending: Ending, start: Start) -> Placed {
    assert!(start == Start::Zeroed || arch == Arch::I386, "{start:?} is for 386");
    let code: usize = pieces.iter().map(Vec::len).sum();
    let long = ELF32_HEADERS + code + data.len() > LOAD_ADDRESS as usize + ELF32_HOLES[0].at;
    if arch == Arch::I386 && start == Start::Zeroed && long {
        // e_entry is p_filesz too: only an entry more than 64 KiB into the file maps a
        // file that long, so its code follows the data, unspread.
        let code_at = ELF32_HEADERS + data.len();
        let elf = elf32(&[data, &pieces.concat()].concat(), LOAD_ADDRESS as u32, code_at);
        let offsets = pieces.iter().scan(code_at, |at, piece| {
            *at += piece.len();
            Some(*at - piece.len())
        });
        return placed(elf, LOAD_ADDRESS, ELF32_HEADERS, offsets.collect());
    }
    let mut all: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
    let mut leading_nops = 0;
    while arch == Arch::Amd64 && !fits_amd64_entry(&all.concat()) {
        all.insert(0, nop(arch));
        leading_nops += 1;
    }
    let in_header = (ending == Ending::MayBeInHeader).then(|| amd64_exit_in_header(arch, &all));
    let candidates = [
        Some(chained(arch, &all, start)),
        in_header.flatten(),
        arm64_ending_in_holes(arch, &all),
    ];
    // The shortest; the usual layout when that is no longer.
    let mut code = candidates
        .into_iter()
        .flatten()
        .min_by_key(|code| code.end)
        .expect("the usual layout is a candidate");
    code.offsets.drain(..leading_nops);
    let Code {
        mut elf,
        page,
        offsets,
        end: data_at,
        exit_in_header,
    } = code;
    let end = data_at + data.len();
    elf.resize(elf.len().max(end), 0);
    elf[data_at..end].copy_from_slice(data);
    let end = without_trailing_zeros(arch, &elf);
    match arch {
        Arch::I386 => {}
        Arch::Amd64 if exit_in_header => amd64_segment(&mut elf, end, AMD64_SYSCALL_SEGMENT),
        Arch::Amd64 => amd64_segment(&mut elf, end, amd64_filesz(end)),
        Arch::Arm64 => elf64_sizes(&mut elf, end),
    }
    elf.truncate(end);
    placed(elf, page, data_at, offsets)
}

/// What the registers hold when a program's code starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Zero, all of them (see `forge`).
    Zeroed,
    /// 386 only: eax 4 (SYS_write), ebx 1 (stdout) and a zero pushed on the stack (an
    /// exit status to pop), by header bytes that run on the way to the code (see
    /// [`ELF32_WRITING_LOAD`]): 4 bytes saved for 84 MiB of address space, which a program
    /// that exits at once can spare.
    Writing,
}

/// Where a program's last `syscall` may be: a choice on amd64 only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// In the code, so the segment is no larger than the file needs: for programs that
    /// keep running.
    InCode,
    /// In the header when that makes the file shorter (see [`AMD64_HEADER_SYSCALL`]): a
    /// byte or two for 81 MiB of address space, which a program that exits at once can
    /// spare.
    MayBeInHeader,
}

/// Headers with code laid out in them, before the data.
struct Code {
    elf: Vec<u8>,
    /// The address the file's first byte is mapped at.
    page: u64,
    /// The file offset of each piece.
    offsets: Vec<usize>,
    /// Where the code ends and the data may start: past the headers at least.
    end: usize,
    /// amd64: the code ends in the header's `syscall` (see [`AMD64_HEADER_SYSCALL`]).
    exit_in_header: bool,
}

/// The usual layout: the pieces run through the holes in order, then on into the body.
fn chained(arch: Arch, pieces: &[&[u8]], start: Start) -> Code {
    let (mut elf, page, holes): (_, _, &[Hole]) = match (arch, start) {
        (Arch::Amd64, _) => (amd64_headers(), AMD64_LOAD_ADDRESS, &AMD64_HOLES),
        (Arch::I386, Start::Zeroed) => {
            let elf = elf32(&[], LOAD_ADDRESS as u32, ELF32_HOLES[0].at);
            (elf, LOAD_ADDRESS, &ELF32_HOLES)
        }
        (Arch::I386, Start::Writing) => {
            let elf = elf32(&[], ELF32_WRITING_LOAD, ELF32_WRITING_ENTRY);
            (elf, ELF32_WRITING_LOAD.into(), &ELF32_HOLES)
        }
        (Arch::Arm64, _) => (arm64_headers(), ARM64_LOAD_ADDRESS, &ARM64_HOLES),
    };
    let offsets = spread(arch, &mut elf, holes, headers_len(arch), pieces);
    let end = code_end(arch, &offsets, pieces);
    Code {
        elf,
        page,
        offsets,
        end,
        exit_in_header: false,
    }
}

/// Where the data may start after `pieces` placed at `offsets`: past the last one in the
/// body, or where the body starts.
fn code_end(arch: Arch, offsets: &[usize], pieces: &[&[u8]]) -> usize {
    let body_at = headers_len(arch);
    let ends = offsets.iter().zip(pieces).map(|(at, piece)| at + piece.len());
    ends.filter(|&end| end > body_at).max().unwrap_or(body_at)
}

/// The amd64 layout that ends in the header's `syscall` (see [`AMD64_HEADER_SYSCALL`]),
/// when the last piece is a lone `syscall` (a program's exit). The pieces before it that
/// fit wait in the third hole, ahead of its way out; the others run through the first
/// two holes and the body, which jumps back to them.
fn amd64_exit_in_header(arch: Arch, pieces: &[&[u8]]) -> Option<Code> {
    let (last, before) = pieces.split_last()?;
    if arch != Arch::Amd64 || *last != SYSCALL {
        return None;
    }
    let hole = &AMD64_HOLES[2];
    let way_out = hole.end - 1;
    let mut split = before.len();
    while split > 0 && before[split - 1..].iter().map(|p| p.len()).sum::<usize>() <= way_out - hole.at {
        split -= 1;
    }
    let (head, tail) = before.split_at(split);
    let mut elf = amd64_headers();
    let jump = [0xeb, 0]; // room for the jump to the tail, written once it is placed
    let chain: Vec<&[u8]> = head.iter().copied().chain([&jump[..]]).collect();
    let mut offsets = spread(arch, &mut elf, &AMD64_HOLES[..2], AMD64_HEADERS, &chain);
    let jump_at = offsets.pop().expect("the jump is placed");
    let end = code_end(arch, &offsets, head).max(jump_at + jump.len());
    let mut at = way_out - tail.iter().map(|p| p.len()).sum::<usize>();
    write_jump(arch, &mut elf, jump_at, at);
    for piece in tail {
        elf[at..at + piece.len()].copy_from_slice(piece);
        offsets.push(at);
        at += piece.len();
    }
    elf[way_out] = 0x3d; // cmp eax, imm32: e_phentsize and e_phnum
    offsets.push(AMD64_HEADER_SYSCALL);
    Some(Code {
        elf,
        page: AMD64_LOAD_ADDRESS,
        offsets,
        end: end.max(AMD64_HEADERS),
        exit_in_header: true,
    })
}

/// The arm64 layout that ends in the headers: the first pieces run through the entry's
/// and `p_align`'s holes (see [`ARM64_HOLES`]) into the body, which jumps to the last
/// ones, as many as the other two holes take whole. Programs end in `exit` or a loop,
/// so nothing runs on from the last hole.
fn arm64_ending_in_holes(arch: Arch, pieces: &[&[u8]]) -> Option<Code> {
    if arch != Arch::Arm64 {
        return None;
    }
    let (chain, ending) = ARM64_HOLES.split_at(2);
    let fits = |tail: &[&[u8]]| {
        let offsets = spread(arch, &mut arm64_headers(), ending, ELF64_HEADERS, tail);
        offsets.iter().all(|&at| at < ELF64_HEADERS)
    };
    let split = (0..pieces.len()).find(|&split| fits(&pieces[split..]))?;
    let (head, tail) = pieces.split_at(split);
    let mut elf = arm64_headers();
    // The jump to the tail, written once it is placed: none after a head that ends in
    // `b` (a loop), as the tail is then only reached by address.
    let jump = [0; 4];
    let falls_through = head.last().is_none_or(|piece| !arm64_ends_in_branch(piece));
    let chain_pieces: Vec<&[u8]> = head.iter().copied().chain(falls_through.then_some(&jump[..])).collect();
    let mut offsets = spread(arch, &mut elf, chain, ELF64_HEADERS, &chain_pieces);
    let end = code_end(arch, &offsets, &chain_pieces);
    if falls_through {
        let jump_at = offsets.pop().expect("the jump is placed");
        write_jump(arch, &mut elf, jump_at, ending[0].at);
    }
    offsets.extend(spread(arch, &mut elf, ending, ELF64_HEADERS, tail));
    Some(Code {
        elf,
        page: ARM64_LOAD_ADDRESS,
        offsets,
        end,
        exit_in_header: false,
    })
}

/// Whether an AArch64 piece ends in `b`, after which nothing runs on.
fn arm64_ends_in_branch(piece: &[u8]) -> bool {
    piece
        .last_chunk::<4>()
        .is_some_and(|word| u32::from_le_bytes(*word) >> 26 == 0b000101)
}

/// Where the file may end: after its last byte that is not zero, as the loader's
/// mapping reads zeros past a file's end to the end of its last page (the ELF32 headers'
/// last byte, `e_phnum`'s high one, comes from the loader's zeroed buffer). Not before
/// the end of the program header, which the loader reads from the file, and not when the
/// zeros reach past that page.
fn without_trailing_zeros(arch: Arch, elf: &[u8]) -> usize {
    let program_header_end = match arch {
        Arch::I386 => 4 + 32,
        Arch::Amd64 => 24 + 56,
        Arch::Arm64 => ELF64_HEADERS,
    };
    let last = elf.iter().rposition(|&byte| byte != 0).map_or(0, |at| at + 1);
    let end = last.max(program_header_end);
    if elf.len() <= end.next_multiple_of(4096) {
        end
    } else {
        elf.len()
    }
}

/// Turns file offsets into the addresses they are mapped at, the file mapped at `page`.
fn placed(elf: Vec<u8>, page: u64, data_at: usize, pieces_at: Vec<usize>) -> Placed {
    Placed {
        elf,
        data: page + data_at as u64,
        pieces: pieces_at.into_iter().map(|at| page + at as u64).collect(),
    }
}

/// Writes `pieces` in order into `holes`, each hole passing execution on to the next and
/// the last one to `body_at`, where the pieces that did not fit follow (the file grows
/// to hold them). A hole that takes all the remaining pieces needs no way onward:
/// programs end in `exit`. Returns the file offset of each piece.
fn spread(arch: Arch, elf: &mut Vec<u8>, holes: &[Hole], body_at: usize, pieces: &[&[u8]]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(pieces.len());
    let mut rest = pieces;
    for (index, hole) in holes.iter().enumerate() {
        let next = holes.get(index + 1).map_or(body_at, |h| h.at);
        let onward = hole.onward.filter(|&(_, to)| to == next).map(|(bytes, _)| bytes);
        let onward_len = onward.map_or(jump_len(arch), <[u8]>::len);
        let mut at = hole.at;
        let mut overlapped = false;
        while let Some((piece, after)) = rest.split_first() {
            // Room to go on is needed unless everything left fits here.
            let all_fit = at + rest.iter().map(|p| p.len()).sum::<usize>() <= hole.end;
            if !all_fit && at + piece.len() + onward_len > hole.end {
                // A piece that ends with the bytes the way onward would swallow takes
                // its place, overlapping them.
                if let Some(start) = onward.and_then(|_| overlap_start(elf, hole, next, at, piece)) {
                    fill_with_nops(arch, elf, at, start);
                    elf[start..next].copy_from_slice(piece);
                    offsets.push(start);
                    rest = after;
                    overlapped = true;
                }
                break;
            }
            elf[at..at + piece.len()].copy_from_slice(piece);
            offsets.push(at);
            at += piece.len();
            rest = after;
        }
        if rest.is_empty() {
            return offsets;
        }
        match onward {
            _ if overlapped => {}
            Some(onward) => {
                let from = hole.end - onward.len();
                fill_with_nops(arch, elf, at, from);
                elf[from..hole.end].copy_from_slice(onward);
            }
            None => write_jump(arch, elf, at, next),
        }
    }
    let mut at = body_at;
    for piece in rest {
        if elf.len() < at + piece.len() {
            elf.resize(at + piece.len(), 0);
        }
        elf[at..at + piece.len()].copy_from_slice(piece);
        offsets.push(at);
        at += piece.len();
    }
    offsets
}

/// Where `piece` starts if it may end at `next`, overlapping the header bytes between
/// `hole` and `next` (it ends with them), its other bytes in the hole from `at` on.
fn overlap_start(elf: &[u8], hole: &Hole, next: usize, at: usize, piece: &[u8]) -> Option<usize> {
    let fixed = &elf[hole.end..next];
    let start = next.checked_sub(piece.len())?;
    (piece.len() > fixed.len() && piece.ends_with(fixed) && start >= at).then_some(start)
}

fn fill_with_nops(arch: Arch, elf: &mut [u8], from: usize, to: usize) {
    for slot in (from..to).step_by(nop(arch).len()) {
        elf[slot..slot + nop(arch).len()].copy_from_slice(nop(arch));
    }
}

/// The room a jump onward takes: x86 `jmp rel8` (every hole is less than 127 bytes
/// before the next or the body), AArch64 `b`.
fn jump_len(arch: Arch) -> usize {
    if arch == Arch::Arm64 { 4 } else { 2 }
}

fn nop(arch: Arch) -> &'static [u8] {
    if arch == Arch::Arm64 {
        &[0x1f, 0x20, 0x03, 0xd5]
    } else {
        &[0x90]
    }
}

/// A jump at `from` to `to`: x86 `jmp rel8`, AArch64 `b`.
fn write_jump(arch: Arch, elf: &mut [u8], from: usize, to: usize) {
    let distance = to as isize - from as isize;
    if arch == Arch::Arm64 {
        let branch = 0x1400_0000 | (distance / 4) as u32 & 0x03ff_ffff;
        elf[from..from + 4].copy_from_slice(&branch.to_le_bytes());
    } else {
        let near = i8::try_from(distance - 2).expect("holes are near the code they join");
        elf[from..from + 2].copy_from_slice(&[0xeb, near as u8]);
    }
}

/// Bytes of the amd64 layout before the body: the body overlaps `p_align`.
const AMD64_HEADERS: usize = 72;

/// The amd64 layout: 80 bytes of headers, the program header starting at byte 24.
///
/// ```text
///  0  7f 'E' 'L' 'F'     magic; execution starts at offset 1, where 45 4c 46 are
///                        REX prefixes to the code that follows
///  4  code               EI_CLASS.. (Linux's loader picks the 64-bit reader by
///                        e_machine and never reads EI_CLASS or EI_DATA)
/// 16  e_type = 2, e_machine = 62
/// 20  e_version          (unchecked)
/// 24  p_type = 1, p_flags = 5 (R+X)   | e_entry = 5 << 32 | 1: file offset 1
/// 32  p_offset = 24                   | e_phoff = 24
/// 40  p_vaddr = 5 << 32 | 24          | e_shoff (unchecked); congruent to p_offset
///                                       modulo the page size, as mmap needs
/// 48  p_paddr (unchecked)             | e_flags, e_ehsize, e_phentsize = 56 at 54
/// 56  p_filesz = 1 + 65536 k          | e_phnum = 1 at 56, then e_shentsize.. (unchecked);
///                                       k = 0x050f makes bytes 58..60 a `syscall`
/// 64  p_memsz = p_filesz: no zero-filled tail
/// 72  p_align (unchecked for ET_EXEC) = the body's first bytes
/// ```
fn amd64_headers() -> Vec<u8> {
    let mut elf = vec![0u8; 80];
    elf[..4].copy_from_slice(b"\x7fELF");
    let mut set = |at: usize, value: u64| elf[at..at + 8].copy_from_slice(&value.to_le_bytes());
    set(16, 2 | 62 << 16); // e_type, e_machine, e_version = 0
    set(24, AMD64_LOAD_ADDRESS | 1); // e_entry = p_type 1, p_flags 5
    set(32, 24); // e_phoff = p_offset
    set(40, AMD64_LOAD_ADDRESS | 24); // p_vaddr
    set(48, 56 << 48); // e_phentsize
    amd64_segment(&mut elf, 80, amd64_filesz(80));
    elf
}

/// The smallest amd64 segment size that maps a file of `file_size` bytes: `1 + 65536 k`,
/// as its low 16 bits are `e_phnum` (1).
fn amd64_filesz(file_size: usize) -> u64 {
    // The segment maps whole pages from file offset 0: k grows until they cover the file.
    let covered = |k: u64| (24 + 1 + 65536 * k).next_multiple_of(4096);
    let k = (0..)
        .find(|&k| covered(k) >= file_size as u64)
        .expect("some k covers any file");
    1 + 65536 * k
}

/// Sets the amd64 segment's sizes to `filesz` for a file of `file_size` bytes (at least
/// the 80 of the headers), growing it to that size.
fn amd64_segment(elf: &mut Vec<u8>, file_size: usize, filesz: u64) {
    assert!(filesz >= amd64_filesz(file_size), "the segment covers the file");
    elf.resize(file_size.max(80), 0);
    elf[56..64].copy_from_slice(&filesz.to_le_bytes()); // p_filesz; low 16 bits: e_phnum = 1
    elf[64..72].copy_from_slice(&filesz.to_le_bytes()); // p_memsz
}

const ELF64_HEADERS: usize = 64 + 56 - 8;

/// The arm64 layout's headers, execution starting at [`ARM64_ENTRY`].
fn arm64_headers() -> Vec<u8> {
    let mut elf = elf64_header(Arch::Arm64, ARM64_LOAD_ADDRESS + ARM64_ENTRY as u64, 64 - 8);
    // The program header overlaps the ELF header's last 8 bytes:
    elf.truncate(64 - 8);
    put(&mut elf, 4, 1); // p_type = PT_LOAD  | e_phnum = 1, e_shentsize = 0
    put(&mut elf, 4, 5); // p_flags = R + X   | e_shnum = 5, e_shstrndx = 0
    // The file's first page at the load address, described from its second byte: mmap
    // maps from the page start all the same, and the 1 makes the word a SIG_IGN (see
    // ARM64_IGNORE_ACTION).
    put(&mut elf, 8, 1); // p_offset
    put(&mut elf, 8, ARM64_LOAD_ADDRESS + 1); // p_vaddr
    put(&mut elf, 8, 0); // p_paddr
    put(&mut elf, 8, 0); // p_filesz, p_memsz: see elf64_sizes
    put(&mut elf, 8, 0);
    put(&mut elf, 8, 0x1000); // p_align
    debug_assert_eq!(elf.len(), ELF64_HEADERS);
    elf64_sizes(&mut elf, ELF64_HEADERS);
    elf
}

/// A 64-bit little-endian ELF header for an executable of `arch` entered at `entry`,
/// with one program header at `phoff` and no section headers: every field what it says.
fn elf64_header(arch: Arch, entry: u64, phoff: u64) -> Vec<u8> {
    let mut elf = Vec::with_capacity(64);
    // e_ident: magic, 64-bit, little-endian, version 1, System V, padding.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put(&mut elf, 2, 2); // e_type: ET_EXEC
    put(&mut elf, 2, arch.elf_machine().into()); // e_machine
    put(&mut elf, 4, 1); // e_version
    put(&mut elf, 8, entry); // e_entry
    put(&mut elf, 8, phoff); // e_phoff
    put(&mut elf, 8, 0); // e_shoff: no section headers
    put(&mut elf, 4, 0); // e_flags
    put(&mut elf, 2, 64); // e_ehsize
    put(&mut elf, 2, 56); // e_phentsize
    put(&mut elf, 2, 1); // e_phnum
    put(&mut elf, 6, 0); // e_shentsize, e_shnum, e_shstrndx
    elf
}

/// Where [`conventional_amd64`] maps the file: where linkers put x86-64 programs.
const CONVENTIONAL_LOAD_ADDRESS: u64 = 0x40_0000;

/// The ELF header and the program header, one after the other.
const CONVENTIONAL_HEADERS: usize = 64 + 56;

/// The address of the body of a program laid out by [`conventional_amd64`].
pub const CONVENTIONAL_AMD64_BODY: u64 = CONVENTIONAL_LOAD_ADDRESS + CONVENTIONAL_HEADERS as u64;

/// Lays out an amd64 executable as a linker would, with no tricks: the ELF header, the
/// program header after it, then the pieces in order, then `data`. 120 bytes of headers
/// where the smallest layout takes 72 and fills them with code, but `e_ident` holds what
/// it says: the binfmt_misc entries of qemu-user and Rosetta (which
/// `collect::executable::EMULATOR_ENTRIES` lists) match it, so arm64 hosts run the
/// program under emulation, which they refuse for the smallest layout (code runs in
/// `e_ident`).
pub fn conventional_amd64(data: &[u8], pieces: &[Vec<u8>]) -> Placed {
    let mut elf = elf64_header(Arch::Amd64, CONVENTIONAL_AMD64_BODY, 64);
    let size = (CONVENTIONAL_HEADERS + pieces.iter().map(Vec::len).sum::<usize>() + data.len()) as u64;
    put(&mut elf, 4, 1); // p_type: PT_LOAD
    put(&mut elf, 4, 5); // p_flags: R + X
    put(&mut elf, 8, 0); // p_offset
    put(&mut elf, 8, CONVENTIONAL_LOAD_ADDRESS); // p_vaddr
    put(&mut elf, 8, CONVENTIONAL_LOAD_ADDRESS); // p_paddr
    put(&mut elf, 8, size); // p_filesz
    put(&mut elf, 8, size); // p_memsz
    put(&mut elf, 8, 0x1000); // p_align
    let mut offsets = Vec::with_capacity(pieces.len());
    for piece in pieces {
        offsets.push(elf.len());
        elf.extend_from_slice(piece);
    }
    let data_at = elf.len();
    elf.extend_from_slice(data);
    placed(elf, CONVENTIONAL_LOAD_ADDRESS, data_at, offsets)
}

/// Sets `p_filesz` and `p_memsz` to what follows `p_offset` (1) in the file: nothing
/// beyond the file, no huge mapping.
fn elf64_sizes(elf: &mut [u8], file_size: usize) {
    let size = file_size as u64 - 1;
    elf[88..96].copy_from_slice(&size.to_le_bytes());
    elf[96..104].copy_from_slice(&size.to_le_bytes());
}

/// Bytes of the ELF32 layout before the body: through `e_phnum`.
const ELF32_HEADERS: usize = 46;

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
fn elf32(body: &[u8], load: u32, entry_offset: usize) -> Vec<u8> {
    let entry_address = load + entry_offset as u32;
    let mut elf = vec![0u8; ELF32_HEADERS];
    elf[..4].copy_from_slice(b"\x7fELF");
    let mut set = |at: usize, value: u32| elf[at..at + 4].copy_from_slice(&value.to_le_bytes());
    set(4, 1); // p_type: PT_LOAD
    set(12, load); // p_vaddr
    set(16, 2 | 3 << 16); // e_type: ET_EXEC, e_machine: EM_386
    // The segment covers the load address up to the entry point: at least the whole
    // file, as the entry lies in or past the headers and the code is shorter than the
    // 64 KiB between the load address and the file's first byte in the segment.
    set(20, entry_address); // p_filesz
    set(24, entry_address); // p_memsz, e_entry
    set(28, 4); // p_flags = PF_R, e_phoff = 4
    elf[42] = 32; // e_phentsize
    elf[44] = 1; // e_phnum
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
    use crate::collect::kernel_elf;

    #[test]
    fn the_loader_reads_every_layout_back_whatever_its_size() {
        // Small and large data (386 puts data past 64 KiB before the code), with code
        // past the holes.
        for arch in Arch::ALL {
            for data_len in [0, 30, 100_000] {
                let code = pieces(arch, 40);
                let placed = laid_out(arch, &vec![0xcc; data_len], &code);
                let elf = &placed.elf;
                let view = kernel_elf::read(elf).unwrap();
                assert_eq!(view.machine, arch.elf_machine(), "{arch:?}");
                let load = &view.segments[0];
                assert_eq!((view.segments.len(), load.kind), (1, kernel_elf::PT_LOAD));
                assert_eq!(load.filesz, load.memsz, "{arch:?}: no zero-filled tail");
                // The mapping starts at the page holding file offset 0 and covers the file.
                let page = load.vaddr - load.offset;
                assert_eq!(page % 4096, 0, "{arch:?}");
                assert!(
                    (load.offset + load.filesz).next_multiple_of(4096) >= elf.len() as u64,
                    "{arch:?} {data_len}"
                );
                assert!(load.memsz < 4 << 20, "{arch:?}: no oversized segment");
                // Execution starts at the first piece (amd64: at offset 1, where "ELF"
                // prefixes it).
                let first = placed.pieces[0] - u64::from(arch == Arch::Amd64) * 3;
                assert_eq!(view.entry, first, "{arch:?} {data_len}");
                assert!(view.interpreter.is_none());
                let data_at = (placed.data - page) as usize;
                assert!(elf[data_at..data_at + data_len].iter().all(|&b| b == 0xcc));
            }
        }
        assert_eq!(
            laid_out(Arch::Amd64, &[], &pieces(Arch::Amd64, 3)).elf.len(),
            80,
            "the headers end at 80"
        );
    }

    #[test]
    fn the_conventional_amd64_layout_is_what_emulators_match_with_the_pieces_in_order() {
        let code = pieces(Arch::Amd64, 5);
        let placed = conventional_amd64(b"data", &code);
        let elf = &placed.elf;
        let view = kernel_elf::read(elf).unwrap();
        let load = &view.segments[0];
        assert_eq!((view.segments.len(), load.filesz, load.memsz), (1, 125 + 4, 125 + 4));
        assert_eq!(view.entry, CONVENTIONAL_AMD64_BODY);
        let starts: Vec<u64> = (0..5).map(|i| CONVENTIONAL_AMD64_BODY + i).collect();
        assert_eq!(placed.pieces, starts);
        assert_eq!(placed.data, CONVENTIONAL_AMD64_BODY + 5);
        assert_eq!(&elf[120..], b"\x90\x90\x90\x90\x90data");
        let (_, magic, mask) = crate::collect::executable::EMULATOR_ENTRIES
            .iter()
            .find(|(machine, ..)| *machine == Arch::Amd64.elf_machine())
            .unwrap();
        assert!((0..20).all(|i| elf[i] & mask[i] == magic[i] & mask[i]));
    }

    #[test]
    fn trailing_zeros_are_left_to_the_loader_within_the_last_page() {
        for arch in Arch::ALL {
            let code = pieces(arch, 40);
            let end = |data: &[u8]| laid_out(arch, data, &code).elf.len();
            let without = end(b"ab");
            assert_eq!(end(b"ab\0\0\0"), without, "{arch:?}");
            assert_eq!(end(b"\0\0"), without - 2, "{arch:?}: data of zeros only");
            // Zeros reaching past the page that the last other byte is in stay.
            let long = [&[1u8][..], &[0; 5000]].concat();
            assert_eq!(end(&long), without - 2 + long.len(), "{arch:?}");
        }
        // Never into the program header, which the loader reads from the file; 386's
        // headers end where e_phnum's 1 is, its high byte the loader's zero.
        for (arch, headers) in [(Arch::I386, 45), (Arch::Amd64, 80), (Arch::Arm64, 112)] {
            assert_eq!(laid_out(arch, &[0; 64], &[]).elf.len(), headers, "{arch:?}");
        }
    }

    #[test]
    fn a_piece_ending_with_the_bytes_after_the_elf32_hole_overlaps_them() {
        let tail = [&[0xb9][..], &ELF32_TAIL.to_le_bytes()].concat(); // mov ecx, ELF32_TAIL
        let code = [pieces(Arch::I386, 7), vec![tail.clone(), vec![0xcc]]].concat();
        let placed = laid_out(Arch::I386, &[], &code);
        assert_eq!(
            &placed.elf[32..46],
            &[[0x90; 7].as_slice(), &[0x90, 0x90], &tail].concat()
        );
        assert_eq!(placed.pieces[7], LOAD_ADDRESS + 41, "the way out is the piece");
        assert_eq!(placed.pieces[8], LOAD_ADDRESS + 46);
        assert_eq!(placed.elf.len(), 47);
        // When the hole is full up to its way out, the piece still fits as that way out;
        // when it is not next, the way out is cmp eax and the piece follows the headers.
        let full = [pieces(Arch::I386, 9), vec![tail.clone()]].concat();
        assert_eq!(laid_out(Arch::I386, &[], &full).pieces[9], LOAD_ADDRESS + 41);
        let late = [pieces(Arch::I386, 10), vec![tail.clone()]].concat();
        let placed = laid_out(Arch::I386, &[], &late);
        assert_eq!((placed.elf[41], placed.pieces[10]), (0x3d, LOAD_ADDRESS + 47));
    }

    #[test]
    fn an_amd64_program_ending_in_a_lone_syscall_may_end_in_the_headers() {
        // 20 one-byte pieces, one of 2 and 3 of 1, then the exit's syscall. Ending in the
        // header, the third hole takes the last 5 bytes before the syscall, and the body
        // the 7 pieces the first two holes do not, then a jump back to them.
        let mut code = pieces(Arch::Amd64, 20);
        code.extend([vec![0x50, 0x58], vec![0x90], vec![0x90], vec![0x90], SYSCALL.to_vec()]);
        let placed = in_pieces(Arch::Amd64, b"data", &code, Ending::MayBeInHeader, Start::Zeroed);
        let elf = &placed.elf;
        let at = |piece: usize| (placed.pieces[piece] - AMD64_LOAD_ADDRESS) as usize;
        assert_eq!(
            &elf[48..60],
            &[0x50, 0x58, 0x90, 0x90, 0x90, 0x3d, 56, 0, 1, 0, 0x0f, 0x05]
        );
        assert_eq!(
            (at(12), at(13), at(19)),
            (21, 72, 78),
            "the body takes what the holes do not"
        );
        assert_eq!(&elf[79..81], &[0xeb, (48i8 - 81) as u8], "and jumps back to the tail");
        assert_eq!((at(20), at(23), at(24)), (48, 52, AMD64_HEADER_SYSCALL));
        assert_eq!(&elf[81..], b"data");
        let load = &kernel_elf::read(elf).unwrap().segments[0];
        assert_eq!(
            (load.filesz, load.memsz),
            (AMD64_SYSCALL_SEGMENT, AMD64_SYSCALL_SEGMENT)
        );
        // With its syscall in the code, the file is a byte longer, the segment one page.
        let in_code = laid_out(Arch::Amd64, b"data", &code).elf;
        assert_eq!((in_code.len(), &in_code[80..82]), (elf.len() + 1, SYSCALL));
        assert_eq!(kernel_elf::read(&in_code).unwrap().segments[0].filesz, 1);
        // Nor in the header when that is no shorter: the holes hold a whole short program.
        let short = [pieces(Arch::Amd64, 5), vec![SYSCALL.to_vec()]].concat();
        let elf = in_pieces(Arch::Amd64, &[], &short, Ending::MayBeInHeader, Start::Zeroed).elf;
        assert_eq!(kernel_elf::read(&elf).unwrap().segments[0].filesz, 1);
    }

    #[test]
    fn a_386_program_may_start_writing_with_the_header_bytes_run_as_code() {
        let code = pieces(Arch::I386, 12);
        let placed = in_pieces(Arch::I386, b"data", &code, Ending::InCode, Start::Writing);
        let elf = &placed.elf;
        let view = kernel_elf::read(elf).unwrap();
        let load = &view.segments[0];
        assert_eq!((load.vaddr, load.offset), (ELF32_WRITING_LOAD.into(), 0));
        assert_eq!(view.entry, u64::from(ELF32_WRITING_LOAD) + 25);
        assert_eq!(
            (load.filesz, load.memsz),
            (view.entry, view.entry),
            "no zero-filled tail"
        );
        // From the entry: push eax; inc ebx; add eax, 4 (over e_phoff); then the hole.
        assert_eq!(&elf[25..32], &[0x50, 0x43, 0x05, 0x04, 0, 0, 0]);
        assert_eq!(placed.pieces[0], u64::from(ELF32_WRITING_LOAD) + 32);
        assert_eq!(&elf[32..42], &[[0x90; 9].as_slice(), &[0x3d]].concat());
        assert_eq!((&elf[46..49], &elf[49..]), (&[0x90; 3][..], &b"data"[..]));
        // A long file is laid out the same way: the segment covers 84 MiB.
        let long = in_pieces(Arch::I386, &vec![1; 100_000], &code, Ending::InCode, Start::Writing);
        assert_eq!(long.pieces[0], placed.pieces[0]);
    }

    #[test]
    fn the_header_words_programs_read_hold_what_they_are_named_for() {
        let elf32 = laid_out(Arch::I386, &[], &pieces(Arch::I386, 20)).elf;
        let at = |address: u32| (address - LOAD_ADDRESS as u32) as usize;
        assert_eq!(&elf32[42..46], ELF32_TAIL.to_le_bytes(), "e_phentsize, e_phnum");
        let action = &elf32[at(ELF32_IGNORE_ACTION)..at(ELF32_IGNORE_ACTION) + 8];
        assert_eq!(action, [1, 0, 0, 0, 0, 0, 0, 0], "SIG_IGN, no flags");
        let arm64 = laid_out(Arch::Arm64, &[], &pieces(Arch::Arm64, 20)).elf;
        let word = |at: u64| u64::from_le_bytes(arm64[at as usize..at as usize + 8].try_into().unwrap());
        // Its flags, restorer and mask only matter to a handler.
        assert_eq!(word(ARM64_IGNORE_ACTION - ARM64_LOAD_ADDRESS), 1, "SIG_IGN");
        let action = ARM64_ENTRY_ACTION - ARM64_LOAD_ADDRESS;
        assert_eq!(word(action), kernel_elf::read(&arm64).unwrap().entry, "the handler");
        // AArch64's flags: SA_NOCLDSTOP.. SA_SIGINFO (0x7), SA_UNSUPPORTED, SA_EXPOSE_TAGBITS
        // (0xc00), SA_ONSTACK.. SA_RESETHAND (0xdc000000).
        assert_eq!(word(action + 8) & 0xdc00_0c07, 0, "flags no kernel acts on");
    }

    /// [`in_pieces`] the usual way: registers zero at start, the last `syscall` in the code.
    fn laid_out(arch: Arch, data: &[u8], pieces: &[Vec<u8>]) -> Placed {
        in_pieces(arch, data, pieces, Ending::InCode, Start::Zeroed)
    }

    /// `count` one-byte x86 `nop`s, or `count` AArch64 `nop`s, as pieces.
    fn pieces(arch: Arch, count: usize) -> Vec<Vec<u8>> {
        vec![nop(arch).to_vec(); count]
    }

    #[test]
    fn pieces_fill_the_holes_in_order_then_follow_the_headers_and_the_data_follows() {
        // (arch, pieces the holes take when no more follow, and when more follow (the
        // ways onward take room), the file's size with the holes full)
        for (arch, alone, followed, headers) in [(Arch::I386, 10, 9, 45), (Arch::Amd64, 19, 17, 80)] {
            assert_eq!(laid_out(arch, &[], &pieces(arch, alone)).elf.len(), headers, "{arch:?}");
            let piece = nop(arch).len();
            let placed = laid_out(arch, b"data", &pieces(arch, followed + 20));
            let (elf, body_at) = (&placed.elf, headers_len(arch));
            assert_eq!(elf.len(), body_at + 20 * piece + 4, "{arch:?}");
            assert_eq!(&elf[elf.len() - 4..], b"data", "{arch:?}: the data follows the code");
            let page = placed.data - (elf.len() - 4) as u64;
            assert_eq!(page, body_address(arch) - body_at as u64, "{arch:?}");
            // Each piece is where its address says, the last 20 after the headers.
            for (index, address) in placed.pieces.iter().enumerate() {
                let at = (address - page) as usize;
                assert_eq!(&elf[at..at + piece], nop(arch), "{arch:?} piece {index}");
            }
            assert_eq!(placed.pieces[followed] - page, body_at as u64, "{arch:?}");
            let load = &kernel_elf::read(elf).unwrap().segments[0];
            assert!((load.offset + load.filesz).next_multiple_of(4096) >= elf.len() as u64);
        }
    }

    #[test]
    fn holes_are_chained_by_jumps_and_fixed_fields_swallowed() {
        let elf = laid_out(Arch::Amd64, &[], &pieces(Arch::Amd64, 30)).elf;
        assert_eq!(&elf[4..15], &[0x90; 11]);
        assert_eq!(elf[15], 0xb9, "mov ecx, imm32 over e_type and e_machine");
        assert_eq!(&elf[20..24], &[0x90, 0x90, 0xeb, 48 - 24]);
        assert_eq!(&elf[48..54], &[0x90, 0x90, 0x90, 0x90, 0xeb, (72 - 54) as u8]);
        assert_eq!(elf[54], 56, "e_phentsize untouched");
        // An instruction "ELF" would change as REX prefixes gets a nop before it.
        let placed = laid_out(Arch::Amd64, &[], &[vec![0x31, 0xff]]);
        assert_eq!(&placed.elf[4..7], &[0x90, 0x31, 0xff]);
        assert_eq!(placed.pieces, [AMD64_LOAD_ADDRESS + 5]);
        // Nor may code make EI_DATA say big-endian.
        let elf = laid_out(Arch::Amd64, &[], &[vec![0x68, 2, 0, 0, 0]]).elf;
        assert_eq!(&elf[4..7], &[0x90, 0x68, 2]);
        let elf = laid_out(Arch::I386, &[], &pieces(Arch::I386, 12)).elf;
        assert_eq!(
            &elf[32..42],
            &[0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x3d]
        );
        assert_eq!(&elf[42..45], &[32, 0, 1], "cmp eax, imm32 over e_phentsize and e_phnum");
    }

    #[test]
    fn arm64_code_starts_in_e_version_and_may_end_in_the_holes_the_body_jumps_to() {
        let word = |elf: &[u8], at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
        let b = |from: usize, to: usize| 0x1400_0000 | ((to as i32 - from as i32) / 4) as u32 & 0x03ff_ffff;
        // Six pieces fill the holes (e_version, p_align; e_shoff and e_flags, with a jump
        // onward; p_paddr): the file is the headers.
        let elf = laid_out(Arch::Arm64, &[], &pieces(Arch::Arm64, 6)).elf;
        assert_eq!(elf.len(), ELF64_HEADERS);
        assert_eq!(
            (word(&elf, 24), word(&elf, 108), word(&elf, 48)),
            (b(24, 104), b(108, 40), b(48, 80))
        );
        let view = kernel_elf::read(&elf).unwrap();
        assert_eq!(view.entry, ARM64_LOAD_ADDRESS + 20, "e_entry's low word is the branch");
        assert_eq!(&elf[8..16], &[0; 8], "e_ident's padding, which binfmt_misc matches");
        // A longer program: three pieces before the body, its last four in the two
        // other holes, which the body jumps to after the rest.
        let placed = laid_out(Arch::Arm64, b"data", &pieces(Arch::Arm64, 30));
        let at: Vec<u64> = placed
            .pieces
            .iter()
            .map(|address| address - ARM64_LOAD_ADDRESS)
            .collect();
        assert_eq!(&at[..4], [20, 104, 108, 112]);
        assert_eq!(&at[26..], [40, 44, 80, 84]);
        let (elf, jump) = (&placed.elf, 112 + 23 * 4);
        assert_eq!(word(elf, jump), b(jump, 40));
        assert_eq!(&elf[jump + 4..], b"data");
        assert_eq!(placed.data, ARM64_LOAD_ADDRESS + jump as u64 + 4);
        // After a loop (a piece ending in `b`), nothing runs on: the tail is reached by
        // address only, and no jump leads to it.
        let looped = [
            pieces(Arch::Arm64, 25),
            vec![b(0, 0).to_le_bytes().to_vec()],
            pieces(Arch::Arm64, 4),
        ]
        .concat();
        let placed = laid_out(Arch::Arm64, b"data", &looped);
        let loop_at = (placed.pieces[25] - ARM64_LOAD_ADDRESS) as usize;
        assert_eq!((loop_at, placed.pieces[26] - ARM64_LOAD_ADDRESS), (112 + 22 * 4, 40));
        assert_eq!(&placed.elf[loop_at + 4..], b"data");
    }
}
