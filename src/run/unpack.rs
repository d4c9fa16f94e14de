//! Applying an image's layers to a directory as an engine does (whiteouts, opaque
//! directories, hard links, symlinks, later entries replacing earlier ones), without ever
//! writing outside that directory.
//!
//! Owns the containment rules; knows nothing about namespaces or processes.
//!
//! Every path is resolved by the kernel with `openat2(RESOLVE_IN_ROOT)`: `..` and
//! absolute symlinks stop at the target directory, as they do for the container that
//! later sees it, and nothing that races with the unpack can lead out. Names are
//! checked before that: a name whose `..` climbs above the root, a NUL, a name over
//! `PATH_MAX`, or a whiteout of `.`/`..` refuses the image. Device nodes are made only
//! where the kernel allows it (real root), otherwise skipped with a note; sizes and entry
//! counts are bounded; each layer's tar must hash to its `diff_id`.

use crate::digest::Digest;
use crate::image::Image;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag, fchmod, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use std::io::Read as _;
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::path::Path;

/// Linux's `PATH_MAX`: no name that long can be created.
const PATH_MAX: usize = 4096;
/// The prefix of a whiteout name.
const WHITEOUT: &str = ".wh.";
/// The name that makes its directory opaque.
const OPAQUE: &str = ".wh..wh..opq";

/// How much an image may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// File bytes written, over all layers.
    pub bytes: u64,
    /// Entries, over all layers.
    pub entries: u64,
}

impl Default for Limits {
    /// 16 GiB and a million entries: far beyond any image speck makes, small enough to
    /// stop a layer that claims endless data.
    fn default() -> Self {
        Self {
            bytes: 16 << 30,
            entries: 1 << 20,
        }
    }
}

/// What an unpack did not do as the layers said, with the reason (contained, skipped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// One line per entry that was contained or skipped.
    pub notes: Vec<String>,
    /// Whether owners were kept (false when this user cannot give files away).
    pub owners_kept: bool,
}

