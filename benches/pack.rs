//! `cargo bench --bench pack`: prints two tables, asserting nothing.
//!
//! 1. Program sizes: each generated program on each architecture, against the smallest
//!    sizes known for such programs (the goals) and against the programs people use
//!    today (the seeds' records, Docker's hello-world, tini, the Kubernetes pause).
//! 2. Archive sizes: hello, pause and a packed ~1 MB static binary, at each golf level
//!    and whole-file compression, against `docker save | gzip -9` of the same image.
//! 3. Packing: time and bytes to turn a static binary into a docker-archive, speck
//!    against `docker build` (FROM scratch, COPY, ENTRYPOINT; the legacy builder)
//!    followed by `docker save`, in the same run. Goal: at least 100x faster, smaller.

mod common;

use common::{median, ms, run};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const SPECK_RUNS: usize = 30;
const DOCKER_RUNS: usize = 5;

fn main() {
    print_program_sizes();
    println!();
    let dir = tempfile::tempdir().expect("temporary directory");
    let program = static_program(dir.path());
    let program_len = std::fs::metadata(&program).unwrap().len();
    let speck = PathBuf::from(env!("CARGO_BIN_EXE_speck"));
    print_archive_sizes(&speck, dir.path());
    println!();

    let speck_out = dir.path().join("speck.tar");
    let speck_time = median(SPECK_RUNS, || {
        run(Command::new(&speck)
            .arg("pack")
            .arg(&program)
            .args(["-t", "bench:speck", "-o"])
            .arg(&speck_out))
    });
    let speck_bytes = std::fs::metadata(&speck_out).unwrap().len();

    println!("speck pack benchmark: a {program_len}-byte static binary into a docker-archive");
    println!(
        "speck release binary: {} bytes",
        std::fs::metadata(&speck).unwrap().len()
    );
    println!();
    println!("| tool | median time | archive bytes | runs |");
    println!("|---|---:|---:|---:|");
    println!("| speck pack -o | {} | {speck_bytes} | {SPECK_RUNS} |", ms(speck_time));

    match docker_build_and_save(dir.path(), &program) {
        Some((docker_time, docker_bytes)) => {
            println!(
                "| docker build + docker save | {} | {docker_bytes} | {DOCKER_RUNS} |",
                ms(docker_time)
            );
            println!();
            println!(
                "speck is {:.0}x faster (goal: >= 100x); its archive is {} bytes smaller ({:.1}% of docker's)",
                docker_time.as_secs_f64() / speck_time.as_secs_f64(),
                docker_bytes as i64 - speck_bytes as i64,
                100.0 * speck_bytes as f64 / docker_bytes as f64
            );
        }
        None => println!("| docker build + docker save | docker not available: run scripts/engines.sh up | | |"),
    }
}

/// The response the size goals assume for http: 19 bytes.
const HTTP_19: &[u8] = b"HTTP/1.0 200 OK\r\n\r\n";
/// The message of the seeds' hello-world competition.
const MESSAGE: &[u8] = b"Hi IDBS Engineering! RE";

fn print_program_sizes() {
    use speck::forge::{Arch, exit, hello, http, init, pause};
    // Goals: the smallest sizes verified on this kind of machine; for hello and http
    // they include the message or response.
    let len = MESSAGE.len() as f64;
    /// A program, its goals per architecture (amd64, 386, arm64) and what it replaces.
    struct Row {
        name: &'static str,
        build: fn(Arch) -> Vec<u8>,
        goals: [f64; 3],
        anchor: &'static str,
        anchor_bytes: f64,
    }
    let rows = [
        Row {
            name: "hello (23-byte message)",
            build: |a| hello::program(a, MESSAGE, 0),
            goals: [76.0 + len, 48.0 + len, 120.0 + len],
            anchor: "seeds' record 73 (386); Docker hello-world 10,072",
            anchor_bytes: 10_072.0,
        },
        Row {
            name: "exit",
            build: |a| exit::program(a, 0),
            goals: [80.0, 45.0, 112.0],
            anchor: "",
            anchor_bytes: 0.0,
        },
        Row {
            name: "pause",
            build: pause::program,
            goals: [107.0, 76.0, 152.0],
            anchor: "seeds' 127 (no signals); hang 736; k8s pause ~700 KB",
            anchor_bytes: 736.0,
        },
        Row {
            name: "http (19-byte response)",
            build: |a| http::program(a, 8000, HTTP_19),
            goals: [149.0, 147.0, 239.0],
            anchor: "",
            anchor_bytes: 0.0,
        },
        Row {
            name: "init",
            build: init::program,
            goals: [400.0, 400.0, 400.0],
            anchor: "tini-static 708,080; catatonit ~700 KB",
            anchor_bytes: 708_080.0,
        },
    ];
    println!("Generated program sizes (bytes of the ELF file)");
    println!();
    println!("| program | arch | speck | goal | speck / goal | anchor | anchor / speck |");
    println!("|---|---|---:|---:|---:|---|---:|");
    for Row {
        name,
        build,
        goals,
        anchor,
        anchor_bytes,
    } in rows
    {
        for (arch, goal) in Arch::ALL.into_iter().zip(goals) {
            let size = build(arch).len() as f64;
            let versus = if anchor_bytes > 0.0 {
                format!("{:.0}x", anchor_bytes / size)
            } else {
                String::new()
            };
            println!(
                "| {name} | {} | {size} | {goal} | {:.2} | {anchor} | {versus} |",
                arch.platform(),
                size / goal
            );
        }
    }
}

