//! Gathering a user's files from the host into layer entries, and the rules of
//! `speck pack` (which file runs, on which platform, and what cannot run in scratch).
//!
//! Reads the host; never writes. Host owners, times and names never reach an entry:
//! every entry is owned by root and the layer stamps one time on all of them.

pub mod closure;
pub mod executable;
pub mod kernel_elf;
pub mod ld_cache;
mod pack;
pub mod runtime;
pub mod sbom;
pub mod strip;
pub mod trace;

pub use pack::{Content, PackError, PackRequest, Packed, Why, pack};

use crate::layer::{Entry, EntryKind, PathError, image_path};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A `FILE[:PATH]` argument: a host file or directory and where it goes in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The host path.
    pub host: PathBuf,
    /// The path in the image; `/` + the host file name when not given.
    pub dest: Option<String>,
}

impl FromStr for Source {
    type Err = std::convert::Infallible;

    /// `./app` or `./app:/usr/bin/app`: the image path is what follows the last `:`, when
    /// it starts with `/` (so host paths containing `:` still work).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.rsplit_once(':') {
            Some((host, dest)) if dest.starts_with('/') && !host.is_empty() => Source {
                host: host.into(),
                dest: Some(dest.to_owned()),
            },
            _ => Source {
                host: text.into(),
                dest: None,
            },
        })
    }
}

/// A host file or tree that cannot be packed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The file is missing or unreadable.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The host path.
        path: String,
        /// Why (part of the message, so not also a `source`).
        cause: std::io::Error,
    },
    /// A device, socket or FIFO.
    #[error("{path} is a {kind}; speck packs regular files, directories and symlinks")]
    Special {
        /// The host path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A name that is not UTF-8 or cannot be an image path.
    #[error("{path}: {reason}")]
    Name {
        /// The host path.
        path: String,
        /// Why the name cannot be used.
        reason: String,
    },
}

impl From<(&Path, PathError)> for CollectError {
    fn from((path, error): (&Path, PathError)) -> Self {
        CollectError::Name {
            path: path.display().to_string(),
            reason: error.to_string(),
        }
    }
}

/// A file named directly on the command line (not found inside a directory).
#[derive(Clone, Debug)]
pub struct TopLevelFile {
    /// Where it is in the image.
    pub path: String,
    /// Where it came from.
    pub host: PathBuf,
}

/// Everything gathered from the sources.
#[derive(Clone, Debug, Default)]
pub struct Gathered {
    /// Layer entries, hard links already resolved.
    pub entries: Vec<Entry>,
    /// The files named directly, in argument order: entrypoint candidates.
    pub top_level: Vec<TopLevelFile>,
    /// The host file each file entry was read from, by image path.
    pub hosts: BTreeMap<String, PathBuf>,
}

/// Reads every source into entries. Top-level symlinks are followed (as `docker cp` and
/// `COPY` do); links inside directories are kept as links. Files that share an inode
/// become one file and hard links to it.
pub fn gather(sources: &[Source]) -> Result<Gathered, CollectError> {
    let mut top_level = Vec::new();
    let mut gatherer = Gatherer::default();
    for source in sources {
        let host = source.host.as_path();
        let meta = std::fs::metadata(host).map_err(|e| missing_source(host, e))?;
        let dest = match &source.dest {
            Some(dest) => dest.clone(),
            None => file_name(host)?,
        };
        let dest = image_path(&dest).map_err(|e| CollectError::from((host, e)))?;
        if meta.is_dir() {
            gatherer.walk_dir(host, &dest, &meta)?;
        } else {
            gatherer.add_file(host, &dest, &meta)?;
            top_level.push(TopLevelFile {
                path: dest,
                host: host.to_path_buf(),
            });
        }
    }
    let Gatherer {
        mut entries,
        inodes,
        hosts,
    } = gatherer;
    inodes.link(&mut entries);
    Ok(Gathered {
        entries,
        top_level,
        hosts,
    })
}

/// A source that cannot be read; when it reads as `FILE:PATH` with a relative PATH, the
/// cause says the path in the image must be absolute.
fn missing_source(host: &Path, cause: std::io::Error) -> CollectError {
    let text = host.to_string_lossy();
    match text.rsplit_once(':') {
        Some((file, dest)) if cause.kind() == std::io::ErrorKind::NotFound && Path::new(file).exists() => {
            let hint = format!("no such file; to put {file} in the image at a path, make it absolute: {file}:/{dest}");
            read_error(host, std::io::Error::new(cause.kind(), hint))
        }
        _ => read_error(host, cause),
    }
}

fn read_error(path: &Path, cause: std::io::Error) -> CollectError {
    CollectError::Read {
        path: path.display().to_string(),
        cause,
    }
}

fn utf8(path: &Path, part: &std::ffi::OsStr) -> Result<String, CollectError> {
    part.to_str().map(str::to_owned).ok_or_else(|| CollectError::Name {
        path: path.display().to_string(),
        reason: "the name is not UTF-8; rename it or give an image path as FILE:PATH".into(),
    })
}

