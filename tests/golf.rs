//! Golfed archives (`--golf`, `--compress`, `--base64`) loaded AND run in the real tools,
//! against a hand-minimised reference built around the same program, and every
//! "known to break" claim re-checked in the tool it names.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `speck ARGS -o DIR/NAME` and returns the path and speck's stderr.
fn speck_to(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = output(speck().args(args).arg("-o").arg(&path));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "speck {args:?} failed: {stderr}");
    (path, stderr)
}

/// The image ID `docker load` printed for an untagged image.
fn loaded_id(load_output: &str) -> String {
    load_output
        .lines()
        .find_map(|line| line.strip_prefix("Loaded image ID: "))
        .unwrap_or_else(|| panic!("no image ID in {load_output:?}"))
        .trim()
        .to_owned()
}

/// The members of a tar whose headers may leave zero numbers empty (as Go reads them).
fn tar_members(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut members = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let header = &tar[at..at + 512];
        let name = String::from_utf8_lossy(&header[..100])
            .trim_end_matches('\0')
            .to_owned();
        let size_field = String::from_utf8_lossy(&header[124..136]);
        let size = usize::from_str_radix(size_field.trim_matches(['\0', ' ']), 8).unwrap_or(0);
        let data = tar[at + 512..(at + 512 + size).min(tar.len())].to_vec();
        at += 512 + size.next_multiple_of(512);
        members.push((name, data));
    }
    members
}

