//! Starting a container with Linux namespaces, rootless or as root.
//!
//! Owns the processes and mounts; takes the unpacking and the process rules from its
//! siblings. Three processes:
//!
//! - **speck** (the caller) makes a private temporary directory, forks the monitor, and,
//!   when not root, writes the monitor's uid/gid maps (with `newuidmap`/`newgidmap` and
//!   the user's `/etc/subuid` range when there is one, else only its own id as 0);
//! - the **monitor** enters a new user namespace (when not root) and a new PID
//!   namespace, unpacks the image there (so owners in the image are real owners in the
//!   namespace), forks the container's PID 1, waits for it, removes the tree, and exits
//!   with its status (128+N when signal N killed it);
//! - **PID 1** enters new mount, UTS, IPC and (unless `--net host`) network namespaces,
//!   mounts `/proc`, a tmpfs `/dev` with the host's null, zero, full, random, urandom
//!   (and tty when there is a terminal) bound in, pivots into the tree, takes the user,
//!   and executes the command.
//!
//! PID 1 dies with the monitor (`PR_SET_PDEATHSIG`); the monitor, told of speck's death
//! by SIGTERM, kills PID 1 and removes the tree first. Errors before the command runs
//! reach speck through a pipe and are returned, not printed by the children. Nothing is
//! done about capabilities, seccomp or cgroups: as root, the container is root.

use super::process::{Overrides, Process, process};
use super::unpack::{self, Limits, Unpacked};
use crate::image::{Image, Platform};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork};
use std::ffi::CString;
use std::io::{BufRead, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Status of a container that could not be set up (as `docker run` reports it).
pub const SETUP_FAILED: i32 = 125;
/// Status when the command exists but cannot be executed.
pub const CANNOT_EXECUTE: i32 = 126;
/// Status when the command is not found.
pub const NOT_FOUND: i32 = 127;

/// Whether the container gets its own network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    /// A network namespace with only loopback (Docker's `--network none`).
    #[default]
    None,
    /// The host's network.
    Host,
}

/// How to run a container.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Docker's overrides of the config.
    pub overrides: Overrides,
    /// Network namespace or the host's.
    pub network: Network,
    /// Where stdout and stderr go instead of speck's own (for `speck check`).
    pub output: Option<OwnedFd>,
    /// Bounds on what the image may unpack to.
    pub limits: Limits,
}

/// A container that could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Setting up failed (namespaces, unpacking, user lookup, mounts).
    #[error("{0}")]
    Setup(String),
    /// The command could not be executed; `status` is what docker would exit with.
    #[error("{message}")]
    Exec {
        /// 126 or 127.
        status: i32,
        /// What failed.
        message: String,
    },
}

impl RunError {
    /// The exit status `docker run` gives for this failure.
    pub fn status(&self) -> i32 {
        match self {
            RunError::Setup(_) => SETUP_FAILED,
            RunError::Exec { status, .. } => *status,
        }
    }
}

fn setup(context: &str, error: impl std::fmt::Display) -> RunError {
    RunError::Setup(format!("{context}: {error}"))
}

/// A running container: its monitor and its PID 1 (as this PID namespace numbers it).
#[derive(Debug)]
pub struct Started {
    monitor: Pid,
    init: Pid,
    /// What the unpack noted.
    pub notes: Vec<String>,
    status: Option<i32>,
    _scratch: tempfile::TempDir,
}

impl Started {
    /// Sends `signal` to the container's PID 1 (which, as PID 1, ignores it unless it
    /// has a handler).
    pub fn signal(&self, signal: Signal) {
        let _ = kill(self.init, signal);
    }

    /// The exit status once the container has ended (128+N for signal N).
    pub fn try_wait(&mut self) -> Option<i32> {
        if self.status.is_none() {
            self.status = match waitpid(self.monitor, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => None,
                Ok(status) => Some(status_code(status)),
                Err(_) => Some(SETUP_FAILED),
            };
        }
        self.status
    }

    /// Waits at most `timeout` for the container to end.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the container to end.
    pub fn wait(&mut self) -> i32 {
        while self.status.is_none() {
            self.status = match waitpid(self.monitor, None) {
                Err(Errno::EINTR) => None,
                Ok(status) => Some(status_code(status)),
                Err(_) => Some(SETUP_FAILED),
            };
        }
        self.status.unwrap_or(SETUP_FAILED)
    }
}

/// 128+N for signal N, as shells and docker report it.
fn status_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        _ => SETUP_FAILED,
    }
}

