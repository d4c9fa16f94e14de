//! `hello`: writes a message to stdout and exits 0.

use super::elf;
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler, dynasm, x64::X64Relocation};

/// Largest message, so that its length fits the 32-bit immediate the code loads.
pub const MAX_MESSAGE: usize = i32::MAX as usize - 4096;

/// A linux/amd64 static executable that writes `message` exactly to stdout and exits 0,
/// or exits 1 if stdout refuses the bytes.
///
/// # Panics
/// If `message` is longer than [`MAX_MESSAGE`]; callers check first.
pub fn amd64(message: &[u8]) -> Vec<u8> {
    assert!(message.len() <= MAX_MESSAGE, "message too long");
    let mut ops = VecAssembler::<X64Relocation>::new(0);
    if !message.is_empty() {
        dynasm!(ops
            ; .arch x64
            ; lea rsi, [->message]           // rip-relative: works wherever the segment lands
            ; mov edx, message.len() as i32
            ; write:
            ; mov edi, 1                     // stdout
            ; mov eax, 1                     // SYS_write
            ; syscall
            ; test rax, rax
            ; jle ->failed                   // error, or nothing written: give up
            ; add rsi, rax                   // a pipe may take only part: write the rest
            ; sub rdx, rax
            ; jnz <write
        );
    }
    dynasm!(ops
        ; .arch x64
        ; xor edi, edi                       // status 0
        ; jmp ->exit
        ; ->failed:
        ; mov edi, 1                         // status 1
        ; ->exit:
        ; mov eax, 60                        // SYS_exit
        ; syscall
        ; ->message:
    );
    let mut body = ops.finalize().expect("labels are all defined");
    body.extend_from_slice(message);
    elf::executable64(elf::machine::X86_64, &body)
}
