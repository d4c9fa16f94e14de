//! `init`: a tini-like PID 1. Runs `argv[1..]` as its child, forwards SIGHUP, SIGINT,
//! SIGQUIT, SIGUSR1, SIGUSR2 and SIGTERM to it, reaps every zombie, and exits with the
//! child's status (128+N if signal N killed it; 127 if it could not be started).
//!
//! The child's pid lives in a register that system calls and signal delivery both leave
//! alone (x86-64 r12, x86 ebp, AArch64 x19), so the forwarding handler needs no
//! writable memory. The body's code starts with the signal restorer and the handler, at
//! addresses known before assembly; handlers use `SA_RESTART`, so the `wait4` they
//! interrupt simply continues.

use super::{Arch, Body, amd64_with_data, arm64_mov32, signal};
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler, aarch64::Aarch64Relocation, dynasm, x86::X86Relocation};

/// The signals passed on to the child.
const FORWARDED: [i32; 6] = [
    signal::HUP,
    signal::INT,
    signal::QUIT,
    signal::USR1,
    signal::USR2,
    signal::TERM,
];

/// Status when the command cannot be executed (as shells report it).
const NOT_EXECUTED: i32 = 127;

/// A static init program for `arch`.
pub fn program(arch: Arch) -> Vec<u8> {
    super::without_data(arch, amd64, i386, arm64)
}

fn amd64() -> Body {
    let mut ops = amd64_with_data(&[]);
    dynasm!(ops
        ; .arch x64
        ; ->restorer:                         // where a handler returns to
        ; mov eax, 15                         // SYS_rt_sigreturn
        ; syscall
        ; ->handler:                          // handler(signo in edi): kill(child, signo)
        ; mov esi, edi
        ; mov edi, r12d
        ; mov eax, 62                         // SYS_kill
        ; syscall
        ; ret                                 // to the restorer
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch x64
        ; mov eax, 57                         // SYS_fork
        ; syscall
        ; test eax, eax
        ; jz >child
        ; js ->failed
        ; mov r12, rax                        // the child's pid, for the handler
        ; lea rax, [->restorer]
        ; lea rcx, [->handler]
        ; push 0                              // struct sigaction: mask,
        ; push rax                            // restorer,
        ; push signal::SA_RESTORER | signal::SA_RESTART // flags,
        ; push rcx                            // handler
        ; mov rsi, rsp
        ; xor edx, edx
        ; mov r10d, 8
    );
    for signo in FORWARDED {
        dynasm!(ops ; .arch x64 ; mov edi, signo ; mov eax, 13 ; syscall); // SYS_rt_sigaction
    }
    dynasm!(ops
        ; .arch x64
        ; wait:                               // reap until our child is the one that ended
        ; mov edi, -1                         // any child
        ; mov rsi, rsp                        // status goes where the sigaction was
        ; xor edx, edx
        ; xor r10d, r10d
        ; mov eax, 61                         // SYS_wait4
        ; syscall
        ; cmp rax, r12
        ; jne BYTE <wait
        ; mov eax, [rsp]
        ; mov edi, eax
        ; and edi, 0x7f                       // the signal that killed it, if any
        ; jz BYTE >exited
        ; add edi, 128
        ; jmp BYTE ->exit
        ; exited:
        ; movzx edi, ah                       // exit status: bits 8..15
        ; jmp BYTE ->exit
        ; child:                              // execve(argv[1], &argv[1], envp)
        ; mov rdi, [rsp + 16]
        ; lea rsi, [rsp + 16]
        ; mov rdx, [rsp]                      // argc
        ; lea rdx, [rsp + rdx * 8 + 16]       // envp follows argv's NULL
        ; mov eax, 59                         // SYS_execve
        ; syscall
        ; mov edi, NOT_EXECUTED
        ; jmp BYTE ->exit
        ; ->failed:
        ; mov edi, 1
        ; ->exit:
        ; mov eax, 60                         // SYS_exit
        ; syscall
    );
    Body::position_independent(ops.finalize().expect("labels are all defined"), start)
}

