//! `speck pack` of real, dynamically linked programs: the closure read from the ELF files
//! (checked against what the real loader maps, `ldd`), `$ORIGIN`, RUNPATH, RPATH,
//! `--library-path` (the image gets a loader cache the real loader must read), 32-bit
//! programs, `--trace`, runtime files, `--strip`, `--why`, `--sbom`, refusals; each
//! image run in docker with its output checked.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Packs with speck's CLI into a docker-archive, loads it under a unique tag and returns
/// the tag (removed when `cleanup` drops).
fn pack_and_load(dir: &Path, args: &[&str], cleanup: &mut Cleanup) -> String {
    let tag = unique("speck-closure");
    let archive = dir.join(format!("{tag}.tar"));
    ok(speck().args(["pack", "--tag", &tag, "-o"]).arg(&archive).args(args));
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    cleanup.0.push(format!("docker rmi -f {tag}"));
    tag
}

/// `docker run --rm TAG ARGS...`: stdout, which must succeed.
fn run(tag: &str, args: &[&str]) -> String {
    ok(Command::new("docker").args(["run", "--rm", tag]).args(args))
}

/// A shared library `libgreet.so` whose `greet()` prints `text`, and a program using it,
/// linked with `link` flags (RUNPATH, RPATH, ...). Returns (program, library dir).
fn greeter(dir: &Path, text: &str, link: &[&str], bits: &str) -> (PathBuf, PathBuf) {
    let lib_dir = dir.join("lib");
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&lib_dir).unwrap();
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::fs::write(
        dir.join("greet.c"),
        format!("#include <stdio.h>\nvoid greet(void) {{ puts(\"{text}\"); }}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("main.c"),
        "void greet(void);\nint main(void) { greet(); return 0; }\n",
    )
    .unwrap();
    ok(Command::new("gcc")
        .args([bits, "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1", "-o"])
        .arg(lib_dir.join("libgreet.so.1"))
        .arg(dir.join("greet.c")));
    let program = bin_dir.join("app");
    ok(Command::new("gcc")
        .arg(bits)
        .arg("-o")
        .arg(&program)
        .arg(dir.join("main.c"))
        .arg(lib_dir.join("libgreet.so.1"))
        .args(link));
    (program, lib_dir)
}

#[test]
fn debian_programs_run_in_docker_with_their_closure() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    let mut cleanup = Cleanup(Vec::new());
    let curl = pack_and_load(dir.path(), &["/usr/bin/curl", "--ca-certs"], &mut cleanup);
    assert!(run(&curl, &["--version"]).starts_with("curl 7"));
    // The bundle is there and readable (no network here to fetch over TLS).
    assert!(run(&curl, &["-s", "file:///etc/ssl/certs/ca-certificates.crt"]).contains("BEGIN CERTIFICATE"));
    let git = pack_and_load(dir.path(), &["/usr/bin/git"], &mut cleanup);
    assert!(run(&git, &["--version"]).starts_with("git version 2"));
    let bash = pack_and_load(dir.path(), &["/usr/bin/bash"], &mut cleanup);
    assert_eq!(run(&bash, &["-c", "echo ok"]), "ok\n");
}

