//! The files a dynamically linked program needs to start: its interpreter and every
//! library, found the way glibc's loader finds them, read from the ELF files themselves.
//!
//! Owns the loader's search rules: `DT_NEEDED` names are matched first against what is
//! already loaded (by name or `DT_SONAME`), then searched in `DT_RPATH` (of the object
//! and the chain of objects that loaded it, unless the object has `DT_RUNPATH`),
//! `--library-path` (the user's `LD_LIBRARY_PATH`), `DT_RUNPATH` (the object's own,
//! never inherited), `/etc/ld.so.cache` (or, without one, the directories of
//! `/etc/ld.so.conf`), then the default directories, skipping `DF_1_NODEFLIB`'s last two;
//! a file of another machine or class is skipped as the loader skips it. `$ORIGIN`,
//! `$LIB` and `$PLATFORM` are expanded. Breadth first, to a fixed point.
//!
//! Files are read under a [`Root`] (the host, or `--root DIR`); paths keep the symlinks
//! they pass through (`/lib` → `usr/lib`, `libz.so.1` → `libz.so.1.2.13`) so that the
//! same names resolve inside the image. Reads only; knows nothing about layers.

use super::ld_cache::{self, CacheEntry};
use crate::layer::{Step, Walked, walk_links};
use goblin::elf::Elf;
use goblin::elf::dynamic::DF_1_NODEFLIB;
use goblin::elf::header::{EM_386, EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64};
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// What an ELF file asks of the loader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfDeps {
    /// `e_machine`.
    pub machine: u16,
    /// ELFCLASS64.
    pub wide: bool,
    /// `PT_INTERP`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// `DT_RPATH` directories (ignored by the loader when `DT_RUNPATH` is present).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` directories.
    pub runpath: Vec<String>,
    /// `DF_1_NODEFLIB`: not the cache, not the default directories.
    pub nodeflib: bool,
}

impl ElfDeps {
    /// Reads an ELF file's dependencies; `None` for anything goblin cannot read as ELF
    /// (not ELF, damaged, or a tiny program with overlapped headers: static anyway).
    pub fn read(bytes: &[u8]) -> Option<ElfDeps> {
        if !bytes.starts_with(b"\x7fELF") {
            return None;
        }
        let elf = Elf::parse(bytes).ok()?;
        let split = |entries: &[&str]| -> Vec<String> {
            entries
                .iter()
                .flat_map(|e| e.split(':'))
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Some(ElfDeps {
            machine: elf.header.e_machine,
            wide: elf.is_64,
            interpreter: elf.interpreter.map(str::to_owned),
            needed: elf.libraries.iter().map(|s| (*s).to_owned()).collect(),
            soname: elf.soname.map(str::to_owned),
            rpath: split(&elf.rpaths),
            runpath: split(&elf.runpaths),
            nodeflib: elf
                .dynamic
                .as_ref()
                .is_some_and(|d| d.info.flags_1 & DF_1_NODEFLIB != 0),
        })
    }

    /// Whether a library of `other`'s machine and class can be loaded beside this one.
    fn same_machine(&self, other: &ElfDeps) -> bool {
        (self.machine, self.wide) == (other.machine, other.wide)
    }
}

/// The file tree libraries come from: `/` or another root (a sysroot, an unpacked image),
/// inside which absolute symlinks resolve and `..` stops.
#[derive(Clone, Debug)]
pub struct Root(PathBuf);

impl Root {
    /// The root of a tree; `/` for the host.
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root(dir.into())
    }

    /// The directory this root is.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// Where a path inside the root (`usr/lib/x`, `/usr/lib/x`) is on disk.
    pub fn on_disk(&self, path: &str) -> PathBuf {
        self.0.join(path.trim_start_matches('/'))
    }

    /// Resolves `path` component by component, following symlinks inside the root.
    /// `None` if nothing is there, a link loops, or a name is not UTF-8.
    pub fn follow(&self, path: &str) -> Option<Walked> {
        walk_links(path, |at, _| match std::fs::symlink_metadata(self.on_disk(at)) {
            Ok(meta) if meta.is_symlink() => match std::fs::read_link(self.on_disk(at)) {
                Ok(target) => target.to_str().map_or(Step::Missing, |t| Step::Symlink(t.to_owned())),
                Err(_) => Step::Missing,
            },
            Ok(_) => Step::Other,
            Err(_) => Step::Missing,
        })
    }
}

