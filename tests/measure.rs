//! `speck size` and `speck inspect`: every size figure equals the real tool's own number
//! for the same image (`docker images`, `podman images`, `ctr images ls`, `wc -c`), and
//! what is read from outside is verified.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

/// `speck size TARGET --json`: one object per image.
fn sizes(target: &str) -> Vec<Value> {
    let out = ok(speck().args(["size", target, "--json"]));
    serde_json::from_str::<Vec<Value>>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn figure(row: &Value, name: &str) -> u64 {
    row[name].as_u64().unwrap_or_else(|| panic!("no {name} in {row}"))
}

/// Sizes as ctr prints them (`819.0 B`, `1.3 KiB`).
fn ctr_human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

fn build(dir: &Path, name: &str, args: &[&str]) -> String {
    let path = dir.join(name);
    ok(speck().args(args).arg("-o").arg(&path));
    path.display().to_string()
}

#[test]
fn size_figures_equal_what_docker_podman_ctr_and_wc_report() {
    if !(engine("docker") && engine("podman") && engine("ctr")) {
        return;
    }
    let dir = workdir();
    let tag = format!("{}:s", unique("speck-size"));
    let message = "measured\n";
    let ctr = ctr("speck-test");
    let _cleanup = Cleanup(vec![
        format!("docker rmi -f {tag}"),
        format!("podman rmi -f localhost/{tag}"),
        format!("{ctr} images rm docker.io/library/{tag}"),
    ]);
    for (name, extra) in [
        ("docker.tar", &["--format", "docker"][..]),
        ("gzip-layers.tar", &["--format", "docker", "--compression", "gzip"][..]),
        ("oci.tar", &["--format", "oci-archive"][..]),
        ("golf.tar", &["--golf", "--compress", "xz"][..]),
    ] {
        let mut args = vec!["hello", message, "-t", &tag];
        args.extend_from_slice(extra);
        let archive = build(dir.path(), name, &args);
        let rows = sizes(&archive);
        assert_eq!(rows.len(), 1, "{name}");
        let row = &rows[0];
        assert_eq!(
            figure(row, "archive"),
            std::fs::metadata(&archive).unwrap().len(),
            "{name}: wc -c"
        );

        // A store that already holds this image keeps its other manifests too.
        let id = row["id"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
        let _ = output(sh(&format!("podman rmi -f {id}")));
        let loaded = ok(sh(&format!("podman load -i {archive}")));
        let podman_name = loaded
            .lines()
            .find_map(|line| line.strip_prefix("Loaded image: "))
            .unwrap_or_else(|| panic!("{loaded}"))
            .trim()
            .to_owned();
        let podman = ok(sh(&format!(
            "podman image inspect --format '{{{{.Size}}}}' {podman_name}"
        )));
        assert_eq!(
            podman.trim(),
            figure(row, "uncompressed").to_string(),
            "{name}: podman images"
        );
        ok(sh(&format!("podman rmi -f {id}")));

        if name != "oci.tar" {
            ok(sh(&format!("docker load -i {archive}")));
            let docker = ok(sh(&format!("docker image inspect -f '{{{{.Size}}}}' {tag}")));
            assert_eq!(docker.trim(), figure(row, "files").to_string(), "{name}: docker images");
            let from_engine = sizes(&format!("docker:{tag}"));
            assert_eq!(figure(&from_engine[0], "files"), figure(row, "files"), "docker:{tag}");
            ok(sh(&format!("docker rmi -f {tag}")));
        } else {
            // containerd keeps an OCI archive's manifest as it is.
            ok(sh(&format!("{ctr} images import {archive}")));
            let listed = ok(sh(&format!("{ctr} images ls")));
            let line = listed
                .lines()
                .find(|line| line.contains(&tag))
                .unwrap_or_else(|| panic!("{listed}"));
            assert!(
                line.contains(&ctr_human(figure(row, "blobs"))),
                "ctr images ls: {line} vs {}",
                figure(row, "blobs")
            );
            ok(sh(&format!("{ctr} images rm docker.io/library/{tag}")));
        }
    }
}

/// The pull figure: what the distribution registry serves for the image once pushed
/// (manifest + config + layers, sizes from the manifest it returns).
#[test]
fn pull_figure_equals_what_the_registry_serves() {
    if !(engine("skopeo") && engine("registry")) {
        return;
    }
    let dir = workdir();
    let archive = build(dir.path(), "oci.tar", &["hello", "pulled\n", "--format", "oci-archive"]);
    let row = &sizes(&archive)[0];
    let repository = format!("127.0.0.1:5000/{}", unique("speck-size"));
    ok(sh(&format!(
        "skopeo copy -q --dest-tls-verify=false oci-archive:{archive} docker://{repository}:1"
    )));
    let (host, name) = repository.split_once('/').unwrap();
    let manifest = ok(sh(&format!(
        "curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://{host}/v2/{name}/manifests/1"
    )));
    let parsed: Value = serde_json::from_str(&manifest).unwrap();
    let served = manifest.len() as u64
        + parsed["config"]["size"].as_u64().unwrap()
        + parsed["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|layer| layer["size"].as_u64().unwrap())
            .sum::<u64>();
    assert_eq!(figure(row, "pull"), served, "{manifest}");
    // Read from the registry itself, the figure is the same.
    let remote = &sizes(&format!("registry:{repository}:1"))[0];
    assert_eq!(figure(remote, "pull"), served);
    assert_eq!(figure(remote, "blobs"), served);
}

#[test]
fn archive_figures_match_what_speck_writes_with_each_compression() {
    let dir = workdir();
    let plain = build(dir.path(), "plain.tar", &["pause", "--golf=docker"]);
    let row = &sizes(&plain)[0];
    let as_codec = |codec: &str| {
        row["archive_as"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["codec"] == codec)
            .and_then(|c| c["bytes"].as_u64())
            .unwrap()
    };
    assert_eq!(as_codec("none"), figure(row, "archive"));
    for codec in ["gzip", "xz", "bzip2", "zstd"] {
        let written = build(dir.path(), codec, &["pause", "--golf=docker", "--compress", codec]);
        assert_eq!(std::fs::metadata(&written).unwrap().len(), as_codec(codec), "{codec}");
        // The compressed file reads back as the same image.
        assert_eq!(sizes(&written)[0]["id"], row["id"], "{codec}");
    }
    assert_eq!(row["platform"], "unknown", "the docker level names no platform");
}

#[test]
fn inspect_shows_config_files_elf_facts_and_where_the_bytes_go() {
    let dir = workdir();
    let archive = build(
        dir.path(),
        "h.tar",
        &["hello", "inspected\n", "--golf", "--compress", "gzip", "-e", "K=v"],
    );
    let text = ok(speck().args(["inspect", &archive]));
    for part in [
        "docker-archive, gzip",
        r#""Entrypoint":["/hello"]"#,
        "0755 0:0",
        "/hello",
        "ELF X86_64 64-bit, linux/amd64, static",
        "layer file contents",
        "stored with gzip",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    let json: Value = serde_json::from_str(&ok(speck().args(["inspect", &archive, "--json"]))).unwrap();
    let file = &json["images"][0]["files"][0];
    assert_eq!(file["elf"]["linking"], "static");
    assert_eq!(file["size"], json["breakdown"]["layer_files"]);
    let parts = &json["breakdown"];
    let sum: u64 = [
        "archive_headers",
        "json",
        "layer_headers",
        "layer_files",
        "layer_padding",
        "compressed_layers",
        "archive_padding",
    ]
    .iter()
    .map(|part| parts[part].as_u64().unwrap())
    .sum();
    assert_eq!(
        sum,
        parts["uncompressed"].as_u64().unwrap(),
        "the parts add up: {parts}"
    );
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused_by_name() {
    let dir = workdir();
    let layout = dir.path().join("layout");
    ok(speck().args(["hello", "x", "--format", "oci", "-o"]).arg(&layout));
    let blobs = layout.join("blobs/sha256");
    let mut tampered = false;
    for blob in std::fs::read_dir(&blobs).unwrap() {
        let path = blob.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            std::fs::write(&path, bytes).unwrap();
            tampered = true;
        }
    }
    assert!(tampered, "the layout has a gzip layer");
    let out = output(speck().arg("size").arg(&layout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {}", layout.display())) && stderr.contains("not the sha256:"),
        "{stderr}"
    );
}

#[test]
fn a_registry_target_that_is_not_there_is_named() {
    if !engine("registry") {
        return;
    }
    let name = unique("speck-absent");
    let out = output(speck().args(["size", &format!("registry:127.0.0.1:5000/{name}:1")]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("cannot read registry:127.0.0.1:5000/{name}:1"))
            && stderr.contains("MANIFEST_UNKNOWN"),
        "{stderr}"
    );
}

#[test]
fn inspect_says_when_a_dynamic_program_lacks_its_interpreter() {
    use speck::image::{Config, ImageSpec, Platform};
    use speck::layer::{Compression, Entry, Layer, LayerOptions, TarForm};
    let program = std::fs::read("/bin/ls").expect("/bin/ls, a dynamic program");
    let options = LayerOptions {
        form: TarForm::Minimal,
        mtime: 0,
        compression: Compression::None,
    };
    let layer = Layer::build(&[Entry::file("ls", 0o755, program).unwrap()], &options).unwrap();
    let image = ImageSpec {
        platform: Platform::linux("amd64"),
        config: Config::default(),
        layers: vec![layer],
        created: 0,
        created_by: "test".into(),
        annotations: Default::default(),
    }
    .build();
    let dir = workdir();
    let path = dir.path().join("ls.tar");
    let options = speck::write::WriteOptions {
        tags: vec!["ls:1".parse().unwrap()],
        ..Default::default()
    };
    std::fs::write(&path, speck::write::archive(&image.into(), &options).bytes).unwrap();
    let text = ok(speck().arg("inspect").arg(&path));
    assert!(
        text.contains("dynamic, interpreter /lib64/ld-linux-x86-64.so.2 (MISSING from the image)"),
        "{text}"
    );
}
