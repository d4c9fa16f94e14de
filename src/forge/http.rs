//! `http`: answers every HTTP request on a port with one fixed response.
//!
//! Serves one connection at a time: accept, read the request until a read ends with the
//! blank line that closes its headers (or the client closes, or 1 second passes:
//! `SO_RCVTIMEO`), write the response, close. Reading first matters: closing a socket
//! with unread input sends a reset that can destroy the response in flight. SIGPIPE is
//! ignored, so a client that resets only fails that one write; SIGTERM and SIGINT exit 0,
//! also as PID 1. Exits 1 if the port cannot be bound.

use super::{Arch, Body, amd64_with_data, arm64_mov32, code_address, signal};
use dynasmrt::{DynasmApi, DynasmLabelApi, VecAssembler, aarch64::Aarch64Relocation, dynasm, x86::X86Relocation};

/// Bytes read per `read` call; the buffer lives on the stack.
const BUFFER: i32 = 4096;
/// `"\r\n\r\n"` as a little-endian 32-bit word: the end of a request's headers.
const HEADERS_END: i32 = 0x0a0d_0a0d;
const SOL_SOCKET: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_RCVTIMEO: i32 = 20;

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
    let at = super::address(arch, 0) as u32;
    let quit = code_address(arch, response.len());
    let len = response.len() as u32;
    // struct sockaddr_in's first word: family AF_INET (2), then the port in network order.
    let family_port = 2 | u32::from(port.to_be()) << 16;
    let body = match arch {
        Arch::Amd64 => amd64(family_port, response),
        Arch::I386 => {
            let (code, start) = i386(quit, family_port, at, len);
            Body::data_then_code(arch, response, code, start)
        }
        Arch::Arm64 => {
            let (code, start) = arm64(quit, family_port, at, len);
            Body::data_then_code(arch, response, code, start)
        }
    };
    body.link(arch)
}

fn amd64(family_port: u32, response: &[u8]) -> Body {
    let mut ops = amd64_with_data(response);
    dynasm!(ops
        ; .arch x64
        ; ->quit:
        ; xor edi, edi
        ; mov eax, 60                         // quit: SYS_exit(0)
        ; syscall
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch x64
        ; lea rax, [->quit]
        ; push 0                              // struct sigaction: mask,
        ; push rax                            // restorer (x86-64 needs one; never used),
        ; push signal::SA_RESTORER            // flags,
        ; push rax                            // handler
        ; mov rsi, rsp
        ; xor edx, edx
        ; mov r10d, 8
        ; mov edi, signal::TERM
        ; mov eax, 13                         // SYS_rt_sigaction
        ; syscall
        ; mov edi, signal::INT
        ; mov eax, 13
        ; syscall
        ; mov QWORD [rsp], signal::IGNORE     // SIGPIPE: a reset client fails one write only
        ; mov edi, signal::PIPE
        ; mov eax, 13
        ; syscall
        ; mov edi, 2                          // AF_INET
        ; mov esi, 1                          // SOCK_STREAM
        ; xor edx, edx
        ; mov eax, 41                         // SYS_socket
        ; syscall
        ; test eax, eax
        ; js ->failed
        ; mov r12d, eax                       // the listening socket
        ; mov DWORD [rsp], 1
        ; mov edi, r12d
        ; mov esi, SOL_SOCKET
        ; mov edx, SO_REUSEADDR               // rebind at once after a restart
        ; mov r10, rsp
        ; mov r8d, 4
        ; mov eax, 54                         // SYS_setsockopt
        ; syscall
        ; mov DWORD [rsp], family_port as i32 // struct sockaddr_in: family, port,
        ; mov DWORD [rsp + 4], 0              // address 0.0.0.0,
        ; mov QWORD [rsp + 8], 0              // padding
        ; mov edi, r12d
        ; mov rsi, rsp
        ; mov edx, 16
        ; mov eax, 49                         // SYS_bind
        ; syscall
        ; test eax, eax
        ; jnz ->failed
        ; mov edi, r12d
        ; mov esi, 128
        ; mov eax, 50                         // SYS_listen
        ; syscall
        ; test eax, eax
        ; jnz ->failed
        ; sub rsp, BUFFER
        ; serve:
        ; mov edi, r12d
        ; xor esi, esi
        ; xor edx, edx
        ; mov eax, 43                         // SYS_accept
        ; syscall
        ; test eax, eax
        ; js <serve
        ; mov r13d, eax                       // the connection
        ; mov QWORD [rsp], 1                  // struct timeval: 1 second,
        ; mov QWORD [rsp + 8], 0              // 0 microseconds
        ; mov edi, r13d
        ; mov esi, SOL_SOCKET
        ; mov edx, SO_RCVTIMEO
        ; mov r10, rsp
        ; mov r8d, 16
        ; mov eax, 54                         // SYS_setsockopt
        ; syscall
        ; read:
        ; mov edi, r13d
        ; mov rsi, rsp
        ; mov edx, BUFFER
        ; xor eax, eax                        // SYS_read
        ; syscall
        ; test rax, rax
        ; jle >respond                        // closed, reset or timed out: answer anyway
        ; cmp DWORD [rsp + rax - 4], HEADERS_END
        ; jne <read
        ; respond:
        ; lea rsi, [->data]
        ; mov edx, response.len() as i32
        ; write:
        ; mov edi, r13d
        ; mov eax, 1                          // SYS_write
        ; syscall
        ; test rax, rax
        ; jle >close
        ; add rsi, rax
        ; sub rdx, rax
        ; jnz <write
        ; close:
        ; mov edi, r13d
        ; mov eax, 3                          // SYS_close
        ; syscall
        ; jmp <serve
        ; ->failed:
        ; mov edi, 1
        ; mov eax, 60                         // SYS_exit(1)
        ; syscall
    );
    Body::position_independent(ops.finalize().expect("labels are all defined"), start)
}

