//! The worlds a server holds, as its handlers reach them: each world's service (to send
//! events, query its kernel, run governance on it), read-only views of its journal (to read
//! committed entries without holding up the world) and the count of durable entries announced
//! after each commit (to stream them).

use super::error::ApiError;
use agentos_runtime::journal::SharedJournal;
use agentos_runtime::service::Sender;
use axum::http::StatusCode;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// One world held by the server.
pub struct Hosted {
    pub name: String,
    pub root: PathBuf,
    pub world_id: [u8; 16],
    /// The host key of genesis (receipts name the key that signed them by id).
    pub genesis_key: [u8; 32],
    pub sender: Sender,
    pub journal: SharedJournal,
    pub committed: watch::Receiver<u64>,
}

impl Hosted {
    /// A read-only view of the world's committed journal: the lock is held only to take it,
    /// so what a handler reads does not hold up the world's appends and commits.
    pub fn reader(&self) -> agentos_runtime::journal::Journal {
        self.journal.lock().expect("journal lock").read_view()
    }
}

pub struct Shared {
    pub worlds: BTreeMap<String, Arc<Hosted>>,
    /// Turns `true` when the server starts to stop: live streams end.
    pub stopping: watch::Receiver<bool>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl AppState {
    /// The world named `name`, or a 404 listing the server's worlds.
    pub fn world(&self, name: &str) -> Result<Arc<Hosted>, ApiError> {
        self.0.worlds.get(name).cloned().ok_or_else(|| {
            ApiError::not_found(
                "unknown_world",
                format!(
                    "this server holds no world `{name}`; worlds: {}",
                    self.0.worlds.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}

/// Run blocking work (journal reads, a sender waiting for its answer) off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|panic| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("a request's work panicked: {panic}"),
        )
    })?
}
