//! `hello`: writes a message to stdout, exactly, and exits with a chosen status.
//!
//! One `write(2)` call: on a blocking stdout (a pipe, file, terminal or socket, as
//! containers have) the kernel writes every byte before returning, even past a pipe's
//! buffer. What the call returns is not checked, so the status is the chosen one even
//! if stdout refuses the bytes: the records this program matches do the same.
//!
//! Start registers are zero on all three architectures (see [`super`]); the code relies
//! on that where a comment says so.

use super::{Arch, Body, address, amd64_with_data, arm64_with_data};
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler, dynasm, x86::X86Relocation};

/// Largest message: its length and address must fit 32-bit immediates, and arm64's
/// `adr` reaches 1 MiB back.
pub const MAX_MESSAGE: usize = (1 << 20) - 4096;

/// A static program for `arch` that writes `message` to stdout and exits with `status`.
///
/// # Panics
/// If `message` is longer than [`MAX_MESSAGE`]; callers check first.
pub fn program(arch: Arch, message: &[u8], status: u8) -> Vec<u8> {
    assert!(message.len() <= MAX_MESSAGE, "message too long");
    let body = match arch {
        Arch::Amd64 => amd64(message, status),
        Arch::I386 => {
            let at = address(arch, 0) as u32;
            Body::data_then_code(arch, message, i386(at, message.len() as u32, status), 0)
        }
        Arch::Arm64 => arm64(message, status),
    };
    body.link(arch)
}

fn amd64(message: &[u8], status: u8) -> Body {
    let mut ops = amd64_with_data(message);
    let start = ops.offset().0;
    if !message.is_empty() {
        dynasm!(ops
            ; .arch x64
            ; lea rsi, [->data]               // the message, rip-relative
            ; mov edx, message.len() as i32
            ; inc edi                         // rdi starts at 0: stdout (2 bytes, mov's 5)
            ; inc eax                         // rax starts at 0: SYS_write
            ; syscall
        );
    }
    dynasm!(ops
        ; .arch x64
        ; push BYTE status as i8              // push/pop imm8: 3 bytes, mov's 5; exit keeps
        ; pop rdi                             // the low 8 bits of the sign-extended status
        ; push BYTE 60                        // SYS_exit
        ; pop rax
        ; syscall
    );
    Body::position_independent(ops.finalize().expect("labels are all defined"), start)
}

fn i386(at: u32, len: u32, status: u8) -> Vec<u8> {
    let mut ops = VecAssembler::<X86Relocation>::new(0);
    if len > 0 {
        dynasm!(ops ; .arch x86 ; mov ecx, at as i32);
        if len < 256 {
            dynasm!(ops ; .arch x86 ; mov dl, len as i8); // edx starts at 0: its low byte will do
        } else {
            dynasm!(ops ; .arch x86 ; mov edx, len as i32);
        }
        dynasm!(ops
            ; .arch x86
            ; inc ebx                         // ebx starts at 0: stdout (1 byte)
            ; mov al, 4                       // eax starts at 0: SYS_write (2 bytes)
            ; int BYTE 0x80u8 as i8
        );
    }
    dynasm!(ops
        ; .arch x86
        ; mov bl, status as i8                // ebx is 0 or 1: setting its low byte sets it
        ; push BYTE 1                         // SYS_exit; eax holds write's result
        ; pop eax
        ; int BYTE 0x80u8 as i8
    );
    ops.finalize().expect("no labels")
}

fn arm64(message: &[u8], status: u8) -> Body {
    let mut ops = arm64_with_data(message);
    let start = ops.offset().0;
    if !message.is_empty() {
        dynasm!(ops
            ; .arch aarch64
            ; movz x0, 1                      // stdout
            ; adr x1, ->data                  // the message, pc-relative
        );
        super::arm64_mov32(&mut ops, 2, message.len() as u32);
        dynasm!(ops
            ; .arch aarch64
            ; movz x8, 64                     // SYS_write
            ; svc 0
        );
    }
    dynasm!(ops
        ; .arch aarch64
        ; movz x0, status as u32
        ; movz x8, 93                         // SYS_exit
        ; svc 0
    );
    Body::position_independent(ops.finalize().expect("labels are all defined"), start)
}