/// The signals speck passes on to the container, as `docker run` does.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Runs `image` in the foreground: forwards [`FORWARDED`] signals to its PID 1 and
/// returns its exit status.
/// `report` gets the unpack's notes (what was skipped or contained) once it has started.
pub fn run(image: &Image, options: RunOptions, report: impl Fn(&str)) -> Result<i32, RunError> {
    let mut watched = SigSet::empty();
    for signal in FORWARDED.into_iter().chain([Signal::SIGCHLD]) {
        // A shell starts background jobs with SIGINT ignored; forwarding needs it delivered.
        // SAFETY: restoring the default disposition installs no handler.
        unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) }.ok();
        watched.add(signal);
    }
    let mut previous = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&watched), Some(&mut previous)).map_err(|e| setup("signals", e))?;
    let result = start(image, options).map(|mut started| {
        started.notes.iter().for_each(|note| report(note));
        loop {
            if let Some(status) = started.try_wait() {
                break status;
            }
            match watched.wait() {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(signal) => started.signal(signal),
            }
        }
    });
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&previous), None).ok();
    result
}

/// Starts `image`; returns once its command is executing (or failed to).
pub fn start(image: &Image, options: RunOptions) -> Result<Started, RunError> {
    let scratch = tempfile::Builder::new()
        .prefix("speck-run-")
        .tempdir()
        .map_err(|e| setup("cannot make a temporary directory", e))?;
    let root = scratch.path().join("root");
    std::fs::create_dir(&root).map_err(|e| setup("cannot make a temporary directory", e))?;
    let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| setup("pipe", e))?;
    let (go_read, go_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| setup("pipe", e))?;
    let rootless = !Uid::effective().is_root();
    let speck = Pid::this();
    let hostname = hostname();
    // SAFETY: speck is single-threaded here (no runtime or worker threads are started
    // before a run), so the child may allocate.
    match unsafe { fork() }.map_err(|e| setup("fork", e))? {
        ForkResult::Child => {
            drop((report_read, go_write));
            let mut report = std::fs::File::from(report_write);
            let status = match monitor(
                image,
                &options,
                &root,
                &hostname,
                rootless.then_some(go_read),
                &mut report,
                speck,
            ) {
                Ok(init) => {
                    drop(report); // speck reads until the command runs: PID 1's copy closes on exec
                    wait_for(init, speck)
                }
                Err(message) => {
                    let _ = writeln!(report, "error {}", message.replace('\n', " "));
                    SETUP_FAILED
                }
            };
            // Removed from inside the user namespace: outside it, files owned by the
            // image's (mapped) users cannot be removed.
            let _ = std::fs::remove_dir_all(scratch.path());
            // SAFETY: leaves the forked child without running the parent's destructors.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => {
            drop((report_write, go_read));
            let mut started = Started {
                monitor: child,
                init: Pid::from_raw(0),
                notes: Vec::new(),
                status: None,
                _scratch: scratch,
            };
            let mut report = std::io::BufReader::new(std::fs::File::from(report_read));
            if rootless {
                map_ids(child, &mut report, go_write).inspect_err(|_| {
                    let _ = kill(child, Signal::SIGKILL);
                    started.wait();
                })?;
            }
            read_report(&mut report, &mut started)?;
            Ok(started)
        }
    }
}

/// Reads what the monitor and PID 1 say until the command runs (the pipe closes on exec).
fn read_report(report: &mut impl BufRead, started: &mut Started) -> Result<(), RunError> {
    let mut failure = None;
    for line in report.lines() {
        let line = line.map_err(|e| setup("reading the container's report", e))?;
        let (kind, rest) = line.split_once(' ').unwrap_or((&line, ""));
        match kind {
            "pid" => started.init = Pid::from_raw(rest.parse().unwrap_or(0)),
            "note" => started.notes.push(rest.to_owned()),
            "error" => failure = Some(RunError::Setup(rest.to_owned())),
            "exec" => {
                let (status, message) = rest.split_once(' ').unwrap_or(("127", rest));
                failure = Some(RunError::Exec {
                    status: status.parse().unwrap_or(NOT_FOUND),
                    message: message.to_owned(),
                });
            }
            _ => {}
        }
    }
    match failure {
        Some(error) => {
            started.wait();
            Err(error)
        }
        None => Ok(()),
    }
}

/// A hostname as Docker makes one: 12 hex digits.
fn hostname() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{nanos}{}", std::process::id());
    crate::digest::Digest::of(seed.as_bytes()).to_string()["sha256:".len()..][..12].to_owned()
}