/// Golf levels and compressions, as `speck` arguments.
const LEVELS: [(&str, &[&str]); 3] = [
    ("conventional", &["--tar", "conventional"]),
    ("--golf (portable)", &["--golf"]),
    ("--golf=docker", &["--golf=docker"]),
];
const COMPRESSIONS: [&str; 6] = ["none", "gzip", "xz", "bzip2", "zstd", "best"];

fn print_archive_sizes(speck: &Path, dir: &Path) {
    let big = big_static_program(dir);
    let big_len = std::fs::metadata(&big).unwrap().len();
    let big_path = big.display().to_string();
    let images: [(String, Vec<&str>); 3] = [
        (
            "hello (23-byte message)".into(),
            vec!["hello", "Hi IDBS Engineering! RE"],
        ),
        ("pause".into(), vec!["pause"]),
        (
            format!("packed static binary ({big_len} bytes)"),
            vec!["pack", &big_path],
        ),
    ];
    println!("Archive sizes (bytes of the docker-archive file, linux/amd64)");
    println!();
    println!(
        "| image | level | {} | docker save \\| gzip -9 | docker's / speck's best |",
        COMPRESSIONS.join(" | ")
    );
    println!("|---|---|{}---:|---:|", "---:|".repeat(COMPRESSIONS.len()));
    for (name, args) in &images {
        let docker = docker_save_gzip(speck, dir, args);
        for (level, level_args) in LEVELS {
            let sizes: Vec<u64> = COMPRESSIONS
                .iter()
                .map(|compress| {
                    let out = dir.join("archive.tar");
                    run(Command::new(speck)
                        .args(args)
                        .args(level_args)
                        .args(["--compress", compress, "-o"])
                        .arg(&out));
                    std::fs::metadata(&out).unwrap().len()
                })
                .collect();
            let best = *sizes.last().unwrap();
            let (docker_cell, ratio) = match docker {
                Some(bytes) => (bytes.to_string(), format!("{:.1}x", bytes as f64 / best as f64)),
                None => ("docker not available".into(), String::new()),
            };
            let cells: Vec<String> = sizes.iter().map(u64::to_string).collect();
            println!("| {name} | {level} | {} | {docker_cell} | {ratio} |", cells.join(" | "));
        }
    }
}

/// `docker save IMAGE | gzip -9 | wc -c` for speck's image made by `args`, loaded into docker.
fn docker_save_gzip(speck: &Path, dir: &Path, args: &[&str]) -> Option<u64> {
    let tag = "speck-bench-save:1";
    let loaded = Command::new(speck)
        .args(args)
        .args(["-t", tag, "--load", "docker"])
        .output()
        .ok()?;
    if !loaded.status.success() {
        return None;
    }
    let saved = dir.join("saved.tar.gz");
    let piped = Command::new("bash")
        .arg("-c")
        .arg(format!("docker save {tag} | gzip -9 > {}", saved.display()))
        .status()
        .ok()?;
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
    piped.success().then(|| std::fs::metadata(&saved).unwrap().len())
}

/// A static program of about 1 MB: C code that pulls regex, iconv, locales, wide stdio
/// and libm out of glibc, `gcc -static -Os -s`.
fn big_static_program(dir: &Path) -> PathBuf {
    let src = dir.join("big.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <regex.h>
#include <iconv.h>
#include <time.h>
#include <math.h>
#include <locale.h>
#include <wchar.h>
int main(int argc, char **argv) {
    regex_t re;
    regcomp(&re, argc > 5 ? argv[1] : "h.*o", REG_EXTENDED);
    if (argc > 5) {
        char text[64];
        time_t t = 0;
        iconv_open("UTF-8", argv[2]);
        setlocale(LC_ALL, "");
        strftime(text, sizeof text, "%c", localtime(&t));
        wprintf(L"%ls", L"x");
        printf("%s %f\n", text, sin(argc));
    }
    puts(regexec(&re, "hello", 0, 0, 0) == 0 ? "hello" : "no");
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.join("big");
    run(Command::new("gcc")
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-lm"));
    exe
}

/// A static C program, as users ship: `gcc -static -Os -s`.
fn static_program(dir: &Path) -> PathBuf {
    let src = dir.join("app.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
    )
    .unwrap();
    let exe = dir.join("app");
    run(Command::new("gcc")
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&exe)
        .arg(&src));
    exe
}

/// Median time of `DOCKER_RUNS` uncached builds, each followed by `docker save`.
fn docker_build_and_save(dir: &Path, program: &Path) -> Option<(Duration, u64)> {
    let available = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !available.is_ok_and(|s| s.success()) {
        return None;
    }
    let context = dir.join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::copy(program, context.join("app")).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n",
    )
    .unwrap();
    let saved = dir.join("docker.tar");
    let time = median(DOCKER_RUNS, || {
        run(Command::new("docker")
            .args(["build", "--no-cache", "-q", "-t", "speck-bench:docker"])
            .arg(&context)
            .env("DOCKER_BUILDKIT", "0"));
        run(Command::new("docker")
            .args(["save", "-o"])
            .arg(&saved)
            .arg("speck-bench:docker"));
    });
    let _ = Command::new("docker")
        .args(["rmi", "-f", "speck-bench:docker"])
        .output();
    Some((time, std::fs::metadata(&saved).unwrap().len()))
}
