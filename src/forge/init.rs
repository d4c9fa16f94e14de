//! `init`: a tini-like PID 1. Runs `argv[1..]` as its child, forwards SIGHUP, SIGINT,
//! SIGQUIT, SIGUSR1, SIGUSR2 and SIGTERM to it, reaps every zombie, and exits with the
//! child's status (128+N if signal N killed it; 127 if it could not be started).
//!
//! The child's pid lives in a register that system calls and signal delivery both leave
//! alone (x86-64 r12, x86 ebp, AArch64 x19), so the forwarding handler needs no
//! writable memory. The routines reached by address (the signal restorer and handler,
//! the child's exec, the exits) lead the data; the parent's code comes in pieces that the
//! layout spreads over the headers' holes. On x86, handlers use `SA_RESTART`, so the
//! `wait4` they interrupt simply continues; on arm64 the entry is the handler too (see
//! `elf::ARM64_ENTRY_ACTION`), with no flags, and an interrupted `wait4` is made again.

use super::{Arch, Place, elf, in_pieces, near_tail, signal};
use dynasmrt::{
    DynasmApi, DynasmLabelApi, VecAssembler, aarch64::Aarch64Relocation, dynasm, x64::X64Relocation, x86::X86Relocation,
};

/// The signals passed on to the child.
const FORWARDED: [i32; 6] = [
    signal::HUP,
    signal::INT,
    signal::QUIT,
    signal::USR1,
    signal::USR2,
    signal::TERM,
];

/// Bytes of `struct sigaction` the x86 parents push before they fork (pieces in that order
/// fill the headers' holes best), which the child finds above `argc`.
const AMD64_PUSHED: i32 = 32;
const I386_PUSHED: i32 = 20;

/// Status when the command cannot be executed (as shells report it).
const NOT_EXECUTED: i32 = 127;

/// A static init program for `arch`, in the smallest layout.
pub fn program(arch: Arch) -> Vec<u8> {
    let routines = Routines::for_arch(arch);
    in_pieces(arch, &routines.code, elf::Ending::InCode, elf::Start::Zeroed, |place| {
        routines.parent(arch, place)
    })
}

/// The amd64 init in the layout emulators accept (see [`elf::conventional_amd64`]), some
/// 60 bytes larger: the one `speck pack --init` adds, so that arm64 hosts run the image
/// under emulation as they run the program it starts.
pub fn conventional_amd64() -> Vec<u8> {
    let routines = Routines::amd64();
    super::conventional_amd64(&routines.code, |place| routines.parent(Arch::Amd64, place))
}

/// The routines the parent reaches by address, position-independent, in the data: the
/// signal restorer (at 0; x86 only), the child's exec of the command, exit 1 for a failed
/// fork (these two first after the restorer, so that short jumps reach them from before
/// the data), and the forwarding handler.
struct Routines {
    code: Vec<u8>,
    handler: usize,
    child: usize,
    failed: usize,
}

impl Routines {
    fn for_arch(arch: Arch) -> Self {
        match arch {
            Arch::Amd64 => Self::amd64(),
            Arch::I386 => Self::i386(),
            Arch::Arm64 => Self::arm64(),
        }
    }

    fn amd64() -> Self {
        let mut ops = VecAssembler::<X64Relocation>::new(0);
        dynasm!(ops
            ; .arch x64
            ; push BYTE 15                    // where a handler returns to: SYS_rt_sigreturn
            ; pop rax
            ; syscall
        );
        let child = ops.offset().0;
        dynasm!(ops
            ; .arch x64
            ; lea rsi, [rsp + AMD64_PUSHED + 16] // execve(argv[1], &argv[1], envp), on the
            ; mov rdi, [rsi]                  //   stack as the kernel left it, under the
            ; mov rdx, [rsp + AMD64_PUSHED]   //   struct sigaction; argc
            ; lea rdx, [rsi + rdx * 8]        // envp follows argv's NULL
            ; mov al, BYTE 59                 // SYS_execve: rax is fork's 0 in the child
            ; syscall
            ; push BYTE NOT_EXECUTED as i8
            ; jmp BYTE >exit
        );
        let failed = ops.offset().0;
        dynasm!(ops
            ; .arch x64
            ; push BYTE 1
            ; exit:
            ; pop rdi
            ; push BYTE 60                    // SYS_exit
            ; pop rax
            ; syscall
        );
        let handler = ops.offset().0;
        dynasm!(ops
            ; .arch x64
            ; mov esi, edi                    // handler(signo in edi): kill(child, signo)
            ; mov edi, r12d
            ; push BYTE 62                    // SYS_kill
            ; pop rax
            ; syscall
            ; ret                             // to the restorer
        );
        Self::done(ops.finalize(), handler, child, failed)
    }

