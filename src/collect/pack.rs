//! `speck pack`: host files into a FROM-scratch image, refusing what cannot run there.

use super::executable::{ElfFacts, Executable};
use super::{CollectError, Gathered, Source, gather};
use crate::image::{Config, Image, ImageSpec, Platform};
use crate::layer::{Entry, EntryKind, Layer, LayerOptions, TarError, image_path};
use std::collections::BTreeMap;

/// What to pack and how the image should run it.
#[derive(Clone, Debug)]
pub struct PackRequest {
    /// Host files and directories, with their image paths.
    pub sources: Vec<Source>,
    /// The program to run; when `None`, the single program among the files named directly.
    pub entrypoint: Option<String>,
    /// Default arguments (`Cmd`).
    pub args: Vec<String>,
    /// Everything else the container is configured with (env, user, labels, ...).
    pub config: Config,
    /// The platform asked for; must agree with the entrypoint's ELF header.
    pub platform: Option<Platform>,
    /// How to write the layer.
    pub layer: LayerOptions,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Why an image was not packed. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A host file could not be read.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// The entries do not form a layer.
    #[error(transparent)]
    Layer(#[from] TarError),
    /// `--entrypoint` names a path no file provides.
    #[error("the entrypoint {0} is not in the image: pack the program there (FILE:{0}) or fix --entrypoint")]
    EntrypointMissing(String),
    /// More than one program and no `--entrypoint`.
    #[error("several programs were given ({}): say which one runs with --entrypoint", .0.join(", "))]
    SeveralPrograms(Vec<String>),
    /// A Mach-O or PE program.
    #[error(
        "{file} is {kind}; containers run Linux programs: build it for Linux (Go: GOOS=linux; Rust: --target x86_64-unknown-linux-musl) and pack that"
    )]
    ForeignProgram {
        /// The file.
        file: String,
        /// What it is.
        kind: &'static str,
    },
    /// A script whose interpreter is not packed.
    #[error(
        "{file} is a script for {interpreter}, which is not in the image (a scratch image has no shell or interpreter): add it as a FILE:{interpreter} argument, or pack a compiled program"
    )]
    ScriptWithoutInterpreter {
        /// The script.
        file: String,
        /// Its `#!` interpreter.
        interpreter: String,
    },
    /// A dynamically linked ELF whose interpreter is not packed.
    #[error(
        "{file} is dynamically linked and needs its interpreter {interpreter}, which is not in the image. Link it statically (Go: CGO_ENABLED=0; C: -static; Rust: a musl target), or add the interpreter and its libraries as FILE:PATH arguments; automatic library collection is planned for speck pack"
    )]
    MissingInterpreter {
        /// The program.
        file: String,
        /// Its `PT_INTERP`.
        interpreter: String,
    },
    /// A file that is not something the kernel can start.
    #[error("{file} cannot be the entrypoint: {why}")]
    NotAProgram {
        /// The file.
        file: String,
        /// What it is instead.
        why: String,
    },
    /// `--platform` disagrees with the ELF header.
    #[error(
        "{file} is a {found} program ({machine}), but --platform asks for {asked}: pack a build for {asked}, or drop --platform"
    )]
    PlatformMismatch {
        /// The program.
        file: String,
        /// Its ELF machine name.
        machine: String,
        /// The platform its header says.
        found: String,
        /// The platform asked for.
        asked: String,
    },
    /// An ELF machine speck has no platform name for.
    #[error(
        "{file} is an ELF program for {machine} (e_machine {number}), which speck cannot name as a platform: give --platform"
    )]
    UnknownMachine {
        /// The program.
        file: String,
        /// Its ELF machine name.
        machine: String,
        /// `e_machine`.
        number: u16,
    },
}

/// Packs the request into a single-layer image.
pub fn pack(request: PackRequest) -> Result<Image, PackError> {
    let Gathered { mut entries, top_level } = gather(&request.sources)?;
    let mut config = request.config;
    let mut platform = request.platform.clone();
    let entrypoint = match &request.entrypoint {
        Some(path) => Some(image_path(path).map_err(|_| PackError::EntrypointMissing(path.clone()))?),
        None => single_program(&entries, &top_level)?,
    };
    if let Some(path) = entrypoint {
        let name_of = |image_path: &str| {
            top_level
                .iter()
                .find(|f| f.path == image_path)
                .map_or_else(|| format!("/{image_path}"), |f| f.host.display().to_string())
        };
        let index: BTreeMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
        let resolved = resolve(&index, &path).ok_or_else(|| PackError::EntrypointMissing(format!("/{path}")))?;
        let file = name_of(&resolved);
        let EntryKind::File(bytes) = &index[resolved.as_str()].kind else {
            return Err(PackError::NotAProgram {
                file,
                why: "it is a directory".into(),
            });
        };
        let executable = Executable::of(bytes);
        let elf = check_runnable(&file, &executable, &index)?;
        platform = Some(agree(&file, elf, request.platform)?);
        make_executable(&mut entries, &resolved);
        config.entrypoint = Some(vec![format!("/{path}")]);
    }
    if !request.args.is_empty() {
        config.cmd = Some(request.args);
    }
    let layer = Layer::build(&entries, &request.layer)?;
    Ok(ImageSpec {
        platform: platform.unwrap_or_else(Platform::host),
        config,
        layers: vec![layer],
        created: request.layer.mtime,
        created_by: "speck pack".into(),
        annotations: request.annotations,
    }
    .build())
}

