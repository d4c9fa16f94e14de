//! `speck pack`: host files into a FROM-scratch image, with everything a dynamic program
//! needs to start, the runtime files asked for, and a reason for every file; refusing
//! what cannot run there.

use super::closure::{ClosureError, ElfDeps, Found, FoundKind, Loader, Need, Place, Root, Start};
use super::executable::{ElfFacts, Executable};
use super::runtime::{self, RuntimeError, RuntimeFile, RuntimeFiles};
use super::trace::{self, TraceError};
use super::{CollectError, Gathered, Source, gather, ld_cache, strip};
use crate::image::{Config, Image, ImageSpec, Platform};
use crate::layer::{Entry, EntryKind, Layer, LayerOptions, TarError, canonical, image_path, resolve};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

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
    /// Where libraries, `--include` paths and runtime files are read (`/` by default).
    pub root: Option<PathBuf>,
    /// Directories searched as `LD_LIBRARY_PATH` would be (`--library-path`).
    pub library_path: Vec<String>,
    /// Paths of the root added as they are (files, trees, with their links).
    pub include: Vec<String>,
    /// Runtime files asked for.
    pub runtime: RuntimeFiles,
    /// Run the program with `args` under ptrace and add what it opened.
    pub trace: bool,
    /// Strip symbols, debug sections and section headers from ELF files.
    pub strip: bool,
    /// Put speck's generated init at `/init` and make it the entrypoint, with the
    /// program as its command (`--init`).
    pub init: bool,
}

/// A packed image and what is in it.
#[derive(Clone, Debug)]
pub struct Packed {
    /// The image.
    pub image: Image,
    /// Every file, link and directory in the layer, in path order, with its reason.
    pub contents: Vec<Content>,
    /// The traced run's exit status, when `--trace` ran the program.
    pub trace_status: Option<i32>,
}

/// One path of a packed image.
#[derive(Clone, Debug)]
pub struct Content {
    /// The image path (relative).
    pub path: String,
    /// What stands there.
    pub entry: Entry,
    /// Why it is there.
    pub why: Why,
    /// The host file it was read from, if any.
    pub host: Option<PathBuf>,
    /// Its size before `--strip`, if stripping changed it.
    pub unstripped: Option<u64>,
}

/// Why a path is in a packed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// Named on the command line.
    Argument,
    /// The `PT_INTERP` of this image path.
    Interpreter(String),
    /// A `DT_NEEDED` library of this image path.
    Library(String),
    /// A symlink on the way to this image path.
    Link(String),
    /// Opened by the traced run.
    Traced,
    /// `--include`.
    Included,
    /// A runtime option (`--ca-certs`, ...) or speck's own addition.
    Option(&'static str),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Argument => write!(f, "argument"),
            Why::Interpreter(of) => write!(f, "interpreter of /{of}"),
            Why::Library(of) => write!(f, "needed by /{of}"),
            Why::Link(to) => write!(f, "link to /{to}"),
            Why::Traced => write!(f, "opened by the traced run"),
            Why::Included => write!(f, "--include"),
            Why::Option(option) => write!(f, "{option}"),
        }
    }
}

