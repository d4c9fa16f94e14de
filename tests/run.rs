//! `speck run` against `docker run`: the same stdout, stderr and exit status for every
//! kind of image the suite builds, as root and rootless; signals reaching PID 1; `speck
//! check` findings; `pack --init`; nothing left behind.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One image and how it is run: the speck command that makes it, the options given to
/// both `speck run` and `docker run`, and the arguments after the image.
struct Case {
    name: &'static str,
    make: Vec<String>,
    options: Vec<&'static str>,
    args: Vec<&'static str>,
    /// When the runtime itself fails (status 125-127, in each tool's own words): what
    /// speck's message must name.
    runtime_error: Option<&'static str>,
}

fn case(name: &'static str, make: &[&str], options: &[&'static str], args: &[&'static str]) -> Case {
    Case {
        name,
        make: make.iter().map(|s| s.to_string()).collect(),
        options: options.to_vec(),
        args: args.to_vec(),
        runtime_error: None,
    }
}

fn cases(dir: &Path) -> Vec<Case> {
    let reporter = static_c_program(dir, "reporter", REPORTER_C);
    let reporter = format!("{}:/bin/reporter", reporter.display());
    let echo = ["-c", "echo $FOO $PWD $HOME"];
    let mut cases = vec![
        case("hello", &["hello", "hi there\n"], &[], &[]),
        case("hello-exit", &["hello", "bye", "--exit", "3"], &[], &[]),
        case("false", &["false"], &[], &[]),
        case(
            "dash",
            &["pack", "/bin/sh"],
            &[],
            &["-c", "echo out; echo err >&2; exit 4"],
        ),
        case(
            "env-workdir",
            &["pack", "/bin/sh"],
            &["-e", "FOO=bar", "-w", "/work/here"],
            &echo,
        ),
        case(
            "entrypoint",
            &["pack", "/bin/sh"],
            &["--entrypoint", "/dash"],
            &["-c", "echo entry"],
        ),
        case("nonroot", &["pack", "/usr/bin/id", "--passwd", "nonroot"], &[], &[]),
        case(
            "user-override",
            &["pack", "/usr/bin/id", "--passwd", "nonroot"],
            &["-u", "0"],
            &[],
        ),
        case(
            "reporter",
            &["pack", &reporter, "--workdir", "/srv"],
            &["-e", "K=v"],
            &["a b", "c"],
        ),
        Case {
            runtime_error: Some("/nope"),
            ..case("not-found", &["hello", "x"], &["--entrypoint", "/nope"], &[])
        },
        case("true", &["true"], &[], &[]),
        case("exit", &["exit", "7"], &[], &[]),
        case("hello-386", &["hello", "i386\n", "--platform", "linux/386"], &[], &[]),
        case("init-missing", &["init", "--", "/nope"], &[], &[]),
        case(
            "pack-init",
            &["pack", "/bin/sh", "--init", "--", "-c", "echo via init; exit 6"],
            &[],
            &[],
        ),
        case(
            "image-config",
            &[
                "pack",
                "/bin/sh",
                "-e",
                "A=image",
                "-w",
                "/data",
                "--",
                "-c",
                "echo $A $PWD",
            ],
            &["-e", "A=override"],
            &[],
        ),
        case("curl", &["pack", "/usr/bin/curl", "--ca-certs"], &[], &["--version"]),
        case(
            "bash-conventional",
            &["pack", "/bin/bash", "--tar", "conventional", "--strip"],
            &[],
            &["-c", "echo ${#BASH_VERSION} $((6 * 7)); kill -TERM $$"],
        ),
    ];
    // Under the emulation binfmt_misc has for arm64 (see a_foreign_image_runs_...).
    if engine("arm64-emulation") {
        cases.push(case(
            "hello-arm64",
            &["hello", "arm64\n", "--platform", "linux/arm64"],
            &["--platform", "linux/arm64"],
            &[],
        ));
    }
    cases
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn speck_run_gives_what_docker_run_gives_as_root_and_rootless() {
    if !engine("docker") || !engine("gcc-static") {
        return;
    }
    let rootless = rootless_user();
    let dir = shared_workdir();
    let mut cleanup = Cleanup(Vec::new());
    for case in cases(dir.path()) {
        let archive = dir.path().join(format!("{}.tar", case.name));
        let tag = unique("speck-run-test");
        let mut make = speck();
        make.arg(&case.make[0])
            .arg("-o")
            .arg(&archive)
            .args(["--tag", &tag, "--load", "docker"])
            .args(&case.make[1..]);
        ok(make);
        cleanup.0.push(format!("docker rmi {tag}"));
        set_readable(&archive);
        let mut docker = Command::new("docker");
        docker
            .args(["run", "--rm", "--network=none"])
            .args(&case.options)
            .arg(&tag)
            .args(&case.args);
        let docker = output(docker);
        let mut run = speck();
        run.arg("run")
            .arg(&archive)
            .args(&case.options)
            .arg("--")
            .args(&case.args);
        let mut runs = vec![("root", output(&mut run))];
        if let Some(user) = &rootless {
            runs.push(("rootless", output(as_user(user, &run))));
        }
        for (who, speck_run) in runs {
            let context = format!("{} ({who}): speck {speck_run:?} / docker {docker:?}", case.name);
            assert_eq!(speck_run.status.code(), docker.status.code(), "{context}");
            assert_eq!(text(&speck_run.stdout), text(&docker.stdout), "{context}");
            match case.runtime_error {
                None => assert_eq!(text(&speck_run.stderr), text(&docker.stderr), "{context}"),
                Some(names) => assert!(text(&speck_run.stderr).contains(names), "{context}"),
            }
        }
    }
}

/// Every output form speck writes, and every source it reads (a registry, docker's and
/// podman's stores, a pulled layout), run by `speck run` as root and rootless: each gives
/// what `docker run` gives for the same program.
#[test]
fn every_form_and_source_runs_as_docker_runs_it() {
    if !["docker", "podman", "registry"].iter().all(|e| engine(e)) {
        return;
    }
    let rootless = rootless_user();
    let dir = shared_workdir();
    let tag = unique("speck-forms");
    let _cleanup = Cleanup(vec![format!("docker rmi {tag}"), format!("podman rmi {tag}")]);
    let program = ["hello", "every form\n", "--exit", "2", "-q"];
    ok(speck()
        .args(program)
        .args(["--tag", &tag, "--load", "docker", "--load", "podman"]));
    let docker = output(Command::new("docker").args(["run", "--rm", "--network=none", &tag]));
    assert_eq!(docker.status.code(), Some(2), "{docker:?}");

    let forms: &[(&str, &[&str])] = &[
        ("docker.tar", &[]),
        ("oci", &["--format", "oci"]),
        ("oci-none", &["--format", "oci", "--compression", "none"]),
        ("oci-all", &["--format", "oci", "--platform", "all"]),
        ("oci.tar", &["--format", "oci-archive"]),
        ("both.tar", &["--format", "docker+oci"]),
        ("conventional.tar", &["--tar", "conventional"]),
        ("gzip-layers.tar", &["--compression", "gzip"]),
        ("golf.tar", &["--golf"]),
        ("golf-docker.tar", &["--golf=docker"]),
        ("tar.gz", &["--compress", "gzip"]),
        ("tar.xz", &["--compress", "xz"]),
        ("tar.bz2", &["--compress", "bzip2"]),
        ("tar.zst", &["--compress", "zstd"]),
    ];
    let mut targets = Vec::new();
    for (name, options) in forms {
        let path = dir.path().join(name);
        let made = output(speck().args(program).args(*options).arg("-o").arg(&path));
        assert!(made.status.success(), "{name}: {made:?}");
        assert!(!text(&made.stderr).contains("wrote"), "-q prints no summary: {made:?}");
        targets.push((path.display().to_string(), true));
    }
    let reference = format!("127.0.0.1:5000/{tag}:1");
    ok(speck().args(program).args(["--platform", "all", "--push", &reference]));
    let pulled = dir.path().join("pulled");
    ok(speck()
        .args(["pull", &reference, "--format", "oci", "-q", "-o"])
        .arg(&pulled));
    targets.push((pulled.display().to_string(), true));
    targets.push((format!("registry:{reference}"), true));
    targets.push((format!("docker:{tag}"), false));
    targets.push((format!("podman:{tag}"), false));
    ok(sh(&format!("chmod -R a+rX {}", dir.path().display())));

    for (target, rootless_too) in targets {
        let mut run = speck();
        run.arg("run")
            .arg(&target)
            .env("DOCKER_CONFIG", dir.path().join("no-credentials"));
        let mut runs = vec![("root", output(&mut run))];
        if let (Some(user), true) = (&rootless, rootless_too) {
            runs.push(("rootless", output(as_user(user, &run))));
        }
        for (who, speck_run) in runs {
            let context = format!("{target} ({who}): speck {speck_run:?} / docker {docker:?}");
            assert_eq!(speck_run.status.code(), docker.status.code(), "{context}");
            assert_eq!(text(&speck_run.stdout), text(&docker.stdout), "{context}");
            assert_eq!(text(&speck_run.stderr), text(&docker.stderr), "{context}");
        }
    }
}

/// The HTTP responder, on the host's network: `speck run --net host` (root and rootless)
/// and `docker run --network host` answer a request with the same bytes, and both exit 0
/// on SIGTERM (docker run passes it on, as speck run does).
#[test]
fn http_answers_the_same_under_speck_run_and_docker_run() {
    use std::io::{Read as _, Write as _};
    if !engine("docker") {
        return;
    }
    let rootless = rootless_user();
    let dir = shared_workdir();
    let port = free_port();
    let archive = dir.path().join("http.tar");
    let tag = unique("speck-run-http");
    let _cleanup = Cleanup(vec![format!("docker rmi {tag}")]);
    ok(speck()
        .args(["http", "--port", &port.to_string(), "--body", "served\n", "-q", "-o"])
        .arg(&archive)
        .args(["--tag", &tag, "--load", "docker"]));
    set_readable(&archive);
    let mut docker = Command::new("docker");
    docker.args(["run", "--rm", "--network", "host", &tag]);
    let mut run = speck();
    run.arg("run").arg(&archive).args(["--net", "host"]);
    let mut runners = vec![("docker", docker)];
    if let Some(user) = &rootless {
        runners.push(("speck rootless", as_user(user, &run)));
    }
    runners.push(("speck", run));
    let mut answers = Vec::new();
    for (who, mut runner) in runners {
        let mut child = runner.stdin(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                break stream;
            }
            assert!(Instant::now() < deadline, "{who}: nothing listens on {port}");
            std::thread::sleep(Duration::from_millis(20));
        };
        stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        ok(sh(&format!("kill -TERM {}", child.id())));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{who} on SIGTERM");
        answers.push((who, text(&answer)));
    }
    assert!(answers[0].1.ends_with("\r\n\r\nserved\n"), "{answers:?}");
    for (who, answer) in &answers[1..] {
        assert_eq!(answer, &answers[0].1, "{who} against docker");
    }
}

