//! The `fs` effect's adapter: cap-std directory handles under granted directories.
//!
//! Every operation opens the granted directory as a capability and resolves the relative path
//! inside it, so `..`, absolute paths and symlinks cannot escape it.

use super::{EffectFailure, EffectOutcome, EffectRequest, EffectResponse};
use crate::receipts::Usage;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::path::Path;

/// Largest file a guest may read or write in one call.
pub const FILE_MAX_BYTES: u64 = 16 * 1024 * 1024;

fn open(dir: &Path) -> Result<Dir, EffectFailure> {
    Dir::open_ambient_dir(dir, ambient_authority())
        .map_err(|e| EffectFailure::Failed(format!("granted directory {} cannot be opened: {e}", dir.display())))
}

fn io_failure(path: &Path, e: std::io::Error) -> EffectFailure {
    EffectFailure::Failed(format!("{}: {e}", path.display()))
}

/// Run one fs request inside `dir` (the granted directory) at `relative`.
pub fn execute(request: &EffectRequest, dir: &Path, relative: &Path) -> (EffectOutcome, Usage) {
    let root = match open(dir) {
        Ok(root) => root,
        Err(failure) => return (Err(failure), Usage::default()),
    };
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    match request {
        EffectRequest::FsRead { .. } => {
            let result = root.metadata(relative).and_then(|meta| {
                if meta.len() > FILE_MAX_BYTES {
                    Err(std::io::Error::other(format!(
                        "file is {} bytes, over the limit of {FILE_MAX_BYTES}",
                        meta.len()
                    )))
                } else {
                    root.read(relative)
                }
            });
            match result {
                Ok(bytes) => {
                    let usage = Usage {
                        bytes_received: bytes.len() as u64,
                        ..Usage::default()
                    };
                    (Ok(EffectResponse::Bytes(bytes)), usage)
                }
                Err(e) => (Err(io_failure(relative, e)), Usage::default()),
            }
        }
        EffectRequest::FsWrite { contents, .. } => match root.write(relative, contents) {
            Ok(()) => (
                Ok(EffectResponse::Unit),
                Usage {
                    bytes_sent: contents.len() as u64,
                    ..Usage::default()
                },
            ),
            Err(e) => (Err(io_failure(relative, e)), Usage::default()),
        },
        EffectRequest::FsListDir { .. } => {
            let names = root.read_dir(relative).and_then(|entries| {
                let mut names = Vec::new();
                for entry in entries {
                    names.push(entry?.file_name().to_string_lossy().into_owned());
                }
                names.sort();
                Ok(names)
            });
            match names {
                Ok(names) => (Ok(EffectResponse::Names(names)), Usage::default()),
                Err(e) => (Err(io_failure(relative, e)), Usage::default()),
            }
        }
        other => unreachable!("fs adapter handed a {} request", other.effect()),
    }
}
