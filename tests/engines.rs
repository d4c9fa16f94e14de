//! Every output format, in both tar forms, loaded AND run in the real tools: docker,
//! podman, skopeo, umoci + runc, and containerd's ctr. Each test checks what the
//! container printed and its exit status.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const FORMS: [&str; 2] = ["minimal", "conventional"];

/// Builds a hello image printing `message`, returns the output path.
fn hello(dir: &Path, message: &str, format: &str, form: &str, tag: &str) -> PathBuf {
    let out = dir.join(format!("{tag}-{format}-{form}").replace([':', '/', '+'], "_"));
    ok(speck()
        .args(["hello", message, "--format", format, "--tar", form, "-t", tag, "-o"])
        .arg(&out));
    out
}

/// The names an engine's `load` printed (`Loaded image: NAME` or `Loaded image(s): A,B`).
fn loaded_names(load_output: &str) -> Vec<String> {
    load_output
        .lines()
        .filter_map(|line| {
            line.split_once(": ")
                .filter(|(head, _)| head.starts_with("Loaded image"))
        })
        .flat_map(|(_, names)| names.split(',').map(|n| n.trim().to_owned()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn docker_loads_and_runs_every_docker_format() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    for format in ["docker", "docker+oci"] {
        for form in FORMS {
            let tag = format!("{}:t", unique("speck-docker"));
            let _cleanup = Cleanup(vec![format!("docker rmi -f {tag}")]);
            let message = format!("docker {format} {form}\n");
            let archive = hello(dir.path(), &message, format, form, &tag);
            let loaded = ok(sh(&format!("docker load -i {}", archive.display())));
            assert!(loaded.contains(&tag), "{loaded}");
            let out = output(sh(&format!("docker run --rm --network=none {tag}")));
            assert_eq!(String::from_utf8_lossy(&out.stdout), message, "{format} {form}");
            assert_eq!(out.status.code(), Some(0));
        }
    }
}

#[test]
fn podman_loads_and_runs_docker_and_oci_archives() {
    if !engine("podman") {
        return;
    }
    let dir = workdir();
    for format in ["docker", "docker+oci", "oci-archive"] {
        for form in FORMS {
            let tag = format!("{}:t", unique("speck-podman"));
            let message = format!("podman {format} {form}\n");
            let archive = hello(dir.path(), &message, format, form, &tag);
            let names = loaded_names(&ok(sh(&format!("podman load -i {}", archive.display()))));
            assert_eq!(names.len(), 1, "{names:?}");
            let _cleanup = Cleanup(vec![format!("podman rmi -f {}", names[0])]);
            let out = ok(sh(&format!("podman run --rm --network=none {}", names[0])));
            assert_eq!(out, message, "{format} {form}");
        }
    }
}

#[test]
fn skopeo_copies_and_inspects_every_format_with_matching_digests() {
    if !engine("skopeo") {
        return;
    }
    let dir = workdir();
    for (format, transport) in [
        ("docker", "docker-archive"),
        ("docker+oci", "docker-archive"),
        ("oci-archive", "oci-archive"),
        ("oci", "oci"),
    ] {
        for form in FORMS {
            let out = hello(dir.path(), "skopeo\n", format, form, "skopeo-test:v1");
            let source = match transport {
                "oci" => format!("oci:{}:v1", out.display()),
                _ => format!("{transport}:{}", out.display()),
            };
            let copy = dir.path().join(format!("copy-{format}-{form}"));
            // skopeo verifies every blob digest while copying.
            ok(sh(&format!("skopeo copy {source} oci:{}:latest", copy.display())));
            let inspect: serde_json::Value =
                serde_json::from_str(&ok(sh(&format!("skopeo inspect {source}")))).unwrap();
            assert_eq!(inspect["Architecture"], "amd64", "{format} {form}");
            assert_eq!(inspect["Os"], "linux");
            if transport == "oci" {
                let index: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
                assert_eq!(
                    inspect["Digest"], index["manifests"][0]["digest"],
                    "skopeo sees our manifest digest"
                );
            }
        }
    }
}

#[test]
fn umoci_unpacks_the_oci_layout_and_runc_runs_it() {
    if !engine("umoci") {
        return;
    }
    let dir = workdir();
    for form in FORMS {
        let message = format!("umoci {form}\n");
        let layout = hello(dir.path(), &message, "oci", form, "umoci-test:v1");
        let bundle = dir.path().join(format!("bundle-{form}"));
        ok(sh(&format!(
            "umoci unpack --image {}:v1 {}",
            layout.display(),
            bundle.display()
        )));
        // umoci asks for a terminal; tests have none.
        let config_path = bundle.join("config.json");
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        config["process"]["terminal"] = false.into();
        std::fs::write(&config_path, config.to_string()).unwrap();
        let id = unique("speck-runc");
        let _cleanup = Cleanup(vec![format!("runc delete -f {id}")]);
        let out = ok(sh(&format!("cd {} && runc run {id}", bundle.display())));
        assert_eq!(out, message, "{form}");
    }
}

#[test]
fn containerd_imports_and_runs_docker_and_oci_archives() {
    if !engine("ctr") {
        return;
    }
    let dir = workdir();
    let ctr = ctr("speck-test");
    for format in ["docker", "docker+oci", "oci-archive"] {
        for form in FORMS {
            let name = unique("speck-ctr");
            let tag = format!("{name}:t");
            let message = format!("ctr {format} {form}\n");
            let archive = hello(dir.path(), &message, format, form, &tag);
            let full = format!("docker.io/library/{tag}");
            let _cleanup = Cleanup(vec![format!("{ctr} images rm {full}")]);
            ok(sh(&format!("{ctr} images import {}", archive.display())));
            let out = ok(sh(&format!("{ctr} run --rm {full} {name}")));
            assert_eq!(out, message, "{format} {form}");
        }
    }
}

#[test]
fn load_docker_puts_the_image_in_the_engine_with_its_config_digest_as_id() {
    if !engine("docker") {
        return;
    }
    let tag = format!("{}:t", unique("speck-load"));
    let _cleanup = Cleanup(vec![format!("docker rmi -f {tag}")]);
    let printed = ok(speck().args(["hello", "loaded\n", "--load", "docker", "-t", &tag]));
    // Writing the same image to a file reports its image ID (the config digest).
    let dir = workdir();
    let written = output(
        speck()
            .args(["hello", "loaded\n", "-t", &tag, "-o"])
            .arg(dir.path().join("a.tar")),
    );
    let report = String::from_utf8_lossy(&written.stderr);
    let config_hex = report
        .split("image ID sha256:")
        .nth(1)
        .unwrap()
        .trim_end_matches([')', '\n'])
        .to_owned();
    assert_eq!(
        printed.trim(),
        format!("Loaded {tag} into docker (ID sha256:{config_hex})")
    );
    assert_eq!(ok(sh(&format!("docker run --rm --network=none {tag}"))), "loaded\n");
}

/// speck reaches docker where the docker CLI does: a context that `docker context
/// create` made and `DOCKER_CONTEXT` or `docker context use` chose, unless `DOCKER_HOST`
/// says otherwise. The context's socket is a link to the daemon's, so a load succeeds
/// only through it, and fails naming it while the link is missing.
#[test]
fn load_docker_follows_the_docker_clis_current_context() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    let config = dir.path().join("docker-config");
    let socket = dir.path().join("engine.sock");
    let tag = format!("{}:t", unique("speck-context"));
    let _cleanup = Cleanup(vec![format!("docker rmi -f {tag}")]);
    let docker_cli = |args: &str| ok(sh(&format!("docker --config {} {args}", config.display())));
    docker_cli(&format!(
        "context create speck-test --docker host=unix://{}",
        socket.display()
    ));
    let load = |env: &[(&str, &str)]| {
        let mut command = speck();
        command
            .env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT");
        command.envs(env.iter().copied());
        output(command.args(["hello", "context\n", "--load", "docker", "-t", &tag]))
    };
    let missing = load(&[("DOCKER_CONTEXT", "speck-test")]);
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "unix://{}, from the docker context \"speck-test\"",
            socket.display()
        )),
        "{said}"
    );

    std::os::unix::fs::symlink("/var/run/docker.sock", &socket).unwrap();
    assert!(load(&[("DOCKER_CONTEXT", "speck-test")]).status.success());
    docker_cli("context use speck-test");
    assert!(load(&[]).status.success(), "config.json's currentContext");
    assert_eq!(ok(sh(&format!("docker run --rm --network=none {tag}"))), "context\n");

    std::fs::remove_file(&socket).unwrap();
    assert!(!load(&[]).status.success(), "the current context, without its socket");
    let overridden = load(&[("DOCKER_HOST", "unix:///var/run/docker.sock")]);
    assert!(overridden.status.success(), "DOCKER_HOST wins: {overridden:?}");
}