impl From<Need> for Why {
    fn from(need: Need) -> Self {
        match need {
            Need::Interpreter(of) => Why::Interpreter(of),
            Need::Library(of) => Why::Library(of),
            Need::Link(to) => Why::Link(to),
        }
    }
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
    /// `--init` for a platform speck generates no init for.
    #[error("--init: speck generates init for linux/amd64, linux/386 and linux/arm64, not {0}")]
    InitUnavailable(String),
    /// `--init` where the image already has `/init`.
    #[error("--init puts speck's init at /init, but the image already has a file there: move it (FILE:/PATH)")]
    InitTaken,
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
    /// A dynamically linked ELF whose interpreter is not in the image after all.
    #[error(
        "{file} is dynamically linked and needs its interpreter {interpreter}, which is not in the image: add it as a FILE:PATH argument, or link the program statically"
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
    /// A library or interpreter could not be found.
    #[error(transparent)]
    Closure(#[from] ClosureError),
    /// A runtime file's source is missing.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The traced run could not be started.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The traced run failed, so what it opened is likely not what the image needs.
    #[error(
        "the traced run of {program} exited with status {status}, so its file list is likely incomplete: fix the arguments after -- until the program succeeds"
    )]
    TraceFailed {
        /// The program.
        program: String,
        /// Its exit status.
        status: i32,
    },
    /// `--trace` with `--root`: the program would run on this machine, not in the root.
    #[error("--trace runs the program on this machine, so it cannot be combined with --root")]
    TraceWithRoot,
    /// `--trace` of a program packed from inside a directory argument.
    #[error("--trace needs the program named directly on the command line (FILE[:PATH]); {0} came from a directory")]
    TraceNeedsFile(String),
    /// An `--include` path that is not in the root.
    #[error("--include {path}: nothing there in {root}")]
    IncludeMissing {
        /// The path.
        path: String,
        /// The root.
        root: String,
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

/// Where `--init` puts the generated init.
const INIT: &str = "init";

/// Packs the request into a single-layer image.
pub fn pack(request: PackRequest) -> Result<Packed, PackError> {
    let Gathered {
        entries,
        top_level,
        hosts,
    } = gather(&request.sources)?;
    let root = Root::new(request.root.clone().unwrap_or_else(|| "/".into()));
    let mut tree = Tree::new(entries, hosts, root.clone());
    for path in &request.include {
        tree.add_from_root(&root, path, &Why::Included, true)?;
    }
    let mut config = request.config;
    let mut platform = request.platform.clone();
    let entrypoint = match &request.entrypoint {
        Some(path) => Some(image_path(path).map_err(|_| PackError::EntrypointMissing(path.clone()))?),
        None => single_program(&tree.entries, &top_level)?,
    };
    let name_of = |image_path: &str| {
        top_level
            .iter()
            .find(|f| f.path == image_path)
            .map_or_else(|| format!("/{image_path}"), |f| f.host.display().to_string())
    };
    let mut trace_status = None;
    if request.trace {
        let program = entrypoint
            .as_deref()
            .ok_or(PackError::EntrypointMissing("(none)".into()))?;
        trace_status = Some(tree.add_traced(program, &request.args, &config.env, request.root.is_some(), &name_of)?);
    }
    tree.add_runtime(&request.runtime, &root)?;
    let loader = Loader::new(root, request.library_path.clone());
    if request.runtime.nss {
        tree.add_nss_modules(&loader);
    }
    tree.add_closure(&loader)?;
    if let Some(path) = entrypoint {
        let resolved = tree
            .resolve(&path)
            .ok_or_else(|| PackError::EntrypointMissing(format!("/{path}")))?;
        let file = name_of(&resolved);
        let index = tree.index();
        let EntryKind::File(bytes) = &index[resolved.as_str()].kind else {
            return Err(PackError::NotAProgram {
                file,
                why: "it is a directory".into(),
            });
        };
        let executable = Executable::of(bytes);
        let elf = check_runnable(&file, &executable, &index)?;
        platform = Some(agree(&file, elf, request.platform)?);
        make_executable(&mut tree.entries, &resolved);
        config.entrypoint = Some(vec![format!("/{path}")]);
    }
    if request.init {
        let program = config
            .entrypoint
            .take()
            .ok_or(PackError::EntrypointMissing("(none)".into()))?;
        let platform = platform.clone().unwrap_or_else(Platform::host);
        let arch = crate::forge::Arch::of(&platform).ok_or_else(|| PackError::InitUnavailable(platform.to_string()))?;
        if tree.origins.contains_key(INIT) {
            return Err(PackError::InitTaken);
        }
        // amd64's in the layout emulators accept, as arm64 hosts may run the image so.
        let init_program = match arch {
            crate::forge::Arch::Amd64 => crate::forge::init::conventional_amd64(),
            arch => crate::forge::init::program(arch),
        };
        let init = Entry::file(INIT, 0o755, init_program).expect("a valid path");
        tree.push(init, Why::Option("--init"), None);
        config.entrypoint = Some([format!("/{INIT}")].into_iter().chain(program).collect());
    }
    if let Some(account) = &request.runtime.passwd
        && config.user.is_none()
    {
        config.user = Some(account.name.clone());
    }
    if !request.args.is_empty() {
        config.cmd = Some(request.args);
    }
    if config
        .user
        .as_deref()
        .is_some_and(|user| !matches!(user.split(':').next(), Some("0" | "root")))
    {
        tree.add_parent_dirs();
    }
    let contents = tree.contents(request.strip);
    let entries: Vec<Entry> = contents.iter().map(|c| c.entry.clone()).collect();
    let layer = Layer::build(&entries, &request.layer)?;
    let image = ImageSpec {
        platform: platform.unwrap_or_else(Platform::host),
        config,
        layers: vec![layer],
        created: request.layer.mtime,
        created_by: "speck pack".into(),
        annotations: request.annotations,
    }
    .build();
    Ok(Packed {
        image,
        contents,
        trace_status,
    })
}

/// The image being assembled: its entries, and for each path why it is there and which
/// host file it came from. The first reason for a path wins; the user's files first.
struct Tree {
    entries: Vec<Entry>,
    origins: BTreeMap<String, (Why, Option<PathBuf>)>,
    root: Root,
}

impl Tree {
    fn new(entries: Vec<Entry>, hosts: BTreeMap<String, PathBuf>, root: Root) -> Tree {
        let origins = entries
            .iter()
            .map(|e| (e.path.clone(), (Why::Argument, hosts.get(&e.path).cloned())))
            .collect();
        Tree { entries, origins, root }
    }

    fn index(&self) -> BTreeMap<&str, &Entry> {
        self.entries.iter().map(|e| (e.path.as_str(), e)).collect()
    }

    /// The entry a path names, following the image's own symlinks.
    fn resolve(&self, path: &str) -> Option<String> {
        resolve(&self.index(), path)
    }

    /// Adds an entry where the image's links put it: `lib/x` lands in `usr/lib/x` once
    /// the image has `lib -> usr/lib`, as it would on a merged-/usr system.
    fn push(&mut self, mut entry: Entry, why: Why, host: Option<PathBuf>) {
        entry.path = self.placed(&entry.path);
        self.origins.insert(entry.path.clone(), (why, host));
        self.entries.push(entry);
    }

    /// A path with the links among its parent directories followed.
    fn placed(&self, path: &str) -> String {
        let Some((parent, name)) = path.rsplit_once('/') else {
            return path.to_owned();
        };
        match canonical(&self.index(), parent) {
            Some(parent) if !parent.is_empty() => format!("{parent}/{name}"),
            Some(_) => name.to_owned(),
            None => path.to_owned(),
        }
    }

    /// Adds a symlink the root has, unless it is there; what the image already has below
    /// it moves to where the link leads.
    fn add_link(&mut self, link: &str, target: &str, why: Why) -> Result<(), PackError> {
        if self.origins.contains_key(link) {
            return Ok(());
        }
        let entry = Entry::symlink(link, target).map_err(|e| CollectError::from((Path::new(link), e)))?;
        self.push(entry, why, None);
        let below = format!("{link}/");
        for at in 0..self.entries.len() {
            if self.entries[at].path.starts_with(&below) {
                let moved = self.placed(&self.entries[at].path);
                if let Some(origin) = self.origins.remove(&self.entries[at].path) {
                    self.origins.insert(moved.clone(), origin);
                }
                self.entries[at].path = moved;
            }
        }
        Ok(())
    }

    /// Adds a path of `root` at the same image path, with the links on the way; a
    /// directory with its tree when `walk`, else alone.
    fn add_from_root(&mut self, root: &Root, path: &str, why: &Why, walk: bool) -> Result<(), PackError> {
        let missing = || PackError::IncludeMissing {
            path: path.to_owned(),
            root: root.dir().display().to_string(),
        };
        let followed = root.follow(path).ok_or_else(missing)?;
        for (link, target) in &followed.links {
            self.add_link(link, target, Why::Link(followed.path.clone()))?;
        }
        let file = followed.path;
        if file.is_empty() || self.resolve(&file).is_some() {
            return Ok(());
        }
        let host = root.on_disk(&file);
        let meta = std::fs::metadata(&host).map_err(|_| missing())?;
        if meta.is_dir() && !walk {
            let entry = Entry::dir(&file, meta.permissions().mode() & 0o7777);
            let entry = entry.map_err(|e| CollectError::from((host.as_path(), e)))?;
            self.push(entry, why.clone(), None);
            return Ok(());
        }
        let gathered = gather(&[Source {
            host: host.clone(),
            dest: Some(format!("/{file}")),
        }])?;
        for entry in gathered.entries {
            if !self.origins.contains_key(&entry.path) {
                let from = gathered.hosts.get(&entry.path).cloned();
                self.push(entry, why.clone(), from);
            }
        }
        Ok(())
    }

    /// Runs the program under ptrace with `args` and adds every file it opened.
    fn add_traced(
        &mut self,
        program: &str,
        args: &[String],
        env: &[String],
        other_root: bool,
        name_of: &dyn Fn(&str) -> String,
    ) -> Result<i32, PackError> {
        if other_root {
            return Err(PackError::TraceWithRoot);
        }
        let resolved = self
            .resolve(program)
            .ok_or_else(|| PackError::EntrypointMissing(format!("/{program}")))?;
        let host = match self.origins.get(&resolved) {
            Some((Why::Argument, Some(host))) => host.clone(),
            _ => return Err(PackError::TraceNeedsFile(name_of(&resolved))),
        };
        let traced = trace::trace(&host, args, env)?;
        if traced.status != 0 {
            return Err(PackError::TraceFailed {
                program: host.display().to_string(),
                status: traced.status,
            });
        }
        let host_root = Root::new("/");
        // Directories it listed or checked are left out: the files found in them imply
        // them, and the others (the working directory, empty search paths) are noise.
        for file in traced.files.iter().filter(|f| worth_packing(f, &host) && !f.is_dir()) {
            if let Some(path) = file.to_str() {
                // A file gone since (a temporary file) is not part of the program.
                let _ = self.add_from_root(&host_root, path, &Why::Traced, false);
            }
        }
        Ok(traced.status)
    }

    fn add_runtime(&mut self, files: &RuntimeFiles, root: &Root) -> Result<(), PackError> {
        for (file, option) in runtime::wanted(files, root)? {
            match file {
                RuntimeFile::Made(entry) if !self.origins.contains_key(&entry.path) => {
                    self.push(entry, Why::Option(option), None);
                }
                RuntimeFile::Made(_) => {}
                RuntimeFile::FromRoot(path) => self.add_from_root(root, &path, &Why::Option(option), true)?,
            }
        }
        Ok(())
    }

    /// The NSS modules of older glibc, where the root has them; nothing on glibc 2.34
    /// and later, which build `files` and `dns` into libc.
    fn add_nss_modules(&mut self, loader: &Loader) {
        let programs = self.dynamic_elves();
        let Some(main) = programs.first() else { return };
        for module in runtime::NSS_MODULES {
            if let Some(followed) = loader.locate(module, &main.deps) {
                let _ = self.add_from_root(loader.root(), &followed.path, &Why::Option("--nss"), false);
            }
        }
    }

    /// Every dynamically linked ELF file in the tree, with what `$ORIGIN` is for it.
    fn dynamic_elves(&self) -> Vec<Start> {
        self.entries
            .iter()
            .filter_map(|entry| {
                let EntryKind::File(bytes) = &entry.kind else {
                    return None;
                };
                let deps = ElfDeps::read(bytes).filter(|d| d.interpreter.is_some() || !d.needed.is_empty())?;
                let host = self.origins.get(&entry.path).and_then(|(_, host)| host.as_ref());
                let image_dir = entry.path.rsplit_once('/').map_or("", |(dir, _)| dir);
                let origin = match host {
                    // The loader takes $ORIGIN from the program's real path.
                    Some(host) if *host != self.root.on_disk(&entry.path) => Place::Beside {
                        host: std::fs::canonicalize(host)
                            .ok()
                            .and_then(|real| real.parent().map(Path::to_path_buf))
                            .unwrap_or_else(|| host.parent().unwrap_or(host).to_path_buf()),
                        image: image_dir.to_owned(),
                    },
                    _ => Place::InRoot(format!("/{image_dir}")),
                };
                Some(Start {
                    path: entry.path.clone(),
                    deps,
                    origin,
                })
            })
            .collect()
    }

    /// Adds the interpreter and libraries of every dynamic ELF file, and a loader cache
    /// when some library lives where the image's loader would not look.
    fn add_closure(&mut self, loader: &Loader) -> Result<(), PackError> {
        let starts = self.dynamic_elves();
        let closure = {
            let index = self.index();
            loader.closure(&starts, &|path| resolve(&index, path).is_some())?
        };
        for Found { path, what, need } in closure.found {
            match what {
                FoundKind::Symlink(target) => self.add_link(&path, &target, need.into())?,
                FoundKind::File(host) if !self.origins.contains_key(&path) => {
                    let meta = std::fs::metadata(&host).map_err(|e| super::read_error(&host, e))?;
                    let bytes = std::fs::read(&host).map_err(|e| super::read_error(&host, e))?;
                    let entry = Entry::file(&path, meta.permissions().mode() & 0o7777, bytes);
                    let entry = entry.map_err(|e| CollectError::from((host.as_path(), e)))?;
                    self.push(entry, need.into(), Some(host));
                }
                FoundKind::File(_) => {}
            }
        }
        if !closure.cached.is_empty() && self.resolve("etc/ld.so.cache").is_none() {
            let cache = Entry::file("etc/ld.so.cache", 0o644, ld_cache::write(&closure.cached))
                .map_err(|e| CollectError::from((Path::new("/etc/ld.so.cache"), e)))?;
            self.push(
                cache,
                Why::Option("loader cache: libraries outside the default directories"),
                None,
            );
        }
        Ok(())
    }

    /// Directory entries (0755) for every parent the entries only imply. docker 20.10
    /// creates implied parents with mode 0600 (measured), which a non-root user cannot
    /// enter; root can, so only images that run as someone else pay the headers.
    fn add_parent_dirs(&mut self) {
        let parents: std::collections::BTreeSet<String> = self
            .entries
            .iter()
            .flat_map(|e| {
                let parts: Vec<&str> = e.path.split('/').collect();
                (1..parts.len()).map(move |n| parts[..n].join("/"))
            })
            .filter(|parent| !self.origins.contains_key(parent))
            .collect();
        for parent in parents {
            if let Ok(dir) = Entry::dir(&parent, 0o755) {
                self.push(dir, Why::Option("parent directory a non-root user must enter"), None);
            }
        }
    }

    /// The entries in path order with their reasons, ELF files stripped if asked.
    fn contents(mut self, strip: bool) -> Vec<Content> {
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
        self.entries
            .into_iter()
            .map(|mut entry| {
                let (why, host) = self.origins.remove(&entry.path).unwrap_or((Why::Argument, None));
                let mut unstripped = None;
                if strip
                    && let EntryKind::File(bytes) = &entry.kind
                    && let Some(smaller) = strip::strip(bytes)
                {
                    unstripped = Some(bytes.len() as u64);
                    entry.kind = EntryKind::File(smaller.into());
                }
                Content {
                    path: entry.path.clone(),
                    entry,
                    why,
                    host,
                    unstripped,
                }
            })
            .collect()
    }
}

/// Traced files worth packing: not the kernel's pseudo-files, not the program itself,
/// not the host's loader cache (which names host paths; speck writes its own).
fn worth_packing(file: &Path, program: &Path) -> bool {
    const SKIPPED: [&str; 5] = ["/proc", "/sys", "/dev", "/etc/ld.so.cache", "/etc/ld.so.preload"];
    file != program && !SKIPPED.iter().any(|s| file.starts_with(s)) && file != Path::new("/")
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
