//! Local engines: loading an image into one (no file left behind), and exporting one's
//! image as a docker-archive for [`crate::read`].
//!
//! Docker is reached through its Engine API where the docker CLI reaches it
//! (`DOCKER_HOST`, over TCP with TLS as `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` say,
//! else the current docker context's endpoint, else the default socket);
//! podman through its own `podman load` / `podman save`, which need no service running.

use crate::image::Reference;
use futures_util::StreamExt as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The docker CLI's settings directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    std::env::var_os("DOCKER_CONFIG").map_or_else(|| home.join(".docker"), PathBuf::from)
}

/// Where the docker CLI reaches the engine.
struct Endpoint {
    /// `unix://PATH` or `tcp://HOST:PORT`.
    host: String,
    /// What said so, for messages.
    from: String,
    /// The directory of the TLS files (`ca.pem`, `cert.pem`, `key.pem`), when TLS is
    /// asked for: a context's own, or `DOCKER_CERT_PATH`'s with `DOCKER_TLS_VERIFY`.
    tls: Option<PathBuf>,
}

/// Where the docker CLI reaches the engine: `DOCKER_HOST` (with TLS when
/// `DOCKER_TLS_VERIFY` is set, from `DOCKER_CERT_PATH`, else the CLI's settings
/// directory); else the Docker endpoint of the current context (`DOCKER_CONTEXT`, else `currentContext` in the CLI's
/// `config.json`), kept in `contexts/meta/<sha256 of its name>/meta.json` with its TLS
/// files in `contexts/tls/<sha256>/docker/`; else the default socket.
fn docker_endpoint() -> Result<Endpoint, String> {
    if let Some(host) = std::env::var("DOCKER_HOST").ok().filter(|host| !host.is_empty()) {
        let verify = std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        let certs = || std::env::var_os("DOCKER_CERT_PATH").map_or_else(docker_config_dir, PathBuf::from);
        return Ok(Endpoint {
            tls: (verify && !host.starts_with("unix://")).then(certs),
            host,
            from: "DOCKER_HOST".into(),
        });
    }
    let dir = docker_config_dir();
    match current_context(&dir).filter(|name| name != "default") {
        Some(name) => context_endpoint(&dir, &name),
        None => Ok(Endpoint {
            host: "unix:///var/run/docker.sock".into(),
            from: "the default".into(),
            tls: None,
        }),
    }
}

/// The context the docker CLI uses: `DOCKER_CONTEXT`, else `currentContext` in the
/// `config.json` of its settings directory `dir`.
fn current_context(dir: &Path) -> Option<String> {
    let from_config = || {
        let config = std::fs::read(dir.join("config.json")).ok()?;
        let config: serde_json::Value = serde_json::from_slice(&config).ok()?;
        config["currentContext"].as_str().map(str::to_owned)
    };
    let from_env = std::env::var("DOCKER_CONTEXT").ok().filter(|name| !name.is_empty());
    from_env.or_else(from_config)
}

/// The Docker endpoint of context `name`, as `docker context create` keeps it in `dir`.
fn context_endpoint(dir: &Path, name: &str) -> Result<Endpoint, String> {
    let hash = crate::digest::Digest::of(name.as_bytes()).hex();
    let meta = dir.join("contexts/meta").join(&hash).join("meta.json");
    let unusable = |why: String| format!("the docker context {name:?} cannot be used: {}: {why}", meta.display());
    let text = std::fs::read(&meta).map_err(|e| unusable(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| unusable(e.to_string()))?;
    let host = json["Endpoints"]["docker"]["Host"].as_str();
    let host = host.ok_or_else(|| unusable("it names no Docker endpoint".into()))?;
    let tls = dir.join("contexts/tls").join(&hash).join("docker");
    Ok(Endpoint {
        host: host.to_owned(),
        from: format!("the docker context {name:?}"),
        tls: tls.join("ca.pem").is_file().then_some(tls),
    })
}

/// A local container engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The Docker daemon (`DOCKER_HOST`, the current docker context, or
    /// /var/run/docker.sock).
    Docker,
    /// podman, through `podman load`.
    Podman,
}