/// Where a library search looks: a directory inside the root, or one beside a file the
/// user packed from elsewhere (`$ORIGIN` of a program placed at another image path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A directory inside the root, at the same path in the image.
    InRoot(String),
    /// A host directory and the image directory it stands for.
    Beside {
        /// On the host.
        host: PathBuf,
        /// In the image (relative, no leading `/`).
        image: String,
    },
}

impl Place {
    fn join(&self, name: &str) -> Place {
        match self {
            Place::InRoot(dir) => Place::InRoot(format!("{}/{name}", dir.trim_end_matches('/'))),
            Place::Beside { host, image } => Place::Beside {
                host: host.join(name),
                image: normalise(&format!("{image}/{name}")),
            },
        }
    }

    fn parent(&self) -> Place {
        match self {
            Place::InRoot(path) => Place::InRoot(path.rsplit_once('/').map_or("/", |(dir, _)| dir).to_owned()),
            Place::Beside { host, image } => Place::Beside {
                host: host.parent().unwrap_or(host).to_path_buf(),
                image: image.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned(),
            },
        }
    }

    fn describe(&self, root: &Root) -> String {
        match self {
            Place::InRoot(path) => root.on_disk(path).display().to_string(),
            Place::Beside { host, .. } => host.display().to_string(),
        }
    }
}

/// `a/./b/../c` → `a/c`, never above the top.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// Why a file is in the closure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// The `PT_INTERP` of the file at this image path.
    Interpreter(String),
    /// A `DT_NEEDED` name of the file at this image path.
    Library(String),
    /// A symlink on the way to the file at this image path.
    Link(String),
}

/// A file the closure adds: where it goes in the image and where to read it.
#[derive(Clone, Debug)]
pub struct Found {
    /// The image path (relative).
    pub path: String,
    /// What stands there.
    pub what: FoundKind,
    /// Why it is needed.
    pub need: Need,
}

/// A file or a symlink of the closure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FoundKind {
    /// A file to copy from this host path.
    File(PathBuf),
    /// A symlink with this target.
    Symlink(String),
}

/// A program whose closure is wanted: its image path, where it is read from, and what
/// `$ORIGIN` means for it.
#[derive(Clone, Debug)]
pub struct Start {
    /// Image path (relative).
    pub path: String,
    /// Its bytes.
    pub deps: ElfDeps,
    /// Its directory, for `$ORIGIN` (the loader uses the program's real path).
    pub origin: Place,
}

/// Why a closure could not be completed. Each names the file, who needs it and where
/// speck looked.
#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    /// No file of that name, of the right machine, on any search path.
    #[error(
        "/{needed_by} needs the library {name}, which is not in {}; searched: {}{}. Install it, pack it (FILE:PATH), or point --library-path or --root at it",
        root_name(.root), .searched.join(", "), wrong_arch(.skipped)
    )]
    LibraryNotFound {
        /// The library name.
        name: String,
        /// The image path of the file that needs it.
        needed_by: String,
        /// The directories searched, in order.
        searched: Vec<String>,
        /// Files of that name skipped because they are for another machine.
        skipped: Vec<String>,
        /// The root searched.
        root: PathBuf,
    },
    /// The interpreter is not in the root, or is for another machine.
    #[error(
        "/{needed_by} needs its interpreter {interpreter}, which {problem} in {}: install the C library for that architecture, or give --root a tree that has it",
        root_name(.root)
    )]
    Interpreter {
        /// `PT_INTERP`.
        interpreter: String,
        /// The program.
        needed_by: String,
        /// "is not present" or "is for another machine".
        problem: &'static str,
        /// The root searched.
        root: PathBuf,
    },
}

fn root_name(root: &Path) -> String {
    if root == Path::new("/") {
        "this machine".into()
    } else {
        format!("--root {}", root.display())
    }
}

fn wrong_arch(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (skipped, for another machine: {})", skipped.join(", "))
    }
}