/// Writes the monitor's uid and gid maps once it has its user namespace.
fn map_ids(monitor: Pid, report: &mut impl BufRead, go: OwnedFd) -> Result<(), RunError> {
    let mut line = String::new();
    report
        .read_line(&mut line)
        .map_err(|e| setup("reading the container's report", e))?;
    if line.trim() != "unshared" {
        let message = line.trim().strip_prefix("error ").unwrap_or(line.trim()).to_owned();
        return Err(RunError::Setup(message));
    }
    let (uid, gid) = (Uid::current().as_raw(), Gid::current().as_raw());
    let name = nix::unistd::User::from_uid(Uid::current())
        .ok()
        .flatten()
        .map(|u| u.name);
    let ranges = (
        subordinate("/etc/subuid", name.as_deref(), uid),
        subordinate("/etc/subgid", name.as_deref(), uid),
    );
    let pid = monitor.as_raw().to_string();
    let mapped = match ranges {
        (Some((uid_start, uid_count)), Some((gid_start, gid_count))) => {
            let helper = |tool: &str, own: u32, start: u32, count: u32| {
                let args = [
                    pid.clone(),
                    "0".into(),
                    own.to_string(),
                    "1".into(),
                    "1".into(),
                    start.to_string(),
                    count.to_string(),
                ];
                std::process::Command::new(tool)
                    .args(args)
                    .status()
                    .is_ok_and(|status| status.success())
            };
            helper("newuidmap", uid, uid_start, uid_count) && helper("newgidmap", gid, gid_start, gid_count)
        }
        _ => false,
    };
    if !mapped {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let write = |file: &str, text: String| {
            std::fs::write(proc.join(file), text).map_err(|e| setup(&format!("cannot write /proc/{pid}/{file}"), e))
        };
        write("setgroups", "deny".into())?;
        write("uid_map", format!("0 {uid} 1"))?;
        write("gid_map", format!("0 {gid} 1"))?;
    }
    std::fs::File::from(go)
        .write_all(if mapped { b"m" } else { b"1" })
        .map_err(|e| setup("starting the container", e))
}

/// The first subordinate id range of a user in `/etc/subuid` or `/etc/subgid`.
fn subordinate(file: &str, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let owner = fields.next()?;
        if Some(owner) != name && owner != uid.to_string() {
            return None;
        }
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// The monitor until PID 1 is forked: namespaces, unpack, the process. Returns PID 1.
fn monitor(
    image: &Image,
    options: &RunOptions,
    root: &Path,
    hostname: &str,
    // When rootless: where speck says it has mapped the ids.
    rootless: Option<OwnedFd>,
    report: &mut std::fs::File,
    speck: Pid,
) -> Result<Pid, String> {
    let mut woken = SigSet::empty();
    woken.add(Signal::SIGCHLD);
    woken.add(Signal::SIGTERM);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&woken), None).map_err(|e| format!("sigprocmask: {e}"))?;
    die_with_parent(Signal::SIGTERM, Some(speck))?;
    let mut one_id_only = false;
    if let Some(go) = rootless {
        unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| {
            format!("cannot make a user namespace ({e}): this kernel or its settings (user.max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns) forbid rootless containers; run as root or allow them")
        })?;
        writeln!(report, "unshared").map_err(|e| e.to_string())?;
        let mut answer = [0u8];
        std::fs::File::from(go)
            .read_exact(&mut answer)
            .map_err(|_| "speck could not map this user's ids".to_string())?;
        one_id_only = answer[0] == b'1';
    }
    unshare(CloneFlags::CLONE_NEWPID).map_err(|e| format!("cannot make a PID namespace: {e}"))?;
    let Unpacked { notes, .. } = unpack::unpack(image, root, &options.limits).map_err(|e| e.to_string())?;
    for note in notes {
        writeln!(report, "note {note}").map_err(|e| e.to_string())?;
    }
    let process = process(image.config(), &options.overrides, root, hostname).map_err(|e| e.to_string())?;
    if one_id_only && (process.uid != 0 || process.gid != 0) {
        return Err(format!(
            "cannot run as user {}:{} without root: only your own id is mapped; give this user a range in /etc/subuid and /etc/subgid (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER) and install newuidmap (Debian: uidmap), or run with -u 0",
            process.uid, process.gid
        ));
    }
    for (dir, mode) in [
        ("/proc", 0o555),
        ("/dev", 0o755),
        ("/tmp", 0o1777),
        (process.cwd.as_str(), 0o755),
    ] {
        unpack::make_dir(root, dir, mode).map_err(|e| format!("cannot make {dir} in the container: {e}"))?;
    }
    let mut prepared = Prepared::new(&process, root, hostname, options.network)?;
    prepared.foreign_platform = (!image.platform().matches(&Platform::host())).then(|| image.platform().to_string());
    let output = options.output.as_ref().map(|fd| fd.as_raw_fd());
    // SAFETY: the monitor is single-threaded.
    let init = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let (status, message) = pid1(&prepared, output);
            let _ = writeln!(report, "exec {status} {}", message.replace('\n', " "));
            // SAFETY: leaves the forked child without running destructors.
            unsafe { libc::_exit(status) }
        }
        ForkResult::Parent { child } => child,
    };
    writeln!(report, "pid {init}").map_err(|e| e.to_string())?;
    Ok(init)
}