/// An arm64 hello with a byte of e_ident's padding set: Linux would run it on arm64, but
/// no emulator's binfmt_misc entry matches it, so it cannot run on this host.
fn arm64_no_emulator_takes() -> Vec<u8> {
    let mut program = speck::forge::hello::program(speck::forge::Arch::Arm64, b"hi", 0);
    program[8] = 1;
    program
}

/// An image for another machine runs where binfmt_misc has an emulator that takes it
/// (arm64 here: scripts/engines.sh registers qemu), and otherwise fails as docker's does
/// (exec format error, 126 as runc reports it), speck saying which platform the image is
/// for.
#[test]
fn a_foreign_image_runs_emulated_or_says_which_platform_it_is_for() {
    let dir = workdir();
    if engine("arm64-emulation") {
        let archive = dir.path().join("arm64.tar");
        ok(speck()
            .args(["hello", "arm\n", "--platform", "linux/arm64", "-q", "-o"])
            .arg(&archive));
        let out = output(speck().arg("run").arg(&archive));
        assert_eq!(
            (text(&out.stdout), out.status.code()),
            ("arm\n".into(), Some(0)),
            "{out:?}"
        );
    }
    let file = write_exe(&dir.path().join("unmatched"), &arm64_no_emulator_takes());
    let archive = dir.path().join("unmatched.tar");
    ok(speck()
        .arg("pack")
        .arg(format!("{}:/hello", file.display()))
        .args(["-q", "-o"])
        .arg(&archive));
    let out = output(speck().arg("run").arg(&archive));
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    let says = text(&out.stderr);
    assert!(
        says.contains("exec format error")
            && says.contains("linux/arm64")
            && says.contains(&speck::image::Platform::host().to_string())
            && says.contains("no emulator"),
        "{says}"
    );
}

