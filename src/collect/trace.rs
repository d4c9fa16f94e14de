//! `speck pack --trace`: run the program once on this machine under ptrace and list
//! every file it (and its children) opened for reading, executed, or checked for
//! (stat, access, readlink), successfully.
//!
//! Tracing sees only the paths that run exercised: a module imported on another code
//! path, a locale, a plugin loaded on some input will be missing. It is a complement to
//! the static closure, never a replacement. The program runs as the current user, with
//! speck's environment plus the image's `--env`, its stdout sent to stderr so that
//! speck's own stdout stays clean.
//!
//! Owns the ptrace loop and the file-opening syscalls of each architecture (read through
//! `PTRACE_GET_SYSCALL_INFO`, so a 32-bit program traced on a 64-bit host is read with
//! its own table). Reads memory of the traced process only.

use nix::sys::ptrace::{self, Options};
use nix::sys::signal::{Signal, raise};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// What a traced run opened and how it ended.
#[derive(Clone, Debug, Default)]
pub struct Traced {
    /// Absolute paths opened for reading or executed, in first-seen order.
    pub files: Vec<PathBuf>,
    /// The program's exit status (128 + N if it died of signal N).
    pub status: i32,
}

/// Why a trace could not run.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// fork, ptrace or wait failed.
    #[error(
        "cannot trace {program}: {step} failed ({errno}); tracing needs ptrace (in a container: --cap-add SYS_PTRACE)"
    )]
    System {
        /// The program.
        program: String,
        /// Which call.
        step: &'static str,
        /// The error.
        errno: nix::Error,
    },
    /// An argument or path with a NUL byte.
    #[error("cannot trace {0}: an argument contains a NUL byte")]
    Nul(String),
}

/// `AUDIT_ARCH_*` values and each architecture's file-opening syscalls.
const X86_64: u32 = 0xC000_003E;
const I386: u32 = 0x4000_0003;
const AARCH64: u32 = 0xC000_00B7;

/// How a syscall names its file: `(dirfd argument, path argument, flags argument)`.
#[derive(Clone, Copy, Debug)]
struct Opening {
    dirfd: Option<usize>,
    path: usize,
    flags: Flags,
}

/// Where a syscall's open flags are.
#[derive(Clone, Copy, Debug)]
enum Flags {
    /// In this argument.
    Arg(usize),
    /// In the first field of the `struct open_how` this argument points to (openat2).
    How(usize),
    /// None: the call only reads (exec, stat, access, readlink).
    Read,
}

fn opening(arch: u32, nr: u64) -> Option<Opening> {
    let named = |dirfd, path, flags| Some(Opening { dirfd, path, flags });
    match (arch, nr) {
        (X86_64, 2) | (I386, 5) => named(None, 0, Flags::Arg(1)), // open
        (X86_64, 257) | (I386, 295) | (AARCH64, 56) => named(Some(0), 1, Flags::Arg(2)), // openat
        (_, 437) => named(Some(0), 1, Flags::How(2)),             // openat2
        (X86_64, 59) | (I386, 11) | (AARCH64, 221) => named(None, 0, Flags::Read), // execve
        (X86_64, 322) | (I386, 358) | (AARCH64, 281) => named(Some(0), 1, Flags::Read), // execveat
        // stat, lstat, access, readlink: a program that checks for a file before it
        // opens another (Python stats each module's source, then opens its cached
        // bytecode, which it ignores without the source) needs the file it checked.
        (X86_64, 4 | 6 | 21 | 89) | (I386, 33 | 85 | 195 | 196) => named(None, 0, Flags::Read),
        (X86_64, 262 | 267 | 269 | 332 | 439)
        | (I386, 300 | 305 | 307 | 383 | 439)
        | (AARCH64, 48 | 78 | 79 | 291 | 439) => named(Some(0), 1, Flags::Read), // *at, statx
        _ => None,
    }
}

