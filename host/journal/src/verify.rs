//! `verify`: check a world's journal without running any wasm, relative to what the verifier
//! trusts.
//!
//! Every entry must decode, carry its own sequence number and the hash of its predecessor; the
//! first must be genesis. Signatures are checked against the key in force: the genesis key, then
//! each key a rotation introduces (rotations are signed by the key they replace and the key they
//! bring in). From format 5 on, every commit ends with a checkpoint that signs the journal log
//! (the hashes of every entry before it) and the receipt log, and the journal must end with one:
//! an entry changed, added or removed after it was written fails the next checkpoint, however
//! carefully the hash chain was rebuilt. Journals of formats 2 to 4 sign only their receipts
//! (each receipt, and receipt-log checkpoints); the report says which guarantee a world has.
//!
//! Beyond signatures: every receipt must be this world's and commit to the request and outcome
//! stored beside it; every snapshot must hold the states its agents' last committed steps
//! recorded and the stepper state the entries before it imply (pending timers, unprocessed
//! inputs, the last step, budget use); every blob must hash to its key; every proposal and
//! verdict must carry its signer's signature, and every manifest change must be the proposal's
//! patch applied to the manifest it replaced, with the approvals the policy then in force
//! required.
//!
//! A journal proves itself only relative to a key the verifier did not read from it: [`Trust`]
//! holds public keys and a checkpoint kept from earlier. Without either, the report says the
//! world is self-consistent but not anchored.

use crate::entry::{Digest, Entry, EntryBody, Genesis, SIGNED_JOURNAL_FORMAT, entry_hash, sha256};
use crate::ledger::Ledger;
use crate::stepper::{BudgetUse, StepperState as KernelState, TimerTable};
use crate::transparency::{AnyCheckpoint, Frontier, receipt_leaf};
use crate::{Journal, JournalError};
use ed25519_dalek::VerifyingKey;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the verifier trusts, from outside the journal.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Public keys of hosts the verifier trusts (`--public-key`, `--trusted-keys`).
    pub keys: Vec<[u8; 32]>,
    /// A checkpoint of this world kept from earlier (`--checkpoint`), with where it came from.
    pub kept: Option<(String, AnyCheckpoint)>,
}

/// What the signatures of a journal cover.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Coverage {
    /// The last entry is a checkpoint signing every entry before it. `upgraded_at`: the world
    /// was created by an older format and its entries before this one were first signed there.
    EveryEntry { upgraded_at: Option<u64> },
    /// Formats before 5: receipts are signed (and checkpointed); other entries are only
    /// hash-chained, which anyone holding the file can recompute.
    ReceiptsOnly,
    /// No entries at all (a world whose first open failed).
    Empty,
}

impl Coverage {
    pub fn describe(&self) -> String {
        match self {
            Coverage::EveryEntry { upgraded_at: None } => "every entry signed".into(),
            Coverage::EveryEntry { upgraded_at: Some(at) } => {
                format!("every entry signed (those before #{at}, written by an older format, only since the upgrade)")
            }
            Coverage::ReceiptsOnly => {
                "receipts signed; other entries only hash-chained (a journal of a format before 5)".into()
            }
            Coverage::Empty => "nothing journaled".into(),
        }
    }
}

/// A successful verification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub receipts: u64,
    pub steps: u64,
    pub checkpoints: u64,
    pub snapshots: u64,
    pub world_id: String,
    /// The format its genesis records.
    pub format_version: u32,
    /// The genesis public key.
    pub public_key: String,
    pub key_rotations: u64,
    /// The public key that signs from the last entry on (the genesis key unless rotated).
    pub key_in_force: String,
    /// Proposals and verdicts, each signature checked.
    pub governance: u64,
    /// Manifest changes, each checked against its proposal and its policy.
    pub manifest_changes: u64,
    pub coverage: Coverage,
    /// How the world is tied to something the verifier trusts; `None`: self-consistent only.
    pub anchor: Option<String>,
}

impl VerifyReport {
    fn empty() -> VerifyReport {
        VerifyReport {
            entries: 0,
            receipts: 0,
            steps: 0,
            checkpoints: 0,
            snapshots: 0,
            world_id: String::new(),
            format_version: 0,
            public_key: String::new(),
            key_rotations: 0,
            key_in_force: String::new(),
            governance: 0,
            manifest_changes: 0,
            coverage: Coverage::Empty,
            anchor: None,
        }
    }
}

