//! Audit bundles: a world's whole journal (entries, receipts, checkpoints, snapshots, blobs with
//! the components, the manifest of record and the public key in genesis) in one file, which
//! `verify`, `replay`, `log`, `receipts`, `checkpoint` and `prove` accept in place of a world.
//!
//! A bundle is a journal file of the same format with a `bundle` key in `meta`. Reading one
//! never changes it: the commands work on a private copy.

use crate::world::{WorldPaths, open_existing_journal};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};

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
        let scratch = tempfile::tempdir().context("cannot create a scratch directory to read the bundle")?;
        let paths = WorldPaths::new(scratch.path());
        std::fs::create_dir_all(paths.state())?;
        std::fs::copy(path, paths.journal()).with_context(|| format!("cannot read {}", path.display()))?;
        let journal = open_existing_journal(&paths)
            .with_context(|| format!("{} is neither a world directory nor an audit bundle", path.display()))?;
        if journal.bundle_description()?.is_none() {
            bail!(
                "{} is a journal file but not an audit bundle; make one with `agentos-host export <world> <file>`",
                path.display()
            );
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
        bail!("{} already exists; a bundle is written to a new file", file.display());
    }
    let journal = open_existing_journal(&WorldPaths::new(dir))?;
    let genesis = crate::world::genesis(&journal)?;
    let description = serde_json::json!({
        "world_id": hex::encode(genesis.world_id),
        "public_key": hex::encode(genesis.host_public_key),
        "entries": journal.len(),
        "exported_by": concat!("agentos-host ", env!("CARGO_PKG_VERSION")),
    })
    .to_string();
    let (entries, blobs) = journal
        .export(file, &description)
        .with_context(|| format!("cannot export {} to {}", dir.display(), file.display()))?;
    crate::private::restrict(file)?;
    let bytes = std::fs::metadata(file)?.len();
    Ok(ExportSummary { entries, blobs, bytes })
}
