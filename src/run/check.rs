//! `speck check`: what stops an image from running, found before an engine finds it.
//!
//! Static checks read the unpacked tree (the program is there, executable by the
//! configured user, for the image's machine and one that other hosts' emulators take,
//! with its `#!` interpreter, ELF interpreter and libraries as glibc's loader finds
//! them); live checks start it in the
//! [`super::sandbox`] and, when it keeps running, send its stop signal as `docker stop`
//! does. Each finding has a verdict, the evidence and, when it is not a pass, the fix.
//! Owns those rules; reuses `collect` for reading ELF files and library closures.

use super::process::{Overrides, Process, ProcessError, process};
use super::sandbox::{self, RunOptions};
use super::unpack::{self, Limits};
use crate::collect::closure::{ElfDeps, FoundKind, Loader, Need, Place, Root, Start};
use crate::collect::executable::Executable;
use crate::image::{Image, Platform};
use crate::layer::EntryKind;
use nix::sys::signal::Signal;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{Read as _, Seek as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// What to do when the configured user cannot reach, read or execute a file.
const ACCESS_FIX: &str = "give the user access, or run as the owner: programs and the ELF interpreter need a+x, scripts and libraries a+r, and every directory on the way must be named in a layer with a+x (speck pack names them for non-root users; --tar conventional names every parent)";

/// How long a program may take to start before it counts as running.
const START_WINDOW: Duration = Duration::from_millis(500);
/// How long PID 1 has to stop after its stop signal (docker stop waits 10 s).
const STOP_WINDOW: Duration = Duration::from_secs(1);

/// A finding's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Pass,
    /// Works, but probably not as meant.
    Warn,
    /// Will not work.
    Fail,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check (`command`, `entrypoint`, `executable`, `architecture`, `emulation`,
    /// `interpreter`, `libraries`, `readable`, `user`, `starts`, `stops`).
    pub check: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was seen.
    pub evidence: String,
    /// What to do (empty on a pass).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

impl Finding {
    fn pass(check: &'static str, evidence: impl Into<String>) -> Self {
        Self {
            check,
            verdict: Verdict::Pass,
            evidence: evidence.into(),
            fix: String::new(),
        }
    }

    fn problem(check: &'static str, verdict: Verdict, evidence: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            verdict,
            evidence: evidence.into(),
            fix: fix.into(),
        }
    }
}

/// An image that could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Unpacking failed.
    #[error(transparent)]
    Unpack(#[from] unpack::UnpackError),
    /// A temporary directory could not be made.
    #[error("cannot make a temporary directory: {0}")]
    Scratch(std::io::Error),
}

/// Checks `image`: static checks always, live checks when `live`.
pub fn check(image: &Image, live: bool) -> Result<Vec<Finding>, CheckError> {
    let scratch = tempfile::tempdir().map_err(CheckError::Scratch)?;
    unpack::unpack(image, scratch.path(), &Limits::default())?;
    let mut findings = static_checks(image, scratch.path());
    let runnable = findings.iter().all(|f| f.verdict != Verdict::Fail);
    if live && runnable {
        findings.extend(live_checks(image));
    }
    Ok(findings)
}

/// What can be seen without running: the command, its file, machine and dependencies.
fn static_checks(image: &Image, root: &Path) -> Vec<Finding> {
    let process = match process(image.config(), &Overrides::default(), root, "check") {
        Ok(process) => process,
        Err(error @ ProcessError::NoCommand) => {
            let fix = "set an entrypoint (speck pack --entrypoint, or a program among the files)";
            return vec![Finding::problem("command", Verdict::Fail, error.to_string(), fix)];
        }
        Err(error) => {
            let fix = "fix the config's User, or add the account (speck pack --passwd)";
            return vec![Finding::problem("user", Verdict::Fail, error.to_string(), fix)];
        }
    };
    let mut findings = vec![Finding::pass("command", process.argv.join(" "))];
    let scene = Scene {
        image,
        tree: Root::new(root),
        owners: owners_in_image(image),
        process,
    };
    let Some(program) = scene.find_program() else {
        findings.push(Finding::problem(
            "entrypoint",
            Verdict::Fail,
            format!("{} is not in the image", scene.process.argv[0]),
            "pack the program at that path, or fix the Entrypoint",
        ));
        return findings;
    };
    findings.push(Finding::pass("entrypoint", format!("/{program}")));
    findings.extend(scene.file_checks(&program, 0));
    findings
}

/// What the static checks look at: the unpacked tree, the process the config starts,
/// and the owner the layers give each path (the tree on disk may not keep owners).
struct Scene<'a> {
    image: &'a Image,
    tree: Root,
    process: Process,
    owners: HashMap<String, (u32, u32, bool)>,
}