/// Waits for PID 1 and returns its status.
/// The monitor's wait for PID 1 (SIGCHLD and SIGTERM are blocked in the monitor). A
/// SIGTERM once `speck` is gone (its death signal) kills PID 1, so that the monitor can
/// remove the tree before it exits.
fn wait_for(init: Pid, speck: Pid) -> i32 {
    let mut woken = SigSet::empty();
    woken.add(Signal::SIGCHLD);
    woken.add(Signal::SIGTERM);
    loop {
        match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(status) => return status_code(status),
            Err(_) => return SETUP_FAILED,
        }
        if woken.wait() == Ok(Signal::SIGTERM) && nix::unistd::getppid() != speck {
            let _ = kill(init, Signal::SIGKILL);
        }
    }
}

/// Sends `signal` to this process when its parent dies, and at once if `parent` (when
/// it can be seen from here) is already gone.
fn die_with_parent(signal: Signal, parent: Option<Pid>) -> Result<(), String> {
    // SAFETY: prctl with an integer argument.
    let result = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) };
    Errno::result(result).map_err(|e| format!("prctl: {e}"))?;
    if parent.is_some_and(|parent| nix::unistd::getppid() != parent) {
        kill(Pid::this(), signal).map_err(|e| format!("kill: {e}"))?;
    }
    Ok(())
}

/// Everything PID 1 needs, made before it is forked.
struct Prepared {
    root: PathBuf,
    argv: Vec<CString>,
    env: Vec<CString>,
    candidates: Vec<CString>,
    hostname: String,
    network: Network,
    process: Process,
    /// The image's platform, when it is not this machine's.
    foreign_platform: Option<String>,
}

impl Prepared {
    fn new(process: &Process, root: &Path, hostname: &str, network: Network) -> Result<Self, String> {
        let c = |text: &str| CString::new(text).map_err(|_| format!("{text:?} contains a NUL byte"));
        let argv = process.argv.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
        let env = process.env.iter().map(|e| c(e)).collect::<Result<Vec<_>, _>>()?;
        let program = &process.argv[0];
        let path = process
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(super::process::DEFAULT_PATH);
        let candidates = if program.contains('/') {
            vec![c(program)?]
        } else {
            path.split(':')
                .filter(|dir| !dir.is_empty())
                .map(|dir| c(&format!("{}/{program}", dir.trim_end_matches('/'))))
                .collect::<Result<_, _>>()?
        };
        Ok(Self {
            root: root.to_owned(),
            argv,
            env,
            candidates,
            hostname: hostname.to_owned(),
            network,
            foreign_platform: None,
            process: process.clone(),
        })
    }
}

/// PID 1 before its command: namespaces, mounts, root, user, signals, exec. Returns
/// only on failure, with the status and the message.
fn pid1(prepared: &Prepared, output: Option<i32>) -> (i32, String) {
    match enter(prepared, output) {
        Err(message) => (SETUP_FAILED, message),
        Ok(()) => execute(prepared),
    }
}

