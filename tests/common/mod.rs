//! Helpers shared by the integration tests: running speck and the real engines, and the
//! rule that an engine test skips with a reason on a machine without the engine but
//! fails when `SPECK_REQUIRE_ENGINES=1`.
#![allow(dead_code)] // each test binary uses its own subset

mod noise;
#[allow(unused_imports)] // used by some test binaries only
pub use noise::noise;
mod programs;
#[allow(unused_imports)] // used by some test binaries only
pub use programs::{argv, free_port, wait_until_handling, write_exe};

use std::borrow::BorrowMut;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The speck binary under test.
pub fn speck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_speck"))
}

/// Runs a command, panicking with its output if it fails to start.
pub fn output(mut command: impl BorrowMut<Command>) -> Output {
    let command = command.borrow_mut();
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(mut command: impl BorrowMut<Command>) -> String {
    let command = command.borrow_mut();
    let out = output(&mut *command);
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A shell command line.
pub fn sh(script: &str) -> Command {
    let mut command = Command::new("bash");
    command.arg("-c").arg(script);
    command
}

/// Where `scripts/engines.sh` keeps what it fetched (kernels, busybox, Docker's seccomp
/// profile): `$SPECK_ENGINES_STATE`, or its default.
pub fn engines_state() -> PathBuf {
    std::env::var_os("SPECK_ENGINES_STATE").map_or_else(|| "/tmp/speck-engines".into(), PathBuf::from)
}

/// Whether `SPECK_REQUIRE_ENGINES=1` asks for every engine to be present.
pub fn engines_required() -> bool {
    std::env::var("SPECK_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
}

/// Returns whether `engine` can be used. When it cannot: fails the test under
/// `SPECK_REQUIRE_ENGINES=1`, otherwise prints why it is skipped.
pub fn engine(engine: &str) -> bool {
    let probe = match engine {
        "docker" => "docker info",
        "podman" => "podman info",
        "skopeo" => "skopeo --version",
        "umoci" => "umoci --version && runc --version",
        "ctr" => "ctr --address /var/run/docker/containerd/containerd.sock version",
        "gcc-static" => "echo 'int main(){return 0;}' | gcc -static -x c -o /dev/null -",
        "gcc-multilib" => "echo 'int main(){return 0;}' | gcc -m32 -x c -o /dev/null -",
        "setpriv" => "setpriv --version",
        "socat" => "socat -V",
        // Writing /etc/docker/certs.d, as docker's daemon reads it.
        "root" => "test \"$(id -u)\" = 0",
        "qemu-aarch64" => "qemu-aarch64 --version",
        "qemu-x86_64" => "qemu-x86_64 --version",
        "qemu-i386" => "qemu-i386 --version",
        "registry" => "curl -fsS http://127.0.0.1:5000/v2/",
        // What `docker run --platform linux/arm64` needs on an x86 host: an emulator in
        // binfmt_misc, opened at registration (F) so that it runs inside containers.
        "arm64-emulation" => "grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64",
        "docker-seccomp" => "test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/docker-seccomp.json",
        "emulator-entries" => {
            "test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/binfmt/qemu-x86_64.conf && \
             test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/binfmt/qemu-i386.conf && \
             test -s /usr/lib/binfmt.d/qemu-aarch64.conf"
        }
        "arm64-linux" => {
            "qemu-system-aarch64 --version && cpio --version && \
             test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/arm64/vmlinuz-6.1 && \
             test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/arm64/vmlinuz-5.10 && \
             test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/arm64/vmlinuz-6.12-16k && \
             test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/arm64/busybox"
        }
        "amd64-linux" => {
            "qemu-system-x86_64 --version && cpio --version && \
             test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/amd64/vmlinuz-6.1 && \
             test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/amd64/vmlinuz-5.10 && \
             test -s ${SPECK_ENGINES_STATE:-/tmp/speck-engines}/amd64/busybox"
        }
        other => panic!("unknown engine {other}"),
    };
    let out = output(&mut sh(&format!("{probe} >/dev/null 2>&1")));
    if out.status.success() {
        return true;
    }
    let reason = format!("{engine} is not available here (`{probe}` failed); scripts/engines.sh up starts it");
    assert!(!engines_required(), "SPECK_REQUIRE_ENGINES=1 but {reason}");
    eprintln!("SKIPPED: {reason}");
    false
}

/// A name no other test (or test run) uses at the same time.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes an engine image by its exact name when dropped.
pub struct Cleanup(pub Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for command in &self.0 {
            let _ = output(&mut sh(&format!("{command} >/dev/null 2>&1")));
        }
    }
}

/// containerd's `ctr` on dockerd's containerd, in a namespace of speck's tests.
pub fn ctr(namespace: &str) -> String {
    format!("ctr --address /var/run/docker/containerd/containerd.sock -n {namespace}")
}

/// A temporary working directory.
pub fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Compiles a static C program (the stand-in for a user's static binary).
pub fn static_c_program(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let exe = dir.join(name);
    ok(Command::new("gcc")
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&exe)
        .arg(&src));
    exe
}

/// A static program that prints its uid, `$K`, its working directory and arguments.
pub const REPORTER_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char cwd[256];
    printf("uid=%d K=%s cwd=%s args=", (int)getuid(), getenv("K") ? getenv("K") : "", getcwd(cwd, sizeof cwd));
    for (int i = 1; i < argc; i++) printf("%s%s", i > 1 ? "," : "", argv[i]);
    printf("\n");
    return 0;
}
"#;

/// A CNCF distribution registry of the test's own, on a free loopback port, with its
/// storage in a temporary directory; `extra` is YAML added to its config (e.g. `auth:`).
/// Stopped when dropped.
pub struct OwnRegistry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its storage and config.
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl OwnRegistry {
    pub fn start(extra: &str) -> Self {
        Self::start_on("127.0.0.1", "", extra)
    }

    /// A registry reached at `host` (it listens on every address when that is not
    /// loopback), with `http` added to its `http:` settings (e.g. `tls: {...}`).
    pub fn start_on(host: &str, http: &str, extra: &str) -> Self {
        let dir = workdir();
        let port = free_port();
        let addr = format!("{host}:{port}");
        let listen = if host == "127.0.0.1" {
            addr.clone()
        } else {
            format!("0.0.0.0:{port}")
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {} }}, delete: {{ enabled: true }} }}\nhttp: {{ addr: {listen}, {http} }}\n{extra}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Self { addr, dir, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.addr).is_ok() {
                return registry;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "the registry did not come up: {}",
            std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// The file holding a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shell running speck (as `$SPECK`) with `config` as its Docker config directory and
/// no podman auth file, so no user's credentials are used.
pub fn speck_sh(config: &Path, script: &str) -> Command {
    let mut command = sh(script);
    command
        .env("SPECK", env!("CARGO_BIN_EXE_speck"))
        .env("DOCKER_CONFIG", config)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR");
    command
}

/// An unprivileged user for rootless tests, made (with subordinate id ranges, as
/// `useradd` gives them) when this runs as root and it is missing. `None`, with a skip
/// reason (or a failure under `SPECK_REQUIRE_ENGINES=1`), when there is none.
pub fn rootless_user() -> Option<String> {
    const USER: &str = "speck-rootless";
    let exists = |name: &str| output(&mut sh(&format!("id -u {name}"))).status.success();
    if !exists(USER) {
        let _ = output(&mut sh(&format!(
            "useradd --no-create-home --shell /usr/sbin/nologin {USER}"
        )));
    }
    if exists(USER)
        && output(&mut sh(&format!(
            "grep -q '^{USER}:' /etc/subuid && command -v newuidmap setpriv"
        )))
        .status
        .success()
    {
        return Some(USER.into());
    }
    let reason = format!(
        "no user {USER} with /etc/subuid ranges, newuidmap and setpriv (run the tests as root to make it; Debian: uidmap, util-linux)"
    );
    assert!(!engines_required(), "SPECK_REQUIRE_ENGINES=1 but {reason}");
    eprintln!("SKIPPED: {reason}");
    None
}

/// `command` run as `user` (real and effective ids, no supplementary groups).
pub fn as_user(user: &str, command: &Command) -> Command {
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args([
            format!("--reuid={user}"),
            format!("--regid={user}"),
            "--clear-groups".into(),
        ])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// A temporary directory every user can read (for images a rootless run must open).
pub fn shared_workdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = workdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