    fn i386() -> Self {
        let mut ops = VecAssembler::<X86Relocation>::new(0);
        dynasm!(ops
            ; .arch x86
            ; xor eax, eax                    // where a handler returns to:
            ; mov al, BYTE 173u8 as i8        //   SYS_rt_sigreturn
            ; int BYTE 0x80u8 as i8
        );
        let child = ops.offset().0;
        dynasm!(ops
            ; .arch x86
            ; lea ecx, [esp + I386_PUSHED + 8] // execve(argv[1], &argv[1], envp), on the
            ; mov ebx, [ecx]                  //   stack as the kernel left it, under the
            ; mov edx, [esp + I386_PUSHED]    //   struct sigaction; argc
            ; lea edx, [ecx + edx * 4]        // envp follows argv's NULL
            ; mov al, BYTE 11                 // SYS_execve: eax is fork's 0 in the child
            ; int BYTE 0x80u8 as i8
            ; push BYTE NOT_EXECUTED as i8
            ; jmp BYTE >exit
        );
        let failed = ops.offset().0;
        dynasm!(ops
            ; .arch x86
            ; push BYTE 1
            ; exit:
            ; pop ebx
            ; push BYTE 1                     // SYS_exit
            ; pop eax
            ; int BYTE 0x80u8 as i8
        );
        let handler = ops.offset().0;
        dynasm!(ops
            ; .arch x86
            ; xchg eax, ecx                   // handler(signo in eax, as rt signal frames
            ; mov ebx, ebp                    //   set it): kill(child, signo)
            ; push BYTE 37                    // SYS_kill
            ; pop eax
            ; int BYTE 0x80u8 as i8
            ; ret
        );
        Self::done(ops.finalize(), handler, child, failed)
    }

    /// No restorer: the handler returns through the kernel's.
    fn arm64() -> Self {
        let mut ops = VecAssembler::<Aarch64Relocation>::new(0);
        let child = ops.offset().0;
        dynasm!(ops
            ; .arch aarch64
            ; add x1, sp, 16                  // execve(argv[1], &argv[1], envp), on the
            ; ldr x0, [x1]                    //   stack as the kernel left it
            ; ldr x2, [sp]                    // argc
            ; add x2, x1, x2, lsl 3           // envp follows argv's NULL
            ; movz x8, 221                    // SYS_execve
            ; svc 0
            ; movz x0, NOT_EXECUTED as u32
            ; b >exit
        );
        let failed = ops.offset().0;
        dynasm!(ops
            ; .arch aarch64
            ; movz x0, 1
            ; exit:
            ; movz x8, 93                     // SYS_exit
            ; svc 0
        );
        let handler = ops.offset().0;
        dynasm!(ops
            ; .arch aarch64
            ; mov x1, x0                      // handler(signo in x0): kill(child, signo)
            ; mov x0, x19
            ; movz x8, 129                    // SYS_kill
            ; svc 0
            ; ret                             // x30: the kernel's rt_sigreturn
        );
        Self::done(ops.finalize(), handler, child, failed)
    }

    /// The parent's code in pieces: it reaches the routines where `place` put the data.
    fn parent(&self, arch: Arch, place: &mut Place) -> Vec<Vec<u8>> {
        let at = |offset: usize| place.data() + offset;
        let (restorer, handler, child, failed) = (at(0), at(self.handler), at(self.child), at(self.failed));
        match arch {
            Arch::Amd64 => amd64(place, restorer, handler, child, failed),
            Arch::I386 => i386(place, restorer, handler, child, failed),
            Arch::Arm64 => arm64(place, handler, child, failed),
        }
    }

    fn done<E: std::fmt::Debug>(code: Result<Vec<u8>, E>, handler: usize, child: usize, failed: usize) -> Self {
        Self {
            code: code.expect("labels are all defined"),
            handler,
            child,
            failed,
        }
    }
}

/// The status of a waited-for child as a shell gives it, then exit with it: 128+N if
/// signal N ended it, else its exit code. Comments on the amd64 version hold for all.
fn amd64(place: &mut Place, restorer: usize, handler: usize, child: usize, failed: usize) -> Vec<Vec<u8>> {
    // In an order that fills the headers' holes: the struct sigaction is built before
    // the fork (the child's exec finds argv above it), its handlers installed after.
    let mut code = pieces!(x64, X64Relocation, place;
        [lea rbx, [extern restorer]]
        [mov r10b, BYTE 8]                    // sizeof(sigset_t); r10 starts at 0
        [push rdx]                            // struct sigaction: mask (rdx starts at 0),
        [mov al, BYTE 57]                     // (SYS_fork; rax starts at 0)
        [push rbx]                            //   restorer,
        [lea rbp, [extern handler]]
        [push signal::SA_RESTORER | signal::SA_RESTART] // flags,
        [push rbp]                            //   handler
        [push rsp]
        [pop rsi]
        [syscall]
        [test eax, eax ; jz BYTE extern child]
        [js BYTE extern failed]
        [xchg r12d, eax]                      // the child's pid, for the handler
    );
    for signo in FORWARDED {
        code.extend(pieces!(x64, X64Relocation, place;
            [push BYTE signo as i8]
            [pop rdi]
            [mov al, BYTE 13]                 // SYS_rt_sigaction: rax is 0 after success
            [syscall]
        ));
    }
    code.extend(pieces!(x64, X64Relocation, place;
        [push BYTE -1]                        // wait4(any child, status over the action,
        [pop rdi]                             //   options 0 (rdx), rusage none)
        [xor r10d, r10d]
        [wait:                                // reap until our child is the one that ended
        ; push BYTE 61                        // SYS_wait4
        ; pop rax
        ; syscall
        ; cmp eax, r12d
        ; jne BYTE <wait
        ; mov eax, [rsp]
        ; movzx edi, ah                       // exit status: bits 8..15
        ; and eax, 0x7f                       // the signal that killed it, if any
        ; jz BYTE >exit
        ; sub eax, -128                       // imm8: 3 bytes, add's 6
        ; xchg eax, edi
        ; exit:
        ; push BYTE 60                        // SYS_exit
        ; pop rax
        ; syscall]
    ));
    code
}