/// An image that cannot be unpacked: which layer, which entry, and why.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A layer whose bytes are not what the config says.
    #[error("layer {layer}: {reason}")]
    Layer {
        /// 1-based, bottom first.
        layer: usize,
        /// What is wrong.
        reason: String,
    },
    /// An entry that is refused.
    #[error("layer {layer}: entry {name:?}: {reason}")]
    Entry {
        /// 1-based, bottom first.
        layer: usize,
        /// The name as the tar has it (lossy UTF-8, cut at 200 characters).
        name: String,
        /// What is wrong and, where it helps, what to do.
        reason: String,
    },
    /// A limit was passed.
    #[error("the image unpacks to more than {0}: refusing to go on")]
    Limit(String),
    /// The target directory cannot be used.
    #[error("cannot unpack into {path}: {source}")]
    Target {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Unpacks every layer of `image`, bottom first, into `target` (an existing directory,
/// normally empty). Owners are kept when the process may give files away.
pub fn unpack(image: &Image, target: &Path, limits: &Limits) -> Result<Unpacked, UnpackError> {
    let mut applier = Applier::new(target, limits)?;
    for (index, layer) in image.layers().iter().enumerate() {
        applier.layer = index + 1;
        let layer_error = |reason: String| UnpackError::Layer {
            layer: index + 1,
            reason,
        };
        let tar = layer.tar(limits.bytes).map_err(|e| layer_error(e.to_string()))?;
        let actual = Digest::of(&tar);
        if actual != layer.diff_id() {
            return Err(layer_error(format!(
                "its tar hashes to {actual}, not the diff_id {}",
                layer.diff_id()
            )));
        }
        applier.apply(&tar)?;
    }
    applier.finish()
}

/// Unpacks one layer's tar bytes into `target`: the rules alone, with no digest to
/// check (for tests and fuzzing).
pub fn apply_tar(tar: &[u8], target: &Path, limits: &Limits) -> Result<Unpacked, UnpackError> {
    let mut applier = Applier::new(target, limits)?;
    applier.apply(tar)?;
    applier.finish()
}

/// The state of one unpack: the root, what has been written, what was noted.
struct Applier {
    root: OwnedFd,
    limits: Limits,
    bytes: u64,
    entries: u64,
    layer: usize,
    unpacked: Unpacked,
    /// Directory modes, set once everything is written (a 0555 directory would refuse
    /// its own files to a process without `CAP_DAC_OVERRIDE`).
    modes: std::collections::BTreeMap<String, Mode>,
}

/// A member's name, checked and split into components below the root.
struct Name {
    /// As the tar has it, for messages.
    shown: String,
    /// Components, none empty, `.` or `..`.
    parts: Vec<String>,
}

impl Name {
    fn parent(&self) -> String {
        self.parts[..self.parts.len() - 1].join("/")
    }

    fn last(&self) -> &str {
        self.parts.last().map_or("", String::as_str)
    }
}

impl Applier {
    fn new(target: &Path, limits: &Limits) -> Result<Self, UnpackError> {
        let root = open_target(target).map_err(|source| UnpackError::Target {
            path: target.display().to_string(),
            source,
        })?;
        Ok(Self {
            root,
            limits: *limits,
            bytes: 0,
            entries: 0,
            layer: 1,
            unpacked: Unpacked {
                owners_kept: true,
                ..Unpacked::default()
            },
            modes: Default::default(),
        })
    }

    /// Sets the directory modes, deepest first, on what is still a directory.
    fn finish(self) -> Result<Unpacked, UnpackError> {
        for (path, mode) in self.modes.iter().rev() {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
            if let Ok(directory) = self.open(path, flags) {
                fchmod(&directory, *mode).map_err(|e| self.refuse(path, e.desc()))?;
            }
        }
        Ok(self.unpacked)
    }

    /// Applies one layer: its whiteouts first (they only hide what lower layers made, and
    /// a tar may list them after the same layer's new files), then everything else.
    fn apply(&mut self, tar: &[u8]) -> Result<(), UnpackError> {
        for whiteouts in [true, false] {
            let mut archive = crate::layer::tar::reader(tar);
            let members = archive.entries().map_err(|e| self.layer_error(e))?;
            let mut previous: Option<String> = None;
            for member in members {
                let member = member.map_err(|e| match &previous {
                    // Reading the next header fails when this one's data is cut short.
                    Some(name) => self.refuse(
                        name,
                        format!("the layer ends inside its data or has no valid header after it ({e})"),
                    ),
                    None => self.layer_error(e),
                })?;
                previous = Some(String::from_utf8_lossy(&member.path_bytes()).into_owned());
                self.member(member, whiteouts)?;
            }
        }
        Ok(())
    }

    fn layer_error(&self, error: std::io::Error) -> UnpackError {
        UnpackError::Layer {
            layer: self.layer,
            reason: format!("not a readable tar: {error}"),
        }
    }

    fn refuse(&self, shown: &str, reason: impl Into<String>) -> UnpackError {
        UnpackError::Entry {
            layer: self.layer,
            name: shown.chars().take(200).collect(),
            reason: reason.into(),
        }
    }

    fn note(&mut self, note: String) {
        self.unpacked.notes.push(format!("layer {}: {note}", self.layer));
    }

    fn member(&mut self, mut member: ::tar::Entry<'_, impl std::io::Read>, whiteouts: bool) -> Result<(), UnpackError> {
        use ::tar::EntryType;
        let raw = member.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = member.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let Some(name) = self.name(&raw)? else {
            return Ok(()); // the root directory itself
        };
        let is_whiteout = name.last().starts_with(WHITEOUT);
        if is_whiteout != whiteouts {
            return Ok(());
        }
        if is_whiteout {
            return self.whiteout(&name);
        }
        self.entries += 1;
        if self.entries > self.limits.entries {
            return Err(UnpackError::Limit(format!("{} entries", self.limits.entries)));
        }
        let header = member.header();
        let mode = Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777);
        let owner = (header.uid().unwrap_or(0) as u32, header.gid().unwrap_or(0) as u32);
        let link = member.link_name_bytes().map(|l| l.into_owned());
        let parent = self.parent(&name)?;
        let last = name.last().to_owned();
        if kind != EntryType::Directory {
            self.clear(&parent, &last, &shown)?;
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // A member cut short already failed the whiteout pass, which skips its data.
                self.file(&parent, &last, &name.shown, &mut member, mode, owner)
            }
            EntryType::Directory => {
                self.directory(&parent, &last, &name.shown, owner)?;
                self.modes.insert(name.parts.join("/"), mode);
                Ok(())
            }
            EntryType::Symlink => {
                let target = link.ok_or_else(|| self.refuse(&shown, "a symlink without a target"))?;
                self.check_bytes(&shown, &target)?;
                symlinkat(target.as_slice(), &parent, last.as_str()).map_err(|e| self.refuse(&shown, e.desc()))?;
                self.chown_link(&parent, &last, owner);
                Ok(())
            }
            EntryType::Link => {
                let target = link.ok_or_else(|| self.refuse(&shown, "a hard link without a target"))?;
                self.hardlink(&parent, &last, &shown, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (major, minor) = (
                    member.header().device_major().ok().flatten().unwrap_or(0),
                    member.header().device_minor().ok().flatten().unwrap_or(0),
                );
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let device = nix::sys::stat::makedev(major.into(), minor.into());
                match mknodat(&parent, last.as_str(), sflag, mode, device) {
                    Ok(()) => {
                        self.chown_link(&parent, &last, owner);
                        Ok(())
                    }
                    Err(Errno::EPERM) => {
                        self.note(format!(
                            "device node /{} skipped: not permitted here",
                            name.parts.join("/")
                        ));
                        Ok(())
                    }
                    Err(e) => Err(self.refuse(&shown, e.desc())),
                }
            }
            other => {
                self.note(format!(
                    "/{} skipped: tar entry type {other:?} is not unpacked",
                    name.parts.join("/")
                ));
                Ok(())
            }
        }
    }

    /// Checks a member name and splits it. `None` for the root itself.
    fn name(&mut self, raw: &[u8]) -> Result<Option<Name>, UnpackError> {
        let shown = String::from_utf8_lossy(raw).into_owned();
        self.check_bytes(&shown, raw)?;
        let text = std::str::from_utf8(raw)
            .map_err(|_| self.refuse(&shown, "the name is not UTF-8; speck unpacks UTF-8 names only"))?;
        if text.starts_with('/') {
            self.note(format!("absolute name {text:?} unpacked below the root, as engines do"));
        }
        let (parts, climbed_out) = parts_of(text);
        if climbed_out {
            return Err(self.refuse(&shown, "its '..' leads outside the image root"));
        }
        Ok((!parts.is_empty()).then_some(Name { shown, parts }))
    }

    /// A name or link target must hold no NUL and fit in `PATH_MAX`.
    fn check_bytes(&self, shown: &str, bytes: &[u8]) -> Result<(), UnpackError> {
        if bytes.contains(&0) {
            return Err(self.refuse(shown, "it contains a NUL byte"));
        }
        if bytes.len() >= PATH_MAX {
            return Err(self.refuse(
                shown,
                format!(
                    "it is {} bytes long; Linux paths are shorter than {PATH_MAX}",
                    bytes.len()
                ),
            ));
        }
        Ok(())
    }

    fn open(&self, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
        open_in_root(&self.root, path, flags)
    }

    /// The directory that will hold `name`, made with its missing parents (0755, root,
    /// as engines make implied directories). Notes a path that only stays inside the
    /// root because the kernel keeps it there.
    fn parent(&mut self, name: &Name) -> Result<OwnedFd, UnpackError> {
        let parent = name.parent();
        let beneath = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS;
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(beneath);
        if !parent.is_empty() && matches!(openat2(&self.root, parent.as_str(), how), Err(Errno::EXDEV)) {
            self.note(format!(
                "/{} goes through a symlink that points outside the root: written inside the root, where the container sees it",
                name.parts.join("/")
            ));
        }
        make_dirs(&self.root, &name.parts[..name.parts.len() - 1])
            .map_err(|(made, e)| self.refuse(&name.shown, format!("its directory /{made}: {}", e.desc())))
    }

    /// Removes what stands at `parent/last`, as a later tar member replaces it.
    fn clear(&self, parent: &OwnedFd, last: &str, shown: &str) -> Result<(), UnpackError> {
        match unlinkat(parent, last, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR | Errno::EPERM) => {
                remove_tree(parent, last).map_err(|e| self.refuse(shown, format!("cannot replace the directory: {e}")))
            }
            Err(e) => Err(self.refuse(shown, e.desc())),
        }
    }

    fn file(
        &mut self,
        parent: &OwnedFd,
        last: &str,
        shown: &str,
        data: &mut impl std::io::Read,
        mode: Mode,
        owner: (u32, u32),
    ) -> Result<(), UnpackError> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(parent, last, flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| self.refuse(shown, e.desc()))?;
        let mut file = std::fs::File::from(fd);
        let left = self.limits.bytes.saturating_sub(self.bytes);
        let copied = std::io::copy(&mut data.take(left + 1), &mut file)
            .map_err(|e| self.refuse(shown, format!("its data cannot be read: {e}")))?;
        self.bytes += copied;
        if copied > left {
            return Err(UnpackError::Limit(format!("{} bytes", self.limits.bytes)));
        }
        self.own(file.as_fd(), owner);
        fchmod(&file, mode).map_err(|e| self.refuse(shown, e.desc()))
    }

    fn directory(&mut self, parent: &OwnedFd, last: &str, shown: &str, owner: (u32, u32)) -> Result<(), UnpackError> {
        let open = || {
            nix::fcntl::openat(
                parent,
                last,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        };
        let directory = match open() {
            Ok(directory) => directory,
            Err(_) => {
                self.clear(parent, last, shown)?;
                mkdirat(parent, last, Mode::from_bits_truncate(0o700)).map_err(|e| self.refuse(shown, e.desc()))?;
                open().map_err(|e| self.refuse(shown, e.desc()))?
            }
        };
        self.own(directory.as_fd(), owner);
        Ok(())
    }

    fn hardlink(&mut self, parent: &OwnedFd, last: &str, shown: &str, target: &[u8]) -> Result<(), UnpackError> {
        let Some(target) = self.name(target)? else {
            return Err(self.refuse(shown, "a hard link to the root directory"));
        };
        let target_parent = self
            .open(&target.parent(), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(|_| {
                self.refuse(
                    shown,
                    format!("a hard link to {}, which is not in the image", target.shown),
                )
            })?;
        linkat(
            &target_parent,
            target.last(),
            parent,
            last,
            nix::fcntl::AtFlags::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOENT => self.refuse(
                shown,
                format!("a hard link to {}, which is not in the image", target.shown),
            ),
            e => self.refuse(shown, format!("cannot link to {}: {}", target.shown, e.desc())),
        })
    }

    /// `.wh.NAME` removes NAME of lower layers; `.wh..wh..opq` empties its directory.
    fn whiteout(&mut self, name: &Name) -> Result<(), UnpackError> {
        let hidden = &name.last()[WHITEOUT.len()..];
        if matches!(hidden, "" | "." | "..") && name.last() != OPAQUE {
            return Err(self.refuse(&name.shown, "a whiteout must name a file, not '.' or '..'"));
        }
        let directory = match self.open(&name.parent(), OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(directory) => directory,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(self.refuse(&name.shown, e.desc())),
        };
        let result = if name.last() == OPAQUE {
            empty_directory(&directory)
        } else {
            match unlinkat(&directory, hidden, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(_) => remove_tree(&directory, hidden),
            }
        };
        result.map_err(|e| self.refuse(&name.shown, format!("cannot remove what it hides: {e}")))
    }

    /// Gives a file its owner; notes once when this process cannot.
    fn own(&mut self, fd: std::os::fd::BorrowedFd<'_>, (uid, gid): (u32, u32)) {
        if self.unpacked.owners_kept && fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).is_err() {
            self.owners_lost(uid);
        }
    }

    fn chown_link(&mut self, parent: &OwnedFd, last: &str, (uid, gid): (u32, u32)) {
        let flag = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        if self.unpacked.owners_kept
            && fchownat(parent, last, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)), flag).is_err()
        {
            self.owners_lost(uid);
        }
    }

    fn owners_lost(&mut self, uid: u32) {
        self.unpacked.owners_kept = false;
        self.note(format!(
            "owners not kept (uid {uid} cannot be given here): every file belongs to the running user"
        ));
    }
}