/// The first thing found wrong.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("entry #{seq}: {problem}")]
    Entry { seq: u64, problem: String },
    /// Entries that a checkpoint no longer matches: one of `first..=last` was changed.
    #[error("{}", describe_altered(*first, *last, *checkpoint, problem))]
    Altered {
        first: u64,
        last: u64,
        checkpoint: u64,
        problem: String,
    },
    #[error("journal head: {0}")]
    Head(String),
    #[error("{0}")]
    Blob(String),
    #[error("{0}")]
    Anchor(String),
}

fn describe_altered(first: u64, last: u64, checkpoint: u64, problem: &str) -> String {
    let which = if first == last {
        format!("entry #{first} is not what checkpoint #{checkpoint} signed: it was changed after it was written")
    } else {
        format!(
            "entries #{first} to #{last} are not what checkpoint #{checkpoint} signed: one of them was changed, \
             added or removed after it was written"
        )
    };
    format!("{which} ({problem})")
}

fn bad(seq: u64, problem: impl Into<String>) -> VerifyError {
    VerifyError::Entry {
        seq,
        problem: problem.into(),
    }
}

/// The keys that have signed for the world, in order, with the entry that brought each in.
struct KeyChain {
    keys: Vec<(u64, VerifyingKey)>,
}

impl KeyChain {
    fn in_force(&self) -> &VerifyingKey {
        &self.keys.last().expect("the genesis key is always there").1
    }
}

/// Verify the journal against `trust`; the error names the first bad entry.
pub fn verify(journal: &Journal, trust: &Trust) -> Result<VerifyReport, VerifyError> {
    let raw = journal.raw_entries()?;
    let Some((_, first)) = raw.first() else {
        // A world whose first open failed: nothing was ever committed, and nothing is signed.
        if !trust.keys.is_empty() || trust.kept.is_some() {
            return Err(VerifyError::Anchor(
                "the journal is empty: nothing in it is signed, so nothing ties it to what you trust".into(),
            ));
        }
        return Ok(VerifyReport::empty());
    };
    let genesis = match Entry::decode(first).map(|e| e.body) {
        Ok(EntryBody::Genesis(genesis)) => genesis,
        Ok(other) => {
            return Err(bad(
                0,
                format!("the journal starts with {} instead of genesis", other.kind()),
            ));
        }
        Err(e) => return Err(bad(0, format!("does not decode ({e}); its bytes were altered"))),
    };
    let genesis_key = VerifyingKey::from_bytes(&genesis.host_public_key)
        .map_err(|e| bad(0, format!("genesis public key is not a valid ed25519 key: {e}")))?;
    let mut fold = Fold {
        journal,
        genesis_hash: entry_hash(first),
        configuration_hash: entry_hash(first),
        genesis: genesis.clone(),
        chain: KeyChain {
            keys: vec![(0, genesis_key)],
        },
        ledger: Ledger::new(&genesis).map_err(|e| bad(0, format!("{e:#}")))?,
        report: VerifyReport {
            entries: 0,
            receipts: 0,
            steps: 0,
            checkpoints: 0,
            snapshots: 0,
            world_id: hex::encode(genesis.world_id),
            format_version: genesis.format_version,
            public_key: hex::encode(genesis.host_public_key),
            key_rotations: 0,
            key_in_force: hex::encode(genesis.host_public_key),
            governance: 0,
            manifest_changes: 0,
            coverage: Coverage::ReceiptsOnly,
            anchor: None,
        },
        entry_log: Frontier::default(),
        receipt_log: Frontier::default(),
        last_checkpoint: None,
        first_checkpoint: None,
        receipt_checkpointed: 0,
        newest_receipt: None,
        states: HashMap::new(),
        stepper: StepperFold::default(),
        kept: trust.kept.as_ref().map(|(_, c)| KeptRoots::new(c)),
    };
    let mut prev_hash = [0u8; 32];
    for (index, (seq, bytes)) in raw.iter().enumerate() {
        let seq = *seq;
        if seq != index as u64 {
            return Err(bad(
                seq,
                format!("out of sequence: expected #{index} here (an entry was removed or reordered)"),
            ));
        }
        let entry =
            Entry::decode(bytes).map_err(|e| bad(seq, format!("does not decode ({e}); its bytes were altered")))?;
        if entry.seq != seq {
            return Err(bad(
                seq,
                format!(
                    "is stored at #{seq} but says it is #{} (entries were swapped)",
                    entry.seq
                ),
            ));
        }
        if entry.prev_hash != prev_hash {
            let culprit = seq.saturating_sub(1);
            return Err(bad(
                culprit,
                format!(
                    "its hash does not match the prev-hash recorded by entry #{seq}; entry #{culprit} (or #{seq}) was altered"
                ),
            ));
        }
        prev_hash = entry_hash(bytes);
        if let Err(error) = fold.entry(seq, &entry.body) {
            return Err(fold.attribute(error, &raw[index..]));
        }
        if matches!(entry.body, EntryBody::ManifestApplied(_)) {
            fold.configuration_hash = prev_hash;
        }
        fold.entry_log.push(&prev_hash);
        fold.report.entries += 1;
    }
    fold.finish(raw.len() as u64, prev_hash, trust)
}