/// The loader's view of a root: its cache and search directories.
#[derive(Clone, Debug)]
pub struct Loader {
    root: Root,
    cache: Vec<CacheEntry>,
    conf_dirs: Vec<String>,
    library_path: Vec<String>,
}

/// A library as the loader knows it once loaded.
#[derive(Clone, Debug)]
struct Loaded {
    place: Place,
    deps: ElfDeps,
    /// Index of the object that loaded it (for the `DT_RPATH` chain).
    loader: Option<usize>,
}

/// The closure of one or more programs: what to add, and what the image's loader needs
/// in its own cache.
#[derive(Clone, Debug, Default)]
pub struct Closure {
    /// Files and links to add, in the order found; the first reason for each path.
    pub found: Vec<Found>,
    /// Libraries that only the host's cache or `--library-path` located, outside the
    /// default directories: the image needs an `/etc/ld.so.cache` naming them.
    pub cached: Vec<CacheEntry>,
}

/// The closure being built, with the paths already added or already in the image.
struct Collector<'a> {
    closure: Closure,
    added: BTreeSet<String>,
    present: &'a dyn Fn(&str) -> bool,
}

impl Collector<'_> {
    fn add(&mut self, path: &str, what: FoundKind, need: Need) {
        if !(self.present)(path) && self.added.insert(path.to_owned()) {
            self.closure.found.push(Found {
                path: path.to_owned(),
                what,
                need,
            });
        }
    }

    /// The links on the way to a file, then the file.
    fn add_followed(&mut self, followed: &Walked, root: &Root, need: Need) {
        for (link, target) in &followed.links {
            self.add(
                link,
                FoundKind::Symlink(target.clone()),
                Need::Link(followed.path.clone()),
            );
        }
        self.add(&followed.path, FoundKind::File(root.on_disk(&followed.path)), need);
    }
}

impl Loader {
    /// Reads the root's `/etc/ld.so.cache` and `/etc/ld.so.conf`; `library_path` is
    /// searched as `LD_LIBRARY_PATH` would be.
    pub fn new(root: Root, library_path: Vec<String>) -> Loader {
        let cache = std::fs::read(root.on_disk("etc/ld.so.cache"))
            .map(|bytes| ld_cache::read(&bytes))
            .unwrap_or_default();
        let conf_dirs = conf_dirs(&root, "/etc/ld.so.conf", 0);
        Loader {
            root,
            cache,
            conf_dirs,
            library_path,
        }
    }

    /// The root files are read from.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Everything the programs need, breadth first to a fixed point. `present` says
    /// whether an image path already holds something (the user's own files win).
    pub fn closure(&self, starts: &[Start], present: &dyn Fn(&str) -> bool) -> Result<Closure, ClosureError> {
        let mut collector = Collector {
            closure: Closure::default(),
            added: BTreeSet::new(),
            present,
        };
        for start in starts {
            self.close_one(start, &mut collector)?;
        }
        Ok(collector.closure)
    }

    /// Where the loader would find `name` for a program with these dependencies, as if
    /// it were one of its `DT_NEEDED` (for libraries loaded by name at run time).
    pub fn locate(&self, name: &str, program: &ElfDeps) -> Option<Walked> {
        let main = Loaded {
            place: Place::InRoot("/program".into()),
            deps: program.clone(),
            loader: None,
        };
        match self.search(name, 0, &[main], "").ok()?.0 {
            Place::InRoot(path) => self.root.follow(&path),
            Place::Beside { .. } => None,
        }
    }

