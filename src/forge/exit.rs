//! `exit N`: exits with status N at once.

use super::{Arch, Place, elf, in_pieces};
use dynasmrt::{DynasmApi, aarch64::Aarch64Relocation, x64::X64Relocation, x86::X86Relocation};

/// A static program for `arch` that exits with `status`.
pub fn program(arch: Arch, status: u8) -> Vec<u8> {
    in_pieces(
        arch,
        &[],
        elf::Ending::MayBeInHeader,
        elf::Start::Zeroed,
        |place| match arch {
            Arch::Amd64 => amd64(place, status),
            Arch::I386 => i386(place, status),
            Arch::Arm64 => arm64(place, status),
        },
    )
}

fn amd64(place: &mut Place, status: u8) -> Vec<Vec<u8>> {
    // 8 bytes: all in the first hole of the amd64 headers (see elf.rs).
    pieces!(x64, X64Relocation, place;
        [push BYTE status as i8]              // push imm8 (2 bytes, not mov's 5): sign-extended,
        [pop rdi]                             //   but exit keeps only the low 8 bits
        [push BYTE 60]                        // SYS_exit, the same way
        [pop rax]
        [syscall]
    )
}

fn i386(place: &mut Place, status: u8) -> Vec<Vec<u8>> {
    // 5 bytes: all in the hole of the ELF32 headers (see elf.rs).
    pieces!(x86, X86Relocation, place;
        [mov bl, status as i8]                // ebx starts at 0: set its low byte only
        [inc eax]                             // eax starts at 0: SYS_exit is 1
        [int BYTE 0x80u8 as i8]
    )
}

fn arm64(place: &mut Place, status: u8) -> Vec<Vec<u8>> {
    pieces!(aarch64, Aarch64Relocation, place;
        [movz x0, status as u32]
        [movz x8, 93]                         // SYS_exit
        [svc 0]
    )
}
