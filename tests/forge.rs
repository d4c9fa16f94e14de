//! Generated programs run on this machine (x86_64 runs amd64 natively) and do exactly
//! what they promise.

use proptest::prelude::*;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};

/// Writes `program` to a temporary executable file and runs it, piping stdout.
fn run(program: &[u8]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prog");
    std::fs::write(&path, program).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Command::new(&path).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn hello_writes_the_message_and_exits_zero() {
    let out = run(&speck::forge::hello::program(
        speck::forge::Arch::Amd64,
        b"Hi IDBS Engineering! RE\n",
        0,
    ));
    assert_eq!(out.stdout, b"Hi IDBS Engineering! RE\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn hello_with_an_empty_message_prints_nothing() {
    let out = run(&speck::forge::hello::program(speck::forge::Arch::Amd64, b"", 0));
    assert_eq!(out.stdout, b"");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn hello_writes_a_message_larger_than_a_pipe_buffer() {
    // 256 KiB: more than the 64 KiB pipe buffer, so the kernel takes it in parts.
    let message: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    let out = run(&speck::forge::hello::program(speck::forge::Arch::Amd64, &message, 0));
    assert_eq!(out.stdout.len(), message.len());
    assert!(out.stdout == message);
}

#[test]
fn hello_exits_one_when_stdout_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prog");
    std::fs::write(&path, speck::forge::hello::program(speck::forge::Arch::Amd64, b"x", 0)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{} >&-", path.display()))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn hello_writes_any_bytes_exactly(message in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let out = run(&speck::forge::hello::program(speck::forge::Arch::Amd64, &message, 0));
        prop_assert_eq!(out.stdout, message);
        prop_assert_eq!(out.status.code(), Some(0));
    }
}
