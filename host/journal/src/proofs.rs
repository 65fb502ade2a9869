//! Proof files: inclusion proofs of receipts and of any journal entry, and consistency proofs
//! between checkpoints, built from a world's journal and checked offline with only a public key
//! the verifier trusts.
//!
//! A proof file is JSON (`docs/journal.md`, "Proof files"). Everything checked comes from the
//! hex `signed_bytes`, `stored_bytes` and `signature` fields; the decoded fields beside them are
//! for reading and must agree with the bytes.

use crate::entry::{Digest, Entry, EntryBody, entry_hash, sha256};
use crate::receipts::{RECEIPT_DOMAIN, ReceiptBody, from_domain_separated, key_id, verify_signature};
use crate::rotation::{KeyRotation, RotationBody};
use crate::transparency::{AnyCheckpoint, ProofError, ProofTree, receipt_leaf, verify_consistency, verify_inclusion};
use crate::{Journal, JournalError};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

pub const INCLUSION_FORMAT: &str = "agentos.inclusion-proof.v1";
pub const ENTRY_FORMAT: &str = "agentos.entry-proof.v1";
pub const CONSISTENCY_FORMAT: &str = "agentos.consistency-proof.v1";

/// A signed checkpoint as carried in files. `tree_size` and `root_hash` are the receipt log's;
/// `entries` and `entries_root`, the journal log's (checkpoints of format 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointFile {
    pub world_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries_root: Option<String>,
    pub tree_size: u64,
    pub root_hash: String,
    pub signed_bytes: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptFile {
    pub journal_seq: u64,
    pub signed_bytes: String,
    pub signature: String,
}

/// A journal entry as carried in files: its stored bytes, whose entry hash is its leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryFile {
    pub journal_seq: u64,
    pub kind: String,
    pub stored_bytes: String,
}

/// A key rotation as carried in files: the statement and both signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationFile {
    pub signed_bytes: String,
    pub old_signature: String,
    pub new_signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProofFile {
    pub format: String,
    /// The world's key rotations before the checkpoint, oldest first: the chain from the
    /// genesis key to the keys that signed the receipt and the checkpoint.
    #[serde(default)]
    pub key_rotations: Vec<RotationFile>,
    pub leaf_index: u64,
    pub receipt: ReceiptFile,
    /// RFC 6962 audit path, leaf side first, hex sha256 each.
    pub audit_path: Vec<String>,
    pub checkpoint: CheckpointFile,
}

/// An entry's inclusion in the journal log a checkpoint signs (its leaf index is its seq).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryProofFile {
    pub format: String,
    #[serde(default)]
    pub key_rotations: Vec<RotationFile>,
    pub entry: EntryFile,
    pub audit_path: Vec<String>,
    pub checkpoint: CheckpointFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProofFile {
    pub format: String,
    #[serde(default)]
    pub key_rotations: Vec<RotationFile>,
    pub old: CheckpointFile,
    pub new: CheckpointFile,
    /// RFC 6962 consistency proof, hex sha256 each.
    pub proof: Vec<String>,
}

/// Errors building a proof from a world.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the journal has no entry #{0}")]
    NoSuchEntry(u64),
    #[error("no checkpoint covers entry #{0} yet; it is signed at the next commit of the world")]
    NotCheckpointed(u64),
    #[error("entry #{0} is not a receipt, and this journal's checkpoints (format 4 or earlier) sign only receipts")]
    OnlyReceiptsSigned(u64),
    #[error("no checkpoint of this world has {size} receipts; checkpoint sizes: {available}")]
    NoCheckpointOfSize { size: u64, available: String },
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// The logs of a journal: each receipt's leaf with its seq, every entry's hash, every
/// checkpoint and every key rotation.
#[derive(Debug, Clone)]
pub struct JournalLog {
    receipts: Vec<(u64, Digest)>,
    entries: Vec<Digest>,
    /// Every checkpoint with its entry number.
    pub checkpoints: Vec<(u64, AnyCheckpoint)>,
    rotations: Vec<(u64, KeyRotation)>,
}

