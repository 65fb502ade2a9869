//! The host's private files: everything under a world's `.agentos/` (the journal holds every
//! HTTP body, file read and model exchange the world ever made, and the host key signs for it),
//! audit bundles, and the compiled-component cache.
//!
//! Directories are made 0700 and files 0600, whatever the umask. A private directory that
//! already exists must be a real directory (not a symbolic link planted to send the host's
//! writes elsewhere) owned by the user the host runs as; files are created without following a
//! symbolic link at their path. This module does only that.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Why a private path cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is a symbolic link; the host keeps its private files only in a directory of its own (remove the link)"
    )]
    Link { path: String },
    #[error("{path} is not a directory")]
    NotADirectory { path: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error(
        "{path} is owned by user {owner}, not by the user this host runs as ({uid}); a world's private files are read \
         and written only by their owner (copy the world, or run as its owner)"
    )]
    Owner { path: String, owner: u32, uid: u32 },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PrivateError + '_ {
    move |source| PrivateError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The user this process runs as.
pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Make sure `dir` is a private directory of this user: create it 0700 (and its parents as
/// ordinary directories), or check an existing one and take its permissions back to 0700.
pub fn dir(dir: &Path) -> Result<(), PrivateError> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => {
            judge(&meta, dir, Kind::Directory)?;
            if meta.mode() & 0o777 != 0o700 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io_error(parent))?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_error(dir))
        }
        Err(e) => Err(io_error(dir)(e)),
    }
}

/// A private directory of this user's cache (`$XDG_CACHE_HOME`, or `~/.cache`):
/// `agentos/<levels…>`, each level 0700. `None` without a home directory, or when one of the
/// levels is not the user's own.
pub fn user_cache(levels: &[&str]) -> Option<std::path::PathBuf> {
    user_dir("XDG_CACHE_HOME", ".cache", levels)
}

/// The name of a world's private directory (journal, host key, inbox), in the world directory.
pub const STATE_DIR: &str = ".agentos";

/// A private directory of this user's state (`$XDG_STATE_HOME`, or `~/.local/state`), like
/// [`user_cache`]: for what the host must remember, not merely may reuse.
pub fn user_state(levels: &[&str]) -> Option<std::path::PathBuf> {
    user_dir("XDG_STATE_HOME", ".local/state", levels)
}

/// The host's directories under the user's cache and state (which may not exist yet).
pub fn user_roots() -> Vec<std::path::PathBuf> {
    [("XDG_CACHE_HOME", ".cache"), ("XDG_STATE_HOME", ".local/state")]
        .into_iter()
        .filter_map(|(variable, under_home)| Some(user_base(variable, under_home)?.join("agentos")))
        .collect()
}

fn user_base(variable: &str, under_home: &str) -> Option<std::path::PathBuf> {
    std::env::var_os(variable)
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| std::path::PathBuf::from(home).join(under_home)))
}

fn user_dir(variable: &str, under_home: &str, levels: &[&str]) -> Option<std::path::PathBuf> {
    let mut path = user_base(variable, under_home)?;
    for level in std::iter::once("agentos").chain(levels.iter().copied()) {
        path.push(level);
        dir(&path).ok()?;
    }
    Some(path)
}

/// Check a private file the host is about to open, if it exists: a regular file of this user,
/// not a symbolic link (a world directory from elsewhere could link its journal or key to
/// another world's, to have the host write or sign there).
pub fn file(path: &Path) -> Result<(), PrivateError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path)(e)),
    };
    judge(&meta, path, Kind::File)
}

enum Kind {
    Directory,
    File,
}

/// Whether `meta` (of `path`, not followed) is a `kind` of this user's, not a link.
fn judge(meta: &std::fs::Metadata, path: &Path, kind: Kind) -> Result<(), PrivateError> {
    let path = || path.display().to_string();
    if meta.file_type().is_symlink() {
        return Err(PrivateError::Link { path: path() });
    }
    match kind {
        Kind::Directory if !meta.is_dir() => return Err(PrivateError::NotADirectory { path: path() }),
        Kind::File if !meta.is_file() => return Err(PrivateError::NotAFile { path: path() }),
        _ => {}
    }
    if meta.uid() != uid() {
        return Err(PrivateError::Owner {
            path: path(),
            owner: meta.uid(),
            uid: uid(),
        });
    }
    Ok(())
}

/// Read a private file without following a link at its path.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_at_most(path, u64::MAX)
}

/// [`read`], refusing a file of more than `max_bytes` before reading it (and reading no more
/// than that if it grows meanwhile).
pub fn read_at_most(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    use io::Read as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    let size = file.metadata()?.len();
    if size > max_bytes {
        return Err(io::Error::other(format!(
            "{} holds {size} bytes, more than the {max_bytes} allowed",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(io::Error::other(format!(
            "{} grew past {max_bytes} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Open this user's regular file `path` to write over it in place (not through a link).
pub fn open_to_overwrite(path: &Path) -> Result<std::fs::File, PrivateError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io_error(path))?;
    // Judged by what was opened, not by what the path names now.
    judge(&file.metadata().map_err(io_error(path))?, path, Kind::File)?;
    Ok(file)
}

/// Replace `path` with `bytes` at once (written beside it, then renamed over it), 0600. Not
/// synced: after a power cut the file holds the old bytes or the new, for records that may lag
/// behind but must never be torn.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), PrivateError> {
    let mut beside = path.as_os_str().to_owned();
    beside.push(format!(".{}.new", std::process::id()));
    let beside = std::path::PathBuf::from(beside);
    let _ = std::fs::remove_file(&beside);
    create(&beside, bytes)?;
    std::fs::rename(&beside, path).map_err(io_error(path))
}

/// Create `path` (which must not exist, and is never followed if it is a link) with `bytes`,
/// readable by its owner only, and sync it.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), PrivateError> {
    create(path, bytes)?.sync_all().map_err(io_error(path))
}

/// Create `path`, 0600, not following a link and never over an existing file, holding `bytes`.
fn create(path: &Path, bytes: &[u8]) -> Result<std::fs::File, PrivateError> {
    use io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    Ok(file)
}

/// Take an existing file's permissions to 0600 (files another library created, like the
/// journal's database file), after checking it with [`file`].
pub fn restrict(path: &Path) -> Result<(), PrivateError> {
    file(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_directories_are_0700_and_links_are_refused() {
        let scratch = tempfile::tempdir().unwrap();
        let private = scratch.path().join("a/b/.agentos");
        dir(&private).unwrap();
        assert_eq!(std::fs::metadata(&private).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir(&private).unwrap();
        assert_eq!(std::fs::metadata(&private).unwrap().mode() & 0o777, 0o700);

        let planted = scratch.path().join("planted");
        std::os::unix::fs::symlink(scratch.path().join("elsewhere"), &planted).unwrap();
        assert!(matches!(dir(&planted), Err(PrivateError::Link { .. })));
        let file = private.join("f");
        write_new(&file, b"x").unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        assert!(
            write_new(&file, b"again").is_err(),
            "an existing file is never overwritten"
        );
        let link = private.join("link");
        std::os::unix::fs::symlink(scratch.path().join("target"), &link).unwrap();
        assert!(write_new(&link, b"x").is_err());
        assert!(
            !scratch.path().join("target").exists(),
            "the write followed a planted link"
        );
    }
}