fn i386(place: &mut Place, restorer: usize, handler: usize, child: usize, failed: usize) -> Vec<Vec<u8>> {
    let mut code = pieces!(x86, X86Relocation, place;
        [push edx]
        [push edx]                            // sa_mask (8 bytes)
        [push restorer as i32]
        [mov al, BYTE 2]                      // (SYS_fork)
        [mov ecx, elf::ELF32_TAIL as i32]     // free as the hole's way out
        [push signal::SA_RESTORER | signal::SA_RESTART | signal::SA_SIGINFO]
        [mov cl, BYTE near_tail(handler)]     // ecx is 0x100..: 3 bytes, push imm32's 5
        [push ecx]
        [mov ecx, esp]
        [push BYTE 8]
        [pop esi]
        [int BYTE 0x80u8 as i8]
        [test eax, eax ; jz BYTE extern child]
        [js BYTE extern failed]
        [xchg eax, ebp]
    );
    for signo in FORWARDED {
        code.extend(pieces!(x86, X86Relocation, place;
            [mov bl, BYTE signo as i8]        // ebx starts at 0: its low byte will do
            [mov al, BYTE 174u8 as i8]        // SYS_rt_sigaction
            [int BYTE 0x80u8 as i8]
        ));
    }
    code.extend(pieces!(x86, X86Relocation, place;
        [or ebx, -1]
        [xor esi, esi]
        [wait:
        ; push BYTE 114                       // SYS_wait4
        ; pop eax
        ; int BYTE 0x80u8 as i8
        ; cmp eax, ebp
        ; jne BYTE <wait
        ; mov eax, [esp]
        ; movzx ebx, ah
        ; and eax, 0x7f
        ; jz BYTE >exit
        ; sub eax, -128
        ; xchg eax, ebx
        ; exit:
        ; push BYTE 1                         // SYS_exit
        ; pop eax
        ; int BYTE 0x80u8 as i8]
    ));
    code
}

fn arm64(place: &mut Place, handler: usize, child: usize, failed: usize) -> Vec<Vec<u8>> {
    let mut code = pieces!(aarch64, Aarch64Relocation, place;
        [cbnz x0, extern handler]             // the entry is the handler too (see
                                              //   elf::ARM64_ENTRY_ACTION): a start has x0 0,
                                              //   a handler the signal's number
        [movz x0, signal::CHLD as u32]        // clone(SIGCHLD, 0, 0, 0, 0): a fork; x1..x4
        [movz x8, 220]                        //   start at 0
        [svc 0]
        [cbz x0, extern child]
        [tbnz x0, 63, extern failed]
        [mov x19, x0]
        [adr x1, extern elf::ARM64_ENTRY_ACTION as usize] // no SA_RESTART: wait4 fails
        [movz x3, 8]                          //   with EINTR and is made again; no
        [movz x8, 134]                        //   SA_RESTORER: the handler returns through the
                                              //   kernel's (vDSO) rt_sigreturn. SYS_rt_sigaction
    );
    for signo in FORWARDED {
        code.extend(pieces!(aarch64, Aarch64Relocation, place; [movz x0, signo as u32] [svc 0]));
    }
    code.extend(pieces!(aarch64, Aarch64Relocation, place;
        [mov x1, sp]                          // wait4(any child, status on the stack,
        [mov x3, xzr]                         //   options 0 (x2), rusage none)
        [movz x8, 260]                        // SYS_wait4
        [wait:
        ; movn x0, 0
        ; svc 0
        ; cmp x0, x19
        ; b.ne <wait]
        [ldr w1, [sp]]                        // one piece each from here, so the layout may
        [ands w0, w1, 0x7f]                   //   put the last ones in the headers' holes
                                              //   (the branches between keep csel's flags)
        [add w2, w0, 128]
        [ubfx w0, w1, 8, 8]
        [csel w0, w0, w2, eq]
        [movz x8, 93]                         // SYS_exit
        [svc 0]
    ));
    code
}