impl JournalLog {
    pub fn read(journal: &Journal) -> Result<JournalLog, JournalError> {
        let mut log = JournalLog {
            receipts: Vec::new(),
            entries: Vec::new(),
            checkpoints: Vec::new(),
            rotations: Vec::new(),
        };
        log.update(journal)?;
        Ok(log)
    }

    /// Take in the entries `journal` holds that this log has not (a log kept between reads
    /// of a growing journal).
    pub fn update(&mut self, journal: &Journal) -> Result<(), JournalError> {
        let next = self.entries.len() as u64;
        if next >= journal.len() {
            return Ok(());
        }
        for (seq, stored) in journal.raw_entries_in(next..journal.len())? {
            if seq != self.entries.len() as u64 {
                return Err(JournalError::Missing {
                    path: journal.path().to_path_buf(),
                    seq: self.entries.len() as u64,
                });
            }
            self.entries.push(entry_hash(&stored));
            let entry = Entry::decode(&stored).map_err(|source| JournalError::Decode {
                path: journal.path().to_path_buf(),
                seq,
                error: source,
            })?;
            match entry.body {
                EntryBody::EffectReceipt(r) => self.receipts.push((seq, receipt_leaf(&r.receipt))),
                EntryBody::Checkpoint(c) => self.checkpoints.push((seq, AnyCheckpoint::Journal(c))),
                EntryBody::ReceiptCheckpoint(c) => self.checkpoints.push((seq, AnyCheckpoint::Receipts(c))),
                EntryBody::KeyRotation(r) => self.rotations.push((seq, r)),
                _ => {}
            }
        }
        Ok(())
    }

    /// The latest checkpoint, with its entry number.
    pub fn latest(&self) -> Option<&(u64, AnyCheckpoint)> {
        self.checkpoints.last()
    }

    /// The receipt tree of the first `size` receipts (a checkpoint's; refused when it states
    /// more than the journal holds).
    fn receipt_tree(&self, size: u64) -> Result<ProofTree, ProveError> {
        let leaves = self
            .receipts
            .get(..size as usize)
            .ok_or(ProveError::Proof(ProofError::Truncated {
                old: size,
                new: self.receipts.len() as u64,
            }))?;
        Ok(ProofTree::new(
            &leaves.iter().map(|(_, leaf)| *leaf).collect::<Vec<_>>(),
        ))
    }

    /// The rotations journaled before entry `seq`, as carried in files.
    fn rotations_before(&self, seq: u64) -> Vec<RotationFile> {
        self.rotations
            .iter()
            .filter(|(at, _)| *at < seq)
            .map(|(_, r)| RotationFile {
                signed_bytes: hex::encode(r.body.signing_bytes()),
                old_signature: hex::encode(&r.old_signature),
                new_signature: hex::encode(&r.new_signature),
            })
            .collect()
    }

    /// The checkpoint of `size` receipts, with its entry number.
    fn checkpoint_of_size(&self, size: u64) -> Result<&(u64, AnyCheckpoint), ProveError> {
        self.checkpoints
            .iter()
            .find(|(_, c)| c.receipts().0 == size)
            .ok_or_else(|| ProveError::NoCheckpointOfSize {
                size,
                available: summarize_sizes(self.checkpoints.iter().map(|(_, c)| c.receipts().0)),
            })
    }

