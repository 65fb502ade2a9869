//! `verify`: check a world's journal without running any wasm.
//!
//! Every entry must decode, carry its own sequence number and the hash of its predecessor; the
//! first must be genesis; the head recorded in `meta` must be the last entry. Signatures are
//! checked against the key in force: the genesis key, then each key a rotation introduces
//! (rotations are signed by the key they replace). Every receipt must be this world's and commit
//! to the request and outcome payloads stored beside it; every checkpoint must state the size and
//! root of the receipt log up to it; every snapshot must hold the states its agents' last
//! committed steps recorded; every blob must hash to its key. Every proposal and verdict must
//! carry its signer's signature, and every manifest change must have had, when it was applied,
//! the approvals the policy then in force required.

use crate::governance::ledger::Ledger;
use crate::journal::entry::{Entry, EntryBody, Genesis, entry_hash, sha256};
use crate::journal::{Journal, JournalError};
use crate::transparency::{Frontier, receipt_leaf};
use ed25519_dalek::VerifyingKey;

/// A successful verification.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub receipts: u64,
    pub steps: u64,
    pub checkpoints: u64,
    pub snapshots: u64,
    pub world_id: String,
    /// The genesis public key.
    pub public_key: String,
    pub key_rotations: u64,
    /// The public key that signs from the last entry on (the genesis key unless rotated).
    pub key_in_force: String,
    /// Proposals and verdicts, each signature checked.
    pub governance: u64,
    /// Manifest changes, each checked to have had the approvals its policy required.
    pub manifest_changes: u64,
}

/// The first thing found wrong.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("entry #{seq}: {problem}")]
    Entry { seq: u64, problem: String },
    #[error("journal head: {0}")]
    Head(String),
    #[error("{0}")]
    Blob(String),
}

fn bad(seq: u64, problem: impl Into<String>) -> VerifyError {
    VerifyError::Entry {
        seq,
        problem: problem.into(),
    }
}

