//! `http`: answers every HTTP request on a port with one fixed response.
//!
//! Serves one connection at a time: accept, read the request until a read ends with the
//! blank line that closes its headers (or the client closes, or 1 second passes:
//! `SO_RCVTIMEO`, set once on the listening socket, which accepted ones inherit), send
//! the response, close. Reading first matters: closing a socket with unread input sends
//! a reset that can destroy the response in flight. A client that resets fails only its
//! own send (`MSG_NOSIGNAL`, or SIGPIPE ignored on 386); SIGTERM and SIGINT exit 0, also
//! as PID 1. `SO_REUSEADDR` lets a restart bind at once although the last connections
//! wait in TIME_WAIT. If the port cannot be bound, the exit status is the errno: 98
//! (EADDRINUSE) when it is taken, 13 (EACCES) for a port below 1024 without privilege.
//!
//! The read buffer is 64 KiB of reserved stack; a request's headers longer than that
//! are answered when the buffer is full. stdin is never read; on arm64 it is closed at
//! the start, so the listening socket is descriptor 0.

use super::{Arch, Place, arm64_mov32, elf, in_pieces, near_tail, signal};
use dynasmrt::{
    DynasmApi, DynasmLabelApi, VecAssembler, aarch64::Aarch64Relocation, dynasm, x64::X64Relocation, x86::X86Relocation,
};

/// Bytes a request may fill in the read buffer: at least this, less than 64 KiB (see
/// [`SHORT_RESPONSE`]), which the 64 KiB of stack `enter` reserves and the structs
/// pushed below it (spent by then) hold.
const REQUEST_ROOM: i32 = 0xff00;
/// Responses shorter than this leave the read's length register below 64 KiB at each
/// accept (bind's length before the first, the response's after each), so setting its
/// second byte to ff gives room for a request (0xff00 to 0xffff bytes) in 2 bytes, where
/// `mov` takes 5.
const SHORT_RESPONSE: usize = 0x10000;
/// `"\n\r"` as a little-endian 16-bit word, found 3 bytes before the end of what was
/// read when that ends with the blank line that closes a request's headers
/// (`"\r\n\r\n"`): a header line never starts with `"\r"`, so in headers `"\n\r"` is
/// only ever the blank line's start. (2 bytes compared where 4 were: x86's compare is a
/// byte shorter, and AArch64's takes it as an immediate, with no register to load.)
const BLANK_LINE: i16 = 0x0d0a;
/// Socket option level; also `SOCK_STREAM`, the same number, where a register serves both.
const SOL_SOCKET: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_RCVTIMEO: i32 = 20;
/// `send` flag: a reset peer gives EPIPE instead of SIGPIPE.
const MSG_NOSIGNAL: i32 = 0x4000;
/// Responses shorter than this follow the code closely, so a short jump reaches the exits
/// before them; past 64 KiB of file, a 386 layout puts the data first (see
/// `elf::in_pieces`).
const NEAR_DATA: usize = 0xf000;
/// `timeval`'s size, more than an `int` option needs: one length serves both
/// `setsockopt` calls.
const OPTION_LEN: i32 = 16;

