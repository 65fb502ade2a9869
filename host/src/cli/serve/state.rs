//! The worlds a server holds, as its handlers reach them: each world's service (to send
//! events, query its kernel, run governance on it), read-only views of its journal (to read
//! committed entries without holding up the world) and the count of durable entries announced
//! after each commit (to stream them).

use super::error::ApiError;
use agentos_runtime::governance::ledger::Ledger;
use agentos_runtime::journal::{Journal, SharedJournal};
use agentos_runtime::proofs::JournalLog;
use agentos_runtime::service::Sender;
use axum::http::StatusCode;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
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
    /// One shadow run at a time (see `shadow`).
    pub shadow_runs: Arc<tokio::sync::Semaphore>,
    /// The governance ledger and the proof logs, folded from the journal once and brought up
    /// to date with what was committed since at each request, not folded again each time.
    pub ledger: Mutex<Option<Arc<Ledger>>>,
    pub proof_log: Mutex<Option<Arc<JournalLog>>>,
}

impl Hosted {
    /// A read-only view of the world's committed journal: the lock is held only to take it,
    /// so what a handler reads does not hold up the world's appends and commits.
    pub fn reader(&self) -> Journal {
        self.journal.lock().expect("journal lock").read_view()
    }

    /// A view of the journal and the governance ledger of exactly that view.
    pub fn ledger_view(&self) -> Result<(Journal, Arc<Ledger>), ApiError> {
        let mut kept = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        // Taken under the cache's lock, so no later view has brought the cache past it.
        let journal = self.reader();
        let ledger = up_to_date(&mut kept, &journal, Ledger::read, Ledger::update)?;
        Ok((journal, ledger))
    }

    /// A view of the journal and the proof logs of exactly that view.
    pub fn proof_log_view(&self) -> Result<(Journal, Arc<JournalLog>), ApiError> {
        let mut kept = self.proof_log.lock().unwrap_or_else(PoisonError::into_inner);
        let journal = self.reader();
        let log = up_to_date(&mut kept, &journal, JournalLog::read, JournalLog::update)?;
        Ok((journal, log))
    }
}

/// `kept`, read from `journal` the first time and updated with its new entries after (a copy
/// is made only while another request still reads the old one); dropped on an error, so that a
/// failed update is never kept half done.
fn up_to_date<T: Clone, E: std::error::Error + 'static>(
    kept: &mut Option<Arc<T>>,
    journal: &Journal,
    read: impl FnOnce(&Journal) -> Result<T, E>,
    update: impl FnOnce(&mut T, &Journal) -> Result<(), E>,
) -> Result<Arc<T>, ApiError> {
    let folded = match kept.take() {
        Some(mut fold) => update(Arc::make_mut(&mut fold), journal).map(|()| fold),
        None => read(journal).map(Arc::new),
    };
    match folded {
        Ok(fold) => Ok(kept.insert(fold).clone()),
        Err(error) => Err(ApiError::internal(super::error::chain(&error))),
    }
}

pub struct Shared {
    pub worlds: BTreeMap<String, Arc<Hosted>>,
    /// Turns `true` when the server starts to stop: live streams end.
    pub stopping: watch::Receiver<bool>,
    /// A permit per live stream open (at most [`LIVE_STREAMS_MAX`]).
    pub live_streams: Arc<tokio::sync::Semaphore>,
    /// A permit per shadow run under way (see `shadow`).
    pub shadow_runs: Arc<tokio::sync::Semaphore>,
    /// A permit per bundle being written or sent (see `proofs`).
    pub bundles: Arc<tokio::sync::Semaphore>,
}

/// Live streams open at once, over all worlds: each holds a connection and a task.
pub const LIVE_STREAMS_MAX: usize = 256;

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
