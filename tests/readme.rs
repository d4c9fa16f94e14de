//! Every `sh` example in README.md runs as written and prints what its `# prints:`
//! comments say. Examples use docker and podman, so this is an engine test.

mod common;

use common::*;

/// The README's `sh` code blocks, in order.
fn examples() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_readme_has_examples_to_run() {
    let blocks = examples();
    assert!(blocks.len() >= 5, "{blocks:?}");
    assert!(blocks.iter().all(|b| b.contains("speck ")));
}

#[test]
fn every_readme_example_runs_and_prints_what_it_says() {
    if !engine("docker") || !engine("podman") || !engine("registry") || !engine("arm64-emulation") {
        return;
    }
    let dir = workdir();
    // ./app: a static Linux program, as the README promises.
    write_exe(
        &dir.path().join("app"),
        &speck::forge::hello::program(speck::forge::Arch::Amd64, b"app says hi\n", 0),
    );
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_speck")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let _cleanup = Cleanup(vec![
        "docker rmi -f hello:latest app:1 pause:1 three:1 pause:tiny golfed:1 curl:speck py:speck".into(),
        "docker rm -f speck-pause".into(),
        "podman rmi -f localhost/app:2 localhost/pause:golf".into(),
        "docker images -q localhost:5000/hi | xargs -r docker rmi -f".into(),
    ]);
    for block in examples() {
        let script = format!("set -euo pipefail\nexec 2>&1\n{block}");
        let printed = ok(sh(&script)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("SOURCE_DATE_EPOCH"));
        for expected in block
            .lines()
            .filter_map(|line| line.split_once("# prints: ").map(|(_, text)| text.trim()))
        {
            assert!(
                printed.contains(expected),
                "example:\n{block}\nshould print {expected:?}, printed:\n{printed}"
            );
        }
    }
}
