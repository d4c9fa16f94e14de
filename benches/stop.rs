//! `cargo bench --bench stop`: how fast the generated PID 1 programs end. First as PID 1
//! of a fresh PID namespace (`unshare --fork --pid`), from SIGTERM or SIGINT to the exit,
//! on every architecture (arm64 under qemu-aarch64); the goal is 100 ms. Then
//! `docker stop` of each, against Docker's own `--init` (tini) and a PID 1 without a
//! handler, which waits out Docker's 10-second kill timeout; in the same run. Asserts
//! nothing.

mod common;

use common::{argv, free_port, median_measured, output, run, wait_until_handling, write_exe};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use speck::forge::{Arch, http, init, pause};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 10;
const DOCKER_RUNS: usize = 3;
/// How long a stop may take before it counts as never.
const NEVER: Duration = Duration::from_secs(15);

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    as_pid_1(dir.path());
    docker_stop(dir.path());
}

/// The architectures this machine runs: amd64 and 386 natively, arm64 under qemu.
fn runnable() -> Vec<Arch> {
    let qemu = Command::new("qemu-aarch64").arg("--version").output();
    let mut archs = vec![Arch::Amd64, Arch::I386];
    if qemu.is_ok_and(|out| out.status.success()) {
        archs.push(Arch::Arm64);
    }
    archs
}

fn as_pid_1(dir: &Path) {
    let archs = runnable();
    println!("As PID 1 of a fresh PID namespace: from the signal to the exit (median of {RUNS}; goal: under 100 ms)");
    println!();
    let columns: Vec<String> = archs.iter().map(|arch| column(*arch)).collect();
    println!("| program | signal | {} |", columns.join(" | "));
    println!("|---|---|{}", "---:|".repeat(archs.len()));
    let mut slowest = Duration::ZERO;
    for program in ["pause", "init (child: pause)", "http"] {
        for signal in [Signal::SIGTERM, Signal::SIGINT] {
            let cells: Vec<String> = archs
                .iter()
                .map(|&arch| {
                    let argv = program_argv(dir, arch, program);
                    let (time, statuses) = stop_as_pid_1(arch, &argv, signal);
                    slowest = slowest.max(time);
                    format!("{:.2} ms (status {statuses})", time.as_secs_f64() * 1000.0)
                })
                .collect();
            println!("| {program} | {} | {} |", signal.as_str(), cells.join(" | "));
        }
    }
    println!();
    println!(
        "The slowest, {:.2} ms, is {:.0}x under the 100 ms goal.",
        slowest.as_secs_f64() * 1000.0,
        0.1 / slowest.as_secs_f64()
    );
    println!();
}

fn column(arch: Arch) -> String {
    match arch {
        Arch::Arm64 => format!("{} (qemu-aarch64)", arch.platform()),
        _ => arch.platform().to_string(),
    }
}

/// The command line that runs `program` for `arch`, its files written into `dir`.
fn program_argv(dir: &Path, arch: Arch, program: &str) -> Vec<String> {
    let write = |name: &str, arch: Arch, bytes: Vec<u8>| write_exe(&dir.join(format!("{name}-{arch:?}")), &bytes);
    match program {
        "pause" => argv(arch, &write("pause", arch, pause::program(arch))),
        "http" => {
            let response = b"HTTP/1.0 200 OK\r\n\r\n";
            argv(arch, &write("http", arch, http::program(arch, free_port(), response)))
        }
        _ => {
            // The child is the host's pause: init's time is what is measured.
            let mut argv = argv(arch, &write("init", arch, init::program(arch)));
            let child = write("pause", Arch::Amd64, pause::program(Arch::Amd64));
            argv.push(child.display().to_string());
            argv
        }
    }
}

