//! The inbox directory: how other processes hand events to a world that `run --follow` holds.
//!
//! A world's journal is open in one process at a time. When `send` finds the world held, it
//! writes the event to `<world>/.agentos/inbox/<nanos>-<pid>.event.json` (written to a temporary
//! name, then renamed, so a reader never sees half a file). `run --follow` polls the directory,
//! journals each event with source `inbox:<file name>`, commits, and only then deletes the
//! file; a file whose name is already journaled (the host stopped between the two) is deleted
//! without being journaled again. Events that do not validate move to `inbox/rejected/` with a
//! `.reason` file beside them. The directories are private (0700, never a planted link) and the
//! files 0600, created without following a link at their path.

use crate::private::PrivateError;
use std::path::{Path, PathBuf};

/// Why an inbox file cannot be written, listed, read or set aside.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Private(#[from] PrivateError),
    #[error("cannot write {}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} is not an inbox event", path.display())]
    NotAnEvent { path: PathBuf, source: serde_json::Error },
    #[error("cannot move {} aside", path.display())]
    Reject { path: PathBuf, source: std::io::Error },
}

type Result<T> = std::result::Result<T, InboxError>;

const SUFFIX: &str = ".event.json";

/// An event waiting in the inbox.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InboxEvent {
    pub agent: String,
    /// WAVE text, or JSON text when `json` is set.
    pub event: String,
    pub json: bool,
}

pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("inbox")
}

/// Leave an event for the process holding the world; returns the file written.
pub fn drop_event(state_dir: &Path, event: &InboxEvent) -> Result<PathBuf> {
    let inbox = dir(state_dir);
    crate::private::dir(state_dir)?;
    crate::private::dir(&inbox)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("{nanos:024}-{}{SUFFIX}", std::process::id());
    let temporary = inbox.join(format!(".{name}.tmp"));
    let target = inbox.join(&name);
    crate::private::write_new(
        &temporary,
        &serde_json::to_vec(event).expect("an inbox event always encodes"),
    )?;
    std::fs::rename(&temporary, &target).map_err(|source| InboxError::Write {
        path: target.clone(),
        source,
    })?;
    Ok(target)
}

/// Inbox files, oldest first.
pub fn pending(state_dir: &Path) -> Result<Vec<PathBuf>> {
    let inbox = dir(state_dir);
    if !inbox.exists() {
        return Ok(Vec::new());
    }
    crate::private::dir(&inbox)?;
    let Ok(entries) = std::fs::read_dir(&inbox) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The file's name, as recorded in the ingress source.
pub fn source_of(file: &Path) -> String {
    format!(
        "inbox:{}",
        file.file_name().and_then(|n| n.to_str()).unwrap_or_default()
    )
}

pub fn read(file: &Path) -> Result<InboxEvent> {
    // A planted link would have the host journal a file of someone else's choosing.
    crate::private::file(file)?;
    let bytes = crate::private::read(file).map_err(|source| InboxError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| InboxError::NotAnEvent {
        path: file.to_path_buf(),
        source,
    })
}

/// Move a file that cannot be journaled aside, with the reason next to it.
pub fn reject(file: &Path, reason: &str) -> Result<PathBuf> {
    let rejected = file.parent().unwrap_or(Path::new(".")).join("rejected");
    crate::private::dir(&rejected)?;
    let target = rejected.join(file.file_name().unwrap_or_default());
    std::fs::rename(file, &target).map_err(|source| InboxError::Reject {
        path: file.to_path_buf(),
        source,
    })?;
    let reason_file = target.with_extension("reason");
    let _ = std::fs::remove_file(&reason_file);
    crate::private::write_new(&reason_file, reason.as_bytes())?;
    Ok(target)
}
