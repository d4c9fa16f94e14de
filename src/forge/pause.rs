//! `pause`: sleeps without using CPU until SIGTERM or SIGINT, then exits 0, also as
//! PID 1. Orphans that the container's PID 1 inherits are reaped by the kernel: SIGCHLD's
//! action has `SA_NOCLDWAIT` (on arm64 it is SIG_IGN as well, since qemu-user does not
//! pass `SA_NOCLDWAIT` on to the kernel).
//!
//! No signal handler: SIGTERM and SIGINT are blocked, then taken with
//! `rt_sigtimedwait`. A blocked signal waits as pending even for PID 1, which otherwise
//! drops every signal it has no handler for. A wait that ends without one of them (a
//! stop and continue, a cgroup freeze and thaw: `docker pause`) starts again. The code
//! refers to no address, so it comes in pieces the layout spreads over the headers.

use super::{Arch, Place, in_pieces, signal};
use dynasmrt::{DynasmApi, DynasmLabelApi, aarch64::Aarch64Relocation, x64::X64Relocation, x86::X86Relocation};

/// The `sigset_t` of the signals that end pause.
const ENDING: u32 = 1 << (signal::TERM - 1) | 1 << (signal::INT - 1);

/// A static pause program for `arch`.
pub fn program(arch: Arch) -> Vec<u8> {
    in_pieces(arch, &[], |place| match arch {
        Arch::Amd64 => amd64(place),
        Arch::I386 => i386(place),
        Arch::Arm64 => arm64(place),
    })
}

fn amd64(place: &mut Place) -> Vec<Vec<u8>> {
    pieces!(x64, X64Relocation, place;
        [mov r10b, BYTE 8]                    // sizeof(sigset_t); r10 starts at 0
        [push ENDING as i32]                  // the set: one 8-byte push, its high half 0
        [push rsp]
        [pop rsi]
        [mov al, BYTE 14]                     // SYS_rt_sigprocmask, first: SIG_BLOCK is 0, as
        [syscall]                             //   rdi starts; rdx, the old set, is 0; so is rax
        [push rdx]                            // struct sigaction: sa_handler SIG_DFL (rdx is
        [push rsp]                            //   0) over the set, which gives sa_flags ENDING:
        [pop rsi]                             //   SA_NOCLDWAIT, so the kernel reaps children, and
        [push BYTE signal::CHLD as i8]        //   a bit it clears; restorer and mask unused.
        [pop rdi]                             //   (1 byte, where SIG_IGN's push takes 2)
        [mov al, BYTE 13]                     // SYS_rt_sigaction; rax is 0 after success
        [syscall]
        [pop rax]                             // rt_sigtimedwait(the set, the handler popped
        [push rsp]                            //   off it; info: written over the action, in
        [pop rdi]                             //   the red zone; no timeout; 8)
        [wait:                                // rax is below 256 here: al will do
        ; mov al, BYTE 128u8 as i8            // SYS_rt_sigtimedwait
        ; syscall
        ; neg eax                             // -EINTR (woken without one of them) turns 4,
        ; jns BYTE <wait]                     //   so al will do again; a signal, negative
        [xor edi, edi]
        [push BYTE 60]                        // SYS_exit(0)
        [pop rax]
        [syscall]
    )
}

fn i386(place: &mut Place) -> Vec<Vec<u8>> {
    pieces!(x86, X86Relocation, place;
        [push BYTE 8]                         // sizeof(sigset_t)
        [pop esi]
        [push edx]                            // the set: its high half 0 (edx starts at 0),
        [push DWORD ENDING as i32]            //   and the ending signals
        [mov ecx, esp]
        [mov al, BYTE 175u8 as i8]            // SYS_rt_sigprocmask, first: SIG_BLOCK is 0, as
        [int BYTE 0x80u8 as i8]               //   ebx starts; eax starts at 0; edx, the old set, is 0
        [push edx]                            // struct sigaction: sa_handler SIG_DFL (1 byte,
        [mov ecx, esp]                        //   SIG_IGN's push takes 2) over the set, which
        [mov bl, BYTE signal::CHLD as i8]     //   gives sa_flags ENDING: SA_NOCLDWAIT (2), so the
        [mov al, BYTE 174u8 as i8]            //   kernel reaps children, and a bit it clears;
        [int BYTE 0x80u8 as i8]               //   restorer 0, mask unused. ebx is 0: its low
                                              //   byte will do. SYS_rt_sigaction (not the legacy
                                              //   sigaction); eax is 0 after success
        [lea ebx, [ecx + 4]]                  // rt_sigtimedwait(the set; info: written over
        [wait:                                //   the action; no timeout; 8). eax is 0 here
        ; mov al, BYTE 177u8 as i8            // SYS_rt_sigtimedwait
        ; int BYTE 0x80u8 as i8
        ; neg eax                             // -EINTR (woken without one of them) turns 4,
        ; jns BYTE <wait]                     //   so al will do again; a signal, negative
        [xor ebx, ebx]                        // SYS_exit(0): edx is still 0, so an xchg
        [xchg eax, edx]                       //   and inc make eax 1 in 2 bytes (push and
        [inc eax]                             //   pop take 3)
        [int BYTE 0x80u8 as i8]
    )
}

fn arm64(place: &mut Place) -> Vec<Vec<u8>> {
    pieces!(aarch64, Aarch64Relocation, place;
        [movz x9, ENDING]
        [stp x9, xzr, [sp, -16]!]             // the set: the ending signals, none above 32
        [mov x1, sp]
        [movz x3, 8]                          // sizeof(sigset_t)
        [movz x8, 135]                        // SYS_rt_sigprocmask, first: SIG_BLOCK is 0, as
        [svc 0]                               //   x0 starts; x2, the old set, starts at 0
        [movz x9, signal::IGNORE as u32]      // struct sigaction 8 bytes below the set, x1
        [str x9, [x1, -8]!]                   //   moving there (one instruction): sa_handler
                                              //   SIG_IGN (SIG_DFL with SA_NOCLDWAIT alone leaves
                                              //   zombies under qemu-user, which drops the flag),
                                              //   sa_flags the set's ENDING (SA_NOCLDWAIT and a
                                              //   bit the kernel clears),
                                              //   restorer 0. Below sp, where nothing else
                                              //   writes: no handler, so no signal frame
        [movz x0, signal::CHLD as u32]
        [movz x8, 134]                        // SYS_rt_sigaction(SIGCHLD, action, old: x2 0, 8)
        [svc 0]
        [movz x8, 137]                        // SYS_rt_sigtimedwait(the set, info: written over
        [wait:                                //   the action, no timeout, 8)
        ; mov x0, sp
        ; svc 0
        ; tbnz x0, 63, <wait]                 // -EINTR: woken without one of them
        [movz x0, 0]
        [movz x8, 93]                         // SYS_exit(0)
        [svc 0]
    )
}