impl Scene<'_> {
    /// The image path the command runs, searching PATH when it has no `/`.
    fn find_program(&self) -> Option<String> {
        let argv0 = &self.process.argv[0];
        let is_file = |path: &str| {
            let walked = self.tree.follow(path)?;
            std::fs::metadata(self.tree.on_disk(&walked.path))
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|_| walked.path)
        };
        if argv0.contains('/') {
            return is_file(argv0);
        }
        let path = self
            .process
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(super::process::DEFAULT_PATH);
        path.split(':').find_map(|dir| is_file(&format!("{dir}/{argv0}")))
    }

    /// `None` when the user may do `bit` (1 execute, 4 read) to the file at `path`;
    /// otherwise what forbids it: a directory on the way it cannot pass, or the file's
    /// mode and owner.
    fn denied(&self, path: &str, bit: u32) -> Option<String> {
        let mut parents = path.match_indices('/').map(|(end, _)| &path[..end]);
        parents.find_map(|dir| self.denied_here(dir, true, 0o1)).or_else(|| {
            let is_dir = self.owners.get(path).is_some_and(|&(_, _, is_dir)| is_dir);
            self.denied_here(path, is_dir, bit)
        })
    }

    fn denied_here(&self, path: &str, is_dir: bool, bit: u32) -> Option<String> {
        let user = self.process.uid;
        if user == 0 && is_dir {
            return None; // root searches any directory
        }
        let Some(&(uid, gid, _)) = self.owners.get(path) else {
            // docker 20.10 makes the directories a layer implies, but does not name, 0600.
            return is_dir.then(|| {
                format!("/{path} is a directory the layers imply but do not name, which docker makes mode 600: user {user} cannot pass through it")
            });
        };
        let mode = std::fs::metadata(self.tree.on_disk(path)).map_or(0, |m| m.permissions().mode());
        let cannot = match (is_dir, bit) {
            (true, _) => "pass through",
            (false, 0o1) => "execute",
            (false, _) => "read",
        };
        (!allowed(mode, (uid, gid), &self.process, bit)).then(|| {
            format!(
                "/{path} has mode {:o}, owner {uid}:{gid}: user {user} cannot {cannot} it",
                mode & 0o7777
            )
        })
    }

    /// Checks one program (the entrypoint, or a `#!` interpreter at `depth` 1 and more).
    fn file_checks(&self, path: &str, depth: usize) -> Vec<Finding> {
        let mut findings = Vec::new();
        if let Some(seen) = self.denied(path, 0o1) {
            findings.push(Finding::problem("executable", Verdict::Fail, seen, ACCESS_FIX));
        }
        let mut head = Vec::new();
        let _ = std::fs::File::open(self.tree.on_disk(path)).and_then(|f| f.take(1 << 26).read_to_end(&mut head));
        match Executable::of(&head) {
            Executable::Elf(facts) => {
                let platform = self.image.platform();
                match &facts.platform {
                    Some(machine) if machine.matches(platform) || platform.matches(machine) => {
                        findings.push(Finding::pass(
                            "architecture",
                            format!("/{path} is {} for {platform}", facts.machine_name),
                        ))
                    }
                    _ => findings.push(Finding::problem(
                        "architecture",
                        Verdict::Fail,
                        format!(
                            "/{path} is {}, but the image is {platform}: on such a host it fails with \"exec format error\", unless an emulator for it is registered",
                            facts.machine_name
                        ),
                        "build the program for the image's platform, or set the platform the program is for",
                    )),
                }
                if facts.emulated_elsewhere == Some(false) {
                    findings.push(not_emulated(path, platform));
                }
                if facts.interpreter.is_some() {
                    findings.extend(self.libraries(path, &head));
                }
            }
            Executable::Script(interpreter) if depth < 4 => findings.extend(self.script(path, &interpreter, depth)),
            Executable::Script(_) => {}
            other => findings.push(Finding::problem(
                "architecture",
                Verdict::Fail,
                format!("/{path} is not a Linux program ({})", describe(&other)),
                "make the entrypoint a Linux ELF program or a #! script",
            )),
        }
        findings
    }

    /// A `#!` script: readable by the user, its interpreter present and checked in turn.
    fn script(&self, path: &str, interpreter: &str, depth: usize) -> Vec<Finding> {
        let mut findings = Vec::new();
        if let Some(seen) = self.denied(path, 0o4) {
            findings.push(Finding::problem("readable", Verdict::Fail, seen, ACCESS_FIX));
        }
        let program = interpreter.split_whitespace().next().unwrap_or_default();
        match self.tree.follow(program).filter(|w| self.tree.on_disk(&w.path).is_file()) {
            Some(walked) => {
                findings.push(Finding::pass("interpreter", format!("/{path} runs with {program}")));
                findings.extend(self.file_checks(&walked.path, depth + 1));
            }
            None => findings.push(Finding::problem(
                "interpreter",
                Verdict::Fail,
                format!("/{path} starts with #!{interpreter}, which is not in the image: it fails with \"no such file or directory\""),
                "add the interpreter (speck pack it with the script), or make the entrypoint a program",
            )),
        }
        findings
    }

    /// The interpreter and libraries of a dynamic program, as the loader would find them
    /// in the image, and whether the user may use them: the kernel needs to execute the
    /// interpreter, the loader to read each library.
    fn libraries(&self, path: &str, bytes: &[u8]) -> Vec<Finding> {
        let Some(deps) = ElfDeps::read(bytes) else {
            let evidence = format!("/{path}: its dynamic section cannot be read");
            return vec![Finding::problem("libraries", Verdict::Warn, evidence, "")];
        };
        let loader = Loader::new(self.tree.clone(), Vec::new());
        let directory = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned();
        let start = Start {
            path: path.to_owned(),
            deps,
            origin: Place::InRoot(directory),
        };
        let closure = match loader.closure(&[start], &|_| false) {
            Ok(closure) => closure,
            Err(error) => {
                let fix = "pack the program with speck pack, which adds its interpreter and libraries";
                return vec![Finding::problem("libraries", Verdict::Fail, error.to_string(), fix)];
            }
        };
        let files = closure
            .found
            .iter()
            .filter(|found| matches!(found.what, FoundKind::File(_)));
        let denied: Vec<String> = files
            .filter_map(|found| match found.need {
                Need::Interpreter(_) => self.denied(&found.path, 0o1),
                _ => self.denied(&found.path, 0o4),
            })
            .collect();
        let mut findings = vec![Finding::pass(
            "libraries",
            format!(
                "/{path}: interpreter and {} libraries present",
                closure.found.len().saturating_sub(1)
            ),
        )];
        if !denied.is_empty() {
            findings.push(Finding::problem(
                "readable",
                Verdict::Fail,
                format!("/{path} cannot be loaded: {}", denied.join("; ")),
                ACCESS_FIX,
            ));
        }
        findings
    }
}

