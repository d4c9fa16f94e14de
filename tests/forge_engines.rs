//! Generated programs in real engines: `docker run` output and status for amd64 and 386
//! under Docker's default seccomp profile (and arm64 under emulation), `docker stop` that
//! returns at once, and multi-platform images read by skopeo, podman, containerd and
//! docker.

mod common;

use common::*;
use speck::forge::{Arch, init, pause};
use std::time::{Duration, Instant};

/// The platforms docker runs here without emulation.
const NATIVE: [&str; 2] = ["linux/amd64", "linux/386"];

/// Loads a generated image into docker and returns its tag (removed when dropped).
fn load(args: &[&str], platform: &str) -> (String, Cleanup) {
    let tag = format!("{}:t", unique("speck-forge"));
    ok(speck()
        .args(args)
        .args(["--platform", platform, "--load", "docker", "-t", &tag]));
    let cleanup = Cleanup(vec![format!("docker rmi -f {tag}")]);
    (tag, cleanup)
}

#[test]
fn docker_runs_the_default_seccomp_profile() {
    if !engine("docker") {
        return;
    }
    let options = ok(sh("docker info --format '{{json .SecurityOptions}}'"));
    assert!(
        options.contains("seccomp") && options.contains("profile=default"),
        "{options}"
    );
}

#[test]
fn hello_exit_true_false_run_in_docker_on_amd64_and_386() {
    if !engine("docker") {
        return;
    }
    for platform in NATIVE {
        hello_exit_true_false_run_in_docker(platform);
    }
}

/// Output and status of hello, exit 42, true and false run by docker for `platform`.
fn hello_exit_true_false_run_in_docker(platform: &str) {
    let (tag, _cleanup) = load(&["hello", "Hi IDBS Engineering! RE\n"], platform);
    let run = format!("docker run --rm --network=none --platform {platform}");
    let out = output(sh(&format!("{run} {tag}")));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hi IDBS Engineering! RE\n",
        "{platform}: {out:?}"
    );
    assert_eq!(out.status.code(), Some(0));
    let arch = ok(sh(&format!("docker inspect -f '{{{{.Architecture}}}}' {tag}")));
    assert_eq!(arch.trim(), platform.trim_start_matches("linux/"));
    for (args, status) in [(vec!["exit", "42"], 42), (vec!["true"], 0), (vec!["false"], 1)] {
        let (tag, _cleanup) = load(&args, platform);
        let out = output(sh(&format!("{run} {tag}")));
        assert_eq!(out.status.code(), Some(status), "{args:?} {platform}: {out:?}");
    }
}

/// Starts a detached container, then times `docker stop` and returns (seconds, exit code).
/// `ready` gets the container's name once it runs.
fn timed_stop(run_args: &str, tag: &str, ready: impl Fn(&str)) -> (Duration, String) {
    let name = unique("speck-stop");
    let _cleanup = Cleanup(vec![format!("docker rm -f {name}")]);
    ok(sh(&format!("docker run -d --name {name} {run_args} {tag}")));
    ready(&name);
    let started = Instant::now();
    ok(sh(&format!("docker stop {name}")));
    let took = started.elapsed();
    let code = ok(sh(&format!("docker inspect -f '{{{{.State.ExitCode}}}}' {name}")));
    (took, code.trim().to_owned())
}

/// Docker's kill timeout is 10 s; a PID 1 that handles SIGTERM stops long before. The
/// actual latency is reported by `cargo bench --bench stop`, not asserted here.
const WELL_UNDER_TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn docker_stop_returns_at_once_for_pause_init_and_http() {
    if !engine("docker") {
        return;
    }
    for platform in NATIVE {
        docker_stop_returns_at_once(platform);
    }
}