impl Engine {
    /// The engine's name.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

/// An image name an engine now knows, with the ID it gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The name as the engine lists it.
    pub name: String,
    /// The engine's image ID.
    pub id: String,
}

/// An engine that could not be reached or refused the image.
#[derive(Debug, thiserror::Error)]
#[error("{engine}: {message}")]
pub struct EngineError {
    engine: &'static str,
    message: String,
}

impl EngineError {
    fn new(engine: Engine, message: impl Into<String>) -> Self {
        Self {
            engine: engine.name(),
            message: message.into(),
        }
    }
}

/// Loads a docker-archive into `engine` and returns each tag with the engine's image ID.
pub fn load(engine: Engine, archive: Vec<u8>, tags: &[Reference]) -> Result<Vec<Loaded>, EngineError> {
    match engine {
        Engine::Docker => load_docker(archive, tags),
        Engine::Podman => load_podman(archive),
    }
}

/// Runs `work` against the Docker engine on a one-thread runtime.
fn with_docker<T>(work: impl AsyncFnOnce(bollard::Docker) -> Result<T, EngineError>) -> Result<T, EngineError> {
    let fail = |message: String| EngineError::new(Engine::Docker, message);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let endpoint = docker_endpoint().map_err(fail)?;
        let unreachable = |e: bollard::errors::Error| {
            let Endpoint { host, from, .. } = &endpoint;
            let advice = unreachable_advice(&endpoint);
            fail(format!(
                "cannot reach the Docker engine at {host}, from {from} ({e}); {advice}"
            ))
        };
        let docker = connect(&endpoint)
            .map_err(unreachable)?
            .negotiate_version()
            .await
            .map_err(unreachable)?;
        work(docker).await
    })
}

/// A client for `endpoint`: TLS with its files when it has them, else plain TCP or the
/// Unix socket (bollard's own reading of the TLS variables is not used: a context's
/// settings rule over them, as in the docker CLI).
fn connect(endpoint: &Endpoint) -> Result<bollard::Docker, bollard::errors::Error> {
    let (host, version) = (endpoint.host.as_str(), bollard::API_DEFAULT_VERSION);
    match &endpoint.tls {
        Some(files) => bollard::Docker::connect_with_ssl(
            host,
            &files.join("key.pem"),
            &files.join("cert.pem"),
            &files.join("ca.pem"),
            120,
            version,
        ),
        None if host.starts_with("tcp://") => bollard::Docker::connect_with_http(host, 120, version),
        None => bollard::Docker::connect_with_host(host),
    }
}

/// What to do when `endpoint` does not answer.
fn unreachable_advice(endpoint: &Endpoint) -> String {
    match &endpoint.tls {
        _ if endpoint.host.starts_with("unix://") => {
            "start dockerd, or name the engine to use with DOCKER_HOST or a docker context".into()
        }
        Some(files) => format!(
            "check the engine's TLS files in {}: ca.pem signed the engine's certificate, cert.pem and key.pem are a client certificate the engine accepts",
            files.display()
        ),
        None => "an engine that speaks TLS (port 2376, as docker:dind serves) needs DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH holding ca.pem, cert.pem and key.pem, as the docker CLI does".into(),
    }
}

fn load_docker(archive: Vec<u8>, tags: &[Reference]) -> Result<Vec<Loaded>, EngineError> {
    let fail = |message: String| EngineError::new(Engine::Docker, message);
    with_docker(async |docker| {
        let options = bollard::query_parameters::ImportImageOptions {
            quiet: true,
            platform: None,
        };
        let mut progress = docker.import_image(options, bollard::body_full(archive.into()), None);
        while let Some(message) = progress.next().await {
            message.map_err(|e| fail(format!("load was refused: {e}")))?;
        }
        let mut loaded = Vec::new();
        for tag in tags {
            let name = tag.familiar_tagged();
            let inspect = docker
                .inspect_image(&name)
                .await
                .map_err(|e| fail(format!("loaded, but cannot inspect {name}: {e}")))?;
            loaded.push(Loaded {
                name,
                id: inspect.id.unwrap_or_default(),
            });
        }
        Ok(loaded)
    })
}