/// Verify the journal; the error names the first bad entry.
pub fn verify(journal: &Journal) -> Result<VerifyReport, VerifyError> {
    let raw = journal.raw_entries()?;
    let mut report = VerifyReport::default();
    let mut genesis: Option<(Genesis, VerifyingKey)> = None;
    let mut ledger: Option<Ledger> = None;
    let mut prev_hash = [0u8; 32];
    let mut log = Frontier::default();
    // Each agent's state digest as of its last committed step, to check snapshots against.
    let mut states: std::collections::HashMap<String, [u8; 32]> = std::collections::HashMap::new();
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
        match (&entry.body, &mut genesis) {
            (EntryBody::Genesis(g), None) if seq == 0 => {
                let key = VerifyingKey::from_bytes(&g.host_public_key)
                    .map_err(|e| bad(seq, format!("genesis public key is not a valid ed25519 key: {e}")))?;
                report.world_id = hex::encode(g.world_id);
                report.public_key = hex::encode(g.host_public_key);
                report.key_in_force = report.public_key.clone();
                ledger = Some(Ledger::new(g).map_err(|e| bad(seq, format!("{e:#}")))?);
                genesis = Some((g.clone(), key));
            }
            (EntryBody::Genesis(_), _) => return Err(bad(seq, "a second genesis entry")),
            (_, None) => {
                return Err(bad(
                    seq,
                    format!("the journal starts with {} instead of genesis", entry.body.kind()),
                ));
            }
            (EntryBody::EffectReceipt(r), Some((g, key))) => {
                if r.receipt.body.world_id != g.world_id {
                    return Err(bad(
                        seq,
                        format!(
                            "receipt belongs to world {}, not this world {}",
                            hex::encode(r.receipt.body.world_id),
                            hex::encode(g.world_id)
                        ),
                    ));
                }
                r.receipt.verify(key).map_err(|e| bad(seq, format!("receipt {e}")))?;
                for (what, payload, digest) in [
                    ("request", &r.request, r.receipt.body.request_digest),
                    ("outcome", &r.outcome, r.receipt.body.outcome_digest),
                ] {
                    let bytes = journal
                        .payload_bytes(payload)?
                        .ok_or_else(|| bad(seq, format!("receipt {what} blob is missing")))?;
                    if sha256(&bytes) != digest {
                        return Err(bad(
                            seq,
                            format!("receipt {what} payload does not match the signed digest"),
                        ));
                    }
                }
                log.push(&receipt_leaf(&r.receipt));
                report.receipts += 1;
            }
            (EntryBody::KeyRotation(rotation), Some((g, key))) => {
                if rotation.body.world_id != g.world_id {
                    return Err(bad(
                        seq,
                        format!("key rotation belongs to world {}", hex::encode(rotation.body.world_id)),
                    ));
                }
                *key = rotation
                    .verify(key)
                    .map_err(|e| bad(seq, format!("key rotation: {e}")))?;
                report.key_rotations += 1;
                report.key_in_force = hex::encode(key.as_bytes());
            }
            (EntryBody::Checkpoint(c), Some((g, key))) => {
                if c.body.world_id != g.world_id {
                    return Err(bad(
                        seq,
                        format!("checkpoint belongs to world {}", hex::encode(c.body.world_id)),
                    ));
                }
                c.verify(key).map_err(|e| bad(seq, format!("checkpoint {e}")))?;
                if (c.body.tree_size, c.body.root_hash) != (log.size, log.root()) {
                    return Err(bad(
                        seq,
                        format!(
                            "checkpoint states {} receipts with root {}, but the receipts before it give {} with root {} \
                             (a receipt was removed, added or altered)",
                            c.body.tree_size,
                            hex::encode(c.body.root_hash),
                            log.size,
                            hex::encode(log.root())
                        ),
                    ));
                }
                report.checkpoints += 1;
            }
            (EntryBody::Proposal(proposal), Some((g, key))) => {
                if proposal.body.world_id != g.world_id {
                    return Err(bad(seq, "proposal belongs to another world"));
                }
                proposal.verify(key).map_err(|e| bad(seq, format!("proposal: {e}")))?;
                report.governance += 1;
            }
            (EntryBody::Verdict(verdict), Some((g, key))) => {
                if verdict.body.world_id != g.world_id {
                    return Err(bad(seq, "verdict belongs to another world"));
                }
                verdict.verify(key).map_err(|e| bad(seq, format!("verdict: {e}")))?;
                report.governance += 1;
            }
            (EntryBody::ManifestApplied(applied), _) => {
                for (name, digest) in &applied.modules {
                    if journal.blob(digest)?.is_none() {
                        return Err(bad(seq, format!("module `{name}` component blob is missing")));
                    }
                }
                report.manifest_changes += 1;
            }
            (EntryBody::StepCommitted(step), _) => {
                states.insert(step.agent.clone(), step.state_digest);
                report.steps += 1;
            }
            (EntryBody::StepFailed(_), _) => report.steps += 1,
            (EntryBody::Snapshot(snapshot), _) => {
                for (agent, digest) in &snapshot.agents {
                    if journal.blob(digest)?.is_none() {
                        return Err(bad(
                            seq,
                            format!("snapshot of agent `{agent}` is missing from the blob table"),
                        ));
                    }
                    if let Some(committed) = states.get(agent)
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
                if journal.blob(&snapshot.kernel)?.is_none() {
                    return Err(bad(seq, "snapshot's stepper state is missing from the blob table"));
                }
                report.snapshots += 1;
            }
            _ => {}
        }
        if let Some(ledger) = &mut ledger {
            ledger.observe(seq, &entry.body).map_err(|problem| bad(seq, problem))?;
        }
        report.entries += 1;
    }
    match journal.stored_head()? {
        Some((seq, hash)) if raw.last().map(|(s, _)| *s) == Some(seq) && hash == prev_hash => {}
        Some((seq, _)) => {
            return Err(VerifyError::Head(format!(
                "the journal's recorded head is entry #{seq}, but the entries end at #{} with a different hash (entries were removed or the last one altered)",
                raw.len().saturating_sub(1)
            )));
        }
        None if raw.is_empty() => {}
        None => return Err(VerifyError::Head("no head recorded".into())),
    }
    if let Some(digest) = journal.mismatched_blobs()?.first() {
        return Err(VerifyError::Blob(format!(
            "blob sha256:{} no longer matches its digest (its bytes were altered)",
            hex::encode(digest)
        )));
    }
    if let Some((g, _)) = &genesis {
        for (name, digest) in &g.modules {
            let bytes = journal
                .blob(digest)?
                .ok_or_else(|| bad(0, format!("module `{name}` blob is missing")))?;
            if sha256(&bytes) != *digest {
                return Err(bad(0, format!("module `{name}` blob no longer matches its digest")));
            }
        }
    }
    Ok(report)
}
