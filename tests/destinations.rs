//! Outputs land correctly on every kind of destination: a device or FIFO is written
//! through, never replaced (replacing /dev/null with a file breaks the whole machine);
//! a symlink keeps pointing where it pointed and its target gets the archive.

mod common;

use common::*;
use std::os::unix::fs::FileTypeExt as _;

/// The archive speck writes for a fixed image, from a regular file.
fn reference_archive(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("reference.tar");
    ok(speck().args(["hello", "dest\n", "-o"]).arg(&path));
    std::fs::read(path).unwrap()
}

#[test]
fn a_character_device_is_written_through_not_replaced() {
    let dir = workdir();
    let null = dir.path().join("null");
    // A private copy of /dev/null: needs root (CAP_MKNOD); a regression must not be able
    // to replace the machine's real one.
    if !output(sh(&format!("mknod -m 666 {} c 1 3", null.display())))
        .status
        .success()
    {
        assert!(!engines_required(), "mknod failed; tests run as root in CI");
        eprintln!("SKIPPED: mknod needs root");
        return;
    }
    ok(speck().args(["hello", "dest\n", "-o"]).arg(&null));
    let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(kind.is_char_device(), "{null:?} is still a device: {kind:?}");
    assert_eq!(std::fs::read(&null).unwrap().len(), 0, "reads from it are still empty");
}

#[test]
fn a_fifo_receives_the_archive_and_stays_a_fifo() {
    let dir = workdir();
    let fifo = dir.path().join("pipe");
    ok(sh(&format!("mkfifo {}", fifo.display())));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    ok(speck().args(["hello", "dest\n", "-o"]).arg(&fifo));
    let received = reader.join().unwrap();
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(received, reference_archive(dir.path()));
}

#[test]
fn a_symlink_keeps_pointing_at_its_target_which_gets_the_archive() {
    let dir = workdir();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let target = dir.path().join("real/image.tar");
    let link = dir.path().join("link.tar");
    std::os::unix::fs::symlink("real/image.tar", &link).unwrap();
    ok(speck().args(["hello", "dest\n", "-o"]).arg(&link));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::PathBuf::from("real/image.tar")
    );
    assert_eq!(std::fs::read(&target).unwrap(), reference_archive(dir.path()));
}