/// `speck check` warns of a program that other hosts' emulators refuse, and only of
/// such: docker under emulation runs the arm64 hello it is silent about and refuses the
/// one it warns of; the x86 programs' layouts want `e_ident`'s padding, while a packed
/// host program is fine. A warning leaves the status 0.
#[test]
fn check_warns_of_a_program_hosts_of_other_architectures_cannot_emulate() {
    use speck::forge::{Arch, hello};
    let dir = workdir();
    let entry = |bytes| vec![speck::layer::Entry::file("hello", 0o755, bytes).unwrap()];
    let config = speck::image::Config {
        entrypoint: Some(vec!["/hello".into()]),
        ..Default::default()
    };
    let image = |name, bytes, platform| archive_of(dir.path(), name, &entry(bytes), config.clone(), platform);
    let arm64 = image("arm64", hello::program(Arch::Arm64, b"hi", 0), "arm64");
    let unmatched = image("unmatched", arm64_no_emulator_takes(), "arm64");
    let amd64 = image("amd64", hello::program(Arch::Amd64, b"hi", 0), "amd64");
    let i386 = image("386", hello::program(Arch::I386, b"hi", 0), "386");
    let packed = dir.path().join("packed.tar");
    ok(speck().args(["pack", "/bin/true", "-q", "-o"]).arg(&packed));
    let with_init = dir.path().join("with-init.tar");
    ok(speck()
        .args(["pack", "/bin/true", "--init", "-q", "-o"])
        .arg(&with_init));
    let warns = |archive: &Path| {
        let findings = check_json(&["--static"], archive, 0);
        let warning = findings.into_iter().find(|f| f["check"] == "emulation");
        if let Some(w) = &warning {
            assert_eq!(w["verdict"], "warn", "{w}");
            assert!(w["fix"].as_str().unwrap().contains("--platform all"), "{w}");
        }
        warning.is_some()
    };
    let verdicts: Vec<bool> = [&arm64, &unmatched, &amd64, &i386, &packed, &with_init]
        .map(|a| warns(a))
        .into();
    assert_eq!(verdicts, [false, true, true, true, false, false]);
    if engine("arm64-emulation") && engine("docker") {
        let ran = docker_runs(&arm64);
        assert_eq!(text(&ran.stdout), "hi", "{ran:?}");
        let refused = docker_runs(&unmatched);
        assert!(text(&refused.stderr).contains("exec format error"), "{refused:?}");
    }
}

