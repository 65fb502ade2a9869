//! Audit bundles: a world's whole journal (entries, receipts, checkpoints, snapshots, blobs with
//! the components, the manifest of record and the public key in genesis) in one file, which
//! `verify`, `replay`, `log`, `receipts`, `checkpoint` and `prove` accept in place of a world.
//!
//! A bundle is a journal file of the same format with a `bundle` key in `meta`. Reading one
//! never changes it: the commands work on a private copy.

use crate::world::{WorldError, WorldPaths, open_existing_journal};
use std::path::{Path, PathBuf};

/// Why a bundle cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    World(Box<WorldError>),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error(transparent)]
    Ledger(#[from] crate::journal::ledger::LedgerError),
    #[error(transparent)]
    Private(#[from] crate::private::PrivateError),
    #[error("cannot create a scratch directory to read the bundle")]
    Scratch(#[source] std::io::Error),
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is neither a world directory nor an audit bundle", path.display())]
    NotABundle { path: PathBuf, source: Box<WorldError> },
    #[error("{} is a journal file but not an audit bundle; make one with `agentos-host export <world> <file>`", path.display())]
    JournalNotBundle { path: PathBuf },
    #[error("{} already exists; a bundle is written to a new file", path.display())]
    Exists { path: PathBuf },
    #[error("cannot export {} to {}", world.display(), path.display())]
    Export {
        world: PathBuf,
        path: PathBuf,
        source: Box<crate::journal::JournalError>,
    },
    #[error("cannot read the size of {}", path.display())]
    Size { path: PathBuf, source: std::io::Error },
}

impl From<WorldError> for BundleError {
    fn from(error: WorldError) -> BundleError {
        BundleError::World(Box::new(error))
    }
}

type Result<T> = std::result::Result<T, BundleError>;

/// A world to read: a world directory, or a bundle unpacked into a scratch directory.
pub struct ReadTarget {
    root: PathBuf,
    /// Kept alive for as long as the copy of a bundle is read.
    _scratch: Option<tempfile::TempDir>,
}

impl ReadTarget {
    /// `path` is a world directory or a bundle file.
    pub fn resolve(path: &Path) -> Result<ReadTarget> {
        if !path.is_file() {
            return Ok(ReadTarget {
                root: path.to_path_buf(),
                _scratch: None,
            });
        }
        let scratch = tempfile::tempdir().map_err(BundleError::Scratch)?;
        let paths = WorldPaths::new(scratch.path());
        std::fs::create_dir_all(paths.state()).map_err(BundleError::Scratch)?;
        std::fs::copy(path, paths.journal()).map_err(|source| BundleError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let journal = open_existing_journal(&paths).map_err(|source| BundleError::NotABundle {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        if journal.bundle_description()?.is_none() {
            return Err(BundleError::JournalNotBundle {
                path: path.to_path_buf(),
            });
        }
        Ok(ReadTarget {
            root: scratch.path().to_path_buf(),
            _scratch: Some(scratch),
        })
    }

    /// The directory to read the world from.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// What `export` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    pub entries: u64,
    pub blobs: u64,
    pub bytes: u64,
}

/// Write the audit bundle of the world at `dir` to `file` (which must not exist).
pub fn export(dir: &Path, file: &Path) -> Result<ExportSummary> {
    if file.exists() {
        return Err(BundleError::Exists {
            path: file.to_path_buf(),
        });
    }
    let journal = open_existing_journal(&WorldPaths::new(dir))?;
    export_journal(&journal, dir, file)
}

/// [`export`] from a journal already open (a world a server holds); `dir` is named in errors.
pub fn export_journal(journal: &crate::journal::Journal, dir: &Path, file: &Path) -> Result<ExportSummary> {
    if file.exists() {
        return Err(BundleError::Exists {
            path: file.to_path_buf(),
        });
    }
    let genesis = crate::world::genesis(journal)?;
    let description = serde_json::json!({
        "world_id": hex::encode(genesis.world_id),
        "public_key": hex::encode(genesis.host_public_key),
        "entries": journal.len(),
        "exported_by": concat!("agentos-host ", env!("CARGO_PKG_VERSION")),
    })
    .to_string();
    let (entries, blobs) = journal
        .export(file, &description)
        .map_err(|source| BundleError::Export {
            world: dir.to_path_buf(),
            path: file.to_path_buf(),
            source: Box::new(source),
        })?;
    crate::private::restrict(file)?;
    let bytes = std::fs::metadata(file)
        .map_err(|source| BundleError::Size {
            path: file.to_path_buf(),
            source,
        })?
        .len();
    Ok(ExportSummary { entries, blobs, bytes })
}