    /// Proof that entry `seq` is in the latest checkpoint: a receipt's in the receipt log (as
    /// [`InclusionProofFile`]), any other entry's in the journal log (as [`EntryProofFile`]).
    pub fn prove(&self, journal: &Journal, seq: u64) -> Result<serde_json::Value, ProveError> {
        // An entry committed after this log was read is not in it, nor under its checkpoints.
        if seq >= self.entries.len() as u64 {
            return match journal.entry(seq)? {
                Some(_) => Err(ProveError::NotCheckpointed(seq)),
                None => Err(ProveError::NoSuchEntry(seq)),
            };
        }
        let entry = journal.entry(seq)?.ok_or(ProveError::NoSuchEntry(seq))?;
        if let EntryBody::EffectReceipt(r) = &entry.body {
            let index = self
                .receipts
                .iter()
                .position(|(s, _)| *s == seq)
                .ok_or(ProveError::NotCheckpointed(seq))? as u64;
            let (checkpoint_seq, checkpoint) = self
                .latest()
                .filter(|(_, c)| c.receipts().0 > index)
                .ok_or(ProveError::NotCheckpointed(seq))?;
            let path = self.receipt_tree(checkpoint.receipts().0)?.inclusion(index)?;
            return Ok(to_json(&InclusionProofFile {
                format: INCLUSION_FORMAT.into(),
                key_rotations: self.rotations_before(*checkpoint_seq),
                leaf_index: index,
                receipt: ReceiptFile {
                    journal_seq: seq,
                    signed_bytes: hex::encode(r.receipt.body.signing_bytes()),
                    signature: hex::encode(&r.receipt.signature),
                },
                audit_path: path.iter().map(hex::encode).collect(),
                checkpoint: checkpoint_file(checkpoint),
            }));
        }
        let (checkpoint_seq, checkpoint) = self.latest().ok_or(ProveError::NotCheckpointed(seq))?;
        let Some((size, _)) = checkpoint.entries() else {
            return Err(ProveError::OnlyReceiptsSigned(seq));
        };
        if size <= seq {
            return Err(ProveError::NotCheckpointed(seq));
        }
        let entries = self.entries.get(..size as usize).ok_or(ProofError::Truncated {
            old: size,
            new: self.entries.len() as u64,
        })?;
        let path = ProofTree::new(entries).inclusion(seq)?;
        let stored = journal.raw_entry(seq)?.ok_or(ProveError::NoSuchEntry(seq))?;
        Ok(to_json(&EntryProofFile {
            format: ENTRY_FORMAT.into(),
            key_rotations: self.rotations_before(*checkpoint_seq),
            entry: EntryFile {
                journal_seq: seq,
                kind: entry.body.kind().into(),
                stored_bytes: hex::encode(stored),
            },
            audit_path: path.iter().map(hex::encode).collect(),
            checkpoint: checkpoint_file(checkpoint),
        }))
    }