fn i386(base: u32) -> (Vec<u8>, usize) {
    let mut ops = VecAssembler::<X86Relocation>::new(0);
    dynasm!(ops
        ; .arch x86
        ; mov eax, 173                        // SYS_rt_sigreturn
        ; int BYTE 0x80u8 as i8
    );
    let handler = base + ops.offset().0 as u32;
    dynasm!(ops
        ; .arch x86
        // handler(signo in eax, as rt signal frames set it): kill(child, signo).
        ; mov ecx, eax
        ; mov ebx, ebp
        ; mov eax, 37                         // SYS_kill
        ; int BYTE 0x80u8 as i8
        ; ret
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch x86
        ; mov eax, 2                          // SYS_fork
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; jz >child
        ; js ->failed
        ; mov ebp, eax                        // the child's pid, for the handler
        ; push 0
        ; push 0                              // sa_mask (8 bytes)
        ; push base as i32                    // sa_restorer
        ; push signal::SA_RESTORER | signal::SA_RESTART | signal::SA_SIGINFO
        ; push handler as i32
        ; mov ecx, esp
        ; xor edx, edx
        ; mov esi, 8
    );
    for signo in FORWARDED {
        dynasm!(ops ; .arch x86 ; mov ebx, signo ; mov eax, 174 ; int BYTE 0x80u8 as i8); // SYS_rt_sigaction
    }
    dynasm!(ops
        ; .arch x86
        ; wait:
        ; mov ebx, -1
        ; mov ecx, esp
        ; xor edx, edx
        ; xor esi, esi
        ; mov eax, 114                        // SYS_wait4
        ; int BYTE 0x80u8 as i8
        ; cmp eax, ebp
        ; jne BYTE <wait
        ; mov eax, [esp]
        ; mov ebx, eax
        ; and ebx, 0x7f
        ; jz BYTE >exited
        ; add ebx, 128
        ; jmp BYTE ->exit
        ; exited:
        ; movzx ebx, ah
        ; jmp BYTE ->exit
        ; child:
        ; mov ebx, [esp + 8]                  // argv[1]
        ; lea ecx, [esp + 8]
        ; mov edx, [esp]
        ; lea edx, [esp + edx * 4 + 8]        // envp
        ; mov eax, 11                         // SYS_execve
        ; int BYTE 0x80u8 as i8
        ; mov ebx, NOT_EXECUTED
        ; jmp BYTE ->exit
        ; ->failed:
        ; mov ebx, 1
        ; ->exit:
        ; mov eax, 1                          // SYS_exit
        ; int BYTE 0x80u8 as i8
    );
    (ops.finalize().expect("labels are all defined"), start)
}

fn arm64(base: u32) -> (Vec<u8>, usize) {
    let mut ops = VecAssembler::<Aarch64Relocation>::new(0);
    dynasm!(ops
        ; .arch aarch64
        ; movz x8, 139                        // SYS_rt_sigreturn
        ; svc 0
    );
    let handler = base + ops.offset().0 as u32;
    dynasm!(ops
        ; .arch aarch64
        // handler(signo in x0): kill(child, signo).
        ; mov x1, x0
        ; mov x0, x19
        ; movz x8, 129                        // SYS_kill
        ; svc 0
        ; ret                                 // x30: the restorer
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch aarch64
        ; movz x0, signal::CHLD as u32        // clone(SIGCHLD, 0, 0, 0, 0): a fork
        ; movz x1, 0
        ; movz x2, 0
        ; movz x3, 0
        ; movz x4, 0
        ; movz x8, 220                        // SYS_clone
        ; svc 0
        ; cbz x0, >child
        ; tbnz x0, 63, ->failed
        ; mov x19, x0                         // the child's pid, for the handler
        ; sub sp, sp, 48                      // struct sigaction, then the wait status
    );
    arm64_mov32(&mut ops, 9, handler);
    dynasm!(ops ; .arch aarch64 ; movz x10, (signal::SA_RESTORER | signal::SA_RESTART) as u32 >> 16, lsl 16);
    arm64_mov32(&mut ops, 11, base);
    dynasm!(ops
        ; .arch aarch64
        ; stp x9, x10, [sp]                   // sa_handler, sa_flags
        ; stp x11, xzr, [sp, 16]              // sa_restorer, sa_mask
        ; mov x1, sp
        ; movz x2, 0
        ; movz x3, 8
        ; movz x8, 134                        // SYS_rt_sigaction
    );
    for signo in FORWARDED {
        dynasm!(ops ; .arch aarch64 ; movz x0, signo as u32 ; svc 0);
    }
    dynasm!(ops
        ; .arch aarch64
        ; wait:
        ; movn x0, 0                          // -1: any child
        ; add x1, sp, 32
        ; movz x2, 0
        ; movz x3, 0
        ; movz x8, 260                        // SYS_wait4
        ; svc 0
        ; cmp x0, x19
        ; b.ne <wait
        ; ldr w1, [sp, 32]
        ; ands w0, w1, 0x7f                   // the signal that killed it, if any
        ; b.eq >exited
        ; add w0, w0, 128
        ; b ->exit
        ; exited:
        ; ubfx w0, w1, 8, 8                   // exit status: bits 8..15
        ; b ->exit
        ; child:
        ; ldr x0, [sp, 16]                    // argv[1]
        ; add x1, sp, 16
        ; ldr x2, [sp]                        // argc
        ; add x2, sp, x2, lsl 3
        ; add x2, x2, 16                      // envp
        ; movz x8, 221                        // SYS_execve
        ; svc 0
        ; movz x0, NOT_EXECUTED as u32
        ; b ->exit
        ; ->failed:
        ; movz x0, 1
        ; ->exit:
        ; movz x8, 93                         // SYS_exit
        ; svc 0
    );
    (ops.finalize().expect("labels are all defined"), start)
}