/// The median time from `signal` to the exit of `argv` run as PID 1, and the exit
/// statuses seen.
fn stop_as_pid_1(arch: Arch, argv: &[String], signal: Signal) -> (Duration, String) {
    let mut statuses = Vec::new();
    let time = median_measured(RUNS, || {
        let mut unshare = Command::new("unshare")
            .args(["--fork", "--pid", "--"])
            .args(argv)
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare starts");
        let pid1 = first_child(unshare.id() as i32);
        wait_until_handling(pid1, arch);
        if let Some(&child) = children(pid1).first() {
            wait_until_handling(child, arch);
        }
        let sent = Instant::now();
        kill(Pid::from_raw(pid1), signal).expect("signal PID 1");
        let status = wait_at_most(&mut unshare, NEVER);
        statuses.push(status.map_or("never".to_owned(), |code| code.to_string()));
        sent.elapsed()
    });
    statuses.sort();
    statuses.dedup();
    (time, statuses.join(", "))
}

fn children(pid: i32) -> Vec<i32> {
    let listed = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    listed.split_whitespace().filter_map(|pid| pid.parse().ok()).collect()
}

fn first_child(pid: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(&child) = children(pid).first() {
            return child;
        }
        assert!(Instant::now() < deadline, "{pid} started no child");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The exit code, or None if `child` had not ended after `limit` (then it is killed).
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Rows of the `docker stop` table that the ratios compare.
const SPECK_INIT: &str = "speck init (child: speck pause)";
const TINI: &str = "docker --init (tini), child /bin/sleep";
const NO_INIT: &str = "/bin/sleep, no init";

/// How long a `docker stop` took, and the container's exit code.
type Stopped = (Duration, String);

/// One image to stop: what `docker run` gets, and how to know it is ready.
struct Stoppable {
    run_args: Vec<String>,
    ready: Box<dyn Fn()>,
}

fn docker_stop(dir: &Path) {
    if !Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|out| out.status.success())
    {
        println!("docker stop: skipped, docker is not running here (scripts/engines.sh up starts it)");
        return;
    }
    let speck = env!("CARGO_BIN_EXE_speck");
    let platforms = [Arch::Amd64, Arch::I386];
    println!("docker stop, from the command to its return (median of {DOCKER_RUNS}; Docker's kill timeout is 10 s)");
    println!();
    println!(
        "| PID 1 | {} | exit code |",
        platforms.map(|arch| arch.platform().to_string()).join(" | ")
    );
    println!("|---|---:|---:|---:|");
    let mut rows: Vec<(String, Vec<Option<Stopped>>)> = Vec::new();
    for (name, image) in [("speck pause", "pause"), (SPECK_INIT, "init"), ("speck http", "http")] {
        let cells = platforms
            .iter()
            .map(|&arch| {
                let (stoppable, tag) = speck_image(speck, dir, arch, image);
                let stopped = timed_docker_stop(&stoppable, DOCKER_RUNS);
                let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
                Some(stopped)
            })
            .collect();
        rows.push((name.to_owned(), cells));
    }
    // The peers: Docker's --init (tini) with /bin/sleep as its child, and /bin/sleep as
    // PID 1 without an init, on the host's platform.
    let sleep_tag = "speck-bench-stop-sleep:1";
    run(Command::new(speck).args(["pack", "/bin/sleep", "--load", "docker", "-t", sleep_tag, "--", "60"]));
    for (name, init, runs) in [(TINI, true, DOCKER_RUNS), (NO_INIT, false, 1)] {
        let mut run_args = vec!["--network=none".to_owned()];
        if init {
            run_args.push("--init".to_owned());
        }
        run_args.push(sleep_tag.to_owned());
        let stoppable = Stoppable {
            run_args,
            ready: Box::new(|| std::thread::sleep(Duration::from_millis(300))),
        };
        rows.push((name.to_owned(), vec![Some(timed_docker_stop(&stoppable, runs)), None]));
    }
    let _ = Command::new("docker").args(["rmi", "-f", sleep_tag]).output();
    let host_time = |name: &str| {
        let row = rows.iter().find(|(row, _)| row == name).expect("a row of this table");
        row.1[0].as_ref().map_or(Duration::ZERO, |(time, _)| *time)
    };
    let (init, tini, no_init) = (host_time(SPECK_INIT), host_time(TINI), host_time(NO_INIT));
    for (name, cells) in &rows {
        let codes: Vec<String> = cells.iter().flatten().map(|(_, code)| code.clone()).collect();
        let times: Vec<String> = cells
            .iter()
            .map(|cell| {
                cell.as_ref()
                    .map_or("-".to_owned(), |(time, _)| format!("{:.2} s", time.as_secs_f64()))
            })
            .collect();
        println!("| {name} | {} | {} |", times.join(" | "), codes.join(", "));
    }
    println!();
    println!(
        "On {}: speck init against tini, both forwarding SIGTERM to a child: {:.2}x the time; \
         against a PID 1 without a handler: {:.0}x sooner.",
        Arch::Amd64.platform(),
        init.as_secs_f64() / tini.as_secs_f64(),
        no_init.as_secs_f64() / init.as_secs_f64()
    );
}