/// The emulator entries `speck check` knows are at least as strict as those Debian's
/// qemu registers: for x86 programs on an arm64 host (its qemu-user-binfmt for arm64),
/// for arm64 ones on this host, and the one registered here.
#[test]
fn the_emulator_entries_check_knows_are_the_ones_emulators_register() {
    if !engine("emulator-entries") {
        return;
    }
    let entries = engines_state().join("binfmt");
    let files = [
        entries.join("qemu-x86_64.conf"),
        entries.join("qemu-i386.conf"),
        "/usr/lib/binfmt.d/qemu-aarch64.conf".into(),
    ];
    let unescape = |field: &str| -> Vec<u8> {
        let hex = field.split("\\x").filter(|byte| !byte.is_empty());
        hex.map(|byte| u8::from_str_radix(byte, 16).unwrap()).collect()
    };
    for file in files {
        let line = std::fs::read_to_string(&file).unwrap();
        let fields: Vec<&str> = line.trim().split(':').collect();
        let (magic, mask) = (unescape(fields[4]), unescape(fields[5]));
        let machine = u16::from_le_bytes([magic[18], magic[19]]);
        let known = speck::collect::executable::EMULATOR_ENTRIES
            .iter()
            .find(|(m, ..)| *m == machine);
        let (_, known_magic, known_mask) = known.unwrap_or_else(|| panic!("{file:?}: machine {machine} unknown"));
        for at in 0..20 {
            assert_eq!(
                known_mask[at] & mask[at],
                mask[at],
                "{file:?}: byte {at} is compared there"
            );
            assert_eq!(
                (known_magic[at] ^ magic[at]) & mask[at],
                0,
                "{file:?}: byte {at} differs"
            );
        }
    }
}

