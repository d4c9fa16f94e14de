//! What goes into a layer: paths in the image and what stands at each.

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