    fn close_one(&self, start: &Start, collector: &mut Collector<'_>) -> Result<(), ClosureError> {
        let mut loaded = vec![Loaded {
            place: start.origin.join(basename(&start.path)),
            deps: start.deps.clone(),
            loader: None,
        }];
        // Names the process has loaded, by the name asked for and by DT_SONAME.
        let mut names: BTreeSet<String> = BTreeSet::new();
        if let Some(interpreter) = &start.deps.interpreter {
            let followed = self.interpreter(start, interpreter)?;
            collector.add_followed(&followed, &self.root, Need::Interpreter(start.path.clone()));
            let bytes = std::fs::read(self.root.on_disk(&followed.path)).unwrap_or_default();
            names.extend(ElfDeps::read(&bytes).and_then(|d| d.soname));
            names.insert(basename(interpreter).to_owned());
        }
        let mut queue: VecDeque<usize> = VecDeque::from([0]);
        while let Some(index) = queue.pop_front() {
            let requester = image_of(&loaded[index].place, &start.path, index);
            for name in loaded[index].deps.needed.clone() {
                if names.contains(&name) {
                    continue;
                }
                let (place, deps, via_cache) = self.search(&name, index, &loaded, &requester)?;
                let need = Need::Library(requester.clone());
                match &place {
                    Place::InRoot(path) => {
                        let followed = self.root.follow(path).unwrap_or_else(|| Walked {
                            links: Vec::new(),
                            path: normalise(path),
                        });
                        collector.add_followed(&followed, &self.root, need);
                        if via_cache {
                            collector.closure.cached.push(CacheEntry {
                                name: name.clone(),
                                path: format!("/{}", normalise(path)),
                                flags: ld_cache::flags_for(deps.machine, deps.wide),
                                hwcap: 0,
                            });
                        }
                    }
                    Place::Beside { host, image } => collector.add(image, FoundKind::File(host.clone()), need),
                }
                names.extend(deps.soname.clone());
                names.insert(name);
                loaded.push(Loaded {
                    place,
                    deps,
                    loader: Some(index),
                });
                queue.push_back(loaded.len() - 1);
            }
        }
        Ok(())
    }

    /// The interpreter, resolved inside the root, of the program's machine.
    fn interpreter(&self, start: &Start, interpreter: &str) -> Result<Walked, ClosureError> {
        let problem = |problem| ClosureError::Interpreter {
            interpreter: interpreter.to_owned(),
            needed_by: start.path.clone(),
            problem,
            root: self.root.dir().to_path_buf(),
        };
        let followed = self.root.follow(interpreter).ok_or_else(|| problem("is not present"))?;
        let bytes = std::fs::read(self.root.on_disk(&followed.path)).map_err(|_| problem("is not present"))?;
        match ElfDeps::read(&bytes) {
            Some(deps) if deps.same_machine(&start.deps) => Ok(followed),
            _ => Err(problem("is for another machine")),
        }
    }

    /// Finds a library for the object at `loaded[index]`; returns where, its
    /// dependencies, and whether only a cache or `--library-path` led there.
    fn search(
        &self,
        name: &str,
        index: usize,
        loaded: &[Loaded],
        requester: &str,
    ) -> Result<(Place, ElfDeps, bool), ClosureError> {
        let main = &loaded[0].deps;
        let object = &loaded[index];
        let mut searched = Vec::new();
        let mut skipped = Vec::new();
        let mut try_place = |place: Place, searched: &mut Vec<String>| -> Option<ElfDeps> {
            let bytes = match &place {
                Place::InRoot(path) => std::fs::read(self.root.on_disk(path)),
                Place::Beside { host, .. } => std::fs::read(host),
            }
            .ok()?;
            match ElfDeps::read(&bytes) {
                Some(deps) if deps.same_machine(main) => Some(deps),
                Some(_) => {
                    skipped.push(place.describe(&self.root));
                    None
                }
                None => {
                    searched.push(format!("{} (not ELF)", place.describe(&self.root)));
                    None
                }
            }
        };
        if name.contains('/') {
            let place = Place::InRoot(name.to_owned());
            if let Some(deps) = try_place(place.clone(), &mut searched) {
                return Ok((place, deps, false));
            }
        } else {
            for (dir, via_cache) in self.directories(index, loaded) {
                searched.push(dir.describe(&self.root));
                let place = dir.join(name);
                if let Some(deps) = try_place(place.clone(), &mut searched) {
                    let outside_defaults = !matches!(&dir, Place::InRoot(d) if default_dirs(main).contains(d));
                    return Ok((place, deps, via_cache && outside_defaults));
                }
            }
            if !object.deps.nodeflib {
                let cached = self.cache.iter().filter(|e| e.name == name && e.hwcap == 0);
                for entry in cached {
                    let place = Place::InRoot(entry.path.clone());
                    if let Some(deps) = try_place(place.clone(), &mut searched) {
                        let dir = entry.path.rsplit_once('/').map_or("/", |(d, _)| d);
                        return Ok((place, deps, !default_dirs(main).iter().any(|d| d == dir)));
                    }
                }
                if !self.cache.is_empty() {
                    searched.push(format!(
                        "{} (/etc/ld.so.cache)",
                        self.root.on_disk("etc/ld.so.cache").display()
                    ));
                }
                let conf = if self.cache.is_empty() {
                    &self.conf_dirs[..]
                } else {
                    &[]
                };
                for dir in conf.iter().chain(&default_dirs(main)) {
                    searched.push(self.root.on_disk(dir).display().to_string());
                    let place = Place::InRoot(format!("{dir}/{name}"));
                    if let Some(deps) = try_place(place.clone(), &mut searched) {
                        return Ok((place, deps, !default_dirs(main).contains(dir)));
                    }
                }
            }
        }
        searched.dedup();
        Err(ClosureError::LibraryNotFound {
            name: name.to_owned(),
            needed_by: requester.to_owned(),
            searched,
            skipped,
            root: self.root.dir().to_path_buf(),
        })
    }