/// A container that cannot be started gives 125, as `docker run` of an image it cannot
/// find does, so that it is never taken for the program's own status: an unreadable
/// image, and an image without the platform asked for.
#[test]
fn run_exits_125_when_it_cannot_start_the_container_as_docker_run_does() {
    let dir = workdir();
    let amd64_only = dir.path().join("amd64.tar");
    ok(speck().args(["exit", "1", "-q", "-o"]).arg(&amd64_only));
    let own_status = output(speck().arg("run").arg(&amd64_only));
    assert_eq!(own_status.status.code(), Some(1), "the program's own status");
    let missing = output(speck().arg("run").arg(dir.path().join("missing.tar")));
    assert_eq!(missing.status.code(), Some(125), "{missing:?}");
    assert!(text(&missing.stderr).contains("missing.tar"), "{missing:?}");
    let platform = output(speck().args(["run", "--platform", "linux/arm64"]).arg(&amd64_only));
    assert_eq!(platform.status.code(), Some(125), "{platform:?}");
    assert!(
        text(&platform.stderr).contains("no image for linux/arm64"),
        "{platform:?}"
    );
    if engine("docker") {
        let docker = output(sh(&format!("docker run --rm {}", unique("speck-no-such-image"))));
        assert_eq!(docker.status.code(), Some(125), "{docker:?}");
    }
}

/// A run that fails after unpacking (an unknown user) leaves nothing behind, also
/// rootless, where the unpacked files belong to the image's mapped users.
#[test]
fn a_failed_setup_leaves_nothing_behind() {
    let rootless = rootless_user();
    let dir = shared_workdir();
    let archive = dir.path().join("nonroot.tar");
    ok(speck()
        .args(["pack", "/usr/bin/id", "--passwd", "nonroot", "-q", "-o"])
        .arg(&archive));
    set_readable(&archive);
    for user in root_then(&rootless) {
        let tmp = sticky_tmp();
        let mut run = speck();
        run.args(["run", "-u", "nosuch"])
            .arg(&archive)
            .env("TMPDIR", tmp.path());
        let out = output(run_as(user, run));
        assert_eq!(out.status.code(), Some(125), "{user:?}: {out:?}");
        assert!(text(&out.stderr).contains("unable to find user nosuch"), "{out:?}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{user:?}: speck run left {left:?} behind");
    }
}

/// Who runs speck: root (`None`), then the rootless user when there is one.
fn root_then(rootless: &Option<String>) -> Vec<Option<&str>> {
    [None].into_iter().chain(rootless.as_deref().map(Some)).collect()
}

