//! `pause`: sleeps without using CPU until SIGTERM or SIGINT, then exits 0, also as
//! PID 1 (where the kernel drops signals that have no handler). SIGCHLD is ignored, so
//! orphans that the container's PID 1 inherits are reaped by the kernel.
//!
//! The handler is the first code in the body, at an address known before assembly: it
//! exits 0 and never returns, so no signal frame is ever unwound.

use super::{Arch, Body, amd64_with_data, arm64_mov32, signal};
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler, aarch64::Aarch64Relocation, dynasm, x86::X86Relocation};

/// A static pause program for `arch`.
pub fn program(arch: Arch) -> Vec<u8> {
    super::without_data(arch, amd64, i386, arm64)
}

fn amd64() -> Body {
    let mut ops = amd64_with_data(&[]);
    dynasm!(ops
        ; .arch x64
        ; ->quit:                             // the SIGTERM/SIGINT handler
        ; xor edi, edi                        // status 0 (rdi held the signal number)
        ; push BYTE 60                        // SYS_exit: push/pop imm8, 3 bytes
        ; pop rax
        ; syscall
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch x64
        ; lea rbx, [->quit]                   // rbx: system calls leave it alone
        // struct sigaction on the stack, SIGCHLD's first: handler, flags, restorer, mask.
        ; push rdx                            // sa_mask: 0 (rdx starts at 0)
        ; push rbx                            // sa_restorer: x86-64 needs one; never used
        ; push signal::SA_RESTORER
        ; push BYTE signal::IGNORE as i8      // sa_handler: SIG_IGN, children reap themselves
        ; push rsp                            // rsi = the struct (push/pop: 2 bytes)
        ; pop rsi
        ; push BYTE 8                         // sizeof(sigset_t); rdx, the old action, is 0
        ; pop r10
        ; push BYTE signal::CHLD as i8
        ; pop rdi
        ; mov al, BYTE 13                          // SYS_rt_sigaction: rax is 0 at start and
        ; syscall                             // after each success, so its low byte will do
        ; mov [rsp], rbx                      // the same struct, now with the quit handler
        ; push BYTE signal::TERM as i8
        ; pop rdi
        ; mov al, BYTE 13
        ; syscall
        ; push BYTE signal::INT as i8
        ; pop rdi
        ; mov al, BYTE 13
        ; syscall
        ; sleep:
        ; push BYTE 34                        // SYS_pause: returns only after a handler
        ; pop rax
        ; syscall
        ; jmp BYTE <sleep
    );
    Body::position_independent(ops.finalize().expect("labels are all defined"), start)
}

fn i386(quit: u32) -> (Vec<u8>, usize) {
    let mut ops = VecAssembler::<X86Relocation>::new(0);
    dynasm!(ops
        ; .arch x86
        ; xor ebx, ebx                        // status 0
        ; push BYTE 1                         // SYS_exit (eax held the signal number)
        ; pop eax
        ; int BYTE 0x80u8 as i8
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch x86
        // struct sigaction, SIGCHLD's first: handler, flags, restorer, 8-byte mask.
        ; push edx
        ; push edx                            // sa_mask: 0 (edx starts at 0)
        ; push edx                            // sa_restorer: unused (the handler exits)
        ; push edx                            // sa_flags
        ; push BYTE signal::IGNORE as i8      // sa_handler: SIG_IGN
        ; mov ecx, esp
        ; push BYTE 8                         // sizeof(sigset_t); edx, the old action, is 0
        ; pop esi
        ; mov bl, BYTE signal::CHLD as i8          // ebx starts at 0: its low byte will do
        ; mov al, BYTE 174u8 as i8                         // SYS_rt_sigaction (not the legacy sigaction);
        ; int BYTE 0x80u8 as i8               // eax is 0 at start and after each success
        ; mov DWORD [esp], quit as i32        // the same struct, now with the quit handler
        ; mov bl, BYTE signal::TERM as i8
        ; mov al, BYTE 174u8 as i8
        ; int BYTE 0x80u8 as i8
        ; mov bl, BYTE signal::INT as i8
        ; mov al, BYTE 174u8 as i8
        ; int BYTE 0x80u8 as i8
        ; sleep:
        ; push BYTE 29                        // SYS_pause
        ; pop eax
        ; int BYTE 0x80u8 as i8
        ; jmp BYTE <sleep
    );
    (ops.finalize().expect("labels are all defined"), start)
}

fn arm64(quit: u32) -> (Vec<u8>, usize) {
    let mut ops = VecAssembler::<Aarch64Relocation>::new(0);
    dynasm!(ops
        ; .arch aarch64
        ; movz x0, 0
        ; movz x8, 93                         // SYS_exit(0)
        ; svc 0
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch aarch64
        ; sub sp, sp, 32                      // struct sigaction: handler, flags, restorer, mask
    );
    arm64_mov32(&mut ops, 9, quit);
    dynasm!(ops
        ; .arch aarch64
        ; str x9, [sp]                        // sa_handler
        ; stp xzr, xzr, [sp, 8]               // sa_flags, sa_restorer: unused (the handler exits)
        ; str xzr, [sp, 24]                   // sa_mask
        ; mov x1, sp
        ; movz x2, 0
        ; movz x3, 8
        ; movz x0, signal::TERM as u32
        ; movz x8, 134                        // SYS_rt_sigaction (preserves x1..x3)
        ; svc 0
        ; movz x0, signal::INT as u32
        ; svc 0
        ; movz x9, signal::IGNORE as u32
        ; str x9, [sp]
        ; movz x0, signal::CHLD as u32
        ; svc 0
        ; movz x1, 0                          // ppoll(NULL, 0, NULL, NULL): arm64 has no pause
        ; movz x3, 0
        ; sleep:
        ; movz x0, 0
        ; movz x8, 73                         // SYS_ppoll
        ; svc 0
        ; b <sleep
    );
    (ops.finalize().expect("labels are all defined"), start)
}
