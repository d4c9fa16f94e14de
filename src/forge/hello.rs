//! `hello`: writes a message to stdout, exactly, and exits with a chosen status.
//!
//! One `write(2)` call: on a blocking stdout (a pipe, file, terminal or socket, as
//! containers have) the kernel writes every byte before returning, even past a pipe's
//! buffer. What the call returns is not checked, so the status is the chosen one even
//! if stdout refuses the bytes: the records this program matches do the same.
//!
//! Start registers are zero on all three architectures (see [`super`]), but for 386 with
//! a message, which asks the layout for those of a write (`elf::Start::Writing`); the
//! code relies on them where a comment says so.

use super::{Arch, Place, arm64_mov32_pieces, elf, in_pieces};
use dynasmrt::{DynasmApi, DynasmLabelApi, aarch64::Aarch64Relocation, x64::X64Relocation, x86::X86Relocation};

/// Largest message (and `http` response), far past the 64 KiB programs must handle: a
/// limit of speck's, not of the code, which reaches the data (right after it) with
/// 32-bit lengths and short pc-relative or absolute addresses.
pub const MAX_MESSAGE: usize = (1 << 20) - 4096;

/// A static program for `arch` that writes `message` to stdout and exits with `status`.
///
/// # Panics
/// If `message` is longer than [`MAX_MESSAGE`]; callers check first.
pub fn program(arch: Arch, message: &[u8], status: u8) -> Vec<u8> {
    assert!(message.len() <= MAX_MESSAGE, "message too long");
    // The message is the data; the code refers to nothing else, so the layout may spread
    // it over the headers' holes.
    let len = message.len() as u32;
    // hello exits at once: it may spend address space on bytes (see elf::Ending, elf::Start).
    let start = if arch == Arch::I386 && len > 0 {
        elf::Start::Writing
    } else {
        elf::Start::Zeroed
    };
    in_pieces(arch, message, elf::Ending::MayBeInHeader, start, |place| match arch {
        Arch::Amd64 => amd64(place, len, status),
        Arch::I386 => i386(place, len, status),
        Arch::Arm64 => arm64(place, len, status),
    })
}

/// How far `status` is from what the exit status register holds: stdout (1) after a
/// write, 0 otherwise. One apart is an `inc` or `dec` away.
fn status_step(len: u32, status: u8) -> i16 {
    i16::from(status) - i16::from(len > 0)
}

fn amd64(place: &mut Place, len: u32, status: u8) -> Vec<Vec<u8>> {
    let message = place.data();
    let mut code = Vec::new();
    if len > 0 {
        code.extend(pieces!(x64, X64Relocation, place;
            [lea rsi, [extern message]]       // rip-relative: 7 bytes, where the absolute
        )); //   address, above 4 GiB, takes mov rsi, imm64's 10
        code.extend(if len < 256 {
            pieces!(x64, X64Relocation, place; [mov dl, BYTE len as i8]) // rdx starts at 0
        } else {
            pieces!(x64, X64Relocation, place; [mov edx, len as i32])
        });
        code.extend(pieces!(x64, X64Relocation, place;
            [inc edi]                         // rdi starts at 0: stdout (2 bytes, mov's 5)
            [inc eax]                         // rax starts at 0: SYS_write
            [syscall]
        ));
    }
    // rdi is stdout or 0 (see status_step): a status next to it is an inc or dec away
    // (2 bytes); push/pop imm8 takes 3, mov's 5, and exit keeps the low 8 bits of the
    // sign-extended status.
    code.extend(match status_step(len, status) {
        0 => Vec::new(),
        1 => pieces!(x64, X64Relocation, place; [inc edi]),
        -1 => pieces!(x64, X64Relocation, place; [dec edi]),
        _ => pieces!(x64, X64Relocation, place; [push BYTE status as i8] [pop rdi]),
    });
    code.extend(pieces!(x64, X64Relocation, place;
        [push BYTE 60]                        // SYS_exit, the same way: rax holds write's result
        [pop rax]
        [syscall]
    ));
    code
}

fn i386(place: &mut Place, len: u32, status: u8) -> Vec<Vec<u8>> {
    if len == 0 {
        // exit(status) alone: eax and ebx start at 0.
        let mut code = pieces!(x86, X86Relocation, place; [inc eax]); // SYS_exit
        code.extend(i386_status(place, status));
        code.extend(pieces!(x86, X86Relocation, place; [int BYTE 0x80u8 as i8]));
        return code;
    }
    let message = place.data();
    let mut code = pieces!(x86, X86Relocation, place; [mov ecx, message as i32]);
    code.extend(if len < 256 {
        pieces!(x86, X86Relocation, place; [mov dl, len as i8]) // edx starts at 0
    } else {
        pieces!(x86, X86Relocation, place; [mov edx, len as i32])
    });
    code.extend(pieces!(x86, X86Relocation, place;
        [int BYTE 0x80u8 as i8]               // write: eax 4, ebx 1 (stdout) and a zero on
                                              //   the stack at start (elf::Start::Writing)
        [xchg eax, ebx]                       // SYS_exit is 1, as stdout is (1 byte), and
                                              //   right whatever write returned
        [pop ebx]                             // the zero: status 0 (1 byte)
    ));
    code.extend(i386_status(place, status));
    code.extend(pieces!(x86, X86Relocation, place; [int BYTE 0x80u8 as i8]));
    code
}

/// Sets ebx, holding 0, to `status`: an inc or dec for 1 or 255 (1 byte), otherwise its
/// low byte (2).
fn i386_status(place: &mut Place, status: u8) -> Vec<Vec<u8>> {
    match status {
        0 => Vec::new(),
        1 => pieces!(x86, X86Relocation, place; [inc ebx]),
        255 => pieces!(x86, X86Relocation, place; [dec ebx]),
        _ => pieces!(x86, X86Relocation, place; [mov bl, status as i8]),
    }
}

fn arm64(place: &mut Place, len: u32, status: u8) -> Vec<Vec<u8>> {
    let message = place.data();
    let mut code = Vec::new();
    if len > 0 {
        code.extend(pieces!(aarch64, Aarch64Relocation, place;
            [movz x0, 1]                      // stdout
            [adr x1, extern message]          // pc-relative: one instruction, movz and movk's two
        ));
        code.extend(arm64_mov32_pieces(place, 2, len));
        code.extend(pieces!(aarch64, Aarch64Relocation, place;
            [movz x8, 64]                     // SYS_write
            [svc 0]
        ));
    }
    code.extend(pieces!(aarch64, Aarch64Relocation, place;
        [movz x0, status as u32]
        [movz x8, 93]                         // SYS_exit
        [svc 0]
    ));
    code
}
