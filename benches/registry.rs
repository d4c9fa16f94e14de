//! `cargo bench --bench registry`: push and pull against a distribution registry of its
//! own (started on a free loopback port), speck against `skopeo copy` in the same run.
//!
//! 1. Push and pull of a ~200 MB image of four gzip layers (an OCI layout made by speck),
//!    median of 3 runs each, each push to an empty registry of its own; skopeo copies the same
//!    layout (`oci:` → `docker://` and back). Goal: speck faster on both.
//! 2. Re-push of the unchanged image: time and bytes sent. Goal: no blob bytes.
//! 3. Pull bytes (manifest + config + layers, as `speck size registry:` counts them) of
//!    the pause image pushed by speck at each golf level, against `docker push` of the
//!    same image.

mod common;

use common::{ms, noise, output, run};
use speck::image::{Config, ImageSpec, Platform};
use speck::layer::{Compression, Entry, Layer, LayerOptions, TarForm};
use speck::write::{self, Format, WriteOptions};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(job: impl FnMut()) -> Duration {
    common::median(RUNS, job)
}

const RUNS: usize = 3;

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(registry) = Registry::start(dir.path()) else {
        println!("docker-registry is not installed: run scripts/engines.sh up");
        return;
    };
    let layout = dir.path().join("big");
    let bytes = big_layout(&layout);
    let has_skopeo = Command::new("skopeo").arg("--version").output().is_ok();

    println!("Registry transfer: a {bytes}-byte image (4 gzip layers), distribution registry on loopback");
    println!();
    println!("| operation | speck | skopeo copy | skopeo / speck |");
    println!("|---|---:|---:|---:|");
    let mut n = 0;
    let mut fresh = |tool: &str| {
        n += 1;
        format!("{}/bench/{tool}{n}:1", registry.addr)
    };
    // Each push goes to an empty registry of its own: nothing to skip or mount.
    let push_to_empty = |push: &mut dyn FnMut(&str)| {
        let mut total = Duration::ZERO;
        let mut times: Vec<Duration> = (0..RUNS)
            .map(|run| {
                let scratch = dir.path().join(format!("empty{run}-{}", total.as_nanos()));
                std::fs::create_dir_all(&scratch).unwrap();
                let empty = Registry::start(&scratch).expect("a registry starts");
                let start = Instant::now();
                push(&format!("{}/bench/image:1", empty.addr));
                let took = start.elapsed();
                total += took;
                took
            })
            .collect();
        times.sort();
        times[RUNS / 2]
    };
    let speck_push = push_to_empty(&mut |reference| run(speck().arg("push").arg(&layout).arg(reference).arg("-q")));
    let skopeo_push = has_skopeo.then(|| {
        push_to_empty(&mut |reference| {
            run(Command::new("skopeo")
                .args(["copy", "-q", "--dest-tls-verify=false"])
                .arg(format!("oci:{}", layout.display()))
                .arg(format!("docker://{reference}")))
        })
    });
    row("push", speck_push, skopeo_push);
    let source = format!("{}/bench/source:1", registry.addr);
    run(speck().arg("push").arg(&layout).arg(&source).arg("-q"));
    let pulled = dir.path().join("pulled");
    let speck_pull = median(|| {
        let _ = std::fs::remove_dir_all(&pulled);
        run(speck()
            .args(["pull", &source, "-q", "--format", "oci", "-o"])
            .arg(&pulled))
    });
    let skopeo_pull = has_skopeo.then(|| {
        median(|| {
            let _ = std::fs::remove_dir_all(&pulled);
            run(Command::new("skopeo")
                .args(["copy", "-q", "--src-tls-verify=false"])
                .arg(format!("docker://{source}"))
                .arg(format!("oci:{}", pulled.display())))
        })
    });
    row("pull", speck_pull, skopeo_pull);

    let start = Instant::now();
    let again = output(speck().arg("push").arg(&layout).arg(&source).args(["-q", "--json"]));
    let repush = start.elapsed();
    let again: serde_json::Value = serde_json::from_str(&again).expect("push --json prints JSON");
    println!();
    println!(
        "Re-push of the unchanged image: {}, {} blobs uploaded, {} already there, {} bytes sent (manifest only; goal: no blob bytes)",
        ms(repush),
        again["uploaded"],
        again["existed"],
        again["bytes_sent"]
    );

    println!();
    println!("Pull bytes of the pause image (linux/amd64), as `speck size registry:REF` counts them");
    println!();
    println!("| pushed by | bytes | docker push / this |");
    println!("|---|---:|---:|");
    let docker_bytes = docker_pushed_pause(&registry.addr);
    for (label, args) in [
        ("speck pause --push", &[][..]),
        ("speck pause --golf --push", &["--golf"][..]),
        ("speck pause --golf=docker --push", &["--golf=docker"][..]),
    ] {
        let reference = fresh("pause");
        run(speck().arg("pause").args(args).args(["-q", "--push", &reference]));
        let bytes = pull_bytes(&reference);
        let ratio = docker_bytes.map_or("-".into(), |docker| format!("{:.2}x", docker as f64 / bytes as f64));
        println!("| {label} | {bytes} | {ratio} |");
    }
    match docker_bytes {
        Some(bytes) => println!("| docker push (speck pause --load docker) | {bytes} | 1.00x |"),
        None => println!("| docker push | docker not available | |"),
    }
}