/// `command` as `user`, or as it is for `None` (root).
fn run_as(user: Option<&str>, command: Command) -> Command {
    match user {
        Some(user) => as_user(user, &command),
        None => command,
    }
}

/// A temporary directory any user may make files in (sticky, as /tmp is): a TMPDIR
/// whose leftovers a test can see.
fn sticky_tmp() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = workdir();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    tmp
}

fn set_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Starts `speck run ARCHIVE` (as `user` if given) with its own TMPDIR, waits until
/// PID 1 runs, sends `signal`, and returns the exit status and how long it took.
fn signal_run(archive: &Path, user: Option<&str>, signal: &str, tmp: &Path) -> (Option<i32>, Duration) {
    let mut run = speck();
    run.arg("run").arg(archive).env("TMPDIR", tmp);
    let mut child = run_as(user, run).stdin(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "{archive:?} ended before the signal"
    );
    ok(sh(&format!("kill -{signal} {}", child.id())));
    let sent = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), sent.elapsed());
        }
        if sent.elapsed() > Duration::from_secs(2) {
            child.kill().unwrap();
            child.wait().unwrap();
            return (None, sent.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn signals_reach_pid_1_and_check_flags_a_pid_1_that_ignores_them() {
    if !engine("setpriv") {
        return;
    }
    let rootless = rootless_user();
    let dir = shared_workdir();
    let pause = dir.path().join("pause.tar");
    let sleeper = dir.path().join("sleep.tar");
    let wrapped = dir.path().join("sleep-init.tar");
    ok(speck().args(["pause", "-o"]).arg(&pause));
    ok(speck()
        .args(["pack", "/bin/sleep", "-o"])
        .arg(&sleeper)
        .args(["--", "60"]));
    ok(speck()
        .args(["pack", "/bin/sleep", "--init", "-o"])
        .arg(&wrapped)
        .args(["--", "60"]));
    for archive in [&pause, &sleeper, &wrapped] {
        set_readable(archive);
    }
    for user in root_then(&rootless) {
        let tmp = sticky_tmp();
        for signal in ["TERM", "INT"] {
            let (status, took) = signal_run(&pause, user, signal, tmp.path());
            assert_eq!(status, Some(0), "pause on SIG{signal} as {user:?}");
            assert!(took < Duration::from_millis(500), "pause took {took:?} on SIG{signal}");
        }
        let (status, took) = signal_run(&sleeper, user, "TERM", tmp.path());
        assert_eq!(
            status, None,
            "sleep as PID 1 has no handler: SIGTERM is ignored ({took:?})"
        );
        let (status, took) = signal_run(&wrapped, user, "TERM", tmp.path());
        assert_eq!(
            status,
            Some(128 + 15),
            "init forwards SIGTERM; sleep dies of it ({took:?})"
        );
        assert!(took < Duration::from_millis(500), "{took:?}");
        // Also the run whose speck was killed: its monitor cleans up as it goes.
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::read_dir(tmp.path()).unwrap().next().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "speck run left {left:?} behind");
    }
    let check = output(speck().arg("check").arg(&sleeper));
    assert_eq!(check.status.code(), Some(1));
    let report = text(&check.stdout);
    assert!(
        report.contains("FAIL  stops") && report.contains("docker stop will wait") && report.contains("--init"),
        "{report}"
    );
    let check = output(speck().arg("check").arg(&wrapped));
    assert!(check.status.success(), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("pass  stops"), "{}", text(&check.stdout));
    let findings = check_json(&[], &pause, 0);
    let stops = findings.iter().find(|f| f["check"] == "stops").unwrap();
    assert_eq!(stops["verdict"], "pass", "{findings:?}");
}

/// `speck check ARGS --json IMAGE`, which must exit with `status`: its findings.
fn check_json(args: &[&str], image: &Path, status: i32) -> Vec<serde_json::Value> {
    let out = output(speck().arg("check").args(args).arg("--json").arg(image));
    assert_eq!(out.status.code(), Some(status), "{image:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn engine_run_passes_arguments_and_status_through() {
    for engine_name in ["docker", "podman"] {
        if !engine(engine_name) {
            continue;
        }
        let dir = workdir();
        let archive = dir.path().join("sh.tar");
        ok(speck().args(["pack", "/bin/sh", "-o"]).arg(&archive));
        let out = output(speck().args(["run", "--engine", engine_name]).arg(&archive).args([
            "--",
            "-c",
            "echo via engine; exit 5",
        ]));
        assert_eq!(out.status.code(), Some(5), "{out:?}");
        assert_eq!(text(&out.stdout), "via engine\n");
    }
}

/// A docker-archive of one layer of `entries`, with `config`, for `platform`.
fn archive_of(
    dir: &Path,
    name: &str,
    entries: &[speck::layer::Entry],
    config: speck::image::Config,
    platform: &str,
) -> std::path::PathBuf {
    use speck::layer::{Compression, Layer, LayerOptions, TarForm};
    let options = LayerOptions {
        form: TarForm::Minimal,
        mtime: 0,
        compression: Compression::None,
    };
    let image = speck::image::ImageSpec {
        platform: speck::image::Platform::linux(platform),
        config,
        layers: vec![Layer::build(entries, &options).unwrap()],
        created: 0,
        created_by: "test".into(),
        annotations: Default::default(),
    }
    .build();
    let path = dir.join(format!("{name}.tar"));
    std::fs::write(&path, speck::write::archive(&image.into(), &Default::default()).bytes).unwrap();
    path
}

#[test]
fn check_names_what_stops_an_image_from_running_and_the_fix() {
    use speck::forge::{Arch, hello};
    use speck::image::Config;
    use speck::layer::Entry;
    let dir = workdir();
    let runs = |path: &str| Config {
        entrypoint: Some(vec![path.into()]),
        ..Config::default()
    };
    let script = Entry::file("run.sh", 0o755, b"#!/bin/bash\necho hi\n".to_vec()).unwrap();
    let arm = Entry::file("hello", 0o755, arm64_no_emulator_takes()).unwrap();
    let private = Entry::file("app", 0o700, hello::program(Arch::Amd64, b"hi", 0)).unwrap();
    let ls = Entry::file("ls", 0o755, std::fs::read("/bin/ls").unwrap()).unwrap();
    let nonroot = Config {
        user: Some("65532".into()),
        ..runs("/app")
    };
    let host_file = |image_path: &str, host: &str, mode| {
        let bytes = std::fs::read(std::fs::canonicalize(host).unwrap()).unwrap();
        Entry::file(image_path, mode, bytes).unwrap()
    };
    let true_with_libc = |libc_mode| {
        vec![
            host_file("true", "/bin/true", 0o755),
            host_file("lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2", 0o755),
            host_file(
                "lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libc.so.6",
                libc_mode,
            ),
        ]
    };
    let dirs = ["lib64", "lib", "lib/x86_64-linux-gnu"].map(|d| Entry::dir(d, 0o755).unwrap());
    let private_libc = [dirs.to_vec(), true_with_libc(0o600)].concat();
    let nonroot_true = || Config {
        user: Some("65532".into()),
        ..runs("/true")
    };
    let cases = [
        (
            archive_of(dir.path(), "private-libc", &private_libc, nonroot_true(), "amd64"),
            "readable",
            "/lib/x86_64-linux-gnu/libc.so.6 has mode 600, owner 0:0: user 65532 cannot read it",
        ),
        (
            archive_of(
                dir.path(),
                "implied-dirs",
                &true_with_libc(0o644),
                nonroot_true(),
                "amd64",
            ),
            "readable",
            "/lib64 is a directory the layers imply but do not name, which docker makes mode 600",
        ),
        (
            archive_of(dir.path(), "script", &[script], runs("/run.sh"), "amd64"),
            "interpreter",
            "#!/bin/bash, which is not in the image",
        ),
        (
            archive_of(dir.path(), "arch", &[arm], runs("/hello"), "amd64"),
            "architecture",
            "exec format error",
        ),
        (
            archive_of(dir.path(), "private", &[private], nonroot, "amd64"),
            "executable",
            "user 65532 cannot execute it",
        ),
        (
            archive_of(dir.path(), "ls", &[ls], runs("/ls"), "amd64"),
            "libraries",
            "needs its interpreter",
        ),
        (
            archive_of(dir.path(), "none", &[], Config::default(), "amd64"),
            "command",
            "no command",
        ),
    ];
    let with_docker = engine("docker");
    for (archive, check, says) in cases {
        let findings = check_json(&[], &archive, 1);
        let failed = findings.iter().find(|f| f["verdict"] == "fail").unwrap();
        assert_eq!(failed["check"], check, "{findings:?}");
        assert!(failed["evidence"].as_str().unwrap().contains(says), "{findings:?}");
        assert!(!failed["fix"].as_str().unwrap().is_empty(), "{findings:?}");
        if with_docker {
            let ran = docker_runs(&archive);
            assert!(!ran.status.success(), "{check}: docker runs {archive:?}: {ran:?}");
        }
    }
    // With its directories named and libc readable, the same image passes and runs.
    let fixed = [dirs.to_vec(), true_with_libc(0o644)].concat();
    let fixed = archive_of(dir.path(), "fixed", &fixed, nonroot_true(), "amd64");
    let out = output(speck().args(["check", "--static"]).arg(&fixed));
    assert!(out.status.success(), "{}", text(&out.stdout));
    if with_docker {
        let ran = docker_runs(&fixed);
        assert!(ran.status.success(), "docker runs the fixed image: {ran:?}");
    }
    // root passes through any directory, even one of mode 600.
    let hello = Entry::file("bin/hello", 0o755, hello::program(Arch::Amd64, b"hi", 0)).unwrap();
    let private_dir = [Entry::dir("bin", 0o600).unwrap(), hello];
    let as_root = archive_of(dir.path(), "private-dir", &private_dir, runs("/bin/hello"), "amd64");
    let out = output(speck().args(["check", "--static"]).arg(&as_root));
    assert!(out.status.success(), "{}", text(&out.stdout));
    if with_docker {
        let ran = docker_runs(&as_root);
        assert_eq!(text(&ran.stdout), "hi", "docker runs it as root: {ran:?}");
    }
}

/// `docker load` and `docker run --rm` of an untagged archive; the image is removed.
fn docker_runs(archive: &Path) -> std::process::Output {
    let loaded = ok(Command::new("docker").args(["load", "-q", "-i"]).arg(archive));
    let id = loaded.trim().rsplit(' ').next().unwrap().to_owned();
    let _cleanup = Cleanup(vec![format!("docker rmi -f {id}")]);
    output(Command::new("docker").args(["run", "--rm", "--network=none", &id]))
}

#[test]
fn docker_stop_of_a_program_packed_with_init_returns_at_once() {
    if !engine("docker") {
        return;
    }
    let tag = unique("speck-init-stop");
    let _cleanup = Cleanup(vec![format!("docker rm -f {tag}"), format!("docker rmi {tag}")]);
    ok(speck().args([
        "pack",
        "/bin/sleep",
        "--init",
        "--load",
        "docker",
        "--tag",
        &tag,
        "--",
        "60",
    ]));
    ok(Command::new("docker").args(["run", "-d", "--name", &tag, &tag]));
    let started = Instant::now();
    ok(Command::new("docker").args(["stop", &tag]));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "docker stop took {took:?}: init did not pass SIGTERM on"
    );
    let status = ok(Command::new("docker").args(["inspect", "-f", "{{.State.ExitCode}}", &tag]));
    assert_eq!(status.trim(), "143", "sleep died of the forwarded SIGTERM");
}