/// The one program among the files named directly, if there is exactly one.
fn single_program(entries: &[Entry], top_level: &[super::TopLevelFile]) -> Result<Option<String>, PackError> {
    let programs: Vec<&super::TopLevelFile> = top_level
        .iter()
        .filter(|file| {
            entries.iter().any(|e| {
                e.path == file.path && matches!(&e.kind, EntryKind::File(bytes) if Executable::of(bytes).is_program())
            })
        })
        .collect();
    match programs[..] {
        [] => Ok(None),
        [one] => Ok(Some(one.path.clone())),
        _ => Err(PackError::SeveralPrograms(
            programs.iter().map(|f| f.host.display().to_string()).collect(),
        )),
    }
}

/// Checks that `executable` can start in the image; returns its ELF facts if it is ELF.
fn check_runnable<'a>(
    file: &str,
    executable: &'a Executable,
    index: &BTreeMap<&str, &Entry>,
) -> Result<Option<&'a ElfFacts>, PackError> {
    let in_image = |path: &str| image_path(path).is_ok_and(|p| resolve(index, &p).is_some());
    let not_a_program = |why: &str| PackError::NotAProgram {
        file: file.into(),
        why: why.into(),
    };
    match executable {
        Executable::MachO => Err(PackError::ForeignProgram {
            file: file.into(),
            kind: "a macOS (Mach-O) program",
        }),
        Executable::Pe => Err(PackError::ForeignProgram {
            file: file.into(),
            kind: "a Windows (PE) program",
        }),
        Executable::Script(interpreter) if !in_image(interpreter) => Err(PackError::ScriptWithoutInterpreter {
            file: file.into(),
            interpreter: interpreter.clone(),
        }),
        Executable::Script(_) => Ok(None),
        Executable::Data => Err(not_a_program("it is neither an ELF program nor a #! script")),
        Executable::Elf(facts) => match facts {
            ElfFacts { damaged: Some(why), .. } => Err(not_a_program(&format!("it is a damaged ELF file ({why})"))),
            ElfFacts { runnable: false, .. } => Err(not_a_program(
                "it is an ELF object or core file, not a program; link it first",
            )),
            ElfFacts {
                interpreter: Some(interpreter),
                ..
            } if !in_image(interpreter) => Err(PackError::MissingInterpreter {
                file: file.into(),
                interpreter: interpreter.clone(),
            }),
            facts => Ok(Some(facts)),
        },
    }
}

/// The image platform: the ELF header's, which `--platform` must agree with.
fn agree(file: &str, elf: Option<&ElfFacts>, asked: Option<Platform>) -> Result<Platform, PackError> {
    let Some(facts) = elf else {
        return Ok(asked.unwrap_or_else(Platform::host));
    };
    match (&facts.platform, asked) {
        (Some(found), Some(asked)) if !found.matches(&asked) => Err(PackError::PlatformMismatch {
            file: file.into(),
            machine: facts.machine_name.clone(),
            found: found.to_string(),
            asked: asked.to_string(),
        }),
        (Some(found), asked) => Ok(asked.unwrap_or_else(|| found.clone())),
        (None, Some(asked)) => Ok(asked),
        (None, None) => Err(PackError::UnknownMachine {
            file: file.into(),
            machine: facts.machine_name.clone(),
            number: facts.machine,
        }),
    }
}

/// The entrypoint must be executable; a copy that lost its `x` bits gets them back.
fn make_executable(entries: &mut [Entry], path: &str) {
    if let Some(entry) = entries.iter_mut().find(|e| e.path == path)
        && entry.mode & 0o111 == 0
    {
        entry.mode |= 0o111;
    }
}

/// Follows symlinks inside the image (never outside it) to the entry a path names.
/// Returns the resolved path, or `None` if nothing is there or links loop.
fn resolve(index: &BTreeMap<&str, &Entry>, path: &str) -> Option<String> {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => current.push(part),
        }
        let joined = current.join("/");
        match index.get(joined.as_str()).map(|e| &e.kind) {
            Some(EntryKind::Symlink(target)) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_owned));
            }
            Some(EntryKind::Hardlink(target)) if pending.is_empty() => return Some(target.clone()),
            _ => {}
        }
    }
    let joined = current.join("/");
    index.contains_key(joined.as_str()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_links_inside_the_image_only() {
        let entries = [
            Entry::file("usr/lib/ld.so", 0o755, b"x".to_vec()).unwrap(),
            Entry::symlink("lib64", "usr/lib").unwrap(),
            Entry::symlink("usr/bin/up", "../../lib64/ld.so").unwrap(),
            Entry::symlink("loop", "loop").unwrap(),
        ];
        let index: BTreeMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
        assert_eq!(resolve(&index, "lib64/ld.so").as_deref(), Some("usr/lib/ld.so"));
        assert_eq!(resolve(&index, "usr/bin/up").as_deref(), Some("usr/lib/ld.so"));
        assert_eq!(resolve(&index, "loop"), None);
        assert_eq!(resolve(&index, "missing"), None);
    }
}