/// A second dockerd of the test's own, serving its API only over TCP with TLS that
/// verifies clients (`--tlsverify`, as docker:dind does on 2376), with CA, server and
/// client certificates openssl makes in the docker CLI's file names. Stopped when dropped.
struct TlsDockerd {
    dir: tempfile::TempDir,
    host: String,
    child: std::process::Child,
}

impl TlsDockerd {
    fn start() -> Self {
        let dir = workdir();
        ok(sh(r#"set -e
new() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr -subj /CN=$1 2>/dev/null; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ca 2>/dev/null
new server && new client
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
printf 'extendedKeyUsage=clientAuth\n' > client.ext
for who in server client; do
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $who.pem -days 2 -extfile $who.ext 2>/dev/null
done
mkdir client && cp ca.pem client/ && cp client.pem client/cert.pem && cp client.key client/key.pem"#)
        .current_dir(dir.path()));
        let host = format!("tcp://127.0.0.1:{}", free_port());
        let at = |name: &str| dir.path().join(name).display().to_string();
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let child = std::process::Command::new("dockerd")
            .args([
                "--tlsverify",
                "--tlscacert",
                &at("ca.pem"),
                "--tlscert",
                &at("server.pem"),
            ])
            .args(["--tlskey", &at("server.key"), "-H", &host, "--data-root", &at("data")])
            .args(["--exec-root", &at("exec"), "--pidfile", &at("dockerd.pid")])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        let daemon = Self { dir, host, child };
        for _ in 0..150 {
            if output(daemon.docker_cli("version")).status.success() {
                return daemon;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("the TLS dockerd did not come up");
    }

    /// The docker CLI against this daemon, with its client certificate.
    fn docker_cli(&self, args: &str) -> std::process::Command {
        let mut command = sh(&format!("docker {args}"));
        self.tls_env(&mut command);
        command
    }

    fn tls_env(&self, command: &mut std::process::Command) {
        command
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", self.dir.path().join("client"));
    }
}

impl Drop for TlsDockerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// speck reaches a remote engine as the docker CLI does: `DOCKER_HOST=tcp://`, with TLS
/// when `DOCKER_TLS_VERIFY` says so, from the PEM files in `DOCKER_CERT_PATH`; without
/// them, it says what is missing.
#[test]
fn load_docker_reaches_an_engine_over_tcp_with_tls_as_the_docker_cli_does() {
    if !engine("root") || !engine("docker") || !engine("socat") {
        return;
    }
    let daemon = TlsDockerd::start();
    let load = |tls: bool| {
        let mut command = speck();
        command.env("DOCKER_HOST", &daemon.host).env_remove("DOCKER_TLS_VERIFY");
        if tls {
            daemon.tls_env(&mut command);
        }
        output(command.args(["hello", "over tls\n", "--load", "docker", "-t", "speck-tls:1"]))
    };
    let plain = load(false);
    let said = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.status.success(), "{said}");
    assert!(
        said.contains("needs DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH"),
        "{said}"
    );
    let loaded = load(true);
    assert!(loaded.status.success(), "{loaded:?}");
    let ran = ok(daemon.docker_cli("run --rm --network=none speck-tls:1"));
    assert_eq!(ran, "over tls\n");

    // A docker context that carries the TLS files, as `docker context create` keeps them.
    let config = daemon.dir.path().join("docker-config");
    let client = daemon.dir.path().join("client");
    let file = |name: &str| client.join(name).display().to_string();
    ok(sh(&format!(
        "docker --config {} context create speck-tls --docker host={},ca={},cert={},key={}",
        config.display(),
        daemon.host,
        file("ca.pem"),
        file("cert.pem"),
        file("key.pem")
    )));
    // DOCKER_TLS_VERIFY without DOCKER_CERT_PATH: the files in the CLI's settings directory.
    let mut by_config_dir = speck();
    by_config_dir
        .env("DOCKER_HOST", &daemon.host)
        .env("DOCKER_TLS_VERIFY", "1");
    by_config_dir
        .env("DOCKER_CONFIG", &client)
        .env_remove("DOCKER_CERT_PATH");
    ok(by_config_dir.args(["hello", "by config dir\n", "--load", "docker", "-t", "speck-tls:3"]));
    assert_eq!(
        ok(daemon.docker_cli("run --rm --network=none speck-tls:3")),
        "by config dir\n"
    );

    let mut by_context = speck();
    by_context
        .env("DOCKER_CONFIG", &config)
        .env("DOCKER_CONTEXT", "speck-tls");
    by_context
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    ok(by_context.args(["hello", "by context\n", "--load", "docker", "-t", "speck-tls:2"]));
    assert_eq!(
        ok(daemon.docker_cli("run --rm --network=none speck-tls:2")),
        "by context\n"
    );

    // Plain TCP (2375): this machine's engine, its socket served on a port by socat.
    let port = free_port();
    let mut socat = std::process::Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg("UNIX-CONNECT:/var/run/docker.sock")
        .spawn()
        .expect("socat starts");
    let tag = format!("{}:t", unique("speck-tcp"));
    let _cleanup = Cleanup(vec![format!("docker rmi -f {tag}")]);
    let over_tcp = (0..50).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut command = speck();
        command
            .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
            .env_remove("DOCKER_TLS_VERIFY");
        Some(output(command.args([
            "hello",
            "over tcp\n",
            "--load",
            "docker",
            "-t",
            &tag,
        ])))
        .filter(|o| o.status.success())
    });
    let _ = socat.kill();
    let _ = socat.wait();
    assert!(over_tcp.is_some(), "no load over plain TCP");
    assert_eq!(ok(sh(&format!("docker run --rm --network=none {tag}"))), "over tcp\n");
}

