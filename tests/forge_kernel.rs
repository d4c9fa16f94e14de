//! speck's programs on real Linux kernels other than this machine's: Debian 12's (6.1)
//! and Debian 11's (5.10), for arm64 and for amd64 (which runs the 386 programs too), and
//! Debian 13's arm64 kernel with 16 KiB pages (6.12), each booted in qemu-system under
//! software emulation with busybox as the shell that runs them (`forge_kernel/init.sh`,
//! the VMs' init). tests/forge.rs runs the arm64 programs
//! under qemu-user, which has a loader and signal delivery of its own; here Linux's
//! loader maps the overlapped headers, Linux reads the header words the programs pass as
//! `struct sigaction`s, and pause, init and http run as PID 1 of new PID namespaces.
//! `scripts/engines.sh up` fetches the kernels and busybox (Debian's packages).

mod common;

use common::engine;
use speck::forge::{Arch, exit, hello, http, init, pause};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A virtual machine of one architecture.
struct Machine {
    /// Debian's name for it, the directory `scripts/engines.sh` fetches into.
    debian: &'static str,
    /// The probe of `common::engine` for its kernels and busybox.
    probe: &'static str,
    qemu: &'static [&'static str],
    console: &'static str,
    /// The programs it runs.
    programs: &'static [Arch],
}

const ARM64: Machine = Machine {
    debian: "arm64",
    probe: "arm64-linux",
    qemu: &["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57"],
    console: "ttyAMA0",
    programs: &[Arch::Arm64],
};

const AMD64: Machine = Machine {
    debian: "amd64",
    probe: "amd64-linux",
    qemu: &["qemu-system-x86_64", "-cpu", "max"],
    console: "ttyS0",
    programs: &[Arch::Amd64, Arch::I386],
};

const MESSAGE: &[u8] = b"hello from \x00 a real kernel\n";
const BODY: &[u8] = b"served by a real kernel";

impl Machine {
    /// Where `scripts/engines.sh` put the kernel or busybox.
    fn fetched(&self, name: &str) -> PathBuf {
        common::engines_state().join(self.debian).join(name)
    }

    /// An initramfs (newc cpio, made by `cpio`) holding busybox, the init script and the
    /// programs, in `/programs/<arch>/`.
    fn initramfs(&self, dir: &Path) -> PathBuf {
        let root = dir.join("root");
        let mut files = vec![
            ("init".to_owned(), include_bytes!("forge_kernel/init.sh").to_vec()),
            (
                "bin/busybox".to_owned(),
                std::fs::read(self.fetched("busybox")).expect("busybox"),
            ),
        ];
        let response = http::response(200, "text/plain", BODY);
        for &arch in self.programs {
            let programs = format!("programs/{}", arch.platform().architecture);
            files.extend([
                (format!("{programs}/hello"), hello::program(arch, MESSAGE, 0)),
                (format!("{programs}/exit"), exit::program(arch, 42)),
                (format!("{programs}/pause"), pause::program(arch)),
                (format!("{programs}/tini"), init::program(arch)),
                (format!("{programs}/http"), http::program(arch, 8000, &response)),
            ]);
        }
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

    /// Boots kernel series `kernel` (`vmlinuz-<series>`) and returns what the VM's init
    /// reported, name to value.
    fn boot(&self, kernel: &str, initramfs: &Path) -> BTreeMap<String, String> {
        let out = common::output(
            Command::new("timeout")
                .arg("300")
                .args(self.qemu)
                .args(["-m", "256", "-nographic", "-no-reboot", "-kernel"])
                .arg(self.fetched(&format!("vmlinuz-{kernel}")))
                .arg("-initrd")
                .arg(initramfs)
                .arg("-append")
                .arg(format!("console={} quiet panic=-1 rdinit=/init", self.console)),
        );
        let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let reports: BTreeMap<String, String> = console
            .lines()
            // A line may follow the firmware's terminal codes (x86's SeaBIOS).
            .filter_map(|line| line.split_once("SPECK ").map(|(_, report)| report))
            .map(|report| {
                let (name, value) = report.split_once(' ').unwrap_or((report, ""));
                (name.to_owned(), value.to_owned())
            })
            .collect();
        assert!(
            reports.contains_key("kernel/done"),
            "the VM's init did not finish ({}):\n{console}",
            out.status
        );
        reports
    }

    /// Boots `kernel` (a series, and Debian's flavour after a dash if not the default,
    /// as `vmlinuz-<kernel>` is named), checks its page size (4 KiB, or what a `-16k`
    /// flavour says) and what every program did on it; skips (or fails, as
    /// `common::engine` says) when the kernels were not fetched.
    fn check(&self, kernel: &str) {
        if !engine(self.probe) {
            return;
        }
        let dir = common::workdir();
        let reports = self.boot(kernel, &self.initramfs(dir.path()));
        let (series, flavour) = kernel.split_once('-').unwrap_or((kernel, ""));
        let page_kib = flavour.strip_suffix('k').unwrap_or("4");
        let kernel = reports
            .get("kernel/machine")
            .map_or("an unnamed kernel", String::as_str);
        assert!(
            kernel.contains(&format!(" {series}.")) && kernel.ends_with(flavour),
            "booted {kernel}"
        );
        assert_eq!(
            reports.get("kernel/page-kib").map(String::as_str),
            Some(page_kib),
            "{kernel}"
        );
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
        for arch in self.programs {
            for (name, value) in expected {
                let name = format!("{}/{name}", arch.platform().architecture);
                assert_eq!(
                    reports.get(&name).map(String::as_str),
                    Some(value),
                    "{name} on {kernel}: {reports:#?}"
                );
            }
        }
    }
}

#[test]
fn arm64_programs_behave_on_linux_6_1_for_arm64() {
    ARM64.check("6.1");
}

#[test]
fn arm64_programs_behave_on_linux_5_10_for_arm64() {
    ARM64.check("5.10");
}

/// Debian 13's kernel built for 16 KiB pages, as Apple silicon runs Linux (Asahi): the
/// segment's file offset and address agree modulo any page size. The Cortex-A57 of the
/// other arm64 VMs has no 16 KiB pages; qemu's `max` CPU has (pointer authentication,
/// slow to emulate, off).
#[test]
fn arm64_programs_behave_on_linux_6_12_with_16k_pages() {
    let machine = Machine {
        qemu: &["qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth=off"],
        ..ARM64
    };
    machine.check("6.12-16k");
}

#[test]
fn amd64_and_386_programs_behave_on_linux_6_1_for_amd64() {
    AMD64.check("6.1");
}

#[test]
fn amd64_and_386_programs_behave_on_linux_5_10_for_amd64() {
    AMD64.check("5.10");
}