fn file_name(path: &Path) -> Result<String, CollectError> {
    let canonical = std::fs::canonicalize(path).map_err(|e| read_error(path, e))?;
    match canonical.file_name() {
        Some(name) => utf8(path, name),
        None => Err(CollectError::Name {
            path: path.display().to_string(),
            reason: "it has no file name to use in the image; give one as FILE:/PATH".into(),
        }),
    }
}

/// Permission bits of a host file, with setuid/setgid/sticky.
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    meta.mode() & 0o7777
}

/// Entries read so far, and which of them share an inode.
#[derive(Default)]
struct Gatherer {
    entries: Vec<Entry>,
    inodes: Inodes,
    hosts: BTreeMap<String, PathBuf>,
}

impl Gatherer {
    fn add_file(&mut self, host: &Path, dest: &str, meta: &std::fs::Metadata) -> Result<(), CollectError> {
        let kind = meta.file_type();
        let special = if kind.is_block_device() || kind.is_char_device() {
            Some("device")
        } else if kind.is_fifo() {
            Some("FIFO")
        } else if kind.is_socket() {
            Some("socket")
        } else {
            None
        };
        if let Some(kind) = special {
            return Err(CollectError::Special {
                path: host.display().to_string(),
                kind,
            });
        }
        let bytes = std::fs::read(host).map_err(|e| read_error(host, e))?;
        if meta.nlink() > 1 {
            self.inodes.seen((meta.dev(), meta.ino()), dest);
        }
        self.hosts.insert(dest.to_owned(), host.to_path_buf());
        self.push(host, Entry::file(dest, mode_of(meta), bytes))
    }

    fn walk_dir(&mut self, host: &Path, dest: &str, meta: &std::fs::Metadata) -> Result<(), CollectError> {
        self.push(host, Entry::dir(dest, mode_of(meta)))?;
        let listing = std::fs::read_dir(host).map_err(|e| read_error(host, e))?;
        for child in listing {
            let child = child.map_err(|e| read_error(host, e))?;
            let child_host = child.path();
            let child_dest = format!("{dest}/{}", utf8(&child_host, &child.file_name())?);
            let child_meta = std::fs::symlink_metadata(&child_host).map_err(|e| read_error(&child_host, e))?;
            if child_meta.is_symlink() {
                let target = std::fs::read_link(&child_host).map_err(|e| read_error(&child_host, e))?;
                let target = utf8(&child_host, target.as_os_str())?;
                self.push(&child_host, Entry::symlink(&child_dest, &target))?;
            } else if child_meta.is_dir() {
                self.walk_dir(&child_host, &child_dest, &child_meta)?;
            } else {
                self.add_file(&child_host, &child_dest, &child_meta)?;
            }
        }
        Ok(())
    }

    fn push(&mut self, host: &Path, entry: Result<Entry, PathError>) -> Result<(), CollectError> {
        self.entries.push(entry.map_err(|e| CollectError::from((host, e)))?);
        Ok(())
    }
}

/// Files that share an inode, by (device, inode).
#[derive(Default)]
struct Inodes(BTreeMap<(u64, u64), Vec<String>>);

impl Inodes {
    fn seen(&mut self, inode: (u64, u64), dest: &str) {
        self.0.entry(inode).or_default().push(dest.to_owned());
    }

    /// Keeps the first path (in layer order) of each inode as the file and turns the
    /// others into hard links to it, as the tar must list a link after its target.
    fn link(self, entries: &mut [Entry]) {
        for mut paths in self.0.into_values().filter(|paths| paths.len() > 1) {
            paths.sort();
            let target = paths[0].clone();
            for entry in entries.iter_mut().filter(|e| paths[1..].contains(&e.path)) {
                entry.kind = EntryKind::Hardlink(target.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_split_at_the_last_colon_before_an_absolute_path() {
        let s: Source = "./app:/usr/bin/app".parse().unwrap();
        assert_eq!((s.host, s.dest), ("./app".into(), Some("/usr/bin/app".into())));
        let s: Source = "odd:name".parse().unwrap();
        assert_eq!((s.host, s.dest), ("odd:name".into(), None));
    }

    #[test]
    fn trees_keep_symlinks_and_turn_shared_inodes_into_hardlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a"), b"A").unwrap();
        std::fs::hard_link(root.join("sub/a"), root.join("b")).unwrap();
        std::os::unix::fs::symlink("sub/a", root.join("link")).unwrap();
        let gathered = gather(&[Source {
            host: root,
            dest: Some("/t".into()),
        }])
        .unwrap();
        let mut kinds: Vec<(String, EntryKind)> = gathered.entries.into_iter().map(|e| (e.path, e.kind)).collect();
        kinds.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            kinds,
            vec![
                ("t".into(), EntryKind::Dir),
                ("t/b".into(), EntryKind::File(b"A".to_vec().into())),
                ("t/link".into(), EntryKind::Symlink("sub/a".into())),
                ("t/sub".into(), EntryKind::Dir),
                ("t/sub/a".into(), EntryKind::Hardlink("t/b".into())),
            ]
        );
        assert!(gathered.top_level.is_empty());
    }
}