/// The unpack target, as the directory every path is resolved from.
fn open_target(target: &Path) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC;
    Ok(nix::fcntl::open(target, flags, Mode::empty())?)
}

/// Opens `path` below `root` as the container will see it: symlinks and `..` resolved
/// inside the root, so nothing leads out, even while something else changes the tree.
fn open_in_root(root: &impl AsFd, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let path = if path.is_empty() { "." } else { path };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS | ResolveFlag::RESOLVE_NO_XDEV);
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            result => return result,
        }
    }
}

/// Makes the directories `parts` below `root` that are missing (0755, as engines make
/// implied directories) and opens the last one; on failure, the path reached and why.
fn make_dirs(root: &impl AsFd, parts: &[String]) -> Result<OwnedFd, (String, Errno)> {
    let directory_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut made = String::new();
    for part in parts {
        let directory = open_in_root(root, &made, directory_flags).map_err(|e| (made.clone(), e))?;
        match mkdirat(&directory, part.as_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err((format!("{made}/{part}"), e)),
        }
        if !made.is_empty() {
            made.push('/');
        }
        made.push_str(part);
    }
    open_in_root(root, &made, directory_flags).map_err(|e| (made, e))
}

/// The parts of an absolute or relative path inside a root, and whether a `..` tried
/// to climb above it (it stops at the root).
fn parts_of(path: &str) -> (Vec<String>, bool) {
    let mut parts: Vec<String> = Vec::new();
    let mut climbed_out = false;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => climbed_out |= parts.pop().is_none(),
            part => parts.push(part.to_owned()),
        }
    }
    (parts, climbed_out)
}