/// The fixed response: status line, headers, body.
pub fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut response = format!("HTTP/1.0 {status} {}\r\n", reason(status));
    if !body.is_empty() {
        response.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    response.push_str("\r\n");
    let mut bytes = response.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// A static HTTP responder for `arch` listening on `port` (all addresses).
///
/// # Panics
/// If `response` is longer than [`super::hello::MAX_MESSAGE`]; callers check first.
pub fn program(arch: Arch, port: u16, response: &[u8]) -> Vec<u8> {
    assert!(response.len() <= super::hello::MAX_MESSAGE, "response too long");
    // struct sockaddr_in's first word: family AF_INET (2), then the port in network order.
    let family_port = 2 | u32::from(port.to_be()) << 16;
    // The data: the exits (386; amd64's and arm64's are in their code); the response; on
    // arm64 the whole struct sockaddr_in, address 0.0.0.0, and 4 more zeros, as bind
    // reads 20 bytes (it reads the struct where it lies: an adr and the 4 bytes that are
    // not zero, as a file's trailing zeros are the loader's (see `elf`), where building
    // it on the stack takes 16). The code reaches them by address, so the layout may
    // spread it over the headers' holes.
    let sockaddr = match arch {
        Arch::Arm64 => [family_port.to_le_bytes().as_slice(), &[0; 16]].concat(),
        Arch::Amd64 | Arch::I386 => Vec::new(),
    };
    let (exits, quit) = match arch {
        Arch::I386 => i386_exits(),
        Arch::Amd64 | Arch::Arm64 => (Vec::new(), 0),
    };
    let data = [&exits, response, &sockaddr].concat();
    in_pieces(arch, &data, elf::Ending::InCode, elf::Start::Zeroed, |place| {
        let data_at = place.data();
        let at = Addresses {
            sockaddr: data_at + exits.len() + response.len(),
            failed: data_at,
            quit: data_at + quit,
            response: data_at + exits.len(),
        };
        match arch {
            Arch::Amd64 => amd64(place, at.response, family_port, response.len()),
            Arch::I386 => i386(place, &at, family_port, response.len()),
            Arch::Arm64 => arm64(place, &at, response.len()),
        }
    })
}

/// 386's exits, the data's first bytes (see [`program`]), and the offset of `quit` in
/// them: exit with the errno of a failed call (entered at their start with -errno in eax)
/// or with 0 (the SIGTERM and SIGINT handler, entered at `quit`). amd64's follow the call
/// that pushes the handler's address; arm64's are its last pieces.
fn i386_exits() -> (Vec<u8>, usize) {
    let mut ops = VecAssembler::<X86Relocation>::new(0);
    dynasm!(ops ; .arch x86 ; neg eax ; xchg eax, ecx); // failed: the errno
    let quit = ops.offset().0;
    dynasm!(ops
        ; .arch x86
        ; xchg ecx, ebx                               // the handler: the kernel enters it with
        ; push BYTE 1                                 //   ecx = 0, so the status is 0 (failed:
        ; pop eax                                     //   the errno); SYS_exit
        ; int BYTE 0x80u8 as i8
    );
    (ops.finalize().expect("no labels"), quit)
}

/// Where the code's targets in the data are: arm64's struct sockaddr_in, 386's exits (see
/// [`i386_exits`]) and the response.
struct Addresses {
    /// arm64 only: its struct sockaddr_in.
    sockaddr: usize,
    /// 386 only.
    failed: usize,
    /// 386 only.
    quit: usize,
    response: usize,
}

fn amd64(place: &mut Place, response: usize, family_port: u32, response_len: usize) -> Vec<Vec<u8>> {
    // In an order that fills the headers' holes (11 bytes, 2, then 4 with their jumps).
    let mut code = pieces!(x64, X64Relocation, place;
        [mov al, BYTE 13]                     // SYS_rt_sigaction: rax is 0 at start and
                                              //   after each success, so al will do
        [enter WORD 0xffffu16 as i16, BYTE 0] // 64 KiB of stack for requests (4 bytes)
        [push signal::SA_RESTORER]            // struct sigaction: sa_flags (x86-64 needs a
                                              //   restorer; never used); the call below
                                              //   pushes sa_handler
        [push BYTE signal::TERM as i8]
        [pop rdi]
        [mov r10b, BYTE 8]                    // sizeof(sigset_t); r10 starts at 0
    );
    // The exits, jumped over by a call that pushes their address (5 bytes, where lea
    // and push take 8): exit with the errno of a failed call (-errno in rax), or with 0
    // as the SIGTERM and SIGINT handler, which the kernel enters with rax = 0.
    let at = place.next_piece();
    let failed = at + 5;
    let mut ops = VecAssembler::<X64Relocation>::new(at);
    dynasm!(ops
        ; .arch x64
        ; call >handled
        ; neg eax                             // failed: the errno (the handler: 0)
        ; xchg eax, edi                       // the status
        ; push BYTE 60                        // SYS_exit
        ; pop rax
        ; syscall
        ; handled:
    );
    code.push(ops.finalize().expect("the call's label is its own"));
    code.extend(pieces!(x64, X64Relocation, place;
        [push rsp]                            // rt_sigaction(SIGTERM, the action, NULL, 8):
        [pop rsi]                             //   above sa_flags, sa_restorer and sa_mask are
        [syscall]                             //   what the stack holds, unused as the handler
                                              //   exits
        [push BYTE signal::INT as i8]         // SIGINT is 2, as is AF_INET: rdi serves
        [pop rdi]                             //   socket() too
        [mov al, BYTE 13]
        [syscall]
        [push BYTE SOL_SOCKET as i8]          // SOCK_STREAM, and SOL_SOCKET below
        [pop rsi]
        [mov al, BYTE 41]                     // SYS_socket(AF_INET, SOCK_STREAM, 0)
        [syscall]
        [xchg eax, edi]                       // rdi: the listening socket; rax: 2 (also
                                              //   when socket fails)
        [push rdx]                            // struct timeval {1 s, 0 µs}: rdx is 0, rsi
        [push rsi]                            //   SOCK_STREAM's 1 (1 byte, push 1's 2); its
                                              //   first int is SO_REUSEADDR's 1 too
        [push rsp]
        [pop r10]
        [mov r8b, BYTE OPTION_LEN as i8]
        [mov dl, BYTE SO_REUSEADDR as i8]
        [mov al, BYTE 54]                     // SYS_setsockopt: rax is 2, so al will do
        [syscall]
        [mov dl, BYTE SO_RCVTIMEO as i8]
        [mov al, BYTE 54]
        [syscall]
    ));
    // struct sockaddr_in: family and port, then address 0.0.0.0 (sin_zero is not read).
    code.extend(if (family_port as i32) < 0 {
        // push sign-extends: a port whose low byte is 0x80 or more needs the long way.
        pieces!(x64, X64Relocation, place; [push rax] [mov DWORD [rsp], family_port as i32])
    } else {
        pieces!(x64, X64Relocation, place; [push family_port as i32])
    });
    code.extend(pieces!(x64, X64Relocation, place;
        [push rsp]
        [pop rsi]
        [mov al, BYTE 49]                     // SYS_bind(socket, address, 20): the length
                                              //   is SO_RCVTIMEO still; past sockaddr_in's 16,
                                              //   which is all bind needs, lie pushed bytes
        [syscall]
        [test eax, eax                        // the exits are some 60 bytes back (rel8
        ; jnz BYTE extern failed]             //   reaches)
        [mov al, BYTE 50]                     // SYS_listen; the backlog (rsi, an address)
        [syscall]                             //   is clamped to somaxconn
        [mov r10d, MSG_NOSIGNAL]              // sendto's flags; its address (r8) is still
                                              //   the option length, but with a length of 0
                                              //   (r9 starts at 0) Linux copies no address,
                                              //   and TCP ignores one
    ));
    // The serve loop: one piece, as it branches within itself.
    let mut ops = VecAssembler::<X64Relocation>::new(place.next_piece());
    dynasm!(ops
        ; .arch x64
        ; serve:                              // rdi: the listening socket
        ; xor esi, esi                        // accept(socket, NULL, _): no peer address
        ; push BYTE 43                        // SYS_accept
        ; pop rax
        ; syscall
        ; xchg eax, edi                       // rdi: the connection (a failed accept's
                                              //   -errno fails each call below harmlessly)
        ; xchg eax, ebx                       // rbx keeps the listening socket (1 byte; a
                                              //   mov before the loop would take 2)
        ; push rsp
        ; pop rsi
    );
    amd64_request_room(&mut ops, response_len);
    dynasm!(ops
        ; .arch x64
        ; read:
        ; xor eax, eax                        // SYS_read
        ; syscall
        ; test eax, eax
        ; jle BYTE >respond                   // end of input, reset or timeout: answer anyway
        ; add rsi, rax
        ; sub edx, eax
        ; cmp WORD [rsi - 3], BLANK_LINE      // the blank line that ends the headers?
        ; jne BYTE <read
        ; respond:
        ; lea rsi, [extern response]
    );
    if response_len < 0x80 {
        dynasm!(ops ; .arch x64 ; push BYTE response_len as i8 ; pop rdx); // 3 bytes, mov's 5
    } else {
        dynasm!(ops ; .arch x64 ; mov edx, response_len as i32);
    }
    dynasm!(ops
        ; .arch x64
        ; push BYTE 44                        // SYS_sendto(connection, response, length,
        ; pop rax                             //   MSG_NOSIGNAL, NULL, 0)
        ; syscall
        ; push BYTE 3                         // SYS_close
        ; pop rax
        ; syscall
        ; mov edi, ebx
        ; jmp BYTE <serve
    );
    code.push(
        ops.finalize()
            .expect("the loop's labels are its own and its data within reach"),
    );
    code
}

/// Sets rdx, the read's length, to the room for a request (see [`SHORT_RESPONSE`]).
fn amd64_request_room(ops: &mut VecAssembler<X64Relocation>, response_len: usize) {
    if response_len < SHORT_RESPONSE {
        dynasm!(ops ; .arch x64 ; mov dh, BYTE (REQUEST_ROOM >> 8) as i8);
    } else {
        dynasm!(ops ; .arch x64 ; mov edx, REQUEST_ROOM);
    }
}

/// Sets edx, the read's length, to the room for a request (see [`SHORT_RESPONSE`]).
fn i386_request_room(ops: &mut VecAssembler<X86Relocation>, response_len: usize) {
    if response_len < SHORT_RESPONSE {
        dynasm!(ops ; .arch x86 ; mov dh, BYTE (REQUEST_ROOM >> 8) as i8);
    } else {
        dynasm!(ops ; .arch x86 ; mov edx, REQUEST_ROOM);
    }
}

fn i386(place: &mut Place, at: &Addresses, family_port: u32, response_len: usize) -> Vec<Vec<u8>> {
    let (failed, quit) = (at.failed, at.quit);
    assert_eq!(at.response - quit, 7, "the response follows quit's 7 bytes");
    // In an order that fills the headers' hole (9 bytes).
    let mut code = pieces!(x86, X86Relocation, place;
        [enter WORD 0xffffu16 as i16, BYTE 0] // 64 KiB of stack for requests (4 bytes)
        [push BYTE 8]                         // sizeof(sigset_t)
        [pop esi]
        [mov bl, BYTE signal::PIPE as i8]     // ebx starts at 0: its low byte will do
        [mov ecx, elf::ELF32_TAIL as i32]     // free as the hole's way out; then ecx points
        [mov cl, BYTE near_tail(elf::ELF32_IGNORE_ACTION as usize)] // at the headers'
                                              //   SIG_IGN action, for SIGPIPE first
        [mov al, BYTE 174u8 as i8]            // SYS_rt_sigaction: eax is 0 at start and
        [int BYTE 0x80u8 as i8]               //   after each success, so al will do
        [push edx]                            // struct sigaction: sa_flags 0 (edx starts at
        [mov cl, BYTE near_tail(quit)]        //   0), sa_handler quit (ecx is 0x100..: 3
        [push ecx]                            //   bytes, push imm32's 5); sa_restorer and
        [mov edi, ecx]                        //   sa_mask, above, are what the stack holds:
        [mov ecx, esp]                        //   unused, as no flag asks for a restorer
                                              //   and the handler exits. edi: quit's address,
                                              //   setsockopt's option length too (any of at
                                              //   least a timeval's will do), and near the
                                              //   response (2 bytes, and a 3-byte lea in the
                                              //   loop where mov takes 5)
        [mov bl, BYTE signal::TERM as i8]
        [mov al, BYTE 174u8 as i8]
        [int BYTE 0x80u8 as i8]
        [mov bl, BYTE signal::INT as i8]      // SIGINT is 2, as is AF_INET: ebx serves
        [mov al, BYTE 174u8 as i8]            //   socket() too
        [int BYTE 0x80u8 as i8]
        [push BYTE SOL_SOCKET as i8]          // SOCK_STREAM, and SOL_SOCKET below
        [pop ecx]
        [mov ax, WORD 359]                    // SYS_socket (direct, not socketcall)
        [int BYTE 0x80u8 as i8]
        [xchg eax, ebx]                       // ebx: the listening socket; eax: 2
        [push edx]                            // struct timeval {1 s, 0 µs}: edx is 0, ecx
        [push ecx]                            //   SOCK_STREAM's 1 (1 byte, push 1's 2); its
                                              //   first int is SO_REUSEADDR's 1 too
        [mov esi, esp]
        [mov dl, BYTE SO_REUSEADDR as i8]
        [mov ax, WORD 366]                    // SYS_setsockopt
        [int BYTE 0x80u8 as i8]
        [mov dl, BYTE SO_RCVTIMEO as i8]
        [mov ax, WORD 366]
        [int BYTE 0x80u8 as i8]
        [push eax]                            // struct sockaddr_in: address 0.0.0.0 (eax
        [push DWORD family_port as i32]       //   is 0), family and port
        [mov ecx, esp]
        [mov ax, WORD 361]                    // SYS_bind(socket, address, 20): the length
                                              //   is SO_RCVTIMEO still; past sockaddr_in's 16,
                                              //   which is all bind needs, lie pushed bytes
        [int BYTE 0x80u8 as i8]
    );
    code.extend(if response_len < NEAR_DATA {
        pieces!(x86, X86Relocation, place; [test eax, eax ; jnz BYTE extern failed])
    } else {
        pieces!(x86, X86Relocation, place; [test eax, eax ; jnz extern failed])
    });
    code.extend(pieces!(x86, X86Relocation, place;
        [mov ax, WORD 363]                    // SYS_listen; the backlog (ecx, an address)
        [int BYTE 0x80u8 as i8]               //   is clamped to somaxconn
        [xor esi, esi]                        // accept4's flags: none
    ));
    // The serve loop: one piece, as it branches within itself.
    let mut ops = VecAssembler::<X86Relocation>::new(place.next_piece());
    dynasm!(ops
        ; .arch x86
        ; serve:                              // ebx: the listening socket
        ; xor ecx, ecx
        ; mov eax, 364                        // SYS_accept4(socket, NULL, _, 0)
        ; int BYTE 0x80u8 as i8
        ; xchg eax, ebx                       // ebx: the connection (a failed accept's
                                              //   -errno fails each call below harmlessly)
        ; xchg eax, ebp                       // ebp keeps the listening socket (1 byte; a
                                              //   mov before the loop would take 2)
        ; mov ecx, esp
    );
    i386_request_room(&mut ops, response_len);
    dynasm!(ops
        ; .arch x86
        ; read:
        ; push BYTE 3                         // SYS_read
        ; pop eax
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; jle BYTE >respond                   // end of input, reset or timeout: answer anyway
        ; add ecx, eax
        ; sub edx, eax
        ; cmp WORD [ecx - 3], BLANK_LINE      // the blank line that ends the headers?
        ; jne BYTE <read
        ; respond:                            // the response, 7 bytes past quit: a literal
        ; lea ecx, [edi + 7]                  //   displacement, which dynasm encodes in 1 byte
    );
    if response_len < 0x80 {
        dynasm!(ops ; .arch x86 ; push BYTE response_len as i8 ; pop edx); // 3 bytes, mov's 5
    } else {
        dynasm!(ops ; .arch x86 ; mov edx, response_len as i32);
    }
    dynasm!(ops
        ; .arch x86
        ; push BYTE 4                         // SYS_write: SIGPIPE is ignored
        ; pop eax
        ; int BYTE 0x80u8 as i8
        ; push BYTE 6                         // SYS_close
        ; pop eax
        ; int BYTE 0x80u8 as i8
        ; mov ebx, ebp
        ; jmp BYTE <serve
    );
    code.push(
        ops.finalize()
            .expect("the loop's labels are its own and its data within reach"),
    );
    code
}

fn arm64(place: &mut Place, at: &Addresses, response_len: usize) -> Vec<Vec<u8>> {
    let (sockaddr, response) = (at.sockaddr, at.response);
    // The exits are the last 4 pieces (see the end).
    let (quit, failed) = (place.last_pieces(4), place.last_pieces(3));
    let mut code = pieces!(aarch64, Aarch64Relocation, place;
        [cbnz x0, extern quit]                // the entry is the handler too (see
                                              //   elf::ARM64_ENTRY_ACTION): a start has x0 0,
                                              //   a handler the signal's number
        [movz x8, 57]                         // SYS_close(stdin: x0 starts at 0), never read:
        [svc 0]                               //   socket() below gets descriptor 0, which each
                                              //   successful call then leaves in x0 (two
                                              //   instructions where keeping it took five)
        [adr x1, extern elf::ARM64_ENTRY_ACTION as usize] // the action (one instruction,
        [movz x3, 8]                          //   where building it on the stack takes three)
        [movz x8, 134]                        // SYS_rt_sigaction (preserves x1..x3 and x8;
        [movz x0, signal::TERM as u32]        //   x2, the old action, starts at 0)
        [svc 0]
        [movz x0, signal::INT as u32]
        [svc 0]
        [movz x0, 2]                          // AF_INET
        [movz x1, SOL_SOCKET as u32]          // SOCK_STREAM, and SOL_SOCKET below
        [movz x8, 198]                        // SYS_socket: x0 is the listening socket, 0
        [svc 0]
        [stp x1, xzr, [sp, -16]!]             // struct timeval {1 s, 0 µs} from x1 (1, as
        [mov x3, sp]                          //   SOCK_STREAM); its first int is SO_REUSEADDR's
                                              //   1 too
        [movz x4, OPTION_LEN as u32]
        [movz x2, SO_REUSEADDR as u32]
        [movz x8, 208]                        // SYS_setsockopt
        [svc 0]
        [movz x2, SO_RCVTIMEO as u32]
        [svc 0]
    );
    code.extend(pieces!(aarch64, Aarch64Relocation, place;
        [adr x1, extern sockaddr]             // struct sockaddr_in, in the data
        [movz x8, 200]                        // SYS_bind(socket, address, 20): the length
                                              //   is SO_RCVTIMEO still; past sockaddr_in's 16,
                                              //   which is all bind needs, lie zeros
        [svc 0]
        [cbnz x0, extern failed]
        [movz x8, 201]                        // SYS_listen; the backlog (x1, an address)
        [svc 0]                               //   is clamped to somaxconn
        [movz x3, MSG_NOSIGNAL as u32]        // sendto's flags
        [movz x4, 0]                          // sendto's address: none (x5 starts at 0; a
                                              //   length of 0 would do for Linux, but
                                              //   qemu-user reads the family at any address)
        [sub sp, sp, 16, lsl 12]              // 64 KiB of stack for requests
    ));
    // The serve loop: one piece, as it branches within itself.
    let mut ops = VecAssembler::<Aarch64Relocation>::new(place.next_piece());
    dynasm!(ops
        ; .arch aarch64
        ; serve:
        ; mov x0, xzr                         // the listening socket (after a failed accept,
                                              //   close fails: x0 is not left 0)
        ; mov x1, xzr                         // accept(socket, NULL, _)
        ; movz x8, 202                        // SYS_accept
        ; svc 0
        ; mov x20, x0                         // the connection
        ; mov x1, sp
        ; movz x2, REQUEST_ROOM as u32
        ; read:
        ; mov x0, x20
        ; movz x8, 63                         // SYS_read
        ; svc 0
        ; cmp x0, 0
        ; b.le >respond                       // end of input, reset or timeout: answer anyway
        ; add x1, x1, x0
        ; sub x2, x2, x0
        ; ldurh w9, [x1, -3]                  // the blank line that ends the headers?
        ; cmp w9, BLANK_LINE as u32
        ; b.ne <read
        ; respond:
        ; mov x0, x20
        ; adr x1, extern response
    );
    arm64_mov32(&mut ops, 2, response_len as u32);
    dynasm!(ops
        ; .arch aarch64
        ; movz x8, 206                        // SYS_sendto(connection, response, length,
        ; svc 0                               //   MSG_NOSIGNAL, NULL, 0)
        ; mov x0, x20
        ; movz x8, 57                         // SYS_close
        ; svc 0
        ; b <serve
    );
    code.push(
        ops.finalize()
            .expect("the loop's labels are its own and its data within reach"),
    );
    // The exits, after the loop, so reached only by address: the handler (quit) sets
    // status 0 and runs on through the errno path (failed): the neg keeps 0, so no branch
    // skips it.
    code.extend(pieces!(aarch64, Aarch64Relocation, place;
        [movz x0, 0]                          // quit
        [neg x0, x0]                          // failed: status the errno
        [movz x8, 93]                         // SYS_exit
        [svc 0]
    ));
    code
}
