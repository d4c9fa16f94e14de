//! Waiting until a process is ready for SIGTERM, shared by the tests and the benchmarks:
//! a PID 1 drops a signal it neither handles nor waits for, so sending one earlier would
//! hang whoever waits for the exit.

use speck::forge::Arch;
use std::time::{Duration, Instant};

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