fn enter(prepared: &Prepared, output: Option<i32>) -> Result<(), String> {
    // The monitor is outside PID 1's namespace: getppid() says 0, so there is no check.
    die_with_parent(Signal::SIGKILL, None)?;
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    let mut namespaces = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if prepared.network == Network::None {
        namespaces |= CloneFlags::CLONE_NEWNET;
    }
    unshare(namespaces).map_err(|e| format!("cannot make the container's namespaces: {e}"))?;
    let failed = |what: &str| {
        let what = what.to_owned();
        move |e: Errno| format!("{what}: {e}")
    };
    let root = &prepared.root;
    let none: Option<&str> = None;

    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).map_err(failed("making mounts private"))?;
    mount(Some(root), root, none, MsFlags::MS_BIND | MsFlags::MS_REC, none).map_err(failed("binding the root"))?;
    let quiet = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &root.join("proc"), Some("proc"), quiet, none).map_err(failed("mounting /proc"))?;
    let dev = root.join("dev");
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=65536k"),
    )
    .map_err(failed("mounting /dev"))?;
    let mut devices = vec!["null", "zero", "full", "random", "urandom"];
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        devices.push("tty");
    }
    for device in devices {
        let place = dev.join(device);
        std::fs::File::create(&place).map_err(|e| format!("/dev/{device}: {e}"))?;
        let host = format!("/dev/{device}");
        mount(Some(host.as_str()), &place, none, MsFlags::MS_BIND, none).map_err(failed(&host))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link)).map_err(|e| format!("/dev/{link}: {e}"))?;
    }
    nix::unistd::sethostname(&prepared.hostname).map_err(failed("sethostname"))?;
    if prepared.network == Network::None {
        loopback_up()?;
    }
    std::env::set_current_dir(root).map_err(|e| format!("chdir: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(failed("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(failed("detaching the old root"))?;
    let cwd = &prepared.process.cwd;
    std::env::set_current_dir(cwd).map_err(|e| format!("working directory {cwd}: {e}"))?;
    if let Some(fd) = output {
        for target in [1, 2] {
            // SAFETY: duplicating descriptors this process owns.
            Errno::result(unsafe { libc::dup2(fd, target) }).map_err(failed("redirecting output"))?;
        }
    }
    take_user(&prepared.process)?;
    reset_signals();
    Ok(())
}

/// Drops to the process's user and groups.
fn take_user(process: &Process) -> Result<(), String> {
    let groups: Vec<Gid> = process.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    match nix::unistd::setgroups(&groups) {
        // A namespace that maps one id denies setgroups; with no extra groups that is fine.
        Err(Errno::EPERM) if groups.is_empty() => {}
        result => result.map_err(|e| format!("setgroups: {e}"))?,
    }
    let gid = Gid::from_raw(process.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("cannot take group {}: {e}", process.gid))?;
    let uid = Uid::from_raw(process.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("cannot take user {}: {e}", process.uid))
}

/// Default dispositions and an empty mask, as a container's first process gets them
/// (speck itself ignores SIGPIPE and blocks the signals it forwards).
fn reset_signals() {
    for signal in Signal::iterator() {
        if !matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            // SAFETY: restoring the default disposition installs no handler.
            unsafe { nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl) }.ok();
        }
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ok();
}

/// Brings up `lo` in the new network namespace, as Docker's `none` network has it.
fn loopback_up() -> Result<(), String> {
    // SAFETY: plain socket and ioctl calls on a zeroed, NUL-terminated ifreq.
    unsafe {
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if socket < 0 {
            return Err(format!("socket: {}", Errno::last()));
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = *byte as libc::c_char;
        }
        let mut result = libc::ioctl(socket, libc::SIOCGIFFLAGS, &mut request);
        if result == 0 {
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            result = libc::ioctl(socket, libc::SIOCSIFFLAGS, &request);
        }
        let error = Errno::last();
        libc::close(socket);
        if result < 0 {
            return Err(format!("bringing up lo: {error}"));
        }
    }
    Ok(())
}

/// Executes the command, searching the container's PATH as runc does; returns the
/// status and message of docker's errors when nothing could be executed.
fn execute(prepared: &Prepared) -> (i32, String) {
    let mut denied = None;
    for candidate in &prepared.candidates {
        match nix::unistd::execve(candidate, &prepared.argv, &prepared.env) {
            Err(Errno::ENOENT | Errno::ENOTDIR) => {}
            Err(e) => {
                denied.get_or_insert((candidate.to_string_lossy().into_owned(), e));
            }
        }
    }
    let program = &prepared.process.argv[0];
    match denied {
        Some((path, Errno::ENOEXEC)) => (
            CANNOT_EXECUTE,
            match &prepared.foreign_platform {
                Some(platform) => format!(
                    "exec {path}: exec format error: the image is for {platform} and this machine is {}, and no emulator registered in binfmt_misc takes it; run the image built for this machine, or register one (Debian: qemu-user-static; docker: tonistiigi/binfmt)",
                    Platform::host()
                ),
                None => format!(
                    "exec {path}: exec format error: it is not a program for this machine, or a script whose #! interpreter is missing"
                ),
            },
        ),
        Some((path, error)) => (CANNOT_EXECUTE, format!("exec {path}: {}", error.desc())),
        None if program.contains('/') => (
            NOT_FOUND,
            format!("exec {program}: no such file or directory in the image (or its ELF interpreter is missing)"),
        ),
        None => (
            NOT_FOUND,
            format!("exec: {program:?}: executable file not found in $PATH"),
        ),
    }
}