/// A V7 tar header with only the name, mode, size and checksum, as FORMATS.md writes
/// the hand-minimised archive.
fn v7_member(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    let mut header = vec![0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let mode = format!("{mode:o}");
    header[100..100 + mode.len()].copy_from_slice(mode.as_bytes());
    let size = format!("{:o}", data.len());
    header[124..124 + size.len()].copy_from_slice(size.as_bytes());
    header[148..156].fill(b' ');
    let sum = format!("{:o}", header.iter().map(|&b| b as u32).sum::<u32>());
    header[148..156].fill(0);
    header[148..148 + sum.len()].copy_from_slice(sum.as_bytes());
    header.extend_from_slice(data);
    header
}

/// The hand-minimised docker-archive of FORMATS.md around `program` at `/NAME`: one-letter
/// members, `{"config":{"Cmd":[...]},"rootfs":{"type":"layers","diff_ids":[...]}}`, V7
/// headers, no end marker; compressed by the real gzip -9, xz -9e (CRC32) and bzip2 -9,
/// the smallest kept.
fn hand_minimised_reference(dir: &Path, name: &str, program: &[u8]) -> PathBuf {
    let layer = v7_member(name, 0o755, program);
    let diff_id = speck::digest::Digest::of(&layer);
    let config = format!(r#"{{"config":{{"Cmd":["/{name}"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#);
    let mut archive = Vec::new();
    for (member, data) in [
        ("manifest.json", &br#"[{"Config":"c","Layers":["l"]}]"#[..]),
        ("c", config.as_bytes()),
        ("l", &layer),
    ] {
        archive.extend(v7_member(member, 0o644, data));
        if member != "l" {
            archive.resize(archive.len().next_multiple_of(512), 0);
        }
    }
    let plain = write_file(dir, "reference.tar", &archive);
    let compressed = ["gzip -9n", "xz -9e --check=crc32", "bzip2 -9"].map(|tool| {
        let path = dir.join(format!("reference-{}", tool.split(' ').next().unwrap()));
        ok(sh(&format!("{tool} -c {} > {}", plain.display(), path.display())));
        path
    });
    compressed
        .into_iter()
        .min_by_key(|path| std::fs::metadata(path).unwrap().len())
        .unwrap()
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Runs a pause image detached, stops it, and returns its exit code.
fn run_and_stop(image: &str) -> String {
    let container = unique("speck-golf-pause");
    let _cleanup = Cleanup(vec![format!("docker rm -f {container}")]);
    ok(sh(&format!("docker run -d --network=none --name {container} {image}")));
    ok(sh(&format!("docker stop -t 5 {container}")));
    ok(sh(&format!("docker inspect -f '{{{{.State.ExitCode}}}}' {container}")))
        .trim()
        .to_owned()
}

#[test]
fn docker_level_pause_is_no_larger_than_the_hand_minimised_reference_and_runs() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    let (golfed, stderr) = speck_to(
        dir.path(),
        "pause.tar",
        &["pause", "--golf=docker", "--compress", "best"],
    );
    assert!(
        stderr.contains("golf level docker is known to break: containerd"),
        "{stderr}"
    );
    // The program, from the same image uncompressed: the layer is the last member.
    let (plain, _) = speck_to(dir.path(), "plain.tar", &["pause", "--golf=docker"]);
    let members = tar_members(&std::fs::read(plain).unwrap());
    let names: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["c", "manifest.json", "z"]);
    let layer = tar_members(&members[2].1);
    assert_eq!(layer[0].0, "pause");
    let reference = hand_minimised_reference(dir.path(), "pause", &layer[0].1);

    let reference_id = loaded_id(&ok(sh(&format!("docker load -i {}", reference.display()))));
    let golfed_id = loaded_id(&ok(sh(&format!("docker load -i {}", golfed.display()))));
    let _cleanup = Cleanup(vec![format!("docker rmi -f {reference_id} {golfed_id}")]);
    assert_eq!(run_and_stop(&reference_id), "0", "the reference runs");
    assert_eq!(run_and_stop(&golfed_id), "0", "speck's golfed pause runs");
    eprintln!(
        "docker-level pause: speck {} bytes, hand-minimised reference {} bytes ({})",
        len(&golfed),
        len(&reference),
        reference.display()
    );
    assert!(
        len(&golfed) <= len(&reference),
        "speck {} > reference {}",
        len(&golfed),
        len(&reference)
    );
}

#[test]
fn docker_level_hello_runs_untagged_or_with_the_tag_given() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    let message = "golfed for docker\n";
    let (untagged, _) = speck_to(
        dir.path(),
        "h.tar",
        &["hello", message, "--golf=docker", "--compress", "best"],
    );
    let id = loaded_id(&ok(sh(&format!("docker load -i {}", untagged.display()))));
    let tag = format!("{}:g", unique("speck-golf"));
    let _cleanup = Cleanup(vec![format!("docker rmi -f {tag} {id}")]);
    assert_eq!(ok(sh(&format!("docker run --rm --network=none {id}"))), message);

    let (tagged, _) = speck_to(dir.path(), "t.tar", &["hello", message, "--golf=docker", "-t", &tag]);
    let loaded = ok(sh(&format!("docker load -i {}", tagged.display())));
    assert!(loaded.contains(&tag), "{loaded}");
    assert_eq!(ok(sh(&format!("docker run --rm --network=none {tag}"))), message);
}

#[test]
fn portable_level_runs_in_docker_podman_and_containerd_and_skopeo_reads_it() {
    if !(engine("docker") && engine("podman") && engine("skopeo") && engine("ctr")) {
        return;
    }
    let dir = workdir();
    let tag = format!("{}:p", unique("speck-golf"));
    let message = "golfed for everyone\n";
    let (best, stderr) = speck_to(
        dir.path(),
        "best.tar",
        &["hello", message, "--golf", "--compress", "best", "-t", &tag],
    );
    assert!(stderr.contains("compressed with"), "{stderr}");
    assert!(!stderr.contains("golf level portable is known to break"), "{stderr}");
    let magic = std::fs::read(&best).unwrap();
    assert!(
        !magic.starts_with(&[0x1f, 0x8b]),
        "best picked gzip, which podman cannot read"
    );
    let ctr = ctr("speck-test");
    let full = format!("docker.io/library/{tag}");
    let _cleanup = Cleanup(vec![
        format!("docker rmi -f {tag}"),
        format!("podman rmi -f localhost/{tag}"),
        format!("{ctr} images rm {full}"),
    ]);

    ok(sh(&format!("docker load -i {}", best.display())));
    assert_eq!(ok(sh(&format!("docker run --rm --network=none {tag}"))), message);
    let names = ok(sh(&format!("podman load -i {}", best.display())));
    assert!(names.contains(&format!("localhost/{tag}")), "{names}");
    assert_eq!(
        ok(sh(&format!("podman run --rm --network=none localhost/{tag}"))),
        message
    );
    let layout = dir.path().join("layout");
    ok(sh(&format!(
        "skopeo copy -q docker-archive:{} oci:{}:x",
        best.display(),
        layout.display()
    )));
    assert!(layout.join("index.json").exists());

    // containerd's import reads only plain tars: the portable level uncompressed.
    let (plain, _) = speck_to(dir.path(), "plain.tar", &["hello", message, "--golf", "-t", &tag]);
    ok(sh(&format!("{ctr} images import {}", plain.display())));
    let name = unique("speck-golf-ctr");
    assert_eq!(ok(sh(&format!("{ctr} run --rm {full} {name}"))), message);
}

/// Each codec's claim in `--compress`'s warnings, re-checked: who loads what.
#[test]
fn whole_archive_codecs_load_where_speck_says_they_do() {
    if !(engine("docker") && engine("podman")) {
        return;
    }
    let dir = workdir();
    for (codec, docker_reads, podman_reads) in [
        ("gzip", true, false),
        ("xz", true, true),
        ("bzip2", true, true),
        ("zstd", false, true),
    ] {
        let tag = format!("{}:{codec}", unique("speck-codec"));
        let _cleanup = Cleanup(vec![
            format!("docker rmi -f {tag}"),
            format!("podman rmi -f localhost/{tag}"),
        ]);
        let message = format!("compressed with {codec}\n");
        let (archive, stderr) = speck_to(dir.path(), codec, &["hello", &message, "--compress", codec, "-t", &tag]);
        let warned_docker = stderr.contains("docker load");
        let warned_podman = stderr.contains("podman load");
        assert_eq!(
            (warned_docker, warned_podman),
            (!docker_reads, !podman_reads),
            "{codec}: {stderr}"
        );
        let docker = output(sh(&format!(
            "docker load -i {0} && docker run --rm --network=none {tag}",
            archive.display()
        )));
        assert_eq!(docker.status.success(), docker_reads, "docker and {codec}");
        if docker_reads {
            assert_eq!(
                String::from_utf8_lossy(&docker.stdout).lines().last(),
                message.lines().last()
            );
        }
        let podman = output(sh(&format!(
            "podman load -i {0} && podman run --rm --network=none localhost/{tag}",
            archive.display()
        )));
        assert_eq!(podman.status.success(), podman_reads, "podman and {codec}");
    }
}

/// Runs `speck ARGS --base64`; returns the base64 line and the load-and-run one-liner
/// printed for `engine`.
fn base64_and_one_liner(args: &[&str], engine: &str) -> (String, String) {
    let out = output(speck().args(args).arg("--base64"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let one_liner = stderr
        .lines()
        .find(|line| line.contains(&format!("| base64 -d | {engine} load && {engine} run --rm")))
        .unwrap_or_else(|| panic!("no {engine} one-liner in {stderr}"))
        .trim()
        .to_owned();
    assert!(one_liner.contains(stdout.trim()), "the one-liner carries the line");
    (stdout, one_liner)
}

#[test]
fn base64_one_liner_loads_and_runs_as_printed() {
    if !engine("docker") {
        return;
    }
    let message = "pasted\n";
    let (_, one_liner) = base64_and_one_liner(&["hello", message, "--golf=docker", "--compress", "best"], "docker");
    let ran = ok(sh(&one_liner));
    assert!(ran.ends_with(message), "{ran:?}");
    let id = loaded_id(&ran);
    let _cleanup = Cleanup(vec![format!("docker rmi -f {id}")]);
    // Piped straight from speck, too.
    let mut piped = Command::new("bash");
    piped.arg("-c").arg(format!(
        "{} hello golf --golf=docker --base64 | base64 -d | docker load -q",
        env!("CARGO_BIN_EXE_speck")
    ));
    assert!(ok(piped).contains("sha256:"));
}

#[test]
fn base64_one_liner_of_an_oci_archive_runs_in_podman() {
    if !engine("podman") {
        return;
    }
    let tag = format!("{}:b", unique("speck-b64"));
    let _cleanup = Cleanup(vec![format!("podman rmi -f docker.io/library/{tag}")]);
    let args = ["hello", "pasted into podman\n", "--format", "oci-archive", "-t", &tag];
    let (_, one_liner) = base64_and_one_liner(&args, "podman");
    assert!(ok(sh(&one_liner)).ends_with("pasted into podman\n"));
}