/// Everything `verify` carries from one entry to the next.
struct Fold<'a> {
    journal: &'a Journal,
    genesis: Genesis,
    genesis_hash: Digest,
    /// The hash of the entry that put the manifest in force (genesis, or the last change).
    configuration_hash: Digest,
    chain: KeyChain,
    ledger: Ledger,
    report: VerifyReport,
    /// Every entry's hash so far, and every receipt's leaf: the two logs checkpoints sign.
    entry_log: Frontier,
    receipt_log: Frontier,
    /// Entry numbers of the first and the last (journal) checkpoint so far.
    first_checkpoint: Option<u64>,
    last_checkpoint: Option<u64>,
    /// Receipts covered by the last receipt-log checkpoint (formats 2 to 4).
    receipt_checkpointed: u64,
    /// The last receipt seen, and whether a format-5 host wrote it.
    newest_receipt: Option<(u64, u8)>,
    /// Each agent's state digest as of its last committed step, to check snapshots against.
    states: HashMap<String, Digest>,
    stepper: StepperFold,
    kept: Option<KeptRoots>,
}

impl Fold<'_> {
    fn entry(&mut self, seq: u64, body: &EntryBody) -> Result<(), VerifyError> {
        let world_id = self.genesis.world_id;
        let of_this_world = |what: &str, id: [u8; 16]| {
            if id == world_id {
                Ok(())
            } else {
                Err(bad(seq, format!("{what} belongs to world {}", hex::encode(id))))
            }
        };
        if let Some(kept) = &mut self.kept {
            kept.observe(&self.entry_log, &self.receipt_log);
        }
        match body {
            EntryBody::Genesis(_) if seq == 0 => {}
            EntryBody::Genesis(_) => return Err(bad(seq, "a second genesis entry")),
            EntryBody::EffectReceipt(r) => {
                if r.receipt.body.world_id != world_id {
                    return Err(bad(
                        seq,
                        format!(
                            "receipt belongs to world {}, not this world {}",
                            hex::encode(r.receipt.body.world_id),
                            hex::encode(world_id)
                        ),
                    ));
                }
                r.receipt
                    .verify(self.chain.in_force())
                    .map_err(|e| bad(seq, format!("receipt {e}")))?;
                for (what, payload, digest) in [
                    ("request", &r.request, r.receipt.body.request_digest),
                    ("outcome", &r.outcome, r.receipt.body.outcome_digest),
                ] {
                    let bytes = self
                        .journal
                        .payload_bytes(payload)?
                        .ok_or_else(|| bad(seq, format!("receipt {what} blob is missing")))?;
                    if sha256(&bytes) != digest {
                        return Err(bad(
                            seq,
                            format!("receipt {what} payload does not match the signed digest"),
                        ));
                    }
                }
                self.receipt_log.push(&receipt_leaf(&r.receipt));
                self.newest_receipt = Some((seq, r.receipt.body.version));
                self.stepper
                    .count_receipt(&r.receipt.body, &self.ledger.in_force().manifest);
                self.report.receipts += 1;
            }
            EntryBody::KeyRotation(rotation) => {
                of_this_world("key rotation", rotation.body.world_id)?;
                let new = rotation
                    .verify(self.chain.in_force())
                    .map_err(|e| bad(seq, format!("key rotation: {e}")))?;
                self.chain.keys.push((seq, new));
                self.report.key_rotations += 1;
                self.report.key_in_force = hex::encode(new.as_bytes());
            }
            EntryBody::ReceiptCheckpoint(c) => {
                of_this_world("checkpoint", c.body.world_id)?;
                if self.genesis.format_version >= SIGNED_JOURNAL_FORMAT || self.last_checkpoint.is_some() {
                    return Err(bad(
                        seq,
                        "a receipt-log checkpoint of format 4 or earlier where the journal is signed by format-5 \
                         checkpoints",
                    ));
                }
                if let Some((receipt, version)) = self.newest_receipt
                    && version >= crate::receipts::RECEIPT_VERSION
                {
                    return Err(bad(
                        seq,
                        format!(
                            "a receipt-log checkpoint of format 4 or earlier after receipt #{receipt}, which only a \
                             host that signs every entry writes (the journal was relabelled as older)"
                        ),
                    ));
                }
                c.verify(self.chain.in_force())
                    .map_err(|e| bad(seq, format!("checkpoint {e}")))?;
                self.check_receipt_log(seq, c.body.tree_size, c.body.root_hash)?;
                self.receipt_checkpointed = c.body.tree_size;
                self.report.checkpoints += 1;
            }
            EntryBody::Checkpoint(c) => {
                of_this_world("checkpoint", c.body.world_id)?;
                c.verify(self.chain.in_force())
                    .map_err(|e| bad(seq, format!("checkpoint {e}")))?;
                self.check_receipt_log(seq, c.body.receipts, c.body.receipts_root)?;
                let first = self.last_checkpoint.map_or(0, |last| last + 1);
                let altered = |problem: String| VerifyError::Altered {
                    first,
                    last: seq.saturating_sub(1),
                    checkpoint: seq,
                    problem,
                };
                if c.body.entries != seq {
                    return Err(bad(
                        seq,
                        format!(
                            "checkpoint signs the {} entries before it, but stands at #{seq}: entries were removed or \
                             added after #{} (the checkpoint before it) once they were signed",
                            c.body.entries,
                            first.saturating_sub(1)
                        ),
                    ));
                }
                if c.body.entries_root != self.entry_log.root() {
                    return Err(altered(format!(
                        "it signs root sha256:{} over the entries before it; they hash to sha256:{}",
                        hex::encode(c.body.entries_root),
                        hex::encode(self.entry_log.root())
                    )));
                }
                if c.body.genesis != self.genesis_hash {
                    return Err(altered("it signs another genesis than entry #0".into()));
                }
                if c.body.configuration != self.ledger.in_force().since
                    || c.body.configuration_hash != self.configuration_hash
                {
                    return Err(bad(
                        seq,
                        format!(
                            "checkpoint names entry #{} (sha256:{}) as the manifest in force, but entry #{} \
                             (sha256:{}) is",
                            c.body.configuration,
                            &hex::encode(c.body.configuration_hash)[..12],
                            self.ledger.in_force().since,
                            &hex::encode(self.configuration_hash)[..12]
                        ),
                    ));
                }
                // What a writer goes on from: the logs' right edges, exactly.
                if c.entry_peaks != self.entry_log.peaks || c.receipt_peaks != self.receipt_log.peaks {
                    return Err(bad(seq, "checkpoint carries logs other than the ones it signs"));
                }
                self.first_checkpoint.get_or_insert(seq);
                self.last_checkpoint = Some(seq);
                self.receipt_checkpointed = c.body.receipts;
                self.report.checkpoints += 1;
            }
            EntryBody::Proposal(proposal) => {
                of_this_world("proposal", proposal.body.world_id)?;
                proposal
                    .verify(self.chain.in_force())
                    .map_err(|e| bad(seq, format!("proposal: {e}")))?;
                self.report.governance += 1;
            }
            EntryBody::Verdict(verdict) => {
                of_this_world("verdict", verdict.body.world_id)?;
                verdict
                    .verify(self.chain.in_force())
                    .map_err(|e| bad(seq, format!("verdict: {e}")))?;
                self.report.governance += 1;
            }
            EntryBody::ManifestApplied(applied) => {
                for (name, digest) in &applied.modules {
                    if self.journal.blob(digest)?.is_none() {
                        return Err(bad(seq, format!("module `{name}` component blob is missing")));
                    }
                }
                // Each agent's state is what the migration left, until its next step.
                for (agent, digest) in &applied.agents {
                    self.states.insert(agent.clone(), *digest);
                }
                self.report.manifest_changes += 1;
            }
            EntryBody::StepCommitted(step) => {
                self.states.insert(step.agent.clone(), step.state_digest);
                self.report.steps += 1;
            }
            EntryBody::StepFailed(_) => self.report.steps += 1,
            EntryBody::Snapshot(snapshot) => {
                self.check_snapshot(seq, snapshot)?;
                self.report.snapshots += 1;
            }
            _ => {}
        }
        self.stepper.observe(seq, body);
        self.ledger
            .observe(seq, body)
            .map_err(|problem| bad(seq, problem.to_string()))?;
        Ok(())
    }

    /// Who is to blame for `error`, found at the first of `rest`: if the next checkpoint is the
    /// host's and still matches the entries before it, the host key signed them as they are;
    /// otherwise (it no longer matches, or is not the host's) they were changed after they were
    /// signed, and the inconsistency is a symptom.
    fn attribute(&self, error: VerifyError, rest: &[(u64, Vec<u8>)]) -> VerifyError {
        if matches!(error, VerifyError::Altered { .. }) {
            return error;
        }
        let mut log = self.entry_log.clone();
        let mut key = *self.chain.in_force();
        for (seq, bytes) in rest {
            match Entry::decode(bytes).map(|e| e.body) {
                Ok(EntryBody::KeyRotation(rotation)) => {
                    if let Ok(next) = rotation.verify(&key) {
                        key = next;
                    }
                }
                Ok(EntryBody::Checkpoint(c)) => {
                    let signed = c.body.world_id == self.genesis.world_id && c.verify(&key).is_ok();
                    if signed && (c.body.entries, c.body.entries_root) == (*seq, log.root()) {
                        return error;
                    }
                    return VerifyError::Altered {
                        first: self.last_checkpoint.map_or(0, |last| last + 1),
                        last: seq.saturating_sub(1),
                        checkpoint: *seq,
                        problem: format!("the first inconsistency is at {error}"),
                    };
                }
                _ => {}
            }
            log.push(&entry_hash(bytes));
        }
        error
    }

    /// A checkpoint's statement of the receipt log against the receipts before it.
    fn check_receipt_log(&self, seq: u64, size: u64, root: Digest) -> Result<(), VerifyError> {
        if (size, root) != (self.receipt_log.size, self.receipt_log.root()) {
            return Err(bad(
                seq,
                format!(
                    "checkpoint states {size} receipts with root {}, but the receipts before it give {} with root {} \
                     (a receipt was removed, added or altered)",
                    hex::encode(root),
                    self.receipt_log.size,
                    hex::encode(self.receipt_log.root())
                ),
            ));
        }
        Ok(())
    }

    fn check_snapshot(&self, seq: u64, snapshot: &crate::entry::Snapshot) -> Result<(), VerifyError> {
        // Every agent and plan of the manifest in force, and nothing else: a state left out
        // would be taken, on reopening, as the agent's initial one.
        let manifest = &self.ledger.in_force().manifest;
        let expected: BTreeSet<String> = manifest
            .agents
            .keys()
            .cloned()
            .chain(manifest.plans.keys().map(|plan| crate::entry::plan::address(plan)))
            .collect();
        let listed: BTreeSet<String> = snapshot.agents.iter().map(|(agent, _)| agent.clone()).collect();
        if listed != expected {
            return Err(bad(
                seq,
                format!(
                    "snapshot holds the states of {}, but the manifest in force has {}",
                    crate::text::listed(&listed.iter().collect::<Vec<_>>(), ", "),
                    crate::text::listed(&expected.iter().collect::<Vec<_>>(), ", ")
                ),
            ));
        }
        for (agent, digest) in &snapshot.agents {
            if self.journal.blob(digest)?.is_none() {
                return Err(bad(
                    seq,
                    format!("snapshot of agent `{agent}` is missing from the blob table"),
                ));
            }
            if let Some(committed) = self.states.get(agent)
                && committed != digest
            {
                return Err(bad(
                    seq,
                    format!(
                        "snapshot of agent `{agent}` is sha256:{}, but its last committed step recorded state sha256:{}",
                        hex::encode(digest),
                        hex::encode(committed)
                    ),
                ));
            }
        }
        let bytes = self
            .journal
            .blob(&snapshot.kernel)?
            .ok_or_else(|| bad(seq, "snapshot's stepper state is missing from the blob table"))?;
        let state: KernelState = postcard::from_bytes(&bytes)
            .map_err(|e| bad(seq, format!("snapshot's stepper state does not decode: {e}")))?;
        self.stepper
            .check(snapshot.after_step, &state, &self.ledger.in_force().manifest)
            .map_err(|problem| bad(seq, format!("snapshot's stepper state: {problem}")))
    }

    /// What holds only at the end: the last entry signed, the head, blobs, the anchor.
    fn finish(mut self, len: u64, head_hash: Digest, trust: &Trust) -> Result<VerifyReport, VerifyError> {
        let last = len - 1;
        match self.journal.stored_head()? {
            Some((seq, hash)) if seq == last && hash == head_hash => {}
            Some((seq, _)) => {
                return Err(VerifyError::Head(format!(
                    "the journal's recorded head is entry #{seq}, but the entries end at #{last} with a different hash \
                     (entries were removed or the last one altered)"
                )));
            }
            None => return Err(VerifyError::Head("no head recorded".into())),
        }
        let signed_receipts = self.newest_receipt.is_some_and(|(_, version)| version >= 2);
        let signs_every_entry =
            self.genesis.format_version >= SIGNED_JOURNAL_FORMAT || self.last_checkpoint.is_some() || signed_receipts;
        if signs_every_entry {
            match self.last_checkpoint {
                Some(at) if at == last => {}
                at => {
                    let first = at.map_or(0, |at| at + 1);
                    let which = match first == last {
                        true => "it comes".to_string(),
                        false => format!("it and the entries up to #{last} come"),
                    };
                    return Err(bad(
                        first,
                        format!(
                            "{which} after the last checkpoint{} and no signature covers them (an unsigned tail was \
                             added, or the checkpoints were removed)",
                            at.map(|at| format!(" (#{at})")).unwrap_or_default()
                        ),
                    ));
                }
            }
            self.report.coverage = Coverage::EveryEntry {
                upgraded_at: (self.genesis.format_version < SIGNED_JOURNAL_FORMAT)
                    .then_some(self.first_checkpoint)
                    .flatten(),
            };
        } else if self.genesis.format_version >= 2
            && let Some((receipt, _)) = self.newest_receipt
            && self.receipt_checkpointed < self.receipt_log.size
        {
            return Err(bad(
                receipt,
                "no checkpoint covers this receipt, though a journal of this format checkpoints every commit \
                 that adds receipts (its checkpoints were removed)",
            ));
        }
        if let Some(digest) = self.journal.mismatched_blobs()?.first() {
            return Err(VerifyError::Blob(format!(
                "blob sha256:{} no longer matches its digest (its bytes were altered)",
                hex::encode(digest)
            )));
        }
        for (name, digest) in &self.genesis.modules {
            let bytes = self
                .journal
                .blob(digest)?
                .ok_or_else(|| bad(0, format!("module `{name}` blob is missing")))?;
            if sha256(&bytes) != *digest {
                return Err(bad(0, format!("module `{name}` blob no longer matches its digest")));
            }
        }
        if let Some(kept) = &mut self.kept {
            kept.observe(&self.entry_log, &self.receipt_log);
        }
        self.report.anchor = self.anchor(len, trust)?;
        Ok(self.report)
    }

    /// Tie the world to what the verifier trusts: a trusted key in its key chain, and a kept
    /// checkpoint signed by one of its keys whose logs this journal extends.
    fn anchor(&self, len: u64, trust: &Trust) -> Result<Option<String>, VerifyError> {
        let describe = |(at, key): &(u64, VerifyingKey)| match at {
            0 => format!("the genesis key {}", hex::encode(key.as_bytes())),
            at => format!("key {} (rotated in at #{at})", hex::encode(key.as_bytes())),
        };
        let mut anchors = Vec::new();
        if !trust.keys.is_empty() {
            let trusted = self
                .chain
                .keys
                .iter()
                .find(|(_, key)| trust.keys.contains(key.as_bytes()))
                .ok_or_else(|| {
                    bad(
                        0,
                        format!(
                            "the world's genesis key {} is not a trusted key{}, so nothing in it is signed by a key you \
                             trust (trusted: {})",
                            hex::encode(self.genesis.host_public_key),
                            if self.chain.keys.len() > 1 {
                                ", and no rotation hands over to one"
                            } else {
                                ""
                            },
                            trust.keys.iter().map(hex::encode).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?;
            // A trusted key vouches only for what it, or a key it handed over to, signed.
            let signed = match (&self.report.coverage, self.report.receipts) {
                (Coverage::EveryEntry { .. }, _) => "every entry".to_string(),
                (Coverage::ReceiptsOnly | Coverage::Empty, 0) => {
                    return Err(bad(
                        0,
                        format!(
                            "nothing in this journal is signed (format {}, without receipts), so no key can vouch for it",
                            self.genesis.format_version
                        ),
                    ));
                }
                (_, receipts) => format!(
                    "its {receipts} receipts only (the other entries of a format-{} journal are not signed)",
                    self.genesis.format_version
                ),
            };
            anchors.push(format!("{}, which you trust, signed {signed}", describe(trusted)));
        }
        if let (Some((source, checkpoint)), Some(kept)) = (&trust.kept, &self.kept) {
            let signer = self
                .chain
                .keys
                .iter()
                .find(|(_, key)| crate::receipts::key_id(key) == checkpoint.key_id())
                .ok_or_else(|| {
                    bad(
                        0,
                        format!(
                            "the checkpoint kept in {source} is signed by key {}, which is not a key of this world \
                             (genesis key {}): the world was re-keyed, or the checkpoint is another world's",
                            hex::encode(checkpoint.key_id()),
                            hex::encode(self.genesis.host_public_key)
                        ),
                    )
                })?;
            if checkpoint.world_id() != self.genesis.world_id {
                return Err(VerifyError::Anchor(format!(
                    "the checkpoint kept in {source} is of world {}, not of this world {}",
                    hex::encode(checkpoint.world_id()),
                    self.report.world_id
                )));
            }
            checkpoint
                .verify(&signer.1)
                .map_err(|e| VerifyError::Anchor(format!("the checkpoint kept in {source}: {e}")))?;
            kept.check(source, len)?;
            anchors.push(format!(
                "extends the checkpoint kept in {source}, signed by {}",
                describe(signer)
            ));
        }
        Ok((!anchors.is_empty()).then(|| anchors.join("; ")))
    }
}

/// The roots of this journal's logs at the sizes a kept checkpoint signed, as the fold reaches
/// them.
struct KeptRoots {
    entries: Option<(u64, Digest)>,
    receipts: (u64, Digest),
    entries_here: Option<Digest>,
    receipts_here: Option<Digest>,
}

impl KeptRoots {
    fn new(kept: &AnyCheckpoint) -> KeptRoots {
        KeptRoots {
            entries: kept.entries(),
            receipts: kept.receipts(),
            entries_here: None,
            receipts_here: None,
        }
    }

    /// Called before each entry and at the end, with the logs so far.
    fn observe(&mut self, entries: &Frontier, receipts: &Frontier) {
        if self.entries.is_some_and(|(size, _)| size == entries.size) {
            self.entries_here.get_or_insert_with(|| entries.root());
        }
        if self.receipts.0 == receipts.size {
            self.receipts_here.get_or_insert_with(|| receipts.root());
        }
    }

    fn check(&self, source: &str, len: u64) -> Result<(), VerifyError> {
        if let Some((size, root)) = self.entries {
            match self.entries_here {
                None => {
                    return Err(bad(
                        len,
                        format!(
                            "the checkpoint kept in {source} signs {size} entries, but the journal ends at #{}: entries \
                             #{len} to #{} were removed (the journal was cut back)",
                            len - 1,
                            size - 1
                        ),
                    ));
                }
                Some(here) if here != root => {
                    return Err(VerifyError::Anchor(format!(
                        "the journal's first {size} entries are not those the checkpoint kept in {source} signed (root \
                         sha256:{} there, sha256:{} here): the same key signed two different histories",
                        hex::encode(root),
                        hex::encode(here)
                    )));
                }
                Some(_) => {}
            }
        }
        let (size, root) = self.receipts;
        match self.receipts_here {
            None => Err(VerifyError::Anchor(format!(
                "the checkpoint kept in {source} attests {size} receipts, this journal holds fewer: receipts were \
                 removed (the log was truncated)"
            ))),
            Some(here) if here != root => Err(VerifyError::Anchor(format!(
                "the receipt log's first {size} receipts are not those the checkpoint kept in {source} signed (root \
                 {} there, {} here): the log was rewritten",
                hex::encode(root),
                hex::encode(here)
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// The stepper's state as the entries before a snapshot determine it, without running wasm:
/// pending timers, inputs not yet processed, the last step, budget use per grant.
#[derive(Default)]
struct StepperFold {
    timers: TimerTable,
    unprocessed: BTreeSet<u64>,
    last_step: u64,
    at_ms_of: HashMap<u64, u64>,
    /// The latest logical time journaled so far (inputs, migrations, the world's creation).
    latest_ms: u64,
    uses: BTreeMap<(String, String), Vec<BudgetUse>>,
}

impl StepperFold {
    fn observe(&mut self, seq: u64, body: &EntryBody) {
        self.timers.observe(body);
        match body {
            EntryBody::Genesis(genesis) => self.latest_ms = self.latest_ms.max(genesis.created_ms),
            EntryBody::ManifestApplied(applied) => self.latest_ms = self.latest_ms.max(applied.at_ms),
            EntryBody::Ingress(ingress) => {
                self.unprocessed.insert(seq);
                self.at_ms_of.insert(seq, ingress.at_ms);
                self.latest_ms = self.latest_ms.max(ingress.at_ms);
            }
            EntryBody::StepCommitted(step) => self.processed(step.ingress),
            EntryBody::StepFailed(step) => self.processed(step.ingress),
            _ => {}
        }
    }

    fn processed(&mut self, ingress: u64) {
        self.unprocessed.remove(&ingress);
        self.last_step = ingress;
    }

    /// Count a receipt against its grant's budget, as the stepper does: a call under a budgeted
    /// grant that reached its adapter.
    fn count_receipt(&mut self, receipt: &crate::receipts::ReceiptBody, manifest: &agentos_air::Manifest) {
        let Some(grant) = &receipt.grant else { return };
        let budgeted = manifest.caps.get(grant).and_then(|cap| cap.budget()).is_some();
        if budgeted && receipt.status.reached_adapter() {
            let usage = &receipt.usage;
            self.uses
                .entry((receipt.agent.clone(), grant.clone()))
                .or_default()
                .push(BudgetUse {
                    at_ms: self.at_ms_of.get(&receipt.ingress).copied().unwrap_or_default(),
                    bytes: usage.bytes_sent + usage.bytes_received,
                    tokens: usage.tokens_in + usage.tokens_out,
                });
        }
    }

    /// The snapshot's stepper state against the entries before it.
    fn check(&self, after_step: u64, state: &KernelState, manifest: &agentos_air::Manifest) -> Result<(), String> {
        if after_step != self.last_step || state.last_step != self.last_step {
            return Err(format!(
                "it is taken after step #{after_step} (its state says #{}), but the last step before it is #{}",
                state.last_step, self.last_step
            ));
        }
        if state.last_at_ms > self.latest_ms {
            return Err(format!(
                "its clock reads t={} ms, later than anything journaled before it (t={} ms)",
                state.last_at_ms, self.latest_ms
            ));
        }
        let pending: Vec<u64> = self.unprocessed.iter().copied().collect();
        if state.pending != pending {
            return Err(format!(
                "it lists the inputs {:?} as unprocessed, but the entries before it leave {:?} unprocessed",
                state.pending, pending
            ));
        }
        if state.timers.pending != self.timers.pending {
            let listed: Vec<&u64> = state.timers.pending.keys().collect();
            let expected: Vec<&u64> = self.timers.pending.keys().collect();
            return Err(format!(
                "its pending timers are {listed:?}, but the entries before it leave {expected:?} pending (or with \
                 other events or due times)"
            ));
        }
        let recorded = state.budgets.uses();
        for key in recorded.keys().chain(self.uses.keys()).collect::<BTreeSet<_>>() {
            let held = recorded.get(key).map_or(&[][..], |uses| uses.as_slice());
            let counted = self.uses.get(key).map_or(&[][..], Vec::as_slice);
            let window = manifest
                .caps
                .get(&key.1)
                .and_then(|cap| cap.budget())
                .and_then(|b| b.window_ms);
            // The stepper forgets a use once it has left its budget's window; nothing else.
            let forgotten = counted.len().checked_sub(held.len());
            let consistent = forgotten.is_some_and(|forgotten| {
                counted[forgotten..] == *held
                    && counted[..forgotten]
                        .iter()
                        .all(|u| window.is_some_and(|w| u.at_ms.saturating_add(w) <= self.latest_ms))
            });
            if !consistent {
                return Err(format!(
                    "it holds {} budget use(s) of grant `{}` by `{}`, but the receipts before it count {} ({} still \
                     within the budget's window)",
                    held.len(),
                    key.1,
                    key.0,
                    counted.len(),
                    counted
                        .iter()
                        .filter(|u| window.is_none_or(|w| u.at_ms.saturating_add(w) > self.latest_ms))
                        .count()
                ));
            }
        }
        Ok(())
    }
}
