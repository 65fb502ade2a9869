//! The `fs` effect's adapter: cap-std directory handles under granted directories.
//!
//! Every operation opens the granted directory as a capability and resolves the relative path
//! inside it, so `..`, absolute paths and symlinks cannot escape it. A write replaces the file
//! whole (a temporary file beside it, renamed over it), so a reader — another agent's step
//! running beside this one, or a program outside — sees the old contents or the new, never half.

use super::{EffectFailure, EffectOutcome, EffectRequest, EffectResponse};
use crate::receipts::Usage;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest file a guest may read or write in one call.
pub const FILE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Write `contents` to `relative` under `root` whole: into a temporary file beside it, then
/// renamed over it.
fn write_whole(root: &Dir, relative: &Path, contents: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let Some(name) = relative.file_name() else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"));
    };
    let temporary = relative.with_file_name(format!(
        ".{}.{}-{}.agentos-write",
        name.to_string_lossy(),
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = root
        .write(&temporary, contents)
        .and_then(|()| root.rename(&temporary, root, relative));
    if written.is_err() {
        let _ = root.remove_file(&temporary);
    }
    written
}

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
        EffectRequest::FsWrite { contents, .. } => match write_whole(&root, relative, contents) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("notes")).unwrap();
        std::fs::write(dir.path().join("notes/a.txt"), "old contents, longer than the new").unwrap();
        let write = |contents: &[u8]| {
            let request = EffectRequest::FsWrite {
                path: "notes/a.txt".into(),
                contents: contents.to_vec(),
            };
            execute(&request, dir.path(), Path::new("notes/a.txt")).0
        };
        assert_eq!(write(b"new"), Ok(EffectResponse::Unit));
        assert_eq!(std::fs::read(dir.path().join("notes/a.txt")).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("notes"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.txt"]);
        // Into a directory that does not exist: an error, and nothing created.
        let request = EffectRequest::FsWrite {
            path: "missing/b.txt".into(),
            contents: b"x".to_vec(),
        };
        assert!(execute(&request, dir.path(), Path::new("missing/b.txt")).0.is_err());
        assert!(!dir.path().join("missing").exists());
    }

    #[test]
    fn a_reader_beside_a_writer_sees_the_old_file_or_the_new_never_part_of_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shared.bin");
        let fill = |byte: u8| vec![byte; 256 * 1024];
        std::fs::write(&file, fill(b'a')).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut reads = 0u32;
                while !done.load(Ordering::SeqCst) || reads == 0 {
                    let bytes = std::fs::read(&file).unwrap();
                    let whole = bytes.len() == 256 * 1024 && bytes.iter().all(|&b| b == bytes[0]);
                    assert!(whole, "a read saw {} bytes of a file being written", bytes.len());
                    reads += 1;
                }
            });
            for i in 0..200u32 {
                let request = EffectRequest::FsWrite {
                    path: "shared.bin".into(),
                    contents: fill(if i % 2 == 0 { b'b' } else { b'a' }),
                };
                assert_eq!(
                    execute(&request, dir.path(), Path::new("shared.bin")).0,
                    Ok(EffectResponse::Unit)
                );
            }
            done.store(true, Ordering::SeqCst);
            reader.join().unwrap();
        });
    }
}
