//! What goes into a layer: paths in the image and what stands at each.

use std::collections::BTreeMap;
use std::sync::Arc;

/// One path in a layer and what stands there.
///
/// Entries carry no times and no host user names: a layer's single timestamp comes from
/// [`super::LayerOptions`], so nothing about the build machine leaks into the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the image, relative to `/`, with no `.`/`..` components (see [`image_path`]).
    pub path: String,
    /// What the path holds.
    pub kind: EntryKind,
    /// Permission bits, including setuid/setgid/sticky (`0o7777` at most).
    pub mode: u32,
    /// Owner user id inside the image.
    pub uid: u32,
    /// Owner group id inside the image.
    pub gid: u32,
}

/// What a layer path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file with these contents.
    File(Arc<[u8]>),
    /// A directory.
    Dir,
    /// A symbolic link to this target, stored as written.
    Symlink(String),
    /// A hard link to another entry's path (relative to `/`), which must come earlier.
    Hardlink(String),
}

impl Entry {
    /// A regular file owned by root.
    pub fn file(path: &str, mode: u32, contents: impl Into<Arc<[u8]>>) -> Result<Self, PathError> {
        Self::new(path, EntryKind::File(contents.into()), mode)
    }

    /// A directory owned by root.
    pub fn dir(path: &str, mode: u32) -> Result<Self, PathError> {
        Self::new(path, EntryKind::Dir, mode)
    }

    /// A symbolic link owned by root.
    pub fn symlink(path: &str, target: &str) -> Result<Self, PathError> {
        Self::new(path, EntryKind::Symlink(target.to_owned()), 0o777)
    }

    /// A hard link to the entry at `target`.
    pub fn hardlink(path: &str, target: &str) -> Result<Self, PathError> {
        Self::new(path, EntryKind::Hardlink(image_path(target)?), 0o644)
    }

    fn new(path: &str, kind: EntryKind, mode: u32) -> Result<Self, PathError> {
        Ok(Self {
            path: image_path(path)?,
            kind,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
        })
    }

    /// The size of the file contents, 0 for anything else.
    pub fn content_len(&self) -> u64 {
        match &self.kind {
            EntryKind::File(data) => data.len() as u64,
            _ => 0,
        }
    }
}

/// A path that cannot name anything inside an image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{path:?} is not a valid path inside an image: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// Normalises an image path: strips leading `/`, folds `//` and `.`, and refuses `..`,
/// NUL and the root itself, so that no entry can point outside the image.
pub fn image_path(path: &str) -> Result<String, PathError> {
    let refuse = |reason| PathError {
        path: path.to_owned(),
        reason,
    };
    if path.contains('\0') {
        return Err(refuse("it contains a NUL byte"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(refuse("it contains '..'")),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(refuse("it names the root directory"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_are_normalised() {
        assert_eq!(image_path("/usr//bin/./app").unwrap(), "usr/bin/app");
        assert_eq!(image_path("app").unwrap(), "app");
    }

    #[test]
    fn image_paths_cannot_escape_or_be_empty() {
        assert_eq!(image_path("/a/../b").unwrap_err().reason, "it contains '..'");
        assert_eq!(image_path("/").unwrap_err().reason, "it names the root directory");
        assert!(image_path("a\0b").is_err());
    }
}

/// Follows symlinks among `index`'s entries (never outside them) to the entry a path names,
/// as a container's filesystem would. `None` if nothing is there or links loop.
pub fn resolve(index: &BTreeMap<&str, &Entry>, path: &str) -> Option<String> {
    canonical(index, path).filter(|path| index.contains_key(path.as_str()))
}

/// Where `path` leads once every symlink among `index`'s entries on the way is followed,
/// whether or not anything is there yet (a hard link leads to its target). `None` if
/// links loop.
pub fn canonical(index: &BTreeMap<&str, &Entry>, path: &str) -> Option<String> {
    let walked = walk_links(path, |at, last| match index.get(at).map(|e| &e.kind) {
        Some(EntryKind::Symlink(target)) => Step::Symlink(target.clone()),
        Some(EntryKind::Hardlink(target)) if last => Step::Hardlink(target.clone()),
        _ => Step::Other,
    })?;
    Some(walked.path)
}

/// What stands at a path component, for [`walk_links`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A symlink with this target.
    Symlink(String),
    /// The last component is a hard link to this path: the walk ends there.
    Hardlink(String),
    /// A file or directory: go on.
    Other,
    /// Nothing: the walk fails.
    Missing,
}

/// A path walked component by component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walked {
    /// Where it leads (relative, no `.` or `..`).
    pub path: String,
    /// The symlinks passed, `(path, target)`, in order.
    pub links: Vec<(String, String)>,
}

/// Walks `path` as the kernel does, asking `at(prefix, is_last)` what stands at each
/// prefix: symlinks are followed (absolute ones from the top), `..` stops at the top.
/// `None` if a component is missing or links loop (more than 40, the kernel's limit).
pub fn walk_links(path: &str, mut at: impl FnMut(&str, bool) -> Step) -> Option<Walked> {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut current: Vec<String> = Vec::new();
    let mut links = Vec::new();
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
        match at(&joined, pending.is_empty()) {
            Step::Symlink(target) => {
                if links.len() == 40 {
                    return None;
                }
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_owned));
                links.push((joined, target));
            }
            Step::Hardlink(target) => return Some(Walked { path: target, links }),
            Step::Other => {}
            Step::Missing => return None,
        }
    }
    Some(Walked {
        path: current.join("/"),
        links,
    })
}

#[cfg(test)]
mod resolve_tests {
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
