//! The registry commands (`push`, `pull`, `login`, and `--push` on every image command):
//! arguments, credentials from the command line, progress bars and what is printed.

use super::{OutputArgs, emit};
use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use speck::compress::Effort;
use speck::digest::Digest;
use speck::image::document::Document;
use speck::image::{Blob, Image, ImageIndex, ManifestForm, Platform, Reference, StoredIndex};
use speck::registry::pull::Platforms;
use speck::registry::push::{Pushed, Upload};
use speck::registry::{Credentials, Event, Options, Repository, Store};
use speck::write::Golf;
use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Mutex;

/// How to reach a registry: shared by push, pull, login and --push.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Registry")]
pub struct RegistryArgs {
    /// Treat the registry as insecure, as Docker does: HTTPS without verifying its
    /// certificate, or plain HTTP if it does not speak TLS (loopback registries always are).
    #[arg(long)]
    insecure: bool,
    /// User name; the password comes from stdin (--password-stdin). Without it, the
    /// credentials Docker and podman stored are used (config.json auths, credHelpers,
    /// credsStore; podman's auth.json).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password (or token) from stdin.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Print no progress or summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

impl RegistryArgs {
    fn options(&self) -> anyhow::Result<Options> {
        let credentials = match &self.username {
            Some(username) => Some(Credentials {
                username: username.clone(),
                secret: read_password()?,
            }),
            None => None,
        };
        Ok(Options {
            insecure: self.insecure,
            credentials,
            jobs: self.jobs.into(),
            ..Options::default()
        })
    }
}

fn read_password() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("--password-stdin read an empty password");
    }
    Ok(password)
}

/// `speck push`: an image made earlier, to a registry.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// An archive, an OCI layout, docker:REF, podman:REF or registry:REF.
    #[arg(value_name = "SOURCE")]
    source: speck::read::Target,
    /// Where to push: [registry/]repository[:tag].
    #[arg(value_name = "REFERENCE")]
    destination: Reference,
    /// Print the result as JSON on stdout instead of the digest reference.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `speck pull`: an image from a registry, to a file, a layout or an engine.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// What to pull: [registry/]repository[:tag][@digest].
    #[arg(value_name = "REFERENCE")]
    source: Reference,
    /// Also print what was pulled as JSON on stdout: the digest reference, the bytes
    /// downloaded, each image's platform and ID.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// `speck login`: checks credentials with a registry and stores them as docker does.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The registry host (docker.io when omitted).
    #[arg(value_name = "REGISTRY", default_value = "docker.io")]
    registry: String,
    /// User name.
    #[arg(short = 'u', long, required = true)]
    username: String,
    /// Read the password (or token) from stdin.
    #[arg(long, required = true)]
    password_stdin: bool,
    /// Treat the registry as insecure: HTTPS unverified, or plain HTTP.
    #[arg(long)]
    insecure: bool,
}

pub fn run_login(args: LoginArgs) -> anyhow::Result<()> {
    let reference: Reference = format!("{}/speck-login-check", args.registry)
        .parse()
        .with_context(|| format!("{:?} is not a registry host", args.registry))?;
    let credentials = Credentials {
        username: args.username,
        secret: read_password()?,
    };
    let options = Options {
        insecure: args.insecure,
        credentials: Some(credentials.clone()),
        ..Options::default()
    };
    speck::registry::check_login(&reference.registry, &options)?;
    let place = Store::from_env().put(&reference.registry, &credentials)?;
    eprintln!("speck: credentials for {} stored in {place}", reference.registry);
    println!("Login Succeeded");
    Ok(())
}

