//! Proof files: inclusion proofs of receipts and consistency proofs between checkpoints, built
//! from a world's journal and checked offline with only the host's public key.
//!
//! A proof file is JSON (`docs/journal.md`, "Proof files"). Everything checked comes from the
//! hex `signed_bytes` and `signature` fields; the decoded fields beside them are for reading and
//! must agree with the bytes.

use crate::journal::entry::{Digest, EntryBody, sha256};
use crate::journal::{Journal, JournalError};
use crate::receipts::{RECEIPT_DOMAIN, ReceiptBody, from_domain_separated, key_id, verify_signature};
use crate::rotation::{KeyRotation, RotationBody};
use crate::transparency::{
    CheckpointBody, ProofError, ProofTree, SignedCheckpoint, receipt_leaf, verify_consistency, verify_inclusion,
};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

pub const INCLUSION_FORMAT: &str = "agentos.inclusion-proof.v1";
pub const CONSISTENCY_FORMAT: &str = "agentos.consistency-proof.v1";

/// A signed checkpoint as carried in files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointFile {
    pub world_id: String,
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
    #[error("entry #{0} is not an effect receipt (see `agentos-host receipts`)")]
    NotAReceipt(u64),
    #[error("no checkpoint covers receipt #{0} yet; it is signed at the next commit of the world")]
    NotCheckpointed(u64),
    #[error("no checkpoint of this world has {size} receipts; checkpoint sizes: {available}")]
    NoCheckpointOfSize { size: u64, available: String },
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// The receipt log of a journal: each receipt's leaf with its seq, every checkpoint and every
/// key rotation.
pub struct ReceiptLog {
    pub leaves: Vec<(u64, Digest)>,
    pub checkpoints: Vec<SignedCheckpoint>,
    /// Entry number of each checkpoint.
    checkpoint_seqs: Vec<u64>,
    rotations: Vec<(u64, KeyRotation)>,
}

impl ReceiptLog {
    pub fn read(journal: &Journal) -> Result<ReceiptLog, JournalError> {
        let mut log = ReceiptLog {
            leaves: Vec::new(),
            checkpoints: Vec::new(),
            checkpoint_seqs: Vec::new(),
            rotations: Vec::new(),
        };
        for entry in journal.entries()? {
            match entry.body {
                EntryBody::EffectReceipt(r) => log.leaves.push((entry.seq, receipt_leaf(&r.receipt))),
                EntryBody::Checkpoint(c) => {
                    log.checkpoints.push(c);
                    log.checkpoint_seqs.push(entry.seq);
                }
                EntryBody::KeyRotation(r) => log.rotations.push((entry.seq, r)),
                _ => {}
            }
        }
        Ok(log)
    }

    fn tree(&self, size: u64) -> ProofTree {
        let leaves: Vec<Digest> = self.leaves[..size as usize].iter().map(|(_, leaf)| *leaf).collect();
        ProofTree::new(&leaves)
    }

