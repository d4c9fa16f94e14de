//! `cargo bench --bench run`: the time from `speck run IMAGE` to its exit, against
//! `docker load` + `docker run --rm` of the same archive (what the seeds did to "run
//! that image locally"), run in the same process, and the wall time of `speck check`
//! (static only, and with the live checks). Asserts nothing.

mod common;

use common::{median, ms, run};
use std::process::Command;

const RUNS: usize = 10;

fn main() {
    let speck = env!("CARGO_BIN_EXE_speck");
    let dir = tempfile::tempdir().expect("temporary directory");
    // Each image: the speck command that makes it, and its Cmd.
    let images: [(&str, &[&str], &[&str]); 4] = [
        ("hello", &["hello", "hi\n"], &[]),
        ("pause", &["pause"], &[]),
        ("dash", &["pack", "/bin/sh"], &["-c", "true"]),
        ("curl", &["pack", "/usr/bin/curl"], &["--version"]),
    ];
    println!("speck run against docker load + docker run --rm (median of {RUNS} runs)");
    println!();
    println!("| image | archive bytes | speck run | docker load + run | ratio | speck check --static | speck check |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, make, cmd) in images {
        let archive = dir.path().join(format!("{name}.tar"));
        let tag = format!("speck-bench-run-{name}");
        run(Command::new(speck)
            .args(make)
            .arg("-o")
            .arg(&archive)
            .args(["-t", &tag, "--"])
            .args(cmd));
        let bytes = std::fs::metadata(&archive).map_or(0, |m| m.len());
        // pause runs until stopped: time it with a command that exits instead.
        let exits: &[&str] = if name == "pause" {
            &["--entrypoint", "/nope"]
        } else {
            &[]
        };
        let speck_run = median(RUNS, || {
            let _ = Command::new(speck).arg("run").arg(&archive).args(exits).output();
        });
        let docker = median(RUNS, || {
            let _ = Command::new("docker").arg("load").arg("-qi").arg(&archive).output();
            let _ = Command::new("docker")
                .args(["run", "--rm", "--network=none"])
                .args(exits)
                .arg(&tag)
                .output();
        });
        let _ = Command::new("docker").args(["rmi", &tag]).output();
        let check_static = median(RUNS, || {
            let _ = Command::new(speck).args(["check", "--static"]).arg(&archive).output();
        });
        let check = median(3, || {
            let _ = Command::new(speck).arg("check").arg(&archive).output();
        });
        println!(
            "| {name} | {bytes} | {} | {} | {:.1}x faster | {} | {} |",
            ms(speck_run),
            ms(docker),
            docker.as_secs_f64() / speck_run.as_secs_f64(),
            ms(check_static),
            ms(check)
        );
    }
    println!();
    println!(
        "pause is timed with --entrypoint /nope (it would run until stopped); its live check includes the 500 ms start window."
    );
}
