//! `pause`: sleeps without using CPU until SIGTERM or SIGINT, then exits 0, also as
//! PID 1. Orphans that the container's PID 1 inherits are reaped by the kernel: SIGCHLD's
//! action is SIG_IGN, or on amd64 SIG_DFL with `SA_NOCLDWAIT` (qemu-user, which runs
//! the arm64 program here, does not pass `SA_NOCLDWAIT` on to the kernel).
//!
//! On x86 there is no signal handler: SIGTERM and SIGINT are blocked, then taken with
//! `rt_sigtimedwait`. A blocked signal waits as pending even for PID 1, which otherwise
//! drops every signal it has no handler for. A wait that ends without one of them (a
//! stop and continue, a cgroup freeze and thaw: `docker pause`) starts again. On arm64
//! the entry point is the handler too (see `elf::ARM64_ENTRY_ACTION`), and `pselect6`
//! sleeps: with no handler to run, the kernel restarts it after a stop or a freeze. The
//! code comes in pieces the layout spreads over the headers.

use super::{Arch, Place, elf, in_pieces, near_tail, signal};
use dynasmrt::{DynasmApi, DynasmLabelApi, aarch64::Aarch64Relocation, x64::X64Relocation, x86::X86Relocation};

/// The `sigset_t` of the signals that end pause.
const ENDING: u32 = 1 << (signal::TERM - 1) | 1 << (signal::INT - 1);

/// A static pause program for `arch`.
pub fn program(arch: Arch) -> Vec<u8> {
    // The data: on 386 the set, its zeros past the file's end (see `elf`).
    let data = match arch {
        Arch::I386 => u64::from(ENDING).to_le_bytes().to_vec(),
        Arch::Amd64 | Arch::Arm64 => Vec::new(),
    };
    in_pieces(
        arch,
        &data,
        elf::Ending::InCode,
        elf::Start::Zeroed,
        |place| match arch {
            Arch::Amd64 => amd64(place),
            Arch::I386 => i386(place),
            Arch::Arm64 => arm64(place),
        },
    )
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
    let set = place.data();
    pieces!(x86, X86Relocation, place;
        [push BYTE 8]                         // sizeof(sigset_t)
        [pop esi]
        [mov bl, BYTE signal::CHLD as i8]     // ebx starts at 0: its low byte will do
        [mov al, BYTE 174u8 as i8]            // SYS_rt_sigaction (not the legacy sigaction);
                                              //   eax starts at 0
        [mov ecx, elf::ELF32_TAIL as i32]     // free as the hole's way out; then ecx points
        [mov cl, BYTE near_tail(elf::ELF32_IGNORE_ACTION as usize)] // at the headers' SIG_IGN
        [int BYTE 0x80u8 as i8]               //   action (2 bytes, where one on the stack takes 3)
        [xchg eax, ebx]                       // ebx: 0, SIG_BLOCK (eax is 0 after success)
        [mov cl, BYTE near_tail(set)]         // the set, in the data
        [mov al, BYTE 175u8 as i8]            // SYS_rt_sigprocmask; edx, the old set, is 0
        [int BYTE 0x80u8 as i8]
        [xchg ebx, ecx]                       // rt_sigtimedwait(the set; info: none, as ebx
        [wait:                                //   was 0; no timeout; 8). eax is 0 here
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

/// The handler's exit is the program's end, after the sleep.
fn arm64(place: &mut Place) -> Vec<Vec<u8>> {
    let quit = place.last_pieces(3);
    pieces!(aarch64, Aarch64Relocation, place;
        [cbnz x0, extern quit]                // the entry is the handler too (see
                                              //   elf::ARM64_ENTRY_ACTION): a start has x0 0,
                                              //   a handler the signal's number
        [adr x1, extern elf::ARM64_ENTRY_ACTION as usize]
        [movz x3, 8]                          // sizeof(sigset_t)
        [movz x8, 134]                        // SYS_rt_sigaction(signal, action, old: x2 0, 8)
        [movz x0, signal::TERM as u32]
        [svc 0]
        [movz x0, signal::INT as u32]
        [svc 0]
        [adr x1, extern elf::ARM64_IGNORE_ACTION as usize] // SIGCHLD: SIG_IGN, in the
        [movz x0, signal::CHLD as u32]        //   headers (SA_NOCLDWAIT alone leaves zombies
        [svc 0]                               //   under qemu-user, which drops the flag)
        [movz x8, 72]                         // SYS_pselect6(0, _, NULL, _, NULL, NULL): no
        [svc 0]                               //   descriptors (the sets are not read), no
                                              //   timeout, sleeps until a handler runs. It
                                              //   never returns (with no handler to run, the
                                              //   kernel restarts it); if it did, it runs on
                                              //   into quit
        [movz x0, 0]                          // quit, the last 3 pieces: exit(0)
        [movz x8, 93]
        [svc 0]
    )
}
