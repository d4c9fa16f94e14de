//! `exit N`: exits with status N at once.

use super::{Arch, Body};
use dynasmrt::{DynasmApi, VecAssembler, aarch64::Aarch64Relocation, dynasm, x64::X64Relocation, x86::X86Relocation};

/// A static program for `arch` that exits with `status`.
pub fn program(arch: Arch, status: u8) -> Vec<u8> {
    let code = match arch {
        Arch::Amd64 => amd64(status),
        Arch::I386 => i386(status),
        Arch::Arm64 => arm64(status),
    };
    Body::movable_by_instruction(code).link(arch)
}

fn amd64(status: u8) -> Vec<u8> {
    let mut ops = VecAssembler::<X64Relocation>::new(0);
    // 8 bytes: the whole body fits the 8 bytes of p_align the amd64 layout ends with.
    dynasm!(ops
        ; .arch x64
        ; push BYTE status as i8       // push imm8 (2 bytes, not mov's 5): sign-extended,
        ; pop rdi                      // but exit keeps only the low 8 bits of the status
        ; push BYTE 60                 // SYS_exit, the same way
        ; pop rax
        ; syscall
    );
    ops.finalize().expect("no labels")
}

fn i386(status: u8) -> Vec<u8> {
    let mut ops = VecAssembler::<X86Relocation>::new(0);
    // 5 bytes: fits the 10-byte hole in the ELF32 headers (see elf.rs).
    dynasm!(ops
        ; .arch x86
        ; mov bl, status as i8        // ebx starts at 0: set its low byte only
        ; inc eax                     // eax starts at 0: SYS_exit is 1
        ; int BYTE 0x80u8 as i8
    );
    ops.finalize().expect("no labels")
}

fn arm64(status: u8) -> Vec<u8> {
    let mut ops = VecAssembler::<Aarch64Relocation>::new(0);
    dynasm!(ops
        ; .arch aarch64
        ; movz x0, status as u32
        ; movz x8, 93                 // SYS_exit
        ; svc 0
    );
    ops.finalize().expect("no labels")
}