    /// The directories searched before the cache, with whether each came from
    /// `--library-path` (which the image's loader will not have).
    fn directories(&self, index: usize, loaded: &[Loaded]) -> Vec<(Place, bool)> {
        let object = &loaded[index];
        let mut dirs = Vec::new();
        if object.deps.runpath.is_empty() {
            let mut at = Some(index);
            while let Some(i) = at {
                let ancestor = &loaded[i];
                if ancestor.deps.runpath.is_empty() {
                    dirs.extend(ancestor.deps.rpath.iter().map(|d| (self.expand(d, ancestor), false)));
                }
                at = ancestor.loader;
            }
        }
        dirs.extend(self.library_path.iter().map(|d| (Place::InRoot(d.clone()), true)));
        dirs.extend(object.deps.runpath.iter().map(|d| (self.expand(d, object), false)));
        dirs
    }

    /// A search directory with `$ORIGIN`, `$LIB` and `$PLATFORM` expanded for `object`.
    fn expand(&self, dir: &str, object: &Loaded) -> Place {
        let deps = &object.deps;
        let lib = match triplet(deps) {
            Some(triplet) if self.root.on_disk(&format!("lib/{triplet}")).is_dir() => format!("lib/{triplet}"),
            _ if deps.wide && deps.machine == EM_X86_64 => "lib64".into(),
            _ => "lib".into(),
        };
        let platform = match deps.machine {
            EM_X86_64 => "x86_64",
            EM_386 => "i686",
            EM_AARCH64 => "aarch64",
            _ => "",
        };
        let dir = substitute(&substitute(dir, "LIB", &lib), "PLATFORM", platform);
        match dir.strip_prefix("$ORIGIN").or_else(|| dir.strip_prefix("${ORIGIN}")) {
            Some(rest) => {
                let origin = object.place.parent();
                let rest = rest.trim_start_matches('/');
                if rest.is_empty() { origin } else { origin.join(rest) }
            }
            None => Place::InRoot(dir),
        }
    }
}

/// `$NAME` and `${NAME}` replaced by `value`.
fn substitute(text: &str, name: &str, value: &str) -> String {
    text.replace(&format!("${{{name}}}"), value)
        .replace(&format!("${name}"), value)
}