/// The warning for a program that emulators on hosts of other architectures refuse.
fn not_emulated(path: &str, platform: &Platform) -> Finding {
    Finding::problem(
        "emulation",
        Verdict::Warn,
        format!(
            "/{path}'s first 20 bytes are not what the emulators of other hosts match (the binfmt_misc entries of qemu-user and Rosetta): only {platform} hosts run it; `docker run --platform {platform}` elsewhere fails with \"exec format error\""
        ),
        "for hosts of other architectures, publish an image index with an image for each (speck's programs: --platform all), so that each host pulls its own",
    )
}

fn describe(executable: &Executable) -> &'static str {
    match executable {
        Executable::MachO => "a macOS program",
        Executable::Pe => "a Windows program",
        _ => "data",
    }
}

/// Whether `process` may do `bit` (1 execute, 4 read) to a file of `mode` owned by `owner`.
fn allowed(mode: u32, (uid, gid): (u32, u32), process: &Process, bit: u32) -> bool {
    if process.uid == 0 {
        return bit != 0o1 || mode & 0o111 != 0;
    }
    let shift = if process.uid == uid {
        6
    } else if process.gid == gid || process.groups.contains(&gid) {
        3
    } else {
        0
    };
    mode >> shift & bit != 0
}

/// The owner the image's layers give each path they name (the last layer that has it
/// wins), and whether it is a directory.
fn owners_in_image(image: &Image) -> HashMap<String, (u32, u32, bool)> {
    let layers = image
        .layers()
        .iter()
        .filter_map(|layer| layer.tar(Limits::default().bytes).ok());
    layers
        .flat_map(|tar| crate::layer::tar::read(&tar).unwrap_or_default())
        .map(|entry| (entry.path, (entry.uid, entry.gid, entry.kind == EntryKind::Dir)))
        .collect()
}