/// `docker save REFERENCE`: the engine's image as a docker-archive.
pub fn save(engine: Engine, reference: &str) -> Result<Vec<u8>, EngineError> {
    match engine {
        Engine::Docker => with_docker(async |docker| {
            let mut archive = Vec::new();
            let mut chunks = docker.export_image(reference);
            while let Some(chunk) = chunks.next().await {
                let chunk =
                    chunk.map_err(|e| EngineError::new(Engine::Docker, format!("cannot save {reference}: {e}")))?;
                archive.extend_from_slice(&chunk);
            }
            Ok(archive)
        }),
        Engine::Podman => {
            let fail = |message: String| EngineError::new(Engine::Podman, message);
            let dir = tempfile::tempdir().map_err(|e| fail(format!("cannot make a temporary directory: {e}")))?;
            let path = dir.path().join("image.tar");
            let path_text = path.to_string_lossy();
            run_podman(
                &["save", "--format", "docker-archive", "-o", &path_text, reference],
                None,
            )
            .map_err(fail)?;
            std::fs::read(&path).map_err(|e| fail(format!("cannot read what podman saved: {e}")))
        }
    }
}

/// podman names what it loads itself (a short `RepoTags` name becomes `localhost/NAME`),
/// so the names come from its own `Loaded image:` lines.
fn load_podman(archive: Vec<u8>) -> Result<Vec<Loaded>, EngineError> {
    let fail = |message: String| EngineError::new(Engine::Podman, message);
    let output = run_podman(&["load"], Some(&archive)).map_err(fail)?;
    let names = output.lines().filter_map(|line| line.strip_prefix("Loaded image: "));
    names
        .flat_map(|names| names.split(',').map(str::trim))
        .map(|name| {
            let id = run_podman(&["image", "inspect", "--format", "{{.Id}}", name], None)
                .map_err(|e| fail(format!("loaded {name}, but cannot inspect it: {e}")))?;
            Ok(Loaded {
                name: name.to_owned(),
                id: format!("sha256:{}", id.trim()),
            })
        })
        .collect()
}

/// Runs podman with `stdin` fed in, returning its stdout or a message with its stderr.
fn run_podman(args: &[&str], stdin: Option<&[u8]>) -> Result<String, String> {
    let mut child = Command::new("podman")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run podman ({e}); install podman or use --load docker"))?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes)
            .map_err(|e| format!("podman closed its input early: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("podman did not finish: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "podman {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `docker run --rm -i` (or podman's) of `image` with `speck run`'s overrides and
/// network, stdin, stdout, stderr and signals passed through by the engine's CLI; returns
/// its exit status. The image is loaded first, untagged, and removed afterwards unless
/// the engine had it before.
pub fn run(
    engine: Engine,
    image: &crate::image::Image,
    overrides: &crate::run::Overrides,
    network: crate::run::Network,
) -> Result<i32, EngineError> {
    let fail = |message: String| EngineError::new(engine, message);
    // The bare hex ID: docker and podman both resolve it.
    let id = image.config_blob().digest.to_string()["sha256:".len()..].to_owned();
    let cli = |args: &[&str]| {
        Command::new(engine.name())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let present = cli(&["image", "inspect", &id]);
    if !present {
        let archive = crate::write::archive(&image.clone().into(), &crate::write::WriteOptions::default()).bytes;
        load(engine, archive, &[])?;
    }
    let mut command = Command::new(engine.name());
    command.args(["run", "--rm", "-i"]);
    command.arg(match network {
        crate::run::Network::None => "--network=none",
        crate::run::Network::Host => "--network=host",
    });
    if let Some(entrypoint) = &overrides.entrypoint {
        command.arg(format!("--entrypoint={entrypoint}"));
    }
    for entry in &overrides.env {
        command.args(["-e", entry]);
    }
    if let Some(workdir) = &overrides.workdir {
        command.args(["-w", workdir]);
    }
    if let Some(user) = &overrides.user {
        command.args(["-u", user]);
    }
    command.arg(&id).args(&overrides.args);
    let status = command.status().map_err(|e| {
        fail(format!(
            "cannot run {} ({e}); install it or run without --engine",
            engine.name()
        ))
    });
    if !present {
        cli(&["rmi", &id]);
    }
    let status = status?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)))
}