    /// Proof that the checkpoint of `old_size` receipts is a prefix of the one of `new_size`.
    pub fn prove_consistency(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProofFile, ProveError> {
        if old_size > new_size {
            return Err(ProofError::Truncated {
                old: old_size,
                new: new_size,
            }
            .into());
        }
        let (_, old) = self.checkpoint_of_size(old_size)?;
        let (new_seq, new) = self.checkpoint_of_size(new_size)?;
        let proof = self.receipt_tree(new_size)?.consistency(old_size)?;
        Ok(ConsistencyProofFile {
            format: CONSISTENCY_FORMAT.into(),
            key_rotations: self.rotations_before(*new_seq),
            old: checkpoint_file(old),
            new: checkpoint_file(new),
            proof: proof.iter().map(hex::encode).collect(),
        })
    }
}

fn to_json(file: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(file).expect("proof files always encode as JSON")
}

fn summarize_sizes(sizes: impl Iterator<Item = u64>) -> String {
    let sizes: Vec<String> = sizes
        .collect::<std::collections::BTreeSet<_>>()
        .iter()
        .map(|s| s.to_string())
        .collect();
    match sizes.len() {
        0 => "none".into(),
        n if n > 12 => format!(
            "{} … {} ({n} checkpoints)",
            sizes[..6].join(", "),
            sizes[n - 3..].join(", ")
        ),
        _ => sizes.join(", "),
    }
}

pub fn checkpoint_file(checkpoint: &AnyCheckpoint) -> CheckpointFile {
    let (tree_size, root) = checkpoint.receipts();
    CheckpointFile {
        world_id: hex::encode(checkpoint.world_id()),
        entries: checkpoint.entries().map(|(size, _)| size),
        entries_root: checkpoint.entries().map(|(_, root)| hex::encode(root)),
        tree_size,
        root_hash: hex::encode(root),
        signed_bytes: hex::encode(checkpoint.signing_bytes()),
        signature: hex::encode(checkpoint.signature()),
    }
}

fn unhex(what: &str, text: &str) -> Result<Vec<u8>, ProofError> {
    hex::decode(text).map_err(|e| ProofError::Malformed(format!("{what} is not hex: {e}")))
}

fn digest(what: &str, text: &str) -> Result<Digest, ProofError> {
    unhex(what, text)?
        .try_into()
        .map_err(|_| ProofError::Malformed(format!("{what} is not a 32-byte sha256")))
}

/// The chain of keys from a trusted key through the carried rotations that follow it (all of
/// them when it is the key the first one replaces; those after the one that brought it in when
/// it is a later key), each checked against the key it replaces.
pub fn key_chain(
    trusted: &VerifyingKey,
    rotations: &[RotationFile],
    world_id: [u8; 16],
) -> Result<Vec<VerifyingKey>, ProofError> {
    let mut decoded = Vec::new();
    for (n, file) in rotations.iter().enumerate() {
        let rotation = KeyRotation {
            body: RotationBody::from_signing_bytes(&unhex("rotation signed_bytes", &file.signed_bytes)?)
                .map_err(|e| ProofError::Malformed(format!("key rotation {}: {e}", n + 1)))?,
            old_signature: unhex("rotation old_signature", &file.old_signature)?,
            new_signature: unhex("rotation new_signature", &file.new_signature)?,
        };
        if rotation.body.world_id != world_id {
            return Err(ProofError::Malformed(format!(
                "key rotation {} is of world {}, not of the checkpoint's",
                n + 1,
                hex::encode(rotation.body.world_id)
            )));
        }
        decoded.push(rotation);
    }
    let start = match decoded
        .iter()
        .position(|r| r.body.new_public_key == *trusted.as_bytes())
    {
        Some(brought_in) => brought_in + 1,
        None => 0,
    };
    let mut chain = vec![*trusted];
    for (n, rotation) in decoded.iter().enumerate().skip(start) {
        let next = rotation
            .verify(chain.last().expect("the chain starts with the trusted key"))
            .map_err(|e| ProofError::Malformed(format!("key rotation {}: {e}", n + 1)))?;
        chain.push(next);
    }
    Ok(chain)
}

/// The key of `chain` with id `id`, or why no key of the chain is it.
fn key_with_id(chain: &[VerifyingKey], id: [u8; 8], what: &str) -> Result<VerifyingKey, ProofError> {
    chain.iter().copied().find(|k| key_id(k) == id).ok_or_else(|| {
        ProofError::Malformed(format!(
            "{what} signed by key {}, which is neither a trusted key nor one it handed over to",
            hex::encode(id)
        ))
    })
}

/// Decode a carried checkpoint, check that its readable fields match its bytes and that it is
/// signed by a key of `chain` — with `latest`, by its last key: the key in force at the
/// checkpoint, given the rotations before it (a key handed over from signs nothing after its
/// rotation).
pub fn check_checkpoint_file(
    file: &CheckpointFile,
    chain: &[VerifyingKey],
    latest: bool,
) -> Result<AnyCheckpoint, ProofError> {
    let checkpoint = read_checkpoint_file(file)?;
    let signer = match latest {
        true => chain.last().filter(|k| key_id(k) == checkpoint.key_id()),
        false => chain.iter().find(|k| key_id(k) == checkpoint.key_id()),
    };
    let Some(signer) = signer else {
        let what = match chain.iter().any(|k| key_id(k) == checkpoint.key_id()) {
            true => "a key that had handed over to another before it",
            false => "neither a trusted key nor one it handed over to",
        };
        return Err(ProofError::Malformed(format!(
            "checkpoint signed by key {}, {what}",
            hex::encode(checkpoint.key_id())
        )));
    };
    checkpoint
        .verify(signer)
        .map_err(|e| ProofError::Malformed(format!("checkpoint {e}")))?;
    Ok(checkpoint)
}

/// Who signed a checked proof, in words, given the chain from the trusted key.
fn signer(chain: &[VerifyingKey]) -> String {
    match chain.len() {
        1 => "the trusted key".into(),
        n => format!(
            "key {}, which the trusted key handed over to in {} rotation(s)",
            hex::encode(chain[n - 1].as_bytes()),
            n - 1
        ),
    }
}

/// Decode a carried checkpoint and check that its readable fields match its signed bytes (its
/// signature is checked by whoever knows the key: [`check_checkpoint_file`], `verify`).
pub fn read_checkpoint_file(file: &CheckpointFile) -> Result<AnyCheckpoint, ProofError> {
    let checkpoint = AnyCheckpoint::from_signed_bytes(
        &unhex("checkpoint signed_bytes", &file.signed_bytes)?,
        unhex("checkpoint signature", &file.signature)?,
    )?;
    let stated = CheckpointFile {
        signed_bytes: file.signed_bytes.to_lowercase(),
        signature: file.signature.to_lowercase(),
        ..file.clone()
    };
    let signed = checkpoint_file(&checkpoint);
    if stated != signed {
        return Err(ProofError::Malformed(format!(
            "checkpoint fields say world {} entries {:?} receipts {} root {}, its signed bytes say world {} entries \
             {:?} receipts {} root {}",
            stated.world_id,
            stated.entries,
            stated.tree_size,
            stated.root_hash,
            signed.world_id,
            signed.entries,
            signed.tree_size,
            signed.root_hash
        )));
    }
    Ok(checkpoint)
}

/// What a checked proof showed, in a sentence.
pub type Verified = String;

/// The key chain a proof carries, from `key`, for the world its checkpoint names.
fn chain_of(
    file: &CheckpointFile,
    rotations: &[RotationFile],
    key: &VerifyingKey,
) -> Result<Vec<VerifyingKey>, ProofError> {
    key_chain(key, rotations, read_checkpoint_file(file)?.world_id())
}

pub fn verify_inclusion_file(file: &InclusionProofFile, key: &VerifyingKey) -> Result<Verified, ProofError> {
    let chain = chain_of(&file.checkpoint, &file.key_rotations, key)?;
    let checkpoint = check_checkpoint_file(&file.checkpoint, &chain, true)?;
    let signed_bytes = unhex("receipt signed_bytes", &file.receipt.signed_bytes)?;
    let body: ReceiptBody = from_domain_separated(RECEIPT_DOMAIN, &signed_bytes)
        .map_err(|e| ProofError::Malformed(format!("receipt: {e}")))?;
    verify_signature(
        &key_with_id(&chain, body.key_id, "the receipt is")?,
        body.key_id,
        &signed_bytes,
        &unhex("receipt signature", &file.receipt.signature)?,
    )
    .map_err(|e| ProofError::Malformed(format!("receipt {e}")))?;
    if body.world_id != checkpoint.world_id() {
        return Err(ProofError::Malformed(format!(
            "the receipt belongs to world {}, the checkpoint to world {}",
            hex::encode(body.world_id),
            hex::encode(checkpoint.world_id())
        )));
    }
    let (size, root) = checkpoint.receipts();
    verify_inclusion(
        &sha256(&signed_bytes),
        file.leaf_index,
        size,
        &root,
        &audit_path(&file.audit_path)?,
    )?;
    Ok(format!(
        "receipt of step #{} call {} ({} {} by {}, {}) is leaf {} of the {size}-receipt log of world {} with root {}, \
         signed by {}",
        body.ingress,
        body.effect_index,
        body.effect,
        body.subject,
        body.agent,
        body.status.label(),
        file.leaf_index,
        hex::encode(checkpoint.world_id()),
        hex::encode(root),
        signer(&chain)
    ))
}

pub fn verify_entry_file(file: &EntryProofFile, key: &VerifyingKey) -> Result<Verified, ProofError> {
    let chain = chain_of(&file.checkpoint, &file.key_rotations, key)?;
    let checkpoint = check_checkpoint_file(&file.checkpoint, &chain, true)?;
    let Some((size, root)) = checkpoint.entries() else {
        return Err(ProofError::Malformed(
            "an entry proof needs a checkpoint of the journal log (format 5), not of the receipt log only".into(),
        ));
    };
    let stored = unhex("entry stored_bytes", &file.entry.stored_bytes)?;
    let entry = Entry::decode(&stored).map_err(|e| ProofError::Malformed(format!("the entry does not decode: {e}")))?;
    if (entry.seq, entry.body.kind()) != (file.entry.journal_seq, file.entry.kind.as_str()) {
        return Err(ProofError::Malformed(format!(
            "the entry fields say #{} {}, its stored bytes say #{} {}",
            file.entry.journal_seq,
            file.entry.kind,
            entry.seq,
            entry.body.kind()
        )));
    }
    verify_inclusion(
        &entry_hash(&stored),
        entry.seq,
        size,
        &root,
        &audit_path(&file.audit_path)?,
    )?;
    Ok(format!(
        "entry #{} ({}) is leaf {} of the {size}-entry journal log of world {} with root {}, signed by {}",
        entry.seq,
        entry.body.kind(),
        entry.seq,
        hex::encode(checkpoint.world_id()),
        hex::encode(root),
        signer(&chain)
    ))
}

fn audit_path(hashes: &[String]) -> Result<Vec<Digest>, ProofError> {
    hashes.iter().map(|h| digest("audit path hash", h)).collect()
}

pub fn verify_consistency_file(file: &ConsistencyProofFile, key: &VerifyingKey) -> Result<Verified, ProofError> {
    let chain = chain_of(&file.new, &file.key_rotations, key)?;
    let old = check_checkpoint_file(&file.old, &chain, false)?;
    let new = check_checkpoint_file(&file.new, &chain, true)?;
    if old.world_id() != new.world_id() {
        return Err(ProofError::Malformed(
            "the two checkpoints belong to different worlds".into(),
        ));
    }
    let proof = file
        .proof
        .iter()
        .map(|h| digest("consistency proof hash", h))
        .collect::<Result<Vec<_>, _>>()?;
    let ((old_size, old_root), (new_size, new_root)) = (old.receipts(), new.receipts());
    verify_consistency((old_size, &old_root), (new_size, &new_root), &proof)?;
    Ok(format!(
        "the {old_size}-receipt log (root {}) is a prefix of the {new_size}-receipt log (root {}) of world {}, \
         signed by {}",
        hex::encode(old_root),
        hex::encode(new_root),
        hex::encode(new.world_id()),
        signer(&chain)
    ))
}

/// Check a proof file of any kind (told apart by its `format`) under any of `keys`; the error
/// of the last key tried when none checks it.
pub fn verify_proof_text(text: &str, keys: &[VerifyingKey]) -> Result<Verified, ProofError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ProofError::Malformed(format!("not JSON: {e}")))?;
    let malformed = |e: serde_json::Error| ProofError::Malformed(e.to_string());
    let check = |key: &VerifyingKey| match value.get("format").and_then(|f| f.as_str()) {
        Some(INCLUSION_FORMAT) => {
            verify_inclusion_file(&serde_json::from_value(value.clone()).map_err(malformed)?, key)
        }
        Some(ENTRY_FORMAT) => verify_entry_file(&serde_json::from_value(value.clone()).map_err(malformed)?, key),
        Some(CONSISTENCY_FORMAT) => {
            verify_consistency_file(&serde_json::from_value(value.clone()).map_err(malformed)?, key)
        }
        other => Err(ProofError::Malformed(format!(
            "format is {other:?}, expected {INCLUSION_FORMAT:?}, {ENTRY_FORMAT:?} or {CONSISTENCY_FORMAT:?}"
        ))),
    };
    let mut last = ProofError::Malformed("no trusted key given".into());
    for key in keys {
        match check(key) {
            Ok(verified) => return Ok(verified),
            Err(error) => last = error,
        }
    }
    Err(last)
}
