//! `pause`: sleeps without using CPU until SIGTERM or SIGINT, then exits 0, also as
//! PID 1. SIGCHLD is ignored, so orphans that the container's PID 1 inherits are reaped
//! by the kernel.
//!
//! No signal handler: SIGTERM and SIGINT are blocked, then taken with
//! `rt_sigtimedwait`. A blocked signal waits as pending even for PID 1, which otherwise
//! drops every signal it has no handler for. A wait that ends without one of them (a
//! stop and continue, a cgroup freeze and thaw: `docker pause`) starts again. The code
//! refers to no address, so it comes in pieces the layout spreads over the headers.

use super::{Arch, Body, signal};
use dynasmrt::{DynasmApi, DynasmLabelApi, aarch64::Aarch64Relocation, x64::X64Relocation, x86::X86Relocation};

/// The `sigset_t` of the signals that end pause.
const ENDING: u32 = 1 << (signal::TERM - 1) | 1 << (signal::INT - 1);

/// A static pause program for `arch`.
pub fn program(arch: Arch) -> Vec<u8> {
    let pieces = match arch {
        Arch::Amd64 => amd64(),
        Arch::I386 => i386(),
        Arch::Arm64 => arm64(),
    };
    Body::in_pieces(&[], pieces).link(arch)
}

fn amd64() -> Vec<Vec<u8>> {
    pieces!(x64, X64Relocation;
        [push rdx]                            // struct sigaction: sa_flags 0 (rdx starts at 0),
        [push BYTE signal::IGNORE as i8]      //   sa_handler SIG_IGN; restorer and mask unused
        [push rsp]
        [pop rsi]
        [mov r10b, BYTE 8]                    // sizeof(sigset_t); r10 starts at 0
        [push BYTE signal::CHLD as i8]
        [pop rdi]
        [mov al, BYTE 13]                     // SYS_rt_sigaction; rax starts at 0
        [syscall]
        [xor edi, edi]                        // SIG_BLOCK (before the push: it fills a hole)
        [push ENDING as i32]
        [push rsp]
        [pop rsi]
        [mov al, BYTE 14]                     // SYS_rt_sigprocmask; rax is 0 after success
        [syscall]
        [push rsi]                            // rt_sigtimedwait(set, info: written over the
        [pop rdi]                             //   set, no timeout (rdx is 0), 8)
        [wait:
        ; xor eax, eax
        ; mov al, BYTE 128u8 as i8            // SYS_rt_sigtimedwait
        ; syscall
        ; test eax, eax
        ; js BYTE <wait]                      // -EINTR: woken without one of them
        [xor edi, edi]
        [mov al, BYTE 60]                     // SYS_exit(0): rax held the signal number
        [syscall]
    )
}

fn i386() -> Vec<Vec<u8>> {
    pieces!(x86, X86Relocation;
        [push BYTE 8]                         // sizeof(sigset_t), first: with it the first
        [pop esi]                             //   pieces fill the header hole exactly
        [push edx]                            // struct sigaction: sa_flags 0 (edx starts at 0),
        [push BYTE signal::IGNORE as i8]      //   sa_handler SIG_IGN; restorer and mask unused
        [mov ecx, esp]
        [mov bl, BYTE signal::CHLD as i8]     // ebx starts at 0: its low byte will do
        [mov al, BYTE 174u8 as i8]            // SYS_rt_sigaction (not the legacy sigaction);
        [int BYTE 0x80u8 as i8]               //   eax starts at 0
        [push DWORD ENDING as i32]
        [mov ecx, esp]
        [xor ebx, ebx]                        // SIG_BLOCK; edx, the old set, is 0
        [mov al, BYTE 175u8 as i8]            // SYS_rt_sigprocmask; eax is 0 after success
        [int BYTE 0x80u8 as i8]
        [mov ebx, ecx]                        // rt_sigtimedwait(set, info: written over the
        [wait:                                //   set, no timeout, 8)
        ; mov eax, 177                        // SYS_rt_sigtimedwait
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; js BYTE <wait]                      // -EINTR: woken without one of them
        [xor ebx, ebx]
        [mov al, BYTE 1]                      // SYS_exit(0): eax held the signal number
        [int BYTE 0x80u8 as i8]
    )
}

fn arm64() -> Vec<Vec<u8>> {
    pieces!(aarch64, Aarch64Relocation;
        [movz x9, signal::IGNORE as u32]
        [stp x9, xzr, [sp, -16]!]             // struct sigaction: sa_handler SIG_IGN, sa_flags 0;
        [mov x1, sp]                          //   restorer and mask unused
        [movz x3, 8]                          // sizeof(sigset_t); x2, the old action, starts at 0
        [movz x0, signal::CHLD as u32]
        [movz x8, 134]                        // SYS_rt_sigaction
        [svc 0]
        [movz x9, ENDING]
        [str x9, [sp, -16]!]
        [mov x1, sp]                          // x0, SIG_BLOCK, is 0 after success
        [movz x8, 135]                        // SYS_rt_sigprocmask
        [svc 0]
        [movz x8, 137]                        // SYS_rt_sigtimedwait(set, info: written over
        [wait:                                //   the set, no timeout, 8)
        ; mov x0, x1
        ; svc 0
        ; tbnz x0, 63, <wait]                 // -EINTR: woken without one of them
        [movz x0, 0]
        [movz x8, 93]                         // SYS_exit(0)
        [svc 0]
    )
}
