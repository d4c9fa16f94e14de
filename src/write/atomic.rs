//! Placing outputs so that a destination only ever holds a whole result: everything is
//! written beside it under a temporary name, then renamed into place.
//!
//! Only regular files and directories are replaced that way. A destination that is a
//! device, FIFO or socket (`-o /dev/null`, `-o /dev/stdout`, a named pipe) is written in
//! place: renaming over it would replace the device node itself. A symlink is followed,
//! so the link stays and its target gets the new contents.

use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The directory a destination lives in (`.` for a bare file name).
fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The directory to stage a write to `dest` in: its own, which must exist.
fn staging_dir(dest: &Path) -> io::Result<PathBuf> {
    let parent = parent_of(dest);
    if parent.is_dir() {
        Ok(parent)
    } else {
        let reason = format!("its directory {} does not exist; create it first", parent.display());
        Err(io::Error::new(io::ErrorKind::NotFound, reason))
    }
}

/// A hidden temporary name beside the destination, created with the modes any new file or
/// directory gets (0666/0777 less the umask), not tempfile's private 0600/0700.
fn staging(mode: u32) -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(".speck-")
        .permissions(std::fs::Permissions::from_mode(mode));
    builder
}

/// tempfile's error for a name it could not create in `dir`, without the random name it
/// tried (which never exists for the user to look at). tempfile keeps the OS error only
/// in its text, as "ERROR at path NAME".
fn cannot_create_in(dir: &Path, error: io::Error) -> io::Error {
    let text = error.to_string();
    let cause = text.split(" at path ").next().unwrap_or(&text);
    io::Error::new(
        error.kind(),
        format!("cannot create a file in {}: {cause}", dir.display()),
    )
}

/// The path a write to `dest` should land on: `dest` itself, or the end of its symlinks.
fn through_symlinks(dest: &Path) -> io::Result<PathBuf> {
    let mut path = dest.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)?;
                path = parent_of(&path).join(target);
            }
            _ => return Ok(path),
        }
    }
    Err(io::Error::other("it is a loop of symbolic links"))
}

/// Writes `bytes` to `dest`, replacing an existing file only once the new one is complete.
pub fn replace_file(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let dest = &through_symlinks(dest)?;
    match std::fs::metadata(dest) {
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::other(
                "it is a directory; give a file name, or --format oci for a directory",
            ));
        }
        // A device, FIFO or socket: write through it, never replace the node.
        Ok(meta) if !meta.is_file() => return std::fs::OpenOptions::new().write(true).open(dest)?.write_all(bytes),
        _ => {}
    }
    let dir = staging_dir(dest)?;
    let mut file = staging(0o666)
        .tempfile_in(&dir)
        .map_err(|e| cannot_create_in(&dir, e))?;
    file.write_all(bytes)?;
    file.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Fills a new directory with `fill`, then puts it at `dest`.
///
/// An existing `dest` is replaced only if it is empty or an OCI layout (it has an
/// `oci-layout` file), so a mistyped path cannot delete unrelated files.
pub fn replace_dir(dest: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    let dest = &through_symlinks(dest)?;
    if dest.exists() {
        let replaceable = dest.is_dir() && (dest.join("oci-layout").is_file() || dest.read_dir()?.next().is_none());
        if !replaceable {
            return Err(io::Error::other(
                "it exists and is not an OCI layout or an empty directory; remove it or choose another path",
            ));
        }
    }
    let dir = staging_dir(dest)?;
    let staging = staging(0o777).tempdir_in(&dir).map_err(|e| cannot_create_in(&dir, e))?;
    fill(staging.path())?;
    if dest.exists() {
        // Swap: move the old layout aside, move the new one in, then delete the old one.
        let old = tempfile::Builder::new()
            .prefix(".speck-old-")
            .tempdir_in(&dir)
            .map_err(|e| cannot_create_in(&dir, e))?;
        std::fs::rename(dest, old.path().join("layout"))?;
        std::fs::rename(staging.keep(), dest)?;
        drop(old);
    } else {
        std::fs::rename(staging.keep(), dest)?;
    }
    Ok(())
}