/// O_WRONLY | O_RDWR | O_CREAT | O_TRUNC: the program writes; nothing to pack.
const WRITING: u64 = 0o1 | 0o2 | 0o100 | 0o1000;

/// Runs `program` with `args` (and `env` added) under ptrace until it and every child
/// have exited.
pub fn trace(program: &Path, args: &[String], env: &[String]) -> Result<Traced, TraceError> {
    let name = program.display().to_string();
    let cstring = |bytes: &[u8]| CString::new(bytes).map_err(|_| TraceError::Nul(name.clone()));
    let path = cstring(program.as_os_str().as_bytes())?;
    let mut argv = vec![path.clone()];
    for arg in args {
        argv.push(cstring(arg.as_bytes())?);
    }
    let mut envp: Vec<CString> = Vec::new();
    for (key, value) in std::env::vars_os() {
        let overridden = env.iter().any(|e| e.split('=').next() == key.to_str());
        if !overridden {
            envp.push(cstring(&[key.as_bytes(), b"=", value.as_bytes()].concat())?);
        }
    }
    for entry in env {
        envp.push(cstring(entry.as_bytes())?);
    }
    let system = |step| {
        let program = name.clone();
        move |errno| TraceError::System { program, step, errno }
    };
    // SAFETY: the child calls only async-signal-safe functions (ptrace, dup2, raise,
    // execve, _exit) on memory prepared before the fork.
    match unsafe { fork() }.map_err(system("fork"))? {
        ForkResult::Child => {
            let _ = ptrace::traceme();
            // SAFETY: dup2 and _exit are async-signal-safe; fds 1 and 2 are open.
            unsafe { libc::dup2(2, 1) };
            let _ = raise(Signal::SIGSTOP);
            let _ = nix::unistd::execve(&path, &argv, &envp);
            // SAFETY: leaves the forked child without running the parent's destructors.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => follow(child).map_err(system("ptrace")),
    }
}

/// The tracer's loop: every stop of every traced process, until none is left.
fn follow(child: Pid) -> nix::Result<Traced> {
    waitpid(child, None)?;
    ptrace::setoptions(
        child,
        Options::PTRACE_O_TRACESYSGOOD
            | Options::PTRACE_O_TRACEFORK
            | Options::PTRACE_O_TRACEVFORK
            | Options::PTRACE_O_TRACECLONE
            | Options::PTRACE_O_TRACEEXEC
            | Options::PTRACE_O_EXITKILL,
    )?;
    ptrace::syscall(child, None)?;
    let mut traced = Traced::default();
    let mut seen = BTreeSet::new();
    let mut known: BTreeSet<Pid> = BTreeSet::from([child]);
    let mut pending: BTreeMap<Pid, Option<PathBuf>> = BTreeMap::new();
    loop {
        let status = match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Ok(status) => status,
            Err(nix::errno::Errno::ECHILD) => return Ok(traced),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        let (pid, signal) = match status {
            WaitStatus::PtraceSyscall(pid) => {
                on_syscall(pid, &mut pending, &mut traced, &mut seen);
                (pid, None)
            }
            WaitStatus::PtraceEvent(pid, _, _) => (pid, None),
            // A new process or thread starts with a SIGSTOP of its own: swallow it.
            WaitStatus::Stopped(pid, Signal::SIGSTOP) if known.insert(pid) => (pid, None),
            WaitStatus::Stopped(pid, signal) => (pid, Some(signal)),
            WaitStatus::Exited(pid, code) => {
                if pid == child {
                    traced.status = code;
                }
                continue;
            }
            WaitStatus::Signaled(pid, signal, _) => {
                if pid == child {
                    traced.status = 128 + signal as i32;
                }
                continue;
            }
            _ => continue,
        };
        known.insert(pid);
        // The process may have been killed meanwhile: nothing to resume then.
        let _ = ptrace::syscall(pid, signal);
    }
}

/// At a syscall's entry, notes the file it names; at its exit, keeps it if it worked.
fn on_syscall(
    pid: Pid,
    pending: &mut BTreeMap<Pid, Option<PathBuf>>,
    traced: &mut Traced,
    seen: &mut BTreeSet<PathBuf>,
) {
    let Some(info) = syscall_info(pid) else {
        return;
    };
    match info.op {
        libc::PTRACE_SYSCALL_INFO_ENTRY => {
            // SAFETY: op says the entry member is the one the kernel filled.
            let entry = unsafe { info.u.entry };
            let named = opening(info.arch, entry.nr).and_then(|o| named_file(pid, &o, &entry.args));
            pending.insert(pid, named);
        }
        libc::PTRACE_SYSCALL_INFO_EXIT => {
            // SAFETY: op says the exit member is the one the kernel filled.
            let exit = unsafe { info.u.exit };
            if let Some(Some(path)) = pending.remove(&pid)
                && exit.is_error == 0
                && seen.insert(path.clone())
            {
                traced.files.push(path);
            }
        }
        _ => {}
    }
}

/// `PTRACE_GET_SYSCALL_INFO`, called directly: nix 0.30's wrapper passes a zero size,
/// so the kernel copies nothing.
fn syscall_info(pid: Pid) -> Option<libc::ptrace_syscall_info> {
    let mut info = std::mem::MaybeUninit::<libc::ptrace_syscall_info>::zeroed();
    let size = std::mem::size_of::<libc::ptrace_syscall_info>();
    // SAFETY: the kernel writes at most `size` bytes into `info`, which is that large.
    let copied = unsafe { libc::ptrace(libc::PTRACE_GET_SYSCALL_INFO, pid.as_raw(), size, info.as_mut_ptr()) };
    // SAFETY: zero is a valid value of every field; the kernel filled what it reported.
    (copied > 0).then(|| unsafe { info.assume_init() })
}

/// The absolute path a file-opening syscall names, unless it opens for writing.
fn named_file(pid: Pid, opening: &Opening, args: &[u64; 6]) -> Option<PathBuf> {
    let flags = match opening.flags {
        Flags::Arg(i) => args[i],
        Flags::How(i) => u64::from_le_bytes(read_memory(pid, args[i], 8)?.try_into().ok()?),
        Flags::Read => 0,
    };
    if flags & WRITING != 0 {
        return None;
    }
    let mut path = read_memory(pid, args[opening.path], 4096)?;
    path.truncate(path.iter().position(|&b| b == 0)?);
    if path.is_empty() {
        return None; // AT_EMPTY_PATH: the call is about the descriptor, already seen
    }
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&path));
    if path.is_absolute() {
        return Some(path);
    }
    let base = match opening.dirfd.map(|i| args[i] as i32) {
        None | Some(libc::AT_FDCWD) => format!("/proc/{pid}/cwd"),
        Some(fd) => format!("/proc/{pid}/fd/{fd}"),
    };
    Some(std::fs::read_link(base).ok()?.join(path))
}

/// Up to `len` bytes of the traced process's memory at `address`.
fn read_memory(pid: Pid, address: u64, len: usize) -> Option<Vec<u8>> {
    let memory = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut buffer = vec![0; len];
    let mut read = 0;
    // Short reads stop at an unmapped page; a path never spans one, so stop there too.
    while read < len {
        match memory.read_at(&mut buffer[read..], address + read as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
        if buffer[..read].contains(&0) {
            break;
        }
    }
    buffer.truncate(read);
    (read > 0).then_some(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traced_shell_shows_what_it_opened_and_its_status() {
        let traced = trace(
            Path::new("/bin/sh"),
            &["-c".into(), "cat /etc/hostname > /dev/null; exit 3".into()],
            &[],
        )
        .unwrap();
        assert_eq!(traced.status, 3);
        let files: Vec<&Path> = traced.files.iter().map(PathBuf::as_path).collect();
        assert!(files.contains(&Path::new("/etc/hostname")), "{files:?}");
        assert!(files.iter().any(|f| f.ends_with("cat")), "{files:?}");
    }
}