#[test]
fn python_runs_with_the_files_its_traced_run_opened() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    let mut cleanup = Cleanup(Vec::new());
    let code = "import json, ssl; print(json.dumps([1]))";
    let tag = pack_and_load(
        dir.path(),
        &["/usr/bin/python3", "--trace", "--", "-c", code],
        &mut cleanup,
    );
    assert_eq!(run(&tag, &[]), "[1]\n");
    // Without the trace, the closure alone starts the interpreter but not the stdlib.
    let bare = pack_and_load(dir.path(), &["/usr/bin/python3"], &mut cleanup);
    let out = output(Command::new("docker").args(["run", "--rm", &bare, "-c", "print(1)"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("encodings"));
}

#[test]
fn a_failed_traced_run_is_refused() {
    let out = output(speck().args([
        "pack",
        "/usr/bin/python3",
        "--trace",
        "-o",
        "/dev/null/x",
        "--",
        "-c",
        "raise SystemExit(4)",
    ]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exited with status 4") && stderr.contains("fix the arguments"),
        "{stderr}"
    );
}

#[test]
fn origin_runpath_rpath_and_library_path_resolve_as_the_loader_does() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    let mut cleanup = Cleanup(Vec::new());
    // $ORIGIN in RUNPATH: the library goes beside the program's image path.
    let origin = dir.path().join("origin");
    let (program, _) = greeter(&origin, "from origin", &["-Wl,-rpath,$ORIGIN/../lib"], "-m64");
    let spec = format!("{}:/opt/app/bin/app", program.display());
    let tag = pack_and_load(dir.path(), &[&spec], &mut cleanup);
    assert_eq!(run(&tag, &[]), "from origin\n");
    // An absolute RPATH (old tags): the library keeps its host path.
    let rpath = dir.path().join("rpath");
    let lib_dir = rpath.join("lib");
    let flag = format!("-Wl,--disable-new-dtags,-rpath,{}", lib_dir.display());
    let (program, _) = greeter(&rpath, "from rpath", &[&flag], "-m64");
    let tag = pack_and_load(dir.path(), &[program.to_str().unwrap()], &mut cleanup);
    assert_eq!(run(&tag, &[]), "from rpath\n");
    // No path in the program at all: --library-path finds it, and the image's loader
    // finds it through the /etc/ld.so.cache speck writes.
    let plain = dir.path().join("plain");
    let (program, lib_dir) = greeter(&plain, "from the cache", &[], "-m64");
    let refused = output(speck().arg("pack").arg(&program).args(["-o", "/dev/null/x"]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("/app needs the library libgreet.so.1") && stderr.contains("/usr/lib/x86_64-linux-gnu"),
        "{stderr}"
    );
    let library_path = lib_dir.to_str().unwrap();
    let tag = pack_and_load(
        dir.path(),
        &[program.to_str().unwrap(), "--library-path", library_path],
        &mut cleanup,
    );
    assert_eq!(run(&tag, &[]), "from the cache\n");
}

#[test]
fn a_32_bit_program_gets_its_32_bit_libraries() {
    if !engine("docker") || !engine("gcc-multilib") {
        return;
    }
    let dir = workdir();
    let mut cleanup = Cleanup(Vec::new());
    let (program, _) = greeter(dir.path(), "thirty-two", &["-Wl,-rpath,$ORIGIN/../lib"], "-m32");
    let tag = pack_and_load(dir.path(), &[&format!("{}:/bin/app", program.display())], &mut cleanup);
    assert_eq!(run(&tag, &[]), "thirty-two\n");
    let inspect = ok(Command::new("docker").args(["inspect", "-f", "{{.Architecture}}", &tag]));
    assert_eq!(inspect.trim(), "386");
}

#[test]
fn a_library_for_another_machine_is_skipped_as_the_loader_skips_it() {
    let dir = workdir();
    let (program, lib_dir) = greeter(dir.path(), "x", &["-Wl,-rpath,$ORIGIN/../lib"], "-m64");
    // The same library claiming to be for arm64 (e_machine 183): the loader skips it,
    // finds nothing else, and so does speck, saying what it skipped.
    let library = lib_dir.join("libgreet.so.1");
    let mut bytes = std::fs::read(&library).unwrap();
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    std::fs::write(&library, bytes).unwrap();
    let out = output(speck().arg("pack").arg(&program).args(["-o", "/dev/null/x"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("needs the library libgreet.so.1") && stderr.contains("skipped, for another machine"),
        "{stderr}"
    );
}

/// The files the real loader maps for a program, by real path (`ldd`).
fn ldd(program: &str) -> BTreeSet<PathBuf> {
    ok(Command::new("ldd").arg(program))
        .lines()
        .filter_map(|line| {
            // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = line.split("=>").last()?.trim().split(" (").next()?;
            path.starts_with('/').then(|| std::fs::canonicalize(path).unwrap())
        })
        .collect()
}

#[test]
fn the_closure_is_what_the_real_loader_maps() {
    let programs = [
        "/usr/bin/curl",
        "/usr/bin/git",
        "/usr/bin/bash",
        "/usr/bin/python3",
        "/usr/bin/ssh",
        "/usr/bin/podman",
        "/usr/bin/skopeo",
        "/usr/sbin/runc",
        "/usr/bin/gpg",
    ];
    let dir = workdir();
    for program in programs.iter().filter(|p| Path::new(p).exists()) {
        let why = String::from_utf8(
            output(
                speck()
                    .args(["pack", program, "--why", "-o"])
                    .arg(dir.path().join("x.tar")),
            )
            .stderr,
        )
        .unwrap();
        let speck_files: BTreeSet<PathBuf> = why
            .lines()
            .filter(|line| line.contains("needed by") || line.contains("interpreter of"))
            .map(|line| {
                let path = line.split_whitespace().nth(1).unwrap();
                std::fs::canonicalize(path).unwrap()
            })
            .collect();
        // ldd also lists linux-vdso.so.1, which is the kernel's and has no path: it is
        // filtered out above. Nothing else may differ.
        assert_eq!(speck_files, ldd(program), "{program}:\n{why}");
    }
}

#[test]
fn runtime_files_and_accounts_work_in_the_container() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    let mut cleanup = Cleanup(Vec::new());
    let args = [
        "/usr/bin/bash",
        "--passwd",
        "nonroot",
        "--tmp",
        "--tzdata=Europe/Paris,UTC",
        "--os-release",
        "--nss",
        "--include",
        "/etc/debian_version",
    ];
    let tag = pack_and_load(dir.path(), &args, &mut cleanup);
    let script = "echo $UID $HOME ~nonroot; [ -d /tmp -a -k /tmp ] && echo tmp; \
                  [ -f /usr/share/zoneinfo/Europe/Paris ] && echo paris; [ -e /usr/share/zoneinfo/Asia ] || echo no-asia; \
                  . /etc/os-release; echo $ID; read v < /etc/debian_version && echo debian-$v";
    let out = run(&tag, &["-c", script]);
    let debian_version = std::fs::read_to_string("/etc/debian_version").unwrap();
    assert_eq!(
        out,
        format!(
            "65532 /home/nonroot /home/nonroot\ntmp\nparis\nno-asia\ndebian\ndebian-{}\n",
            debian_version.trim()
        )
    );
}

#[test]
fn strip_keeps_programs_running_and_why_accounts_for_every_byte() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    let mut cleanup = Cleanup(Vec::new());
    let (program, _) = greeter(dir.path(), "stripped", &["-g", "-Wl,-rpath,$ORIGIN/../lib"], "-m64");
    let spec = format!("{}:/bin/app", program.display());
    let report = |extra: &[&str]| {
        let out = output(
            speck()
                .args(["pack", &spec, "--why", "-o"])
                .arg(dir.path().join("w.tar"))
                .args(extra),
        );
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let total = |report: &str| -> u64 {
        let line = report.lines().find(|l| l.contains("total,")).unwrap();
        line.split_whitespace().next().unwrap().parse().unwrap()
    };
    let sizes = |report: &str| -> u64 {
        report
            .lines()
            .filter(|l| !l.contains("total,"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    let (plain, stripped) = (report(&[]), report(&["--strip"]));
    assert!(plain.contains("/lib/libgreet.so.1  needed by /bin/app"), "{plain}");
    assert!(plain.contains("interpreter of /bin/app"), "{plain}");
    assert!(stripped.contains("(stripped from"), "{stripped}");
    assert!(total(&stripped) < total(&plain), "{plain}\n{stripped}");
    assert_eq!(sizes(&plain), total(&plain));
    let tag = pack_and_load(dir.path(), &[&spec, "--strip"], &mut cleanup);
    assert_eq!(run(&tag, &[]), "stripped\n");
}

#[test]
fn the_sbom_lists_every_file_with_its_digest_and_package() {
    let dir = workdir();
    let sbom = dir.path().join("curl.spdx.json");
    let archive = dir.path().join("curl.tar");
    ok(speck()
        .args(["pack", "/usr/bin/curl", "--ca-certs", "--sbom"])
        .arg(&sbom)
        .arg("-o")
        .arg(&archive));
    let document: serde_json::Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    let files = document["files"].as_array().unwrap();
    let libc = files
        .iter()
        .find(|f| f["fileName"] == "./usr/lib/x86_64-linux-gnu/libc.so.6")
        .expect("libc listed");
    let sha256 = libc["checksums"][1]["checksumValue"].as_str().unwrap();
    let expected = ok(sh("sha256sum /usr/lib/x86_64-linux-gnu/libc.so.6"));
    assert!(expected.starts_with(sha256));
    // libc6 is a package, at the version dpkg reports, containing that file.
    let version = ok(sh("dpkg-query -W -f '${Version}' libc6"));
    let packages = document["packages"].as_array().unwrap();
    let package = packages.iter().find(|p| p["name"] == "libc6").expect("libc6 listed");
    assert_eq!(package["versionInfo"].as_str().unwrap(), version);
    let relationships = document["relationships"].as_array().unwrap();
    assert!(relationships.iter().any(|r| r["spdxElementId"] == package["SPDXID"]
        && r["relatedSpdxElement"] == libc["SPDXID"]
        && r["relationshipType"] == "CONTAINS"));
    // The CA bundle is generated by update-ca-certificates: listed, owned by no package.
    assert!(packages.iter().any(|p| p["name"] == "curl"));
    assert!(
        files
            .iter()
            .any(|f| f["fileName"] == "./etc/ssl/certs/ca-certificates.crt")
    );
    // Every regular file of the layer is listed.
    let inspect = ok(speck().arg("inspect").arg(&archive));
    let regular = inspect.lines().filter(|l| l.ends_with("  file")).count();
    assert_eq!(files.len(), regular, "{inspect}");
}

#[test]
fn packing_twice_gives_the_same_digest() {
    let dir = workdir();
    let digest = |name: &str| {
        let archive = dir.path().join(name);
        ok(speck()
            .args(["pack", "/usr/bin/curl", "--ca-certs", "--strip", "-o"])
            .arg(&archive));
        ok(sh(&format!("sha256sum {}", archive.display())))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(digest("a.tar"), digest("b.tar"));
}
