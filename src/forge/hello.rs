//! `hello`: writes a message to stdout, exactly, and exits with a chosen status.
//!
//! The message comes first in the body, so its address is known before the code is
//! assembled (32-bit x86 has no pc-relative addressing). The code loops on short writes
//! (a pipe may take only part) and exits 1 if stdout refuses the bytes.

use super::{Arch, Body, address, amd64_with_data};
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler, aarch64::Aarch64Relocation, dynasm, x86::X86Relocation};

/// Largest message: its length and address must fit 32-bit immediates.
pub const MAX_MESSAGE: usize = i32::MAX as usize - 0x100000;

/// A static program for `arch` that writes `message` to stdout and exits with `status`.
///
/// # Panics
/// If `message` is longer than [`MAX_MESSAGE`]; callers check first.
pub fn program(arch: Arch, message: &[u8], status: u8) -> Vec<u8> {
    assert!(message.len() <= MAX_MESSAGE, "message too long");
    let at = address(arch, 0) as u32;
    let len = message.len() as u32;
    let body = match arch {
        Arch::Amd64 => amd64(message, status),
        Arch::I386 => Body::data_then_code(arch, message, i386(at, len, status), 0),
        Arch::Arm64 => Body::data_then_code(arch, message, arm64(at, len, status), 0),
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
            ; write:
            ; mov edi, 1                      // stdout
            ; mov eax, 1                      // SYS_write
            ; syscall
            ; test rax, rax
            ; jle ->failed                    // error, or nothing written: give up
            ; add rsi, rax                    // write the rest
            ; sub rdx, rax
            ; jnz <write
        );
    }
    dynasm!(ops
        ; .arch x64
        ; mov edi, status as i32
        ; jmp ->exit
        ; ->failed:
        ; mov edi, 1
        ; ->exit:
        ; mov eax, 60                         // SYS_exit
        ; syscall
    );
    Body::position_independent(ops.finalize().expect("labels are all defined"), start)
}

fn i386(at: u32, len: u32, status: u8) -> Vec<u8> {
    let mut ops = VecAssembler::<X86Relocation>::new(0);
    if len > 0 {
        dynasm!(ops
            ; .arch x86
            ; mov ecx, at as i32
            ; mov edx, len as i32
            ; write:
            ; mov ebx, 1                      // stdout
            ; mov eax, 4                      // SYS_write
            ; int BYTE 0x80u8 as i8
            ; test eax, eax
            ; jle ->failed
            ; add ecx, eax
            ; sub edx, eax
            ; jnz <write
        );
    }
    dynasm!(ops
        ; .arch x86
        ; mov ebx, status as i32
        ; jmp ->exit
        ; ->failed:
        ; mov ebx, 1
        ; ->exit:
        ; mov eax, 1                          // SYS_exit
        ; int BYTE 0x80u8 as i8
    );
    ops.finalize().expect("labels are all defined")
}

fn arm64(at: u32, len: u32, status: u8) -> Vec<u8> {
    let mut ops = VecAssembler::<Aarch64Relocation>::new(0);
    if len > 0 {
        dynasm!(ops
            ; .arch aarch64
            ; movz x1, at & 0xffff            // the message address, 16 bits at a time
            ; movk x1, at >> 16, lsl 16
            ; movz x2, len & 0xffff
            ; movk x2, len >> 16, lsl 16
            ; write:
            ; movz x0, 1                      // stdout
            ; movz x8, 64                     // SYS_write
            ; svc 0
            ; cmp x0, 0
            ; b.le ->failed
            ; add x1, x1, x0
            ; subs x2, x2, x0
            ; b.ne <write
        );
    }
    dynasm!(ops
        ; .arch aarch64
        ; movz x0, status as u32
        ; b ->exit
        ; ->failed:
        ; movz x0, 1
        ; ->exit:
        ; movz x8, 93                         // SYS_exit
        ; svc 0
    );
    ops.finalize().expect("labels are all defined")
}