fn speck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_speck"))
}

/// Four layers of 50 MB of incompressible bytes, gzipped, in an OCI layout; its bytes.
fn big_layout(dir: &Path) -> u64 {
    let options = LayerOptions {
        form: TarForm::Minimal,
        mtime: 0,
        compression: Compression::Gzip,
    };
    let layers: Vec<Layer> = (0..4u64)
        .map(|i| {
            Layer::build(
                &[Entry::file(&format!("data{i}"), 0o644, noise(50 << 20, i + 1)).unwrap()],
                &options,
            )
            .unwrap()
        })
        .collect();
    let image = ImageSpec {
        platform: Platform::linux("amd64"),
        config: Config::default(),
        layers,
        created: 0,
        created_by: "bench".into(),
        annotations: Default::default(),
    }
    .build();
    let options = WriteOptions {
        format: Format::Oci,
        tags: vec!["bench:1".parse().unwrap()],
        ..Default::default()
    };
    write::write(&image.into(), dir, &options)
        .expect("layout written")
        .bytes
}

/// `docker push` of speck's pause image, loaded into docker; its pull bytes.
fn docker_pushed_pause(registry: &str) -> Option<u64> {
    Command::new("docker")
        .arg("info")
        .output()
        .ok()?
        .status
        .success()
        .then_some(())?;
    let reference = format!("{registry}/bench/docker-pause:1");
    run(speck().args(["pause", "--load", "docker", "-t", &reference]));
    run(Command::new("docker").args(["push", "-q", &reference]));
    let _ = Command::new("docker").args(["rmi", &reference]).output();
    Some(pull_bytes(&reference))
}

fn pull_bytes(reference: &str) -> u64 {
    let sizes = output(speck().args(["size", "--json", &format!("registry:{reference}")]));
    let sizes: serde_json::Value = serde_json::from_str(&sizes).expect("size --json prints JSON");
    sizes[0]["pull"].as_u64().expect("a pull figure")
}

fn row(operation: &str, speck: Duration, skopeo: Option<Duration>) {
    match skopeo {
        Some(skopeo) => println!(
            "| {operation} | {} | {} | {:.2}x |",
            ms(speck),
            ms(skopeo),
            skopeo.as_secs_f64() / speck.as_secs_f64()
        ),
        None => println!("| {operation} | {} | skopeo not installed | |", ms(speck)),
    }
}

/// A distribution registry on a free loopback port, storage in `dir`; stopped on drop.
struct Registry {
    addr: String,
    child: std::process::Child,
}

impl Registry {
    fn start(dir: &Path) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\nhttp: {{ addr: {addr} }}\n",
                dir.join("registry").display()
            ),
        )
        .ok()?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let registry = Self { addr, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.addr).is_ok() {
                return Some(registry);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
