//! `speck run` and `speck check`: arguments into [`speck::run`] calls.

use clap::Args;
use speck::engine::{self, Engine};
use speck::image::{Image, Platform};
use speck::read::Target;
use speck::run::{Network, Overrides, RunOptions};

/// `speck run`: the image, docker's overrides, where to run.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// An archive, an OCI layout, docker:REF, podman:REF or registry:REF.
    #[arg(value_name = "IMAGE")]
    target: Target,
    /// Arguments: they replace the image's Cmd, as with docker run.
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
    /// Run this program instead of the image's Entrypoint (the image's Cmd is dropped).
    #[arg(long, value_name = "PROGRAM")]
    entrypoint: Option<String>,
    /// Set an environment variable, KEY=value, or KEY to pass this one's (repeatable).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Working directory in the container (made if missing).
    #[arg(short, long, value_name = "DIR")]
    workdir: Option<String>,
    /// User to run as, name or UID, optionally :group.
    #[arg(short, long, value_parser = speck::image::config::user)]
    user: Option<String>,
    /// Network: none (loopback only, the default) or host.
    #[arg(long, value_enum, default_value_t)]
    net: Network,
    /// The platform to run from a multi-platform image [default: the host's].
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<Platform>,
    /// Load and run the image in this engine instead (docker run --rm -i).
    #[arg(long, value_enum)]
    engine: Option<Engine>,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            entrypoint: self.entrypoint.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
        }
    }
}

/// Reads the image of `target` for `platform` (the host's by default).
pub fn image_of(target: &Target, platform: Option<&Platform>) -> anyhow::Result<Image> {
    let read = speck::read::read_images(target)?;
    let wanted = platform.cloned().unwrap_or_else(Platform::host);
    let images: Vec<Image> = read.images.into_iter().map(|stored| stored.image).collect();
    let found = images.iter().find(|image| image.platform().matches(&wanted));
    match (found, platform) {
        (Some(image), _) => Ok(image.clone()),
        (None, None) if images.len() == 1 => Ok(images[0].clone()),
        _ => {
            let platforms: Vec<String> = images.iter().map(|i| i.platform().to_string()).collect();
            anyhow::bail!(
                "{target} has no image for {wanted} (it has {}); choose one with --platform",
                platforms.join(", ")
            )
        }
    }
}

/// Runs the container and exits with its status; with 125, as `docker run` does, when
/// it cannot start it (the image unreadable, no image for the platform, no engine), so a
/// status of the program's own is never mistaken for speck's.
pub fn run_run(args: RunArgs) -> anyhow::Result<()> {
    let before_start = |error: anyhow::Error| -> ! {
        eprintln!("speck: error: {error:#}");
        std::process::exit(speck::run::sandbox::SETUP_FAILED)
    };
    let image = image_of(&args.target, args.platform.as_ref()).unwrap_or_else(|e| before_start(e));
    let status = match args.engine {
        Some(engine) => {
            engine::run(engine, &image, &args.overrides(), args.net).unwrap_or_else(|e| before_start(e.into()))
        }
        None => {
            let options = RunOptions {
                overrides: args.overrides(),
                network: args.net,
                ..RunOptions::default()
            };
            let target = &args.target;
            match speck::run::run(&image, options, |note| eprintln!("speck: {target}: {note}")) {
                Ok(status) => status,
                Err(error) => {
                    eprintln!("speck: {}: {error}", args.target);
                    error.status()
                }
            }
        }
    };
    std::process::exit(status)
}

/// `speck check`: the image and how to report.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// An archive, an OCI layout, docker:REF, podman:REF or registry:REF.
    #[arg(value_name = "IMAGE")]
    target: Target,
    /// The platform to check in a multi-platform image [default: the host's].
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<Platform>,
    /// Only the static checks: do not start the image.
    #[arg(long = "static")]
    static_only: bool,
    /// Print JSON (a list of findings) instead of text.
    #[arg(long)]
    json: bool,
}

/// Prints the findings; exits 1 when one fails.
pub fn run_check(args: CheckArgs) -> anyhow::Result<()> {
    let image = image_of(&args.target, args.platform.as_ref())?;
    let findings = speck::run::check::check(&image, !args.static_only)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&findings)?);
    } else {
        print!("{}", speck::run::check::render(&findings));
    }
    if speck::run::check::failed(&findings) {
        std::process::exit(1);
    }
    Ok(())
}