/// Starts the image and, if it keeps running, stops it as `docker stop` would.
fn live_checks(image: &Image) -> Vec<Finding> {
    let output = match tempfile::tempfile() {
        Ok(file) => file,
        Err(e) => {
            return vec![Finding::problem(
                "starts",
                Verdict::Warn,
                format!("cannot capture output: {e}"),
                "",
            )];
        }
    };
    let options = RunOptions {
        output: output.try_clone().ok().map(Into::into),
        ..RunOptions::default()
    };
    let mut started = match sandbox::start(image, options) {
        Ok(started) => started,
        Err(error) => {
            return vec![Finding::problem(
                "starts",
                Verdict::Fail,
                error.to_string(),
                "see the static findings: the program, its interpreter or its user",
            )];
        }
    };
    let shown = |mut file: &std::fs::File| {
        let mut text = String::new();
        let _ = file.rewind().and_then(|_| file.take(200).read_to_string(&mut text));
        let first = text.lines().next().unwrap_or_default().to_owned();
        if first.is_empty() {
            String::new()
        } else {
            format!(", printing {first:?}")
        }
    };
    if let Some(status) = started.wait_timeout(START_WINDOW) {
        let evidence = format!("it ran and exited with status {status}{}", shown(&output));
        return vec![if status == 0 {
            Finding::pass("starts", evidence)
        } else {
            Finding::problem(
                "starts",
                Verdict::Warn,
                evidence,
                "if that status is not meant, run it with speck run to see its output",
            )
        }];
    }
    let mut findings = vec![Finding::pass(
        "starts",
        format!("it is running after {} ms", START_WINDOW.as_millis()),
    )];
    let signal = stop_signal(image);
    let sent = Instant::now();
    started.signal(signal);
    match started.wait_timeout(STOP_WINDOW) {
        Some(status) => findings.push(Finding::pass(
            "stops",
            format!(
                "as PID 1 it stopped {} ms after {signal} with status {status}",
                sent.elapsed().as_millis()
            ),
        )),
        None => {
            started.signal(Signal::SIGKILL);
            started.wait();
            findings.push(Finding::problem(
                "stops",
                Verdict::Fail,
                format!("as PID 1 it was still running {} s after {signal}: docker stop will wait its 10-second timeout, then kill it", STOP_WINDOW.as_secs()),
                "run it under an init (speck pack --init), or handle SIGTERM in the program: as PID 1 the kernel ignores signals it has no handler for",
            ));
        }
    }
    findings
}

/// The config's StopSignal, SIGTERM by default.
fn stop_signal(image: &Image) -> Signal {
    let configured = image.config().stop_signal.clone().unwrap_or_default();
    let name = configured.trim_start_matches("SIG");
    name.parse::<i32>()
        .ok()
        .and_then(|n| Signal::try_from(n).ok())
        .or_else(|| format!("SIG{name}").parse().ok())
        .unwrap_or(Signal::SIGTERM)
}

/// Whether any finding fails.
pub fn failed(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.verdict == Verdict::Fail)
}

/// Readable lines: the verdict, the check, the evidence, and the fix under it.
pub fn render(findings: &[Finding]) -> String {
    let mut text = String::new();
    for finding in findings {
        let verdict = match finding.verdict {
            Verdict::Pass => "pass",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        text.push_str(&format!("{verdict}  {:<13}{}\n", finding.check, finding.evidence));
        if !finding.fix.is_empty() {
            text.push_str(&format!("      {:<13}fix: {}\n", "", finding.fix));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_bits_follow_owner_group_other() {
        let process = |uid, gid| Process {
            argv: vec!["/x".into()],
            env: vec![],
            cwd: "/".into(),
            uid,
            gid,
            groups: vec![],
        };
        assert!(allowed(0o100, (0, 0), &process(0, 0), 1));
        assert!(!allowed(0o644, (0, 0), &process(0, 0), 1));
        assert!(!allowed(0o750, (0, 0), &process(65532, 65532), 1));
        assert!(allowed(0o750, (0, 65532), &process(65532, 65532), 1));
        assert!(allowed(0o700, (65532, 0), &process(65532, 65532), 1));
    }

    #[test]
    fn stop_signals_read_by_name_or_number() {
        let image = |signal: &str| {
            crate::image::ImageSpec {
                platform: crate::image::Platform::host(),
                config: crate::image::Config {
                    stop_signal: Some(signal.into()),
                    ..Default::default()
                },
                layers: vec![],
                created: 0,
                created_by: String::new(),
                annotations: Default::default(),
            }
            .build()
        };
        assert_eq!(stop_signal(&image("SIGQUIT")), Signal::SIGQUIT);
        assert_eq!(stop_signal(&image("2")), Signal::SIGINT);
    }
}