fn i386(quit: u32, family_port: u32, at: u32, len: u32) -> (Vec<u8>, usize) {
    let mut ops = VecAssembler::<X86Relocation>::new(0);
    dynasm!(ops
        ; .arch x86
        ; xor ebx, ebx
        ; mov eax, 1                          // quit: SYS_exit(0)
        ; int BYTE 0x80u8 as i8
    );
    let start = ops.offset().0;
    dynasm!(ops
        ; .arch x86
        ; push 0
        ; push 0                              // sa_mask
        ; push 0                              // sa_restorer: unused (the handler exits)
        ; push 0                              // sa_flags
        ; push quit as i32                    // sa_handler
        ; mov ecx, esp
        ; xor edx, edx
        ; mov esi, 8
        ; mov ebx, signal::TERM
        ; mov eax, 174                        // SYS_rt_sigaction
        ; int BYTE 0x80u8 as i8
        ; mov ebx, signal::INT
        ; mov eax, 174
        ; int BYTE 0x80u8 as i8
        ; mov DWORD [esp], signal::IGNORE
        ; mov ebx, signal::PIPE
        ; mov eax, 174
        ; int BYTE 0x80u8 as i8
        ; mov ebx, 2                          // AF_INET
        ; mov ecx, 1                          // SOCK_STREAM
        ; xor edx, edx
        ; mov eax, 359                        // SYS_socket (direct, not socketcall)
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; js ->failed
        ; mov ebp, eax                        // the listening socket
        ; mov DWORD [esp], 1
        ; mov ebx, ebp
        ; mov ecx, SOL_SOCKET
        ; mov edx, SO_REUSEADDR
        ; mov esi, esp
        ; mov edi, 4
        ; mov eax, 366                        // SYS_setsockopt
        ; int BYTE 0x80u8 as i8
        ; mov DWORD [esp], family_port as i32 // struct sockaddr_in
        ; mov DWORD [esp + 4], 0
        ; mov DWORD [esp + 8], 0
        ; mov DWORD [esp + 12], 0
        ; mov ecx, esp
        ; mov edx, 16
        ; mov eax, 361                        // SYS_bind (ebx: the socket)
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; jnz ->failed
        ; mov ecx, 128
        ; mov eax, 363                        // SYS_listen
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; jnz ->failed
        ; sub esp, BUFFER
        ; serve:
        ; mov ebx, ebp
        ; xor ecx, ecx
        ; xor edx, edx
        ; xor esi, esi
        ; mov eax, 364                        // SYS_accept4
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; js <serve
        ; mov ebx, eax                        // the connection: ebx, the first argument of
                                              // every call below, which they all preserve
        ; mov DWORD [esp], 1                  // struct timeval (32-bit): 1 second,
        ; mov DWORD [esp + 4], 0              // 0 microseconds
        ; mov ecx, SOL_SOCKET
        ; mov edx, SO_RCVTIMEO
        ; mov esi, esp
        ; mov edi, 8
        ; mov eax, 366                        // SYS_setsockopt
        ; int BYTE 0x80u8 as i8
        ; read:
        ; mov ecx, esp
        ; mov edx, BUFFER
        ; mov eax, 3                          // SYS_read
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; jle >respond
        ; cmp DWORD [esp + eax - 4], HEADERS_END
        ; jne <read
        ; respond:
        ; mov ecx, at as i32
        ; mov edx, len as i32
        ; write:
        ; mov eax, 4                          // SYS_write
        ; int BYTE 0x80u8 as i8
        ; test eax, eax
        ; jle >close
        ; add ecx, eax
        ; sub edx, eax
        ; jnz <write
        ; close:
        ; mov eax, 6                          // SYS_close
        ; int BYTE 0x80u8 as i8
        ; jmp <serve
        ; ->failed:
        ; mov ebx, 1
        ; mov eax, 1                          // SYS_exit(1)
        ; int BYTE 0x80u8 as i8
    );
    (ops.finalize().expect("labels are all defined"), start)
}

