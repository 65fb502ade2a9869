//! Why a world cannot be opened, run or changed: every error `world` returns, each naming the
//! file, entry, agent or plan it concerns. Errors of the layers below pass through unchanged,
//! so a caller can tell a journal held by another process from a bad event.

use crate::effects::caps::CapError;
use crate::effects::values::ValueError;
use crate::engine::RuntimeError;
use crate::inbox::InboxError;
use crate::journal::JournalError;
use crate::journal::ledger::LedgerError;
use crate::kernel::KernelError;
use crate::plans::PlanError;
use crate::private::PrivateError;
use crate::receipts::KeyError;
use agentos_air::AirError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Private(#[from] PrivateError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Engine(#[from] RuntimeError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Grants(#[from] CapError),
    #[error(transparent)]
    Manifest(#[from] AirError),
    #[error(transparent)]
    Inbox(#[from] InboxError),
    #[error("no readable {} (create a world with `agentos-host init {}`)", file.display(), root.display())]
    NoManifest {
        file: PathBuf,
        root: PathBuf,
        source: std::io::Error,
    },
    #[error("{} has no journal ({}); run the world first", root.display(), journal.display())]
    NoJournal { root: PathBuf, journal: PathBuf },
    #[error("journal {}: entry #{seq} is listed as a snapshot but is not one", journal.display())]
    ListedAsSnapshot { journal: PathBuf, seq: u64 },
    #[error("entry #{0} is missing")]
    MissingEntry(u64),
    #[error("entry #{0} is not a snapshot")]
    NotASnapshot(u64),
    #[error("snapshot #{seq}: its stepper state is missing or does not decode")]
    SnapshotState { seq: u64 },
    #[error("snapshot #{seq} lists entry #{entry} as unprocessed, but it is {kind}")]
    SnapshotPending { seq: u64, entry: u64, kind: &'static str },
    #[error("snapshot #{seq}")]
    Restore { seq: u64, source: KernelError },
    #[error(
        "{}: replaying the journal diverged at {divergence}; the world is not opened (run `agentos-host replay {}` \
         for the full report)",
        root.display(),
        root.display()
    )]
    Diverged { root: PathBuf, divergence: String },
    #[error("receipt of step #{seq} call #{index} has an unreadable outcome")]
    UnreadableOutcome { seq: u64, index: u32 },
    #[error("redoing the manifest change of entry #{seq}")]
    Redo { seq: u64, source: Box<WorldError> },
    /// No plan of that name; the message lists the world's plans.
    #[error("{0}")]
    UnknownPlan(String),
    #[error("plan `{plan}`: {reason}")]
    PlanInput { plan: String, reason: PlanError },
    #[error("plan `{plan}` is not triggered by events; start a run with `agentos-host plan run`")]
    NotEventTriggered { plan: String },
    #[error("plan `{plan}` takes its `{schema}` event in WAVE syntax, not JSON")]
    PlanEventNotWave { plan: String, schema: String },
    #[error("event does not match schema `{schema}` that triggers plan `{plan}`: {reason}")]
    PlanEvent {
        plan: String,
        schema: String,
        reason: ValueError,
    },
    #[error("no agent `{agent}` in {}; agents: {}", manifest.display(), known.join(", "))]
    UnknownAgent {
        agent: String,
        manifest: PathBuf,
        known: Vec<String>,
    },
    #[error("event does not match agent `{agent}`'s event type: {reason}\n  expected: {expected}")]
    AgentEvent {
        agent: String,
        reason: ValueError,
        expected: String,
    },
    #[error("the event is not valid JSON")]
    EventNotJson(#[source] serde_json::Error),
    #[error("cannot remove {}", path.display())]
    Remove { path: PathBuf, source: std::io::Error },
    #[error("{count} event(s) are waiting to be processed; run the world first (`agentos-host run {}`)", root.display())]
    EventsWaiting { count: usize, root: PathBuf },
    #[error("the manifest's plans make requests their grants refuse:\n  {}", refused.join("\n  "))]
    PlansRefused { refused: Vec<String> },
    #[error("the manifest of record lists no component for module `{module}`")]
    NoComponent { module: String },
    #[error("module `{module}` (sha256:{digest}) is missing from the journal")]
    MissingModule { module: String, digest: String },
    #[error(
        "agent `{agent}`: component {component} does not match its event schema `{schema}`:\n  {}\n  (regenerate \
         its WIT world with `agentos-host air wit` and rebuild it)",
        differences.join("\n  ")
    )]
    Nonconforming {
        agent: String,
        component: String,
        schema: String,
        differences: Vec<String>,
    },
    #[error("module `{module}`: component file {} cannot be read (declared in {})", path.display(), manifest.display())]
    UnreadableComponent {
        module: String,
        path: PathBuf,
        manifest: PathBuf,
        source: std::io::Error,
    },
    #[error("module `{module}`: {} has sha256:{actual}, but {} pins sha256:{pinned}", path.display(), manifest.display())]
    PinMismatch {
        module: String,
        path: PathBuf,
        actual: String,
        manifest: PathBuf,
        pinned: String,
    },
    #[error("cannot draw a world id: {0}")]
    WorldId(String),
    #[error(
        "{file} differs from the manifest in force (sha256:{record}; the file is sha256:{ours}); a world's \
         configuration changes through governance: `agentos-host propose {dir} --from {file}`, then approve and \
         apply it — or restore the file (`agentos-host history {dir}` shows the record)",
        file = manifest.display(),
        dir = root.display()
    )]
    DiffersFromRecord {
        manifest: PathBuf,
        root: PathBuf,
        record: String,
        ours: String,
    },
    #[error("cannot install {}", path.display())]
    Install { path: PathBuf, source: std::io::Error },
    #[error(
        "{} does not hold the host key in force for this world (public key {public_key}); restore the original key \
         file",
        path.display()
    )]
    NotTheKeyInForce { path: PathBuf, public_key: String },
}

impl WorldError {
    /// The journal error underneath, if that is what this is.
    pub fn journal(&self) -> Option<&JournalError> {
        match self {
            WorldError::Journal(error) => Some(error),
            WorldError::Ledger(LedgerError::Journal(error)) => Some(error),
            WorldError::Redo { source, .. } => source.journal(),
            _ => None,
        }
    }
}