#[test]
fn load_podman_puts_the_image_in_podman() {
    if !engine("podman") {
        return;
    }
    let tag = format!("{}:t", unique("speck-load"));
    let printed = ok(speck().args(["hello", "podman loaded\n", "--load", "podman", "-t", &tag]));
    let name = printed
        .strip_prefix("Loaded ")
        .and_then(|rest| rest.split(" into podman").next())
        .unwrap_or_else(|| panic!("unexpected output {printed}"))
        .to_owned();
    let _cleanup = Cleanup(vec![format!("podman rmi -f {name}")]);
    assert!(name.ends_with(&tag), "{name}");
    assert_eq!(
        ok(sh(&format!("podman run --rm --network=none {name}"))),
        "podman loaded\n"
    );
}

#[test]
fn packed_static_program_runs_with_its_config_in_docker() {
    if !engine("docker") || !engine("gcc-static") {
        return;
    }
    let dir = workdir();
    let program = static_c_program(dir.path(), "reporter", REPORTER_C);
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/file"), "x").unwrap();
    let tag = format!("{}:1", unique("speck-pack"));
    let _cleanup = Cleanup(vec![format!("docker rmi -f {tag}")]);
    let archive = dir.path().join("app.tar");
    ok(speck()
        .arg("pack")
        .arg(&program)
        .arg(format!("{}:/data", dir.path().join("data").display()))
        .args([
            "--env",
            "K=V",
            "--label",
            "a=b",
            "--user",
            "65532",
            "--workdir",
            "/data",
            "-t",
            &tag,
            "-o",
        ])
        .arg(&archive)
        .args(["--", "one", "two"]));
    ok(sh(&format!("docker load -i {}", archive.display())));
    assert_eq!(
        ok(sh(&format!("docker run --rm --network=none {tag}"))),
        "uid=65532 K=V cwd=/data args=one,two\n"
    );
    assert_eq!(
        ok(sh(&format!("docker run --rm --network=none {tag} three"))),
        "uid=65532 K=V cwd=/data args=three\n",
        "arguments replace Cmd"
    );
    let labels = ok(sh(&format!("docker inspect -f '{{{{json .Config.Labels}}}}' {tag}")));
    assert_eq!(labels.trim(), r#"{"a":"b"}"#);
    let entrypoint = ok(sh(&format!(
        "docker inspect -f '{{{{json .Config.Entrypoint}}}}' {tag}"
    )));
    assert_eq!(entrypoint.trim(), r#"["/reporter"]"#);
}

#[test]
fn packed_static_program_runs_from_every_format_in_podman() {
    if !engine("podman") || !engine("gcc-static") {
        return;
    }
    let dir = workdir();
    let program = static_c_program(dir.path(), "reporter", REPORTER_C);
    for format in ["docker", "oci-archive"] {
        let out = dir.path().join(format!("app-{format}"));
        let tag = format!("{}:1", unique("speck-pack"));
        ok(speck()
            .arg("pack")
            .arg(&program)
            .args(["--env", "K=podman", "--format", format, "-t", &tag, "-o"])
            .arg(&out)
            .args(["--", "x"]));
        let names = loaded_names(&ok(sh(&format!("podman load -i {}", out.display()))));
        let _cleanup = Cleanup(vec![format!("podman rmi -f {}", names[0])]);
        assert_eq!(
            ok(sh(&format!("podman run --rm --network=none {}", names[0]))),
            "uid=0 K=podman cwd=/ args=x\n",
            "{format}"
        );
    }
}

#[test]
fn layer_compression_is_read_by_docker_and_umoci_either_way() {
    if !engine("docker") || !engine("umoci") {
        return;
    }
    let dir = workdir();
    // A gzip layer inside a docker-archive: docker detects and inflates it.
    let tag = format!("{}:gz", unique("speck-gzip"));
    let _cleanup = Cleanup(vec![format!("docker rmi -f {tag}")]);
    let archive = dir.path().join("gz.tar");
    ok(speck()
        .args(["hello", "gzip layer\n", "--compression", "gzip", "-t", &tag, "-o"])
        .arg(&archive));
    ok(sh(&format!("docker load -i {}", archive.display())));
    assert_eq!(ok(sh(&format!("docker run --rm --network=none {tag}"))), "gzip layer\n");
    // An uncompressed layer in an OCI layout: its media type must say so for umoci.
    let layout = dir.path().join("plain-oci");
    ok(speck()
        .args([
            "hello",
            "plain\n",
            "--format",
            "oci",
            "--compression",
            "none",
            "-t",
            "p:v1",
            "-o",
        ])
        .arg(&layout));
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    let digest = index.split("sha256:").nth(1).unwrap()[..64].to_owned();
    let manifest = std::fs::read_to_string(layout.join("blobs/sha256").join(digest)).unwrap();
    assert!(
        manifest.contains("\"application/vnd.oci.image.layer.v1.tar\""),
        "{manifest}"
    );
    let bundle = dir.path().join("plain-bundle");
    ok(sh(&format!(
        "umoci unpack --image {}:v1 {}",
        layout.display(),
        bundle.display()
    )));
    let program = std::fs::read(bundle.join("rootfs/hello")).unwrap();
    assert!(program.starts_with(b"\x7fELF") && program.windows(6).any(|w| w == b"plain\n"));
    let mode = ok(sh(&format!("stat -c %a {}", bundle.join("rootfs/hello").display())));
    assert_eq!(mode.trim(), "755");
}

#[test]
fn hello_prints_arbitrary_bytes_exactly_inside_docker() {
    if !engine("docker") {
        return;
    }
    let dir = workdir();
    // NUL, invalid UTF-8, every byte value, and more than a pipe buffer.
    let message: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let message_file = dir.path().join("message.bin");
    std::fs::write(&message_file, &message).unwrap();
    let tag = format!("{}:bytes", unique("speck-bytes"));
    let _cleanup = Cleanup(vec![format!("docker rmi -f {tag}")]);
    ok(speck()
        .args(["hello", "--message-file"])
        .arg(&message_file)
        .args(["--load", "docker", "-t", &tag]));
    let out = output(sh(&format!("docker run --rm --network=none {tag}")));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout == message,
        "{} bytes back, {} sent",
        out.stdout.len(),
        message.len()
    );
}