/// Reads the file at `path` of the unpacked tree `target` as the container would see it
/// (symlinks resolved inside the tree).
pub fn read_file(target: &Path, path: &str) -> std::io::Result<Vec<u8>> {
    let root = open_target(target)?;
    let file = open_in_root(&root, &parts_of(path).0.join("/"), OFlag::O_RDONLY)?;
    let mut bytes = Vec::new();
    std::fs::File::from(file).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Makes the directory `path` (and its parents) in the unpacked tree `target`, inside
/// it whatever its symlinks say, and gives it `mode` if it is new.
pub fn make_dir(target: &Path, path: &str, mode: u32) -> std::io::Result<()> {
    let root = open_target(target)?;
    let (parts, _) = parts_of(path);
    let Some((last, parents)) = parts.split_last() else {
        return Ok(());
    };
    let parent = make_dirs(&root, parents).map_err(|(_, e)| std::io::Error::from(e))?;
    match mkdirat(&parent, last.as_str(), Mode::from_bits_truncate(mode)) {
        Ok(()) => {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let directory = nix::fcntl::openat(&parent, last.as_str(), flags, Mode::empty())?;
            Ok(fchmod(&directory, Mode::from_bits_truncate(mode))?)
        }
        Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` in `parent` and everything below it, never following a symlink.
fn remove_tree(parent: &OwnedFd, name: &str) -> std::io::Result<()> {
    // std's remove_dir_all opens each level with O_NOFOLLOW and unlinks relative to it.
    let path = format!("/proc/self/fd/{}/{name}", parent.as_raw_fd());
    match std::fs::remove_dir_all(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => std::fs::remove_file(&path),
        ok => ok,
    }
}

/// Removes everything inside `directory`, keeping it.
fn empty_directory(directory: &OwnedFd) -> std::io::Result<()> {
    let path = format!("/proc/self/fd/{}", directory.as_raw_fd());
    for child in std::fs::read_dir(&path)? {
        let name = child?.file_name();
        remove_tree(directory, &name.to_string_lossy())?;
    }
    Ok(())
}
