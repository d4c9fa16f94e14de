//! speck's arm64 programs on a real arm64 Linux: Debian's kernel, booted in
//! qemu-system-aarch64 under software emulation, with busybox as the shell that runs
//! them (`forge_kernel/init.sh`, the VM's init). tests/forge.rs runs them under
//! qemu-user, which has a loader and signal delivery of its own; here Linux's loader maps
//! the overlapped headers, Linux reads the header words the programs pass as
//! `struct sigaction`s, and pause, init and http run as PID 1 of new PID namespaces.
//! `scripts/engines.sh up` fetches the kernel and busybox (Debian's arm64 packages).

mod common;

use common::engine;
use speck::forge::{Arch, exit, hello, http, init, pause};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `scripts/engines.sh` puts the kernel and busybox.
fn fetched(name: &str) -> PathBuf {
    let state = std::env::var("SPECK_ENGINES_STATE").unwrap_or_else(|_| "/tmp/speck-engines".into());
    Path::new(&state).join("arm64").join(name)
}

const MESSAGE: &[u8] = b"hello from \x00 a real kernel\n";
const BODY: &[u8] = b"served by a real kernel";

/// An initramfs (newc cpio, made by `cpio`) holding busybox, the init script and the
/// programs.
fn initramfs(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let response = http::response(200, "text/plain", BODY);
    let files: [(&str, Vec<u8>); 7] = [
        ("init", include_bytes!("forge_kernel/init.sh").to_vec()),
        ("bin/busybox", std::fs::read(fetched("busybox")).expect("busybox")),
        ("hello", hello::program(Arch::Arm64, MESSAGE, 0)),
        ("exit", exit::program(Arch::Arm64, 42)),
        ("pause", pause::program(Arch::Arm64)),
        ("tini", init::program(Arch::Arm64)),
        ("http", http::program(Arch::Arm64, 8000, &response)),
    ];
    for (name, bytes) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        common::write_exe(&path, &bytes);
    }
    let image = dir.join("initramfs.cpio");
    common::ok(common::sh(&format!(
        "cd {} && find . | cpio -o -H newc --quiet > {}",
        root.display(),
        image.display()
    )));
    image
}

/// Boots the VM and returns what its init reported, name to value.
fn boot(initramfs: &Path) -> BTreeMap<String, String> {
    let out = common::output(
        Command::new("timeout")
            .args([
                "300",
                "qemu-system-aarch64",
                "-M",
                "virt",
                "-cpu",
                "cortex-a57",
                "-m",
                "256",
            ])
            .args(["-nographic", "-no-reboot", "-kernel"])
            .arg(fetched("vmlinuz"))
            .arg("-initrd")
            .arg(initramfs)
            .args(["-append", "console=ttyAMA0 quiet panic=-1 rdinit=/init"]),
    );
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let reports: BTreeMap<String, String> = console
        .lines()
        .filter_map(|line| line.strip_prefix("SPECK "))
        .map(|report| {
            let (name, value) = report.split_once(' ').unwrap_or((report, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    assert!(
        reports.contains_key("done"),
        "the VM's init did not finish ({}):\n{console}",
        out.status
    );
    reports
}

#[test]
fn arm64_programs_behave_on_a_real_arm64_kernel() {
    if !engine("arm64-kernel") {
        return;
    }
    let dir = common::workdir();
    let reports = boot(&initramfs(dir.path()));
    let hex: String = MESSAGE.iter().map(|byte| format!("{byte:02x}")).collect();
    let expected = [
        ("hello-status", "0"),
        ("hello-bytes", hex.as_str()),
        ("exit-status", "42"),
        ("pause-TERM", "0"),
        ("pause-INT", "0"),
        ("pause-after-stop", "S"),
        ("pause-stopped-TERM", "0"),
        ("pause-orphans", "1"),
        ("pause-zombies", "0"),
        ("pause-orphans-TERM", "0"),
        ("init-forwarded-TERM", "7"),
        ("init-child-killed", "143"),
        ("init-zombies", "0"),
        ("init-status", "3"),
        ("http-body", std::str::from_utf8(BODY).unwrap()),
        ("http-TERM", "0"),
    ];
    let kernel = &reports["kernel"];
    assert!(kernel.starts_with("aarch64 "), "{kernel}");
    for (name, value) in expected {
        assert_eq!(
            reports.get(name).map(String::as_str),
            Some(value),
            "{name} on {kernel}: {reports:#?}"
        );
    }
}