/// Makes and loads speck's `image` for `arch`, ready to be stopped; and its tag.
fn speck_image(speck: &str, dir: &Path, arch: Arch, image: &str) -> (Stoppable, String) {
    let platform = arch.platform().to_string();
    let tag = format!("speck-bench-stop-{image}-{arch:?}:1").to_lowercase();
    let mut make = Command::new(speck);
    let mut run_args = vec!["--network=none".to_owned()];
    let port = free_port();
    let ready: Box<dyn Fn()> = match image {
        "pause" => {
            make.arg("pause");
            Box::new(|| std::thread::sleep(Duration::from_millis(300)))
        }
        "http" => {
            make.args(["http", "--port", &port.to_string(), "--body", "up\n"]);
            run_args = vec!["--network=host".to_owned()];
            Box::new(move || wait_for_answer(port))
        }
        _ => {
            let file = |name: &str, bytes: Vec<u8>| write_exe(&dir.join(format!("docker-{name}-{arch:?}")), &bytes);
            let init = file("init", init::program(arch));
            let pause = file("pause", pause::program(arch));
            make.arg("pack")
                .arg(format!("{}:/init", init.display()))
                .arg(format!("{}:/pause", pause.display()))
                .args(["--entrypoint", "/init"]);
            Box::new(|| std::thread::sleep(Duration::from_millis(300)))
        }
    };
    make.args(["--platform", &platform, "--load", "docker", "-t", &tag]);
    if image == "init" {
        make.args(["--", "/pause"]);
    }
    run(&mut make);
    run_args.push(tag.clone());
    (Stoppable { run_args, ready }, tag)
}

/// Waits until http on `port` answers.
fn wait_for_answer(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let url = format!("http://127.0.0.1:{port}/");
    while !Command::new("curl")
        .args(["-sf", "-m", "1", &url])
        .output()
        .is_ok_and(|out| out.status.success())
    {
        assert!(Instant::now() < deadline, "http on {port} never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The median time `docker stop` takes for `stoppable` over `runs` runs, and its exit
/// code (the last run's).
fn timed_docker_stop(stoppable: &Stoppable, runs: usize) -> Stopped {
    let mut code = String::new();
    let time = median_measured(runs, || {
        let container = format!("speck-bench-stop-{}", std::process::id());
        let _ = Command::new("docker").args(["rm", "-f", &container]).output();
        run(Command::new("docker")
            .args(["run", "-d", "--name", &container])
            .args(&stoppable.run_args));
        (stoppable.ready)();
        let started = Instant::now();
        run(Command::new("docker").args(["stop", &container]));
        let took = started.elapsed();
        code = output(Command::new("docker").args(["inspect", "-f", "{{.State.ExitCode}}", &container]))
            .trim()
            .to_owned();
        let _ = Command::new("docker").args(["rm", "-f", &container]).output();
        took
    });
    (time, code)
}