fn arm64(quit: u32, family_port: u32, at: u32, len: u32) -> (Vec<u8>, usize) {
    let mut ops = VecAssembler::<Aarch64Relocation>::new(0);
    dynasm!(ops
        ; .arch aarch64
        ; movz x0, 0
        ; movz x8, 93                         // quit: SYS_exit(0)
        ; svc 0
    );
    let start = ops.offset().0;
    dynasm!(ops ; .arch aarch64 ; sub sp, sp, 32);
    arm64_mov32(&mut ops, 9, quit);
    dynasm!(ops
        ; .arch aarch64
        ; str x9, [sp]                        // sa_handler
        ; stp xzr, xzr, [sp, 8]               // sa_flags, sa_restorer: unused
        ; str xzr, [sp, 24]                   // sa_mask
        ; mov x1, sp
        ; movz x2, 0
        ; movz x3, 8
        ; movz x8, 134                        // SYS_rt_sigaction
        ; movz x0, signal::TERM as u32
        ; svc 0
        ; movz x0, signal::INT as u32
        ; svc 0
        ; movz x9, signal::IGNORE as u32
        ; str x9, [sp]
        ; movz x0, signal::PIPE as u32
        ; svc 0
        ; movz x0, 2                          // AF_INET
        ; movz x1, 1                          // SOCK_STREAM
        ; movz x2, 0
        ; movz x8, 198                        // SYS_socket
        ; svc 0
        ; tbnz x0, 63, ->failed
        ; mov x19, x0                         // the listening socket
        ; movz w9, 1
        ; str w9, [sp]
        ; movz x1, SOL_SOCKET as u32
        ; movz x2, SO_REUSEADDR as u32
        ; mov x3, sp
        ; movz x4, 4
        ; movz x8, 208                        // SYS_setsockopt
        ; svc 0
    );
    arm64_mov32(&mut ops, 9, family_port);
    dynasm!(ops
        ; .arch aarch64
        ; str w9, [sp]                        // struct sockaddr_in: family, port,
        ; str wzr, [sp, 4]                    // address 0.0.0.0,
        ; str xzr, [sp, 8]                    // padding
        ; mov x0, x19
        ; mov x1, sp
        ; movz x2, 16
        ; movz x8, 200                        // SYS_bind
        ; svc 0
        ; cbnz x0, ->failed
        ; mov x0, x19
        ; movz x1, 128
        ; movz x8, 201                        // SYS_listen
        ; svc 0
        ; cbnz x0, ->failed
        ; sub sp, sp, 1, lsl 12               // the 4096-byte read buffer
        ; serve:
        ; mov x0, x19
        ; movz x1, 0
        ; movz x2, 0
        ; movz x8, 202                        // SYS_accept
        ; svc 0
        ; tbnz x0, 63, <serve
        ; mov x20, x0                         // the connection
        ; movz x9, 1
        ; stp x9, xzr, [sp]                   // struct timeval: 1 second, 0 microseconds
        ; movz x1, SOL_SOCKET as u32
        ; movz x2, SO_RCVTIMEO as u32
        ; mov x3, sp
        ; movz x4, 16
        ; movz x8, 208                        // SYS_setsockopt
        ; svc 0
        ; read:
        ; mov x0, x20
        ; mov x1, sp
        ; movz x2, BUFFER as u32
        ; movz x8, 63                         // SYS_read
        ; svc 0
        ; cmp x0, 0
        ; b.le >respond
        ; add x9, sp, x0
        ; ldur w9, [x9, -4]                   // the last 4 bytes read
    );
    arm64_mov32(&mut ops, 10, HEADERS_END as u32);
    dynasm!(ops
        ; .arch aarch64
        ; cmp w9, w10
        ; b.ne <read
        ; respond:
    );
    arm64_mov32(&mut ops, 1, at);
    arm64_mov32(&mut ops, 2, len);
    dynasm!(ops
        ; .arch aarch64
        ; write:
        ; mov x0, x20
        ; movz x8, 64                         // SYS_write
        ; svc 0
        ; cmp x0, 0
        ; b.le >close
        ; add x1, x1, x0
        ; subs x2, x2, x0
        ; b.ne <write
        ; close:
        ; mov x0, x20
        ; movz x8, 57                         // SYS_close
        ; svc 0
        ; b <serve
        ; ->failed:
        ; movz x0, 1
        ; movz x8, 93                         // SYS_exit(1)
        ; svc 0
    );
    (ops.finalize().expect("labels are all defined"), start)
}