pub fn run_push(args: PushArgs) -> anyhow::Result<()> {
    let read = speck::read::read_images(&args.source)?;
    let images: Vec<(Image, Blob, &'static str)> = read
        .images
        .into_iter()
        .map(|stored| match stored.manifest {
            Some(manifest) => {
                let media_type = manifest_media_type(&manifest);
                (stored.image, manifest, media_type)
            }
            None => {
                let image = stored.image.with_gzip_layers(Effort::Default);
                let manifest = image.oci_manifest();
                (image, manifest, speck::image::media_type::OCI_MANIFEST)
            }
        })
        .collect();
    if images.is_empty() {
        bail!("{} holds no image", args.source);
    }
    let source = match &args.source {
        speck::read::Target::Registry(text) => text.parse::<Reference>().ok(),
        _ => None,
    };
    let images = images
        .iter()
        .map(|(image, manifest, kind)| (image, manifest.clone(), *kind));
    let pushed = push_as_stored(
        images.collect(),
        read.index,
        source.as_ref(),
        &args.destination,
        &args.registry,
    )?;
    print_pushed(&args.destination, &pushed, args.json)
}

/// Pushes images with the manifests, and the index, they were stored with (exact bytes:
/// the copy keeps its digest). Blobs are mounted when `source` is another repository of
/// the destination's registry, rather than uploaded again.
fn push_as_stored(
    images: Vec<(&Image, Blob, &'static str)>,
    index: Option<StoredIndex>,
    source: Option<&Reference>,
    destination: &Reference,
    args: &RegistryArgs,
) -> anyhow::Result<Pushed> {
    let mut upload = Upload::of_manifests(images);
    if let Some((index, kind)) = index {
        upload = upload.under_index(index, kind);
    }
    let mount_from = source
        .filter(|source| source.registry == destination.registry && source.repository != destination.repository)
        .map(|source| source.repository.as_str());
    push(&upload, destination, mount_from, args)
}

/// The manifest's media type, from its `mediaType` field (OCI when it has none).
fn manifest_media_type(manifest: &Blob) -> &'static str {
    serde_json::from_slice::<Document>(&manifest.bytes).map_or(speck::image::media_type::OCI_MANIFEST, |d| d.kind())
}

/// Pushes the images `--push` names, after they are written; prints the digest
/// reference on stdout. Golfed, the config loses its platform and the manifest its
/// optional media types (see [`Golf::wire_forms`]), and layers are gzipped at the
/// smallest.
pub fn push_built(
    index: &ImageIndex,
    destination: &Reference,
    golf: Option<Golf>,
    args: &RegistryArgs,
) -> anyhow::Result<()> {
    let (wire, form) = match golf {
        None => (
            index
                .images()
                .iter()
                .map(|image| image.with_gzip_layers(Effort::Default))
                .collect(),
            ManifestForm::Full,
        ),
        Some(golf) => {
            let (config, manifest) = golf.wire_forms();
            if !args.quiet {
                eprintln!(
                    "speck: golf level {} pushed is known to break: {}",
                    golf.name(),
                    golf.wire_breaks().join("; ")
                );
            }
            let images = index.with_config_form(config);
            let smallest = images
                .images()
                .iter()
                .map(|image| image.with_gzip_layers(Effort::Smallest))
                .collect();
            (smallest, manifest)
        }
    };
    let wire = ImageIndex::new(wire);
    let pushed = push(&Upload::of_index(&wire, form), destination, None, args)?;
    print_pushed(destination, &pushed, false)
}

fn push(
    upload: &Upload,
    destination: &Reference,
    mount_from: Option<&str>,
    args: &RegistryArgs,
) -> anyhow::Result<Pushed> {
    let options = args.options()?;
    let mounts: Vec<String> = mount_from.into_iter().map(str::to_owned).collect();
    let repository = Repository::connect(destination, true, &mounts, &options)?;
    let progress = Progress::new(args.quiet);
    let tag = destination
        .tag
        .as_deref()
        .or(destination.digest.is_none().then_some("latest"));
    let pushed = repository.push(upload, tag, mount_from, &|event| progress.observe(event))?;
    if !args.quiet {
        eprintln!(
            "speck: pushed {} to {}: {} blob(s) uploaded, {} already there, {} mounted; {} bytes sent, manifests included",
            human(upload.bytes()),
            destination,
            pushed.uploaded,
            pushed.existed,
            pushed.mounted,
            pushed.bytes_sent
        );
    }
    Ok(pushed)
}

fn print_pushed(destination: &Reference, pushed: &Pushed, json: bool) -> anyhow::Result<()> {
    let reference = format!("{}/{}@{}", destination.registry, destination.repository, pushed.digest);
    if json {
        let mut value = serde_json::to_value(pushed)?;
        value["reference"] = reference.into();
        value["tag"] = destination.tag_or_latest().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{reference}");
    }
    Ok(())
}

pub fn run_pull(mut args: PullArgs) -> anyhow::Result<()> {
    let options = args.output.registry.options()?;
    let repository = Repository::connect(&args.source, false, &[], &options)?;
    let platforms = match args.output.platforms_or_all() {
        Some(platforms) if platforms.is_empty() => Platforms::These(vec![Platform::host()]),
        Some(platforms) => Platforms::These(platforms),
        None => Platforms::All,
    };
    let progress = Progress::new(args.output.registry.quiet);
    let pulled = repository.pull(&args.source, &platforms, false, &|event| progress.observe(event))?;
    let mut images: Vec<Image> = Vec::new();
    for pulled in &pulled.images {
        if !images.iter().any(|image| image.platform() == pulled.image.platform()) {
            images.push(pulled.image.clone());
        }
    }
    let bytes = repository.traffic().received.load(std::sync::atomic::Ordering::Relaxed);
    if !args.output.registry.quiet {
        eprintln!(
            "speck: pulled {}@{} ({} bytes, every digest verified)",
            args.source.full_tagged(),
            pulled.digest,
            bytes
        );
    }
    let name = Reference {
        digest: None,
        ..args.source.clone()
    };
    let report = serde_json::json!({
        "reference": format!("{}/{}@{}", name.registry, name.repository, pulled.digest),
        "bytes": bytes,
        "images": images
            .iter()
            .map(|image| serde_json::json!({
                "platform": speck::measure::platform_name(image),
                "id": image.config_blob().digest.to_string(),
            }))
            .collect::<Vec<_>>(),
    });
    // Unless golfed, a push sends the manifests and index as pulled: the copy keeps its
    // digest (a rebuilt OCI manifest would change a docker-pushed image's).
    let exact_push = match args.output.golf {
        None => args.output.push.take(),
        Some(_) => None,
    };
    emit(&ImageIndex::new(images), &args.output, &name.familiar_tagged())?;
    if let Some(destination) = exact_push {
        let images = pulled.images.iter();
        let images = images.map(|pulled| (&pulled.image, pulled.manifest.clone(), pulled.media_type));
        let pushed = push_as_stored(
            images.collect(),
            pulled.index,
            Some(&args.source),
            &destination,
            &args.output.registry,
        )?;
        print_pushed(&destination, &pushed, false)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// Progress bars on stderr for blobs of 1 MiB or more (indicatif hides them when stderr
/// is not a terminal).
struct Progress {
    bars: Option<MultiProgress>,
    active: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        Self {
            bars: (!quiet).then(MultiProgress::new),
            active: Mutex::new(HashMap::new()),
        }
    }

    fn observe(&self, event: Event) {
        let Some(bars) = &self.bars else { return };
        let mut active = self.active.lock().expect("never poisoned");
        match event {
            Event::Started { digest, size } if size >= 1 << 20 => {
                let bar = bars.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                        .expect("a valid template"),
                );
                bar.set_message(digest.hex()[..12].to_owned());
                active.insert(digest, bar);
            }
            Event::Progressed { digest, done } => {
                if let Some(bar) = active.get(&digest) {
                    bar.set_position(done);
                }
            }
            Event::Finished { digest, .. } => {
                if let Some(bar) = active.remove(&digest) {
                    bar.finish_and_clear();
                }
            }
            Event::Started { .. } => {}
        }
    }
}

/// Bytes for people: 1.2 MB.
fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}
