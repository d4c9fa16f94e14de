//! `hello`: writes a message to stdout, exactly, and exits with a chosen status.
//!
//! One `write(2)` call: on a blocking stdout (a pipe, file, terminal or socket, as
//! containers have) the kernel writes every byte before returning, even past a pipe's
//! buffer. What the call returns is not checked, so the status is the chosen one even
//! if stdout refuses the bytes: the records this program matches do the same.
//!
//! Start registers are zero on all three architectures (see [`super`]); the code relies
//! on that where a comment says so.

use super::{Arch, Body, address};
use dynasmrt::{DynasmApi, aarch64::Aarch64Relocation, x64::X64Relocation, x86::X86Relocation};

/// Largest message (and `http` response): lengths must fit 32-bit immediates, and
/// `http`'s arm64 code reaches its response with `adr`, 1 MiB back at most.
pub const MAX_MESSAGE: usize = (1 << 20) - 4096;

/// A static program for `arch` that writes `message` to stdout and exits with `status`.
///
/// # Panics
/// If `message` is longer than [`MAX_MESSAGE`]; callers check first.
pub fn program(arch: Arch, message: &[u8], status: u8) -> Vec<u8> {
    assert!(message.len() <= MAX_MESSAGE, "message too long");
    // The message is the body's data, at a known address: the code refers to nothing
    // else, so the layout may spread it over the headers' holes.
    let at = address(arch, 0);
    let len = message.len() as u32;
    let pieces = match arch {
        Arch::Amd64 => amd64(at, len, status),
        Arch::I386 => i386(at as u32, len, status),
        Arch::Arm64 => arm64(at as u32, len, status),
    };
    Body::in_pieces(message, pieces).link(arch)
}

fn amd64(at: u64, len: u32, status: u8) -> Vec<Vec<u8>> {
    let mut code = Vec::new();
    if len > 0 {
        code.extend(pieces!(x64, X64Relocation;
            [mov rsi, QWORD at as i64]        // the message, above 4 GiB: 10 bytes, but they
        )); //   fit the first hole
        code.extend(if len < 256 {
            pieces!(x64, X64Relocation; [mov dl, BYTE len as i8]) // rdx starts at 0
        } else {
            pieces!(x64, X64Relocation; [mov edx, len as i32])
        });
        code.extend(pieces!(x64, X64Relocation;
            [inc edi]                         // rdi starts at 0: stdout (2 bytes, mov's 5)
            [inc eax]                         // rax starts at 0: SYS_write
            [syscall]
        ));
    }
    code.extend(pieces!(x64, X64Relocation;
        [push BYTE status as i8]              // push/pop imm8: 3 bytes, mov's 5; exit keeps
        [pop rdi]                             //   the low 8 bits of the sign-extended status
        [push BYTE 60]                        // SYS_exit
        [pop rax]
        [syscall]
    ));
    code
}

fn i386(at: u32, len: u32, status: u8) -> Vec<Vec<u8>> {
    let mut code = Vec::new();
    if len > 0 {
        code.extend(pieces!(x86, X86Relocation; [mov ecx, at as i32]));
        code.extend(if len < 256 {
            pieces!(x86, X86Relocation; [mov dl, len as i8]) // edx starts at 0
        } else {
            pieces!(x86, X86Relocation; [mov edx, len as i32])
        });
        code.extend(pieces!(x86, X86Relocation;
            [inc ebx]                         // ebx starts at 0: stdout (1 byte)
            [mov al, 4]                       // eax starts at 0: SYS_write (2 bytes)
            [int BYTE 0x80u8 as i8]
        ));
    }
    code.extend(pieces!(x86, X86Relocation;
        [mov bl, status as i8]                // ebx is 0 or 1: setting its low byte sets it
        [push BYTE 1]                         // SYS_exit; eax holds write's result
        [pop eax]
        [int BYTE 0x80u8 as i8]
    ));
    code
}

fn arm64(at: u32, len: u32, status: u8) -> Vec<Vec<u8>> {
    let mut code = Vec::new();
    if len > 0 {
        code.extend(pieces!(aarch64, Aarch64Relocation;
            [movz x0, 1]                      // stdout
            [movz x1, at & 0xffff]            // the message
            [movk x1, at >> 16, lsl 16]
            [movz x2, len & 0xffff]
        ));
        if len >> 16 != 0 {
            code.extend(pieces!(aarch64, Aarch64Relocation; [movk x2, len >> 16, lsl 16]));
        }
        code.extend(pieces!(aarch64, Aarch64Relocation;
            [movz x8, 64]                     // SYS_write
            [svc 0]
        ));
    }
    code.extend(pieces!(aarch64, Aarch64Relocation;
        [movz x0, status as u32]
        [movz x8, 93]                         // SYS_exit
        [svc 0]
    ));
    code
}
