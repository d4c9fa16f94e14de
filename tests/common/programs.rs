//! Running generated programs, shared by the tests and the benchmarks: writing them so
//! they can be exec'd at once, the command line for their architecture, a free port for
//! http, and waiting until one is ready for SIGTERM (a PID 1 drops a signal it neither
//! handles nor waits for, so sending one earlier would hang whoever waits for the exit).

use speck::forge::Arch;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Writes an executable file. A child process (`install`) writes it: a file this process
/// held open for writing would be inherited by any thread's child forked meanwhile, and
/// exec'ing the file fails with ETXTBSY until that child has exec'd in turn. The bytes
/// go to a sibling file first, which is never executed.
pub fn write_exe(path: &Path, bytes: &[u8]) -> PathBuf {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, bytes).expect("write the staged file");
    let installed = Command::new("install")
        .args(["-m", "755"])
        .arg(&staged)
        .arg(path)
        .status();
    assert!(
        installed.is_ok_and(|status| status.success()),
        "install {}",
        path.display()
    );
    std::fs::remove_file(&staged).expect("remove the staged file");
    path.to_path_buf()
}

/// The command line that runs `path` for `arch` (qemu-aarch64 for arm64).
pub fn argv(arch: Arch, path: &Path) -> Vec<String> {
    let mut argv = Vec::new();
    if arch == Arch::Arm64 {
        argv.push("qemu-aarch64".to_owned());
    }
    argv.push(path.display().to_string());
    argv
}

/// A loopback TCP port nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// `rt_sigtimedwait`'s number for an x86-64 task and for a 32-bit x86 one (qemu-aarch64
/// runs the arm64 guest's wait as the host's).
const SIGTIMEDWAIT: [&str; 2] = ["128 ", "177 "];

/// Waits until `pid` catches SIGTERM (bit 15 of its `SigCgt` mask) or waits for it in
/// `rt_sigtimedwait` (which blocked it first), so that a signal sent now is not dropped.
/// qemu handles every signal itself from its start, so for arm64 this also waits a
/// little for the guest to get ready.
pub fn wait_until_handling(pid: i32, arch: Arch) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        let call = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        if caught & (1 << 14) != 0 || SIGTIMEDWAIT.iter().any(|nr| call.starts_with(nr)) {
            break;
        }
        assert!(Instant::now() < deadline, "pid {pid} never got ready for SIGTERM");
        std::thread::sleep(Duration::from_millis(2));
    }
    if arch == Arch::Arm64 {
        std::thread::sleep(Duration::from_millis(300));
    }
}