/// `docker stop` of pause, of init with pause as its child and of http, for `platform`:
/// at once, and with status 0.
fn docker_stop_returns_at_once(platform: &str) {
    let dir = workdir();
    let (pause, _p) = load(&["pause"], platform);
    // A freeze and thaw (docker pause) must not end it.
    let run_args = format!("--network=none --platform {platform}");
    let (took, code) = timed_stop(&run_args, &pause, |name| {
        std::thread::sleep(Duration::from_millis(300));
        ok(sh(&format!("docker pause {name} && docker unpause {name}")));
        std::thread::sleep(Duration::from_millis(200));
        let state = ok(sh(&format!("docker inspect -f '{{{{.State.Status}}}}' {name}")));
        assert_eq!(state.trim(), "running", "pause {platform} after docker unpause");
    });
    assert!(took < WELL_UNDER_TIMEOUT, "pause {platform}: docker stop took {took:?}");
    assert_eq!(code, "0", "pause {platform}");

    // init as PID 1 with pause as its child: SIGTERM is forwarded, both exit 0.
    let arch = Arch::ALL
        .into_iter()
        .find(|a| a.platform().to_string().starts_with(platform))
        .unwrap();
    let init_file = write_exe(&dir.path().join(format!("init-{arch:?}")), &init::program(arch));
    let pause_file = write_exe(&dir.path().join(format!("pause-{arch:?}")), &pause::program(arch));
    let tag = format!("{}:t", unique("speck-init"));
    let _c = Cleanup(vec![format!("docker rmi -f {tag}")]);
    ok(speck()
        .arg("pack")
        .arg(format!("{}:/init", init_file.display()))
        .arg(format!("{}:/pause", pause_file.display()))
        .args([
            "--entrypoint",
            "/init",
            "--platform",
            platform,
            "--load",
            "docker",
            "-t",
            &tag,
            "--",
            "/pause",
        ]));
    let (took, code) = timed_stop(&run_args, &tag, |_| std::thread::sleep(Duration::from_millis(300)));
    assert!(took < WELL_UNDER_TIMEOUT, "init {platform}: docker stop took {took:?}");
    assert_eq!(code, "0", "init {platform}: the child's status");

    let port = free_port().to_string();
    let (http, _h) = load(&["http", "--port", &port, "--body", "up\n"], platform);
    let url = format!("http://127.0.0.1:{port}/");
    let (took, code) = timed_stop(&format!("--network=host --platform {platform}"), &http, |_| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while output(sh(&format!("curl -sf -m 1 {url}"))).stdout != b"up\n" {
            assert!(Instant::now() < deadline, "http {platform} never answered");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert!(took < WELL_UNDER_TIMEOUT, "http {platform}: docker stop took {took:?}");
    assert_eq!(code, "0", "http {platform}");
}

/// arm64 images on this x86 host as CI runners test them: docker runs them under the qemu
/// that binfmt_misc has (scripts/engines.sh registers it as docker/setup-qemu-action does).
#[test]
fn arm64_images_run_in_docker_under_emulation() {
    if !engine("docker") || !engine("arm64-emulation") {
        return;
    }
    hello_exit_true_false_run_in_docker("linux/arm64");
    docker_stop_returns_at_once("linux/arm64");
}

#[test]
fn multi_platform_images_reach_every_reader() {
    if !engine("skopeo") || !engine("podman") || !engine("ctr") || !engine("docker") {
        return;
    }
    let dir = workdir();
    let archive = dir.path().join("multi.oci.tar");
    let tag = format!("{}:multi", unique("speck-multi"));
    ok(speck()
        .args([
            "hello",
            "multi\n",
            "--platform",
            "all",
            "--format",
            "oci-archive",
            "-t",
            &tag,
            "-o",
        ])
        .arg(&archive));

    let raw: serde_json::Value = serde_json::from_str(&ok(sh(&format!(
        "skopeo inspect --raw oci-archive:{}",
        archive.display()
    ))))
    .unwrap();
    let mut platforms: Vec<String> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_owned())
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["386", "amd64", "arm64"]);
    for arch in ["386", "amd64", "arm64"] {
        let copy = dir.path().join(format!("copy-{arch}"));
        ok(sh(&format!(
            "skopeo copy --override-arch {arch} oci-archive:{} oci:{}:x",
            archive.display(),
            copy.display()
        )));
    }

    // podman and containerd pick the host's platform from the index.
    let loaded = ok(sh(&format!("podman load -i {}", archive.display())));
    let name = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .unwrap()
        .trim()
        .to_owned();
    let _p = Cleanup(vec![format!("podman rmi -f {name}")]);
    assert_eq!(ok(sh(&format!("podman run --rm --network=none {name}"))), "multi\n");

    let ctr = ctr("speck-test");
    let full = format!("docker.io/library/{tag}");
    let _c = Cleanup(vec![format!("{ctr} images rm {full}")]);
    ok(sh(&format!("{ctr} images import {}", archive.display())));
    assert_eq!(
        ok(sh(&format!("{ctr} run --rm {full} {}", unique("speck-multi")))),
        "multi\n"
    );

    // A docker-archive holds one platform, the host's, and says so.
    let docker_archive = dir.path().join("multi.tar");
    let out = output(
        speck()
            .args(["hello", "multi\n", "--platform", "all", "-t", &tag, "-o"])
            .arg(&docker_archive),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds one platform: linux/amd64"));
    let _d = Cleanup(vec![format!("docker rmi -f {tag}")]);
    ok(sh(&format!("docker load -i {}", docker_archive.display())));
    assert_eq!(
        ok(sh(&format!("docker inspect -f '{{{{.Architecture}}}}' {tag}"))).trim(),
        "amd64"
    );
    assert_eq!(ok(sh(&format!("docker run --rm --network=none {tag}"))), "multi\n");
}
