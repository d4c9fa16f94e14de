//! `pause`: sleeps without using CPU until SIGTERM or SIGINT, then exits 0, also as
//! PID 1 (where the kernel drops signals that have no handler). SIGCHLD is ignored, so
//! orphans that the container's PID 1 inherits are reaped by the kernel.
//!
//! The handler is the first code in the body, at an address known before assembly: it
//! exits 0 and never returns, so no signal frame is ever unwound.

use super::{Arch, Body, amd64_with_data, arm64_mov32, code_address, signal};
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler, aarch64::Aarch64Relocation, dynasm, x86::X86Relocation};

/// A static pause program for `arch`.
pub fn program(arch: Arch) -> Vec<u8> {
    let quit = code_address(arch, 0);
    let body = match arch {
        Arch::Amd64 => amd64(),
        Arch::I386 => {
            let (code, start) = i386(quit);
            Body::data_then_code(arch, &[], code, start)
        }
        Arch::Arm64 => {
            let (code, start) = arm64(quit);
            Body::data_then_code(arch, &[], code, start)
        }
    };
    body.link(arch)
}

fn amd64() -> Body {
    let mut ops = amd64_with_data(&[]);
    dynasm!(ops
        ; .arch x64
        ; ->quit:                             // the SIGTERM/SIGINT handler
        ; xor edi, edi
        ; mov eax, 60                         // SYS_exit(0)
        ; syscall
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch x64
        // struct sigaction on the stack: handler, flags, restorer, mask.
        ; lea rax, [->quit]
        ; push 0                              // sa_mask: block nothing
        ; push rax                            // sa_restorer: x86-64 needs one; never used
        ; push signal::SA_RESTORER
        ; push rax                            // sa_handler
        ; mov rsi, rsp
        ; xor edx, edx                        // no old action
        ; mov r10d, 8                         // sizeof(sigset_t)
        ; mov edi, signal::TERM
        ; mov eax, 13                         // SYS_rt_sigaction (preserves rsi, rdx, r10)
        ; syscall
        ; mov edi, signal::INT
        ; mov eax, 13
        ; syscall
        ; mov QWORD [rsp], signal::IGNORE     // SIGCHLD: discard, children reap themselves
        ; mov edi, signal::CHLD
        ; mov eax, 13
        ; syscall
        ; sleep:
        ; mov eax, 34                         // SYS_pause: returns only after a handler
        ; syscall
        ; jmp <sleep
    );
    Body::position_independent(ops.finalize().expect("labels are all defined"), start)
}

fn i386(quit: u32) -> (Vec<u8>, usize) {
    let mut ops = VecAssembler::<X86Relocation>::new(0);
    dynasm!(ops
        ; .arch x86
        ; xor ebx, ebx
        ; mov eax, 1                          // SYS_exit(0)
        ; int BYTE 0x80u8 as i8
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch x86
        // struct sigaction: handler, flags, restorer, 8-byte mask.
        ; push 0
        ; push 0                              // sa_mask
        ; push 0                              // sa_restorer: unused (the handler exits)
        ; push 0                              // sa_flags
        ; push quit as i32                    // sa_handler
        ; mov ecx, esp
        ; xor edx, edx
        ; mov esi, 8
        ; mov ebx, signal::TERM
        ; mov eax, 174                        // SYS_rt_sigaction (not the legacy sigaction)
        ; int BYTE 0x80u8 as i8
        ; mov ebx, signal::INT
        ; mov eax, 174
        ; int BYTE 0x80u8 as i8
        ; mov DWORD [esp], signal::IGNORE
        ; mov ebx, signal::CHLD
        ; mov eax, 174
        ; int BYTE 0x80u8 as i8
        ; sleep:
        ; mov eax, 29                         // SYS_pause
        ; int BYTE 0x80u8 as i8
        ; jmp <sleep
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
