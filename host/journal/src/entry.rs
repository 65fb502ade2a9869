//! Journal entry types and the hash chain that links them.
//!
//! An entry is stored as `postcard(Entry)`. Its hash is
//! `sha256("agentos.entry.v1\0" || stored bytes)`; the next entry carries it as `prev_hash`, and
//! it is the entry's leaf in the journal log that every checkpoint signs. The chain alone shows
//! an entry was changed only to someone who did not recompute the hashes after it; the signed
//! checkpoint after it shows it to anyone without the host key.

pub mod governance;
pub mod plan;

use crate::receipts::SignedReceipt;
use crate::transparency::{SignedCheckpoint, SignedReceiptCheckpoint};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A sha256 digest.
pub type Digest = [u8; 32];

/// Version of the on-disk format this host writes. Version history (`docs/journal.md`):
/// 1 — first release; 2 — adds checkpoint entries and the transparency state in `meta`;
/// 3 — adds the governance entries (proposal, verdict, shadow report, manifest applied, apply
/// refused) and `manifest_changes` in `meta`; 4 — adds plan entries; 5 — a signed checkpoint of
/// the whole journal (every entry and the receipt log) ends every commit; 6 — adds the
/// `ServerStderr` output stream.
pub const FORMAT_VERSION: u32 = 6;

/// The first format whose every commit ends with a checkpoint of the whole journal.
pub const SIGNED_JOURNAL_FORMAT: u32 = 5;

/// The oldest format this host still opens (and upgrades in place on first open).
pub const OLDEST_READABLE_FORMAT: u32 = 1;

const ENTRY_DOMAIN: &[u8] = b"agentos.entry.v1\0";

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub prev_hash: Digest,
    pub body: EntryBody,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("journal entries always encode")
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// Hash of an entry's stored bytes, as chained into the next entry.
pub fn entry_hash(stored: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(ENTRY_DOMAIN);
    hasher.update(stored);
    hasher.finalize().into()
}

/// sha256 of arbitrary bytes.
pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EntryBody {
    Genesis(Genesis),
    Ingress(Ingress),
    EffectIntent(EffectIntent),
    EffectReceipt(ReceiptEntry),
    Output(Output),
    StepCommitted(StepCommitted),
    StepFailed(StepFailed),
    TimerScheduled(TimerScheduled),
    TimerCancelled(TimerCancelled),
    /// Formats 2 to 4: the host's signed statement of the receipt log's size and root at the
    /// end of a commit that added receipts.
    ReceiptCheckpoint(SignedReceiptCheckpoint),
    /// Every agent's state and the stepper's own, after a step: where reopening starts.
    Snapshot(Snapshot),
    /// The host key in force is replaced; every later signature is by the new key.
    KeyRotation(crate::rotation::KeyRotation),
    /// A signed proposal to change the manifest (governance).
    Proposal(crate::entry::governance::Proposal),
    /// A signed approval or rejection of a proposal.
    Verdict(crate::entry::governance::SignedVerdict),
    /// The report of a shadow run of a proposal.
    ShadowReport(crate::entry::governance::ShadowRecord),
    /// The manifest of record changes here (a proposal applied).
    ManifestApplied(crate::entry::governance::ManifestApplied),
    /// An approved proposal could not be applied; nothing changed.
    ApplyRefused(crate::entry::governance::ApplyRefused),
    /// Something happened to a plan run (started, a step finished or waits, ended).
    Plan(crate::entry::plan::PlanEntry),
    /// The host's signature over every entry before it and the receipt log: the last entry of
    /// every commit (format 5).
    Checkpoint(SignedCheckpoint),
    /// A world reopened after the host stopped during a step tries that step again: committed
    /// before the attempt, so a step that stops the host every time is set aside.
    StepAttempt(StepAttempt),
}

/// Another attempt at the step of `ingress`, after the host stopped during the last one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepAttempt {
    pub ingress: u64,
    /// 1 for the first attempt after a stop, and so on.
    pub attempt: u32,
}

impl EntryBody {
    /// Every entry kind, as [`EntryBody::kind`] names them.
    pub const KINDS: [&'static str; 20] = [
        "genesis",
        "ingress",
        "effect-intent",
        "effect-receipt",
        "output",
        "step-committed",
        "step-failed",
        "timer-scheduled",
        "timer-cancelled",
        "receipt-checkpoint",
        "snapshot",
        "key-rotation",
        "proposal",
        "verdict",
        "shadow-report",
        "manifest-applied",
        "apply-refused",
        "plan",
        "checkpoint",
        "step-attempt",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            EntryBody::Genesis(_) => "genesis",
            EntryBody::Ingress(_) => "ingress",
            EntryBody::EffectIntent(_) => "effect-intent",
            EntryBody::EffectReceipt(_) => "effect-receipt",
            EntryBody::Output(_) => "output",
            EntryBody::StepCommitted(_) => "step-committed",
            EntryBody::StepFailed(_) => "step-failed",
            EntryBody::TimerScheduled(_) => "timer-scheduled",
            EntryBody::TimerCancelled(_) => "timer-cancelled",
            EntryBody::ReceiptCheckpoint(_) => "receipt-checkpoint",
            EntryBody::Snapshot(_) => "snapshot",
            EntryBody::KeyRotation(_) => "key-rotation",
            EntryBody::Proposal(_) => "proposal",
            EntryBody::Verdict(_) => "verdict",
            EntryBody::ShadowReport(_) => "shadow-report",
            EntryBody::ManifestApplied(_) => "manifest-applied",
            EntryBody::ApplyRefused(_) => "apply-refused",
            EntryBody::Plan(_) => "plan",
            EntryBody::Checkpoint(_) => "checkpoint",
            EntryBody::StepAttempt(_) => "step-attempt",
        }
    }
}