    /// Every key that has been in force, from `genesis_key` on (rotations as `verify` checked them).
    pub fn keys(&self, genesis_key: VerifyingKey) -> Vec<VerifyingKey> {
        let rotated = self
            .rotations
            .iter()
            .filter_map(|(_, r)| VerifyingKey::from_bytes(&r.body.new_public_key).ok());
        std::iter::once(genesis_key).chain(rotated).collect()
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
    fn checkpoint_of_size(&self, size: u64) -> Result<(u64, &SignedCheckpoint), ProveError> {
        self.checkpoints
            .iter()
            .zip(&self.checkpoint_seqs)
            .find(|(c, _)| c.body.tree_size == size)
            .map(|(c, seq)| (*seq, c))
            .ok_or_else(|| ProveError::NoCheckpointOfSize {
                size,
                available: summarize_sizes(self.checkpoints.iter().map(|c| c.body.tree_size)),
            })
    }

    /// Proof that the receipt at journal entry `seq` is in the log of the latest checkpoint.
    pub fn prove_inclusion(&self, journal: &Journal, seq: u64) -> Result<InclusionProofFile, ProveError> {
        let index = self
            .leaves
            .iter()
            .position(|(s, _)| *s == seq)
            .ok_or(ProveError::NotAReceipt(seq))? as u64;
        let (checkpoint, checkpoint_seq) = self
            .checkpoints
            .last()
            .zip(self.checkpoint_seqs.last())
            .filter(|(c, _)| c.body.tree_size > index)
            .ok_or(ProveError::NotCheckpointed(seq))?;
        let path = self.tree(checkpoint.body.tree_size).inclusion(index)?;
        let Some(EntryBody::EffectReceipt(r)) = journal.entry(seq)?.map(|e| e.body) else {
            return Err(ProveError::NotAReceipt(seq));
        };
        Ok(InclusionProofFile {
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
        })
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
        let proof = self.tree(new_size).consistency(old_size)?;
        Ok(ConsistencyProofFile {
            format: CONSISTENCY_FORMAT.into(),
            key_rotations: self.rotations_before(new_seq),
            old: checkpoint_file(old),
            new: checkpoint_file(new),
            proof: proof.iter().map(hex::encode).collect(),
        })
    }

    /// Check that this log extends `old` (an earlier checkpoint of the same world).
    pub fn check_extends(&self, old: &SignedCheckpoint) -> Result<(), ProofError> {
        let size = self.leaves.len() as u64;
        if old.body.tree_size > size {
            return Err(ProofError::Truncated {
                old: old.body.tree_size,
                new: size,
            });
        }
        let tree = self.tree(size);
        let proof = tree.consistency(old.body.tree_size)?;
        verify_consistency((old.body.tree_size, &old.body.root_hash), (size, &tree.root()), &proof)
    }
}

fn summarize_sizes(sizes: impl Iterator<Item = u64>) -> String {
    let sizes: Vec<String> = sizes.map(|s| s.to_string()).collect();
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

pub fn checkpoint_file(checkpoint: &SignedCheckpoint) -> CheckpointFile {
    CheckpointFile {
        world_id: hex::encode(checkpoint.body.world_id),
        tree_size: checkpoint.body.tree_size,
        root_hash: hex::encode(checkpoint.body.root_hash),
        signed_bytes: hex::encode(checkpoint.body.signing_bytes()),
        signature: hex::encode(&checkpoint.signature),
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

/// The chain of keys from `trusted` through every carried rotation, each checked against the
/// key it replaces.
pub fn key_chain(trusted: &VerifyingKey, rotations: &[RotationFile]) -> Result<Vec<VerifyingKey>, ProofError> {
    let mut chain = vec![*trusted];
    for (n, file) in rotations.iter().enumerate() {
        let rotation = KeyRotation {
            body: RotationBody::from_signing_bytes(&unhex("rotation signed_bytes", &file.signed_bytes)?)
                .map_err(ProofError::Malformed)?,
            old_signature: unhex("rotation old_signature", &file.old_signature)?,
            new_signature: unhex("rotation new_signature", &file.new_signature)?,
        };
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
            "{what} signed by key {}, which is neither the given public key nor one it handed over to",
            hex::encode(id)
        ))
    })
}

/// Decode a carried checkpoint, check its signature and that its readable fields match its bytes.
pub fn check_checkpoint_file(file: &CheckpointFile, chain: &[VerifyingKey]) -> Result<SignedCheckpoint, ProofError> {
    let body = CheckpointBody::from_signing_bytes(&unhex("checkpoint signed_bytes", &file.signed_bytes)?)?;
    let checkpoint = SignedCheckpoint {
        body,
        signature: unhex("checkpoint signature", &file.signature)?,
    };
    checkpoint
        .verify(&key_with_id(chain, checkpoint.body.key_id, "checkpoint")?)
        .map_err(|e| ProofError::Malformed(format!("checkpoint {e}")))?;
    let stated = (file.world_id.as_str(), file.tree_size, file.root_hash.as_str());
    let signed = (
        hex::encode(checkpoint.body.world_id),
        checkpoint.body.tree_size,
        hex::encode(checkpoint.body.root_hash),
    );
    if stated != (signed.0.as_str(), signed.1, signed.2.as_str()) {
        return Err(ProofError::Malformed(format!(
            "checkpoint fields say world {} size {} root {}, its signed bytes say world {} size {} root {}",
            stated.0, stated.1, stated.2, signed.0, signed.1, signed.2
        )));
    }
    Ok(checkpoint)
}

/// What a checked proof showed, in a sentence.
pub type Verified = String;

pub fn verify_inclusion_file(file: &InclusionProofFile, key: &VerifyingKey) -> Result<Verified, ProofError> {
    let chain = key_chain(key, &file.key_rotations)?;
    let checkpoint = check_checkpoint_file(&file.checkpoint, &chain)?;
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
    if body.world_id != checkpoint.body.world_id {
        return Err(ProofError::Malformed(format!(
            "the receipt belongs to world {}, the checkpoint to world {}",
            hex::encode(body.world_id),
            hex::encode(checkpoint.body.world_id)
        )));
    }
    let path = file
        .audit_path
        .iter()
        .map(|h| digest("audit path hash", h))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(
        &sha256(&signed_bytes),
        file.leaf_index,
        checkpoint.body.tree_size,
        &checkpoint.body.root_hash,
        &path,
    )?;
    Ok(format!(
        "receipt #{} ({} {} by {}, {}) is leaf {} of the {}-receipt log of world {} with root {}",
        file.receipt.journal_seq,
        body.effect,
        body.subject,
        body.agent,
        body.status.label(),
        file.leaf_index,
        checkpoint.body.tree_size,
        hex::encode(checkpoint.body.world_id),
        hex::encode(checkpoint.body.root_hash)
    ))
}

pub fn verify_consistency_file(file: &ConsistencyProofFile, key: &VerifyingKey) -> Result<Verified, ProofError> {
    let chain = key_chain(key, &file.key_rotations)?;
    let old = check_checkpoint_file(&file.old, &chain)?;
    let new = check_checkpoint_file(&file.new, &chain)?;
    if old.body.world_id != new.body.world_id {
        return Err(ProofError::Malformed(
            "the two checkpoints belong to different worlds".into(),
        ));
    }
    let proof = file
        .proof
        .iter()
        .map(|h| digest("consistency proof hash", h))
        .collect::<Result<Vec<_>, _>>()?;
    verify_consistency(
        (old.body.tree_size, &old.body.root_hash),
        (new.body.tree_size, &new.body.root_hash),
        &proof,
    )?;
    Ok(format!(
        "the {}-receipt log (root {}) is a prefix of the {}-receipt log (root {}) of world {}",
        old.body.tree_size,
        hex::encode(old.body.root_hash),
        new.body.tree_size,
        hex::encode(new.body.root_hash),
        hex::encode(new.body.world_id)
    ))
}

/// Check a proof file of either kind (told apart by its `format`).
pub fn verify_proof_text(text: &str, key: &VerifyingKey) -> Result<Verified, ProofError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ProofError::Malformed(format!("not JSON: {e}")))?;
    let malformed = |e: serde_json::Error| ProofError::Malformed(e.to_string());
    match value.get("format").and_then(|f| f.as_str()) {
        Some(INCLUSION_FORMAT) => verify_inclusion_file(&serde_json::from_value(value).map_err(malformed)?, key),
        Some(CONSISTENCY_FORMAT) => verify_consistency_file(&serde_json::from_value(value).map_err(malformed)?, key),
        other => Err(ProofError::Malformed(format!(
            "format is {other:?}, expected {INCLUSION_FORMAT:?} or {CONSISTENCY_FORMAT:?}"
        ))),
    }
}
