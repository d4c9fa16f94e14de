//! `cargo bench --bench closure`: packing real Debian programs with their library closure,
//! asserting nothing. For each program: the docker-archive speck writes (plain and with
//! `--strip`), the installed size of the Debian packages its files came from (what an
//! image built `FROM debian` with `apt-get install` would carry at least), and the time to
//! pack; against the by-hand way (`ldd` + `tar -h`, as dockerize does) run in the same
//! process. Anchors, published and not measured here (no network): debian:bookworm-slim
//! about 74 MB, gcr.io/distroless/base about 20 MB.

mod common;

use common::{median, ms, output};
use std::path::Path;
use std::process::Command;

const RUNS: usize = 5;

/// Programs and the arguments a traced run needs (`None`: no trace).
const PROGRAMS: [(&str, Option<&str>); 5] = [
    ("/usr/bin/curl", None),
    ("/usr/bin/git", None),
    ("/usr/bin/bash", None),
    ("/usr/bin/ssh", None),
    ("/usr/bin/python3", Some("import json, ssl; print(1)")),
];

fn main() {
    let speck = env!("CARGO_BIN_EXE_speck");
    let dir = tempfile::tempdir().expect("temporary directory");
    println!("speck pack of Debian programs with their closure (median of {RUNS} runs)");
    println!();
    println!(
        "| program | packages installed | speck archive | of packages | --strip archive | speck time | ldd + tar -h bytes | ldd + tar -h time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (program, trace) in PROGRAMS.iter().filter(|(p, _)| Path::new(p).exists()) {
        let archive = dir.path().join("image.tar");
        let sbom = dir.path().join("sbom.json");
        let pack = |extra: &[&str]| {
            let mut command = Command::new(speck);
            command.args(["pack", program, "-q", "-o"]).arg(&archive).args(extra);
            if let Some(code) = trace {
                command.args(["--trace", "--", "-c", code]);
            }
            command
        };
        let time = median(RUNS, || {
            output(&mut pack(&[]));
        });
        let plain = len(&archive);
        output(&mut pack(&["--strip", "--sbom", sbom.to_str().unwrap()]));
        let stripped = len(&archive);
        let packages = installed_size(&sbom);
        let by_hand = dir.path().join("by-hand.tar");
        let script = format!(
            "ldd {program} | grep -o '/[^ ]*' | xargs tar -chf {} {program} 2>/dev/null",
            by_hand.display()
        );
        let hand_time = median(RUNS, || {
            output(Command::new("bash").arg("-c").arg(&script));
        });
        println!(
            "| {program}{} | {packages} | {plain} | {:.0}% | {stripped} | {} | {} | {} |",
            if trace.is_some() { " --trace" } else { "" },
            100.0 * plain as f64 / packages as f64,
            ms(time),
            len(&by_hand),
            ms(hand_time),
        );
    }
    println!();
    println!(
        "anchors (published, not measured here): debian:bookworm-slim ~74,000,000 bytes; gcr.io/distroless/base ~20,000,000 bytes"
    );
    println!(
        "ldd + tar -h copies files only: no symlinks, no interpreter path, nothing --trace finds; its image does not run python"
    );
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Bytes of the Debian packages the SBOM names, by dpkg's Installed-Size (KiB).
fn installed_size(sbom: &Path) -> u64 {
    let document: serde_json::Value = serde_json::from_slice(&std::fs::read(sbom).unwrap()).unwrap();
    let packages: Vec<String> = document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1) // the image itself
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap_or_default();
            Some(match purl.split_once("?arch=") {
                Some((_, arch)) => format!("{name}:{arch}"),
                None => name.to_owned(),
            })
        })
        .collect();
    let sizes = output(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Installed-Size}\\n"])
            .args(&packages),
    );
    sizes.lines().filter_map(|l| l.trim().parse::<u64>().ok()).sum::<u64>() * 1024
}
