//! Helpers shared by the benchmarks: timing, running commands, test data.
#![allow(dead_code)] // each bench uses its own subset

#[path = "../../tests/common/noise.rs"]
mod noise;
#[allow(unused_imports)] // used by some test binaries only
pub use noise::noise;
#[path = "../../tests/common/programs.rs"]
mod programs;
#[allow(unused_imports)] // used by some benchmarks only
pub use programs::{argv, free_port, wait_until_handling, write_exe};

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The median time of `runs` runs of `job`.
pub fn median(runs: usize, mut job: impl FnMut()) -> Duration {
    median_measured(runs, || {
        let start = Instant::now();
        job();
        start.elapsed()
    })
}

/// The median of `runs` durations that `measure` takes itself (around setup it does not
/// count).
pub fn median_measured(runs: usize, mut measure: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| measure()).collect();
    times.sort();
    times[runs / 2]
}

/// Runs a command that must succeed; its stdout.
pub fn output(command: &mut Command) -> String {
    let out = command.stdin(Stdio::null()).output().expect("command starts");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must succeed.
pub fn run(command: &mut Command) {
    output(command);
}

/// Milliseconds with two decimals.
pub fn ms(time: Duration) -> String {
    format!("{:.2} ms", time.as_secs_f64() * 1000.0)
}
