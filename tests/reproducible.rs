//! Equal inputs give equal bytes; nothing about the host (owner, time, path) leaks in;
//! `SOURCE_DATE_EPOCH` changes only the timestamps.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Every file of an output (one tar file, or a layout directory), by relative path.
fn files(path: &Path) -> BTreeMap<String, Vec<u8>> {
    if path.is_file() {
        return BTreeMap::from([(String::new(), std::fs::read(path).unwrap())]);
    }
    let mut out = BTreeMap::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(path).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn two_builds_of_the_same_inputs_are_identical_in_every_format() {
    let dir = workdir();
    for format in ["docker", "oci", "oci-archive", "docker+oci"] {
        for form in ["minimal", "conventional"] {
            let build = |name: &str| {
                let out = dir.path().join(format!("{name}-{format}-{form}"));
                ok(speck()
                    .args([
                        "hello", "same\n", "--format", format, "--tar", form, "-l", "b=2", "-l", "a=1", "-o",
                    ])
                    .arg(&out)
                    .env_remove("SOURCE_DATE_EPOCH"));
                files(&out)
            };
            let (first, second) = (build("a"), build("b"));
            assert!(!first.is_empty());
            assert_eq!(first, second, "{format} {form}");
        }
    }
}

#[test]
fn host_owner_time_and_location_do_not_leak_into_the_image() {
    let dir = workdir();
    let program = speck::forge::hello::program(speck::forge::Arch::Amd64, b"leak?\n", 0);
    let a = write_exe(&dir.path().join("a-app"), &program);
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    let b = write_exe(&dir.path().join("elsewhere/b-app"), &program);
    ok(sh(&format!("touch -d 2001-02-03 {}", b.display())));
    // Owner changes need root; the time and path differences still apply without it.
    let _ = output(sh(&format!("chown 1234:5678 {}", b.display())));
    let pack = |host: &Path, out: &str| {
        let dest = dir.path().join(out);
        ok(speck()
            .arg("pack")
            .arg(format!("{}:/app", host.display()))
            .args(["-t", "same:1", "-o"])
            .arg(&dest));
        std::fs::read(dest).unwrap()
    };
    assert_eq!(pack(&a, "a.tar"), pack(&b, "b.tar"));
}

#[test]
fn source_date_epoch_changes_only_the_timestamps() {
    let dir = workdir();
    let build = |epoch: &str| {
        let out = dir.path().join(format!("epoch-{epoch}"));
        ok(speck()
            .args(["hello", "when\n", "--format", "oci", "--compression", "none", "-o"])
            .arg(&out)
            .env("SOURCE_DATE_EPOCH", epoch));
        out
    };
    let (zero, later) = (build("0"), build("1700000000"));
    let read_json = |layout: &Path, digest: &str| -> serde_json::Value {
        let path = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let manifest_of = |layout: &Path| {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        read_json(layout, index["manifests"][0]["digest"].as_str().unwrap())
    };
    let (m0, m1) = (manifest_of(&zero), manifest_of(&later));

    let mut c0 = read_json(&zero, m0["config"]["digest"].as_str().unwrap());
    let mut c1 = read_json(&later, m1["config"]["digest"].as_str().unwrap());
    assert_eq!(c0["created"], "1970-01-01T00:00:00Z");
    assert_eq!(c1["created"], "2023-11-14T22:13:20Z");
    assert_eq!(c1["history"][0]["created"], "2023-11-14T22:13:20Z");
    for config in [&mut c0, &mut c1] {
        config["created"] = "-".into();
        config["history"][0]["created"] = "-".into();
        config["rootfs"]["diff_ids"] = "-".into();
    }
    assert_eq!(
        c0, c1,
        "configs differ only in times (and the diff_id that follows from them)"
    );

    let layer_of = |layout: &Path, manifest: &serde_json::Value| {
        let digest = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_owned();
        std::fs::read(layout.join("blobs/sha256").join(digest)).unwrap()
    };
    let (l0, l1) = (layer_of(&zero, &m0), layer_of(&later, &m1));
    assert_eq!(l0.len(), l1.len());
    let differing: Vec<usize> = (0..l0.len()).filter(|&i| l0[i] != l1[i]).collect();
    assert!(!differing.is_empty());
    // Only the header's mtime (136..148) and checksum (148..156) fields may differ.
    assert!(differing.iter().all(|&i| (136..156).contains(&i)), "{differing:?}");
    assert_eq!(&l1[136..147], b"14524770400", "1700000000 in octal");
}

#[test]
fn an_empty_source_date_epoch_counts_as_unset_and_a_malformed_one_is_refused_by_name() {
    let dir = workdir();
    let build = |name: &str, epoch: Option<&str>| {
        let out = dir.path().join(name);
        let mut command = speck();
        command.args(["hello", "when\n", "-o"]).arg(&out);
        match epoch {
            Some(epoch) => command.env("SOURCE_DATE_EPOCH", epoch),
            None => command.env_remove("SOURCE_DATE_EPOCH"),
        };
        (output(command), out)
    };
    let (unset, unset_out) = build("unset.tar", None);
    let (empty, empty_out) = build("empty.tar", Some(""));
    assert!(unset.status.success() && empty.status.success(), "{empty:?}");
    assert_eq!(files(&unset_out), files(&empty_out), "empty is the same as unset");

    let (bad, bad_out) = build("bad.tar", Some("yesterday"));
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("\"yesterday\" is not whole seconds") && stderr.contains("SOURCE_DATE_EPOCH"),
        "{stderr}"
    );
    assert!(!bad_out.exists(), "nothing written");
}
