//! `speck pack` refuses what cannot run in a scratch image, with a message that names
//! the input and says what to do, and leaves nothing at the destination.

mod common;

use common::*;
use std::path::Path;

/// Runs `speck pack ARGS -o DIR/out.tar`, expects failure; returns stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let dest = dir.join("out.tar");
    let out = output(speck().arg("pack").args(args).arg("-o").arg(&dest));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a refusal for {args:?}, got {stderr}"
    );
    assert!(!dest.exists(), "nothing may be left at the destination");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    write_exe(&dir.join(name), bytes).display().to_string()
}

fn assert_mentions(stderr: &str, parts: &[&str]) {
    for part in parts {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
}

#[test]
fn macos_and_windows_programs_are_refused_with_the_fix() {
    let dir = workdir();
    let macho = file(dir.path(), "app-mac", &[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 3, 0, 0, 0]);
    assert_mentions(
        &refused(dir.path(), &[&macho]),
        &[&macho, "macOS (Mach-O)", "GOOS=linux"],
    );
    let pe = file(dir.path(), "app.exe", b"MZ\x90\0\x03\0\0\0");
    assert_mentions(
        &refused(dir.path(), &[&pe]),
        &[&pe, "Windows (PE)", "build it for Linux"],
    );
}

#[test]
fn a_script_needs_its_interpreter_in_the_image() {
    let dir = workdir();
    let script = file(dir.path(), "run.sh", b"#!/bin/sh\necho hi\n");
    assert_mentions(
        &refused(dir.path(), &[&script]),
        &[&script, "script for /bin/sh", "not in the image", "FILE:/bin/sh"],
    );
}

#[test]
fn a_dynamic_program_needs_its_interpreter_in_the_image() {
    let dir = workdir();
    // /bin/ls on this Debian machine is dynamically linked against glibc.
    let stderr = refused(dir.path(), &["/bin/ls"]);
    assert_mentions(
        &stderr,
        &[
            "/bin/ls",
            "dynamically linked",
            "/lib64/ld-linux-x86-64.so.2",
            "not in the image",
            "Link it statically",
        ],
    );
}

#[test]
fn an_unreadable_file_is_named_with_the_reason() {
    let dir = workdir();
    let missing = dir.path().join("nope").display().to_string();
    let stderr = refused(dir.path(), &[&missing]);
    assert_mentions(&stderr, &[&format!("cannot read {missing}"), "No such file"]);
    assert_eq!(stderr.matches("No such file").count(), 1, "the reason once: {stderr}");
    if !engine("setpriv") {
        return;
    }
    // Root reads any file, so read as an unprivileged user, which a 0000 file refuses.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let secret = file(dir.path(), "secret", b"\x7fELF");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let dest = dir.path().join("out.tar");
    let out = output(sh(&format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups {} pack {secret} -o {}",
        env!("CARGO_BIN_EXE_speck"),
        dest.display()
    )));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_mentions(&stderr, &[&format!("cannot read {secret}"), "Permission denied"]);
    assert!(!dest.exists());
}

#[test]
fn platform_must_agree_with_the_elf_header() {
    let dir = workdir();
    let hello = file(
        dir.path(),
        "hello",
        &speck::forge::hello::program(speck::forge::Arch::Amd64, b"hi", 0),
    );
    assert_mentions(
        &refused(dir.path(), &[&hello, "--platform", "linux/arm64"]),
        &[&hello, "linux/amd64 program", "--platform asks for linux/arm64"],
    );
}

#[test]
fn the_entrypoint_must_be_a_program_in_the_image() {
    let dir = workdir();
    let hello = file(
        dir.path(),
        "hello",
        &speck::forge::hello::program(speck::forge::Arch::Amd64, b"hi", 0),
    );
    assert_mentions(
        &refused(dir.path(), &[&hello, "--entrypoint", "/bin/app"]),
        &["the entrypoint /bin/app is not in the image"],
    );
    let data = file(dir.path(), "notes.txt", b"plain text");
    assert_mentions(
        &refused(dir.path(), &[&hello, &data, "--entrypoint", "/notes.txt"]),
        &[&data, "neither an ELF program nor a #! script"],
    );
    let other = file(
        dir.path(),
        "other",
        &speck::forge::hello::program(speck::forge::Arch::Amd64, b"ho", 0),
    );
    assert_mentions(
        &refused(dir.path(), &[&hello, &other]),
        &["several programs", &hello, &other, "--entrypoint"],
    );
}

#[test]
fn bad_config_values_name_the_value_and_the_form_expected() {
    let dir = workdir();
    let hello = file(
        dir.path(),
        "hello",
        &speck::forge::hello::program(speck::forge::Arch::Amd64, b"hi", 0),
    );
    for (flag, value, expected) in [
        ("--env", "NOEQUALS", "has no '='"),
        ("--expose", "99999", "from 1 to 65535"),
        ("--stop-signal", "SIGNOPE", "not a Linux signal"),
        ("--workdir", "relative", "absolute path"),
        ("--platform", "linux/", "os/arch[/variant]"),
        ("--tag", "Bad:Name", "lowercase"),
    ] {
        let out = output(
            speck()
                .args(["pack", &hello, flag, value, "-o"])
                .arg(dir.path().join("x.tar")),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(value) && stderr.contains(expected),
            "{flag} {value}: {stderr}"
        );
    }
}

#[test]
fn an_image_must_go_somewhere() {
    let out = output(speck().args(["hello", "hi"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("-o PATH") && stderr.contains("--load"), "{stderr}");
}

#[test]
fn an_existing_directory_that_is_not_a_layout_is_never_replaced() {
    let dir = workdir();
    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("keep"), "mine").unwrap();
    let out = output(speck().args(["hello", "hi", "--format", "oci", "-o"]).arg(&precious));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("not an OCI layout"), "{stderr}");
    assert_eq!(std::fs::read_to_string(precious.join("keep")).unwrap(), "mine");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("precious")],
        "no temporary files left"
    );
}