/// The world's state after the step of ingress `after_step`: each agent's `lifecycle.snapshot()`
/// bytes and the stepper's state (pending timers, budget use, clock, unprocessed events), all in
/// the blob table by digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub after_step: u64,
    /// (agent, sha256 of its snapshot bytes), by agent name.
    pub agents: Vec<(String, Digest)>,
    /// sha256 of the stepper state blob (`postcard(KernelState)`).
    pub kernel: Digest,
}

/// The first entry: who this world is and what it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Genesis {
    pub format_version: u32,
    pub world_id: [u8; 16],
    /// The host's ed25519 public key; every receipt of this world verifies under it.
    pub host_public_key: [u8; 32],
    pub created_ms: u64,
    /// The manifest of record (AIR, JSON form) and its canonical digest.
    pub manifest_json: String,
    pub manifest_digest: Digest,
    /// sha256 of each module's component bytes (stored in the blob table), by module name.
    pub modules: Vec<(String, Digest)>,
}

/// An input to the world, appended before it is processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ingress {
    pub agent: String,
    /// The event in canonical WAVE text (as re-printed from the typed value).
    pub event: String,
    /// Logical time of the event: the guest's wall clock during its step.
    pub at_ms: u64,
    /// Where it came from (`cli`, `events-file`, ...).
    pub source: String,
}

/// A non-idempotent effect is about to run; made durable before it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectIntent {
    pub ingress: u64,
    pub effect_index: u32,
    pub effect: String,
    pub request_digest: Digest,
}

/// Bytes stored inline when small, in the blob table (by digest) when large.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    Inline(Vec<u8>),
    Blob(Digest),
}

/// A signed receipt plus the request and outcome it commits to (by digest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptEntry {
    pub receipt: SignedReceipt,
    pub request: Payload,
    pub outcome: Payload,
}

/// Where an output line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stream {
    /// The agent's stdout.
    Stdout,
    /// The agent's stderr.
    Stderr,
    /// What an MCP server wrote to its stderr during one of the step's tool calls, as
    /// `[server] line`: taken from the call's recorded outcome, so replay gives the same lines.
    ServerStderr,
}

/// What a step wrote to stdout or stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub ingress: u64,
    pub agent: String,
    pub stream: Stream,
    pub text: String,
}

/// A step finished; its state and outputs are part of the world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCommitted {
    pub ingress: u64,
    pub agent: String,
    /// sha256 of the agent's `lifecycle.snapshot()` after the step.
    pub state_digest: Digest,
    pub fuel_used: u64,
    pub effects: u32,
}

/// A committed step set a timer; it fires as an ingress with source `timer:<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerScheduled {
    pub ingress: u64,
    pub id: u64,
    pub agent: String,
    /// The event to deliver, canonical WAVE.
    pub event: String,
    /// Logical time at which it is due.
    pub due_ms: u64,
}

/// A committed step cancelled a pending timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerCancelled {
    pub ingress: u64,
    pub id: u64,
}

/// Why a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// `handle` returned an error.
    Error,
    /// The guest trapped (panic, unreachable, host-raised limit).
    Trap,
    /// The step used all its fuel.
    FuelExhausted,
    /// The instance tried to grow memory beyond its cap.
    MemoryExhausted,
    /// The event could not be delivered (instantiation failed, event no longer parses).
    Undeliverable,
    /// The step ran guest code past its agent's `step_deadline_ms`.
    DeadlineExceeded,
    /// The host stopped (crashed or was killed) during the step at each of its attempts; the
    /// event is set aside so the world can go on.
    Abandoned,
}

impl FailureKind {
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Error => "error",
            FailureKind::Trap => "trap",
            FailureKind::FuelExhausted => "fuel-exhausted",
            FailureKind::MemoryExhausted => "memory-exhausted",
            FailureKind::Undeliverable => "undeliverable",
            FailureKind::DeadlineExceeded => "deadline-exceeded",
            FailureKind::Abandoned => "abandoned",
        }
    }
}

/// A step failed: the agent's state was rolled back; effects it performed keep their receipts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailed {
    pub ingress: u64,
    pub agent: String,
    pub kind: FailureKind,
    pub reason: String,
    pub fuel_used: u64,
    pub effects: u32,
}
