//! Why a step of the governance loop is refused or fails: each error names the proposal, file,
//! approver or entry concerned; errors of the world and the journal pass through unchanged.

use super::ledger;
use std::path::PathBuf;

/// Why a step of the governance loop (propose, judge, shadow-run, apply) is refused or fails.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    #[error(transparent)]
    World(Box<crate::world::WorldError>),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Manifest(#[from] agentos_air::AirError),
    #[error(transparent)]
    Patch(#[from] agentos_air::PatchError),
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot create {}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// A patch that does not apply to the manifest in force (`what`: the file, or "the patch").
    #[error("{what} does not apply to the manifest in force")]
    DoesNotApply {
        what: String,
        source: Box<agentos_air::PatchError>,
    },
    #[error("the proposed change is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// A revert whose target names no single earlier configuration; the message says why.
    #[error("{0}")]
    RevertTarget(String),
    #[error("module `{module}`: cannot read its component {}: {reason}", path.display())]
    UnreadableComponent {
        module: String,
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("module `{module}`: {} has sha256:{actual}, but the proposed manifest pins sha256:{pinned}", path.display())]
    PinMismatch {
        module: String,
        path: PathBuf,
        actual: String,
        pinned: String,
    },
    #[error("the proposal changes nothing: it is the manifest in force (sha256:{in_force})")]
    ChangesNothing { in_force: String },
    #[error("the policy in force does not permit this change:\n  {}", denied.join("\n  "))]
    PolicyDenies { denied: Vec<String> },
    #[error(
        "key `{key_name}` (public key {public_key}) is not an approver in the policy in force; approvers: {approvers}"
    )]
    NotAnApprover {
        key_name: String,
        public_key: String,
        approvers: String,
    },
    #[error("entry #{seq}: {problem}")]
    Contradiction { seq: u64, problem: ledger::Contradiction },
    #[error("proposal #{proposal} cannot be judged: {reason}")]
    CannotJudge { proposal: u64, reason: String },
    #[error("agent `{agent}` cannot judge its own proposal #{proposal}")]
    OwnProposal { agent: String, proposal: u64 },
    #[error("{approver} already {verdict} proposal #{proposal} (entry #{at})")]
    AlreadyJudged {
        approver: String,
        verdict: &'static str,
        proposal: u64,
        at: u64,
    },
    #[error("proposal #{proposal} cannot be shadow-run: {reason}")]
    CannotShadow { proposal: u64, reason: String },
    #[error("no recorded steps under the manifest in force to re-run; give events with --events FILE")]
    NoWorkload,
    #[error("no agent `{agent}` in the world")]
    UnknownAgent { agent: String },
    #[error("event `{event}` for agent `{agent}`: {reason}")]
    BadEvent {
        event: String,
        agent: String,
        reason: crate::effects::values::ValueError,
    },
    #[error("proposal #{proposal} cannot be applied:\n  {}", blockers.join("\n  "))]
    NotReady { proposal: u64, blockers: Vec<String> },
    #[error("proposal #{proposal} was not applied, nothing changed (recorded as entry #{at}):\n  {reason}")]
    NotApplied { proposal: u64, at: u64, reason: String },
    #[error("the signed proposal cannot be journaled: {reason}")]
    NotAsDrafted { reason: String },
    #[error("`{0}` is not a proposal number")]
    NotAProposalNumber(String),
}

impl From<crate::world::WorldError> for GovernanceError {
    fn from(error: crate::world::WorldError) -> GovernanceError {
        GovernanceError::World(Box::new(error))
    }
}

impl GovernanceError {
    /// The journal error underneath, if that is what this is.
    pub fn journal(&self) -> Option<&crate::journal::JournalError> {
        match self {
            GovernanceError::Journal(error) | GovernanceError::Ledger(ledger::LedgerError::Journal(error)) => {
                Some(error)
            }
            GovernanceError::World(error) => error.journal(),
            _ => None,
        }
    }
}
