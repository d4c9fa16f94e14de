//! Placing outputs so that a destination only ever holds a whole result: everything is
//! written beside it under a temporary name, then renamed into place.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The directory a destination lives in (`.` for a bare file name).
fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
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

/// Writes `bytes` to `dest`, replacing an existing file only once the new one is complete.
pub fn replace_file(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    if dest.is_dir() {
        return Err(io::Error::other(
            "it is a directory; give a file name, or --format oci for a directory",
        ));
    }
    let mut file = staging(0o666).tempfile_in(parent_of(dest))?;
    io::Write::write_all(&mut file, bytes)?;
    file.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Fills a new directory with `fill`, then puts it at `dest`.
///
/// An existing `dest` is replaced only if it is empty or an OCI layout (it has an
/// `oci-layout` file), so a mistyped path cannot delete unrelated files.
pub fn replace_dir(dest: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    if dest.exists() {
        let replaceable = dest.is_dir() && (dest.join("oci-layout").is_file() || dest.read_dir()?.next().is_none());
        if !replaceable {
            return Err(io::Error::other(
                "it exists and is not an OCI layout or an empty directory; remove it or choose another path",
            ));
        }
    }
    let staging = staging(0o777).tempdir_in(parent_of(dest))?;
    fill(staging.path())?;
    if dest.exists() {
        // Swap: move the old layout aside, move the new one in, then delete the old one.
        let old = tempfile::Builder::new()
            .prefix(".speck-old-")
            .tempdir_in(parent_of(dest))?;
        std::fs::rename(dest, old.path().join("layout"))?;
        std::fs::rename(staging.keep(), dest)?;
        drop(old);
    } else {
        std::fs::rename(staging.keep(), dest)?;
    }
    Ok(())
}