/// The image path of a loaded object, for messages (the program's own for the first).
fn image_of(place: &Place, program: &str, index: usize) -> String {
    match (index, place) {
        (0, _) => program.to_owned(),
        (_, Place::InRoot(path)) => normalise(path),
        (_, Place::Beside { image, .. }) => image.clone(),
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Debian's multiarch triplet for a machine, where its libraries live.
fn triplet(deps: &ElfDeps) -> Option<&'static str> {
    Some(match (deps.machine, deps.wide) {
        (EM_X86_64, true) => "x86_64-linux-gnu",
        (EM_386, false) => "i386-linux-gnu",
        (EM_AARCH64, true) => "aarch64-linux-gnu",
        (EM_ARM, false) => "arm-linux-gnueabihf",
        (EM_RISCV, true) => "riscv64-linux-gnu",
        (EM_PPC64, true) => "powerpc64le-linux-gnu",
        (EM_S390, true) => "s390x-linux-gnu",
        _ => return None,
    })
}

/// The loader's built-in directories: Debian's multiarch ones, then the 64-bit
/// distributions' `lib64`, then `/lib` and `/usr/lib`. (glibc's legacy hwcap
/// subdirectories are not searched: Debian ships no libraries there.)
fn default_dirs(deps: &ElfDeps) -> Vec<String> {
    let mut dirs = Vec::new();
    if let Some(triplet) = triplet(deps) {
        dirs.extend([format!("/lib/{triplet}"), format!("/usr/lib/{triplet}")]);
    }
    if deps.wide {
        dirs.extend(["/lib64".to_owned(), "/usr/lib64".to_owned()]);
    }
    dirs.extend(["/lib".to_owned(), "/usr/lib".to_owned()]);
    dirs
}

/// The directories `/etc/ld.so.conf` lists, following `include` globs (relative to the
/// including file's directory); `hwcap` lines are ignored as ldconfig ignores them.
fn conf_dirs(root: &Root, conf: &str, depth: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(root.on_disk(conf)) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(pattern) = line.strip_prefix("include").filter(|_| depth < 8) {
            let pattern = pattern.trim();
            let pattern = if pattern.starts_with('/') {
                pattern.to_owned()
            } else {
                format!("{}/{pattern}", conf.rsplit_once('/').map_or("", |(d, _)| d))
            };
            let on_disk = root.on_disk(&pattern);
            let mut files: Vec<PathBuf> = glob::glob(&on_disk.to_string_lossy())
                .map(|paths| paths.flatten().collect())
                .unwrap_or_default();
            files.sort();
            for file in files {
                if let Ok(inside) = file.strip_prefix(root.dir()) {
                    dirs.extend(conf_dirs(root, &format!("/{}", inside.display()), depth + 1));
                }
            }
        } else if !line.is_empty() && !line.starts_with("hwcap") {
            dirs.push(line.trim_end_matches('/').to_owned());
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn following_keeps_every_link_and_stays_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(dir.path().join("usr/lib/libz.so.1.2"), b"z").unwrap();
        std::os::unix::fs::symlink("usr/lib", dir.path().join("lib")).unwrap();
        std::os::unix::fs::symlink("libz.so.1.2", dir.path().join("usr/lib/libz.so.1")).unwrap();
        std::os::unix::fs::symlink("/../../../lib", dir.path().join("up")).unwrap();
        let followed = root.follow("/lib/libz.so.1").unwrap();
        assert_eq!(followed.path, "usr/lib/libz.so.1.2");
        assert_eq!(
            followed.links,
            [
                ("lib".into(), "usr/lib".into()),
                ("usr/lib/libz.so.1".into(), "libz.so.1.2".into())
            ]
        );
        assert_eq!(root.follow("up/libz.so.1.2").unwrap().path, "usr/lib/libz.so.1.2");
        assert!(root.follow("/lib/missing").is_none());
    }

    #[test]
    fn conf_includes_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/ld.so.conf.d")).unwrap();
        std::fs::write(
            dir.path().join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n/opt/a # x\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/ld.so.conf.d/b.conf"),
            "# c\n/usr/local/lib/\nhwcap 0 x\n",
        )
        .unwrap();
        assert_eq!(
            conf_dirs(&Root::new(dir.path()), "/etc/ld.so.conf", 0),
            ["/usr/local/lib", "/opt/a"]
        );
    }

    #[test]
    fn origin_lib_and_platform_expand() {
        let loader = Loader::new(Root::new("/nonexistent"), Vec::new());
        let object = Loaded {
            place: Place::Beside {
                host: "/build/bin/app".into(),
                image: "app/bin/app".into(),
            },
            deps: ElfDeps::read(&std::fs::read("/proc/self/exe").unwrap()).unwrap(),
            loader: None,
        };
        assert_eq!(
            loader.expand("$ORIGIN/../lib", &object),
            Place::Beside {
                host: "/build/bin/../lib".into(),
                image: "app/lib".into()
            }
        );
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                loader.expand("/opt/${LIB}/$PLATFORM", &object),
                Place::InRoot("/opt/lib64/x86_64".into())
            );
        }
    }
}
