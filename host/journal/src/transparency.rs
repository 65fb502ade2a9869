//! The transparency logs and the checkpoints that sign them. Two RFC 6962 Merkle trees grow
//! with a journal: the *journal log*, whose leaves are every entry's hash, and the *receipt
//! log*, whose leaves are the receipts' signed bytes. At each commit the host signs a
//! [`CheckpointBody`] of both (world id, entries and their root, receipts and their root), so a
//! signature covers every entry before it, and any entry, or any receipt, has an inclusion proof.
//! Journals of format 2 to 4 carry [`ReceiptCheckpointBody`]s, which cover the receipt log only.
//!
//! An entry's leaf is its entry hash; a receipt's leaf is `sha256(signed bytes of the receipt)`;
//! leaf and node hashes follow RFC 6962 §2.1 (`SHA-256(0x00 || leaf)`, `SHA-256(0x01 || left ||
//! right)`), so inclusion and consistency proofs check with any RFC 6962 / RFC 9162
//! implementation (`docs/journal.md` has the formats). The journal keeps only each tree's right
//! edge ([`Frontier`]); proofs are built from the leaves on demand ([`ProofTree`]) and checked
//! offline with only a public key ([`verify_inclusion`], [`verify_consistency`]). This module
//! does no IO.

use crate::entry::{Digest, sha256};
use crate::receipts::{
    HostKey, ReceiptError, SignedBytesError, SignedReceipt, domain_separated, from_domain_separated, verify_signature,
};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Domain separation prefix of a checkpoint's signed bytes (journal and receipt logs, format 5).
pub const CHECKPOINT_DOMAIN: &[u8] = b"agentos.checkpoint.v2\0";

/// Domain separation prefix of a receipt-log checkpoint's signed bytes (formats 2 to 4).
pub const RECEIPT_CHECKPOINT_DOMAIN: &[u8] = b"agentos.checkpoint.v1\0";

/// The leaf a receipt contributes to the log: sha256 of its signed bytes.
pub fn receipt_leaf(receipt: &SignedReceipt) -> Digest {
    sha256(&receipt.body.signing_bytes())
}

/// RFC 6962 leaf hash: `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Digest {
    Sha256::new().chain_update([0x00]).chain_update(leaf).finalize().into()
}

/// RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The right edge of the tree: the roots of its perfect subtrees, largest first (one per set bit
/// of `size`). Enough to append leaves and compute the root without the leaves themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier {
    pub size: u64,
    pub peaks: Vec<Digest>,
}

impl Frontier {
    /// A right edge from its parts, if they fit together (one peak per set bit of the size).
    pub fn from_parts(size: u64, peaks: Vec<Digest>) -> Option<Frontier> {
        (peaks.len() == size.count_ones() as usize).then_some(Frontier { size, peaks })
    }

    pub fn push(&mut self, leaf: &Digest) {
        let mut hash = leaf_hash(leaf);
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.peaks.pop().expect("one peak per set bit of the size");
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The RFC 6962 Merkle tree hash of the leaves so far (`SHA-256("")` when empty).
    pub fn root(&self) -> Digest {
        match self.peaks.split_last() {
            None => sha256(b""),
            Some((last, rest)) => rest.iter().rev().fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

/// What a checkpoint attests: the journal up to it and the receipt log. Field order is part
/// of the signed format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    pub version: u8,
    pub world_id: [u8; 16],
    /// Entries covered: #0 to #entries − 1. The checkpoint is entry #entries itself.
    pub entries: u64,
    /// RFC 6962 Merkle tree hash of those entries' hashes.
    pub entries_root: Digest,
    /// Receipts among those entries.
    pub receipts: u64,
    /// RFC 6962 Merkle tree hash of the receipts' leaves.
    pub receipts_root: Digest,
    /// The entry hash of genesis (entry #0), so the world's origin is checked in one step.
    pub genesis: Digest,
    /// The entry that put the manifest in force (0: genesis).
    pub configuration: u64,
    /// That entry's hash, so a writer reading the manifest of record from an entry long before
    /// what it checks can check that one entry alone.
    pub configuration_hash: Digest,
    /// First 8 bytes of sha256(public key) of the signing key.
    pub key_id: [u8; 8],
}

/// The version of [`CheckpointBody`] this host writes and reads.
pub const CHECKPOINT_VERSION: u8 = 2;

impl CheckpointBody {
    /// The exact bytes the signature covers: the domain prefix, then postcard.
    pub fn signing_bytes(&self) -> Vec<u8> {
        domain_separated(CHECKPOINT_DOMAIN, self)
    }
}

/// What the journal is when a checkpoint is signed: its logs' right edges, its genesis and the
/// configuration in force.
#[derive(Debug, Clone, Copy)]
pub struct JournalState<'a> {
    pub entries: &'a Frontier,
    pub receipts: &'a Frontier,
    pub genesis: Digest,
    pub configuration: u64,
    pub configuration_hash: Digest,
}

/// A checkpoint with the host's signature, and the right edges of both logs at it (not
/// signed: each is checked against the root the body signs, which no other edge produces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub body: CheckpointBody,
    pub signature: Vec<u8>,
    pub entry_peaks: Vec<Digest>,
    pub receipt_peaks: Vec<Digest>,
}

impl SignedCheckpoint {
    /// Sign the journal as it stands before the checkpoint.
    pub fn sign(key: &HostKey, world_id: [u8; 16], state: JournalState<'_>) -> SignedCheckpoint {
        let body = CheckpointBody {
            version: CHECKPOINT_VERSION,
            world_id,
            entries: state.entries.size,
            entries_root: state.entries.root(),
            receipts: state.receipts.size,
            receipts_root: state.receipts.root(),
            genesis: state.genesis,
            configuration: state.configuration,
            configuration_hash: state.configuration_hash,
            key_id: key.key_id(),
        };
        SignedCheckpoint {
            signature: key.signature(&body.signing_bytes()),
            body,
            entry_peaks: state.entries.peaks.clone(),
            receipt_peaks: state.receipts.peaks.clone(),
        }
    }

    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ReceiptError> {
        if self.body.version != CHECKPOINT_VERSION {
            return Err(ReceiptError::BadSignature);
        }
        verify_signature(key, self.body.key_id, &self.body.signing_bytes(), &self.signature)
    }

    /// The journal log's right edge at the checkpoint, if the carried peaks are the ones the
    /// signed root was computed from.
    pub fn entry_frontier(&self) -> Option<Frontier> {
        Frontier::from_parts(self.body.entries, self.entry_peaks.clone())
            .filter(|frontier| frontier.root() == self.body.entries_root)
    }

    /// The receipt log's right edge at the checkpoint, checked likewise.
    pub fn receipt_frontier(&self) -> Option<Frontier> {
        Frontier::from_parts(self.body.receipts, self.receipt_peaks.clone())
            .filter(|frontier| frontier.root() == self.body.receipts_root)
    }
}

/// What a receipt-log checkpoint of formats 2 to 4 attests. Field order is part of the signed
/// format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCheckpointBody {
    pub version: u8,
    pub world_id: [u8; 16],
    /// Number of receipts in the log.
    pub tree_size: u64,
    pub root_hash: Digest,
    /// First 8 bytes of sha256(public key) of the signing key.
    pub key_id: [u8; 8],
}

impl ReceiptCheckpointBody {
    /// The exact bytes the signature covers: the domain prefix, then postcard.
    pub fn signing_bytes(&self) -> Vec<u8> {
        domain_separated(RECEIPT_CHECKPOINT_DOMAIN, self)
    }
}

/// A receipt-log checkpoint with the host's signature (formats 2 to 4; read, never written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReceiptCheckpoint {
    pub body: ReceiptCheckpointBody,
    pub signature: Vec<u8>,
}

impl SignedReceiptCheckpoint {
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ReceiptError> {
        verify_signature(key, self.body.key_id, &self.body.signing_bytes(), &self.signature)
    }
}

/// A signed checkpoint of either kind, as proofs and kept checkpoint files carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyCheckpoint {
    Journal(SignedCheckpoint),
    Receipts(SignedReceiptCheckpoint),
}

impl AnyCheckpoint {
    /// Decode signed bytes of either kind (told apart by their domain) with their signature.
    pub fn from_signed_bytes(bytes: &[u8], signature: Vec<u8>) -> Result<AnyCheckpoint, ProofError> {
        let malformed = |e: SignedBytesError| ProofError::Malformed(format!("checkpoint: {e}"));
        if bytes.starts_with(RECEIPT_CHECKPOINT_DOMAIN) {
            let body = from_domain_separated(RECEIPT_CHECKPOINT_DOMAIN, bytes).map_err(malformed)?;
            return Ok(AnyCheckpoint::Receipts(SignedReceiptCheckpoint { body, signature }));
        }
        let body: CheckpointBody = from_domain_separated(CHECKPOINT_DOMAIN, bytes).map_err(malformed)?;
        if body.version != CHECKPOINT_VERSION {
            return Err(ProofError::Malformed(format!(
                "checkpoint version {} (this host reads {CHECKPOINT_VERSION})",
                body.version
            )));
        }
        Ok(AnyCheckpoint::Journal(SignedCheckpoint {
            body,
            signature,
            entry_peaks: Vec::new(),
            receipt_peaks: Vec::new(),
        }))
    }

    pub fn world_id(&self) -> [u8; 16] {
        match self {
            AnyCheckpoint::Journal(c) => c.body.world_id,
            AnyCheckpoint::Receipts(c) => c.body.world_id,
        }
    }

    pub fn key_id(&self) -> [u8; 8] {
        match self {
            AnyCheckpoint::Journal(c) => c.body.key_id,
            AnyCheckpoint::Receipts(c) => c.body.key_id,
        }
    }

    /// Size and root of the receipt log it signs.
    pub fn receipts(&self) -> (u64, Digest) {
        match self {
            AnyCheckpoint::Journal(c) => (c.body.receipts, c.body.receipts_root),
            AnyCheckpoint::Receipts(c) => (c.body.tree_size, c.body.root_hash),
        }
    }

    /// Size and root of the journal log it signs (`None`: a receipt-log checkpoint).
    pub fn entries(&self) -> Option<(u64, Digest)> {
        match self {
            AnyCheckpoint::Journal(c) => Some((c.body.entries, c.body.entries_root)),
            AnyCheckpoint::Receipts(_) => None,
        }
    }

    pub fn signing_bytes(&self) -> Vec<u8> {
        match self {
            AnyCheckpoint::Journal(c) => c.body.signing_bytes(),
            AnyCheckpoint::Receipts(c) => c.body.signing_bytes(),
        }
    }

    pub fn signature(&self) -> &[u8] {
        match self {
            AnyCheckpoint::Journal(c) => &c.signature,
            AnyCheckpoint::Receipts(c) => &c.signature,
        }
    }

    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ReceiptError> {
        match self {
            AnyCheckpoint::Journal(c) => c.verify(key),
            AnyCheckpoint::Receipts(c) => c.verify(key),
        }
    }
}

/// Why a proof does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("malformed proof: {0}")]
    Malformed(String),
    #[error("leaf {index} is outside a tree of {size} leaves")]
    OutOfRange { index: u64, size: u64 },
    #[error("the audit path does not lead from the leaf to the checkpoint's root hash")]
    NotIncluded,
    #[error("the older checkpoint attests {old} receipts, the newer log holds only {new}: the log was truncated")]
    Truncated { old: u64, new: u64 },
    #[error(
        "the proof does not show the tree of {old} leaves is a prefix of the tree of {new} leaves: \
         the log was rewritten"
    )]
    Inconsistent { old: u64, new: u64 },
}

fn output(digest: &Digest) -> sha2::digest::Output<Sha256> {
    sha2::digest::Output::<Sha256>::clone_from_slice(digest)
}

fn digests(bytes: &[u8]) -> Vec<Digest> {
    bytes
        .chunks(32)
        .map(|chunk| chunk.try_into().expect("proof bytes are whole sha256 digests"))
        .collect()
}

/// The whole tree over some leaves, in memory, for building proofs.
pub struct ProofTree(MemoryBackedTree<Sha256, Digest>);

impl ProofTree {
    pub fn new(leaves: &[Digest]) -> ProofTree {
        let mut tree = MemoryBackedTree::new();
        for leaf in leaves {
            tree.push(*leaf);
        }
        ProofTree(tree)
    }

    pub fn size(&self) -> u64 {
        self.0.len()
    }

    pub fn root(&self) -> Digest {
        (*self.0.root().as_bytes()).into()
    }

    /// The audit path of leaf `index` in this tree (RFC 6962 `PATH(m, D[n])`), leaf side first.
    pub fn inclusion(&self, index: u64) -> Result<Vec<Digest>, ProofError> {
        if index >= self.size() {
            return Err(ProofError::OutOfRange {
                index,
                size: self.size(),
            });
        }
        Ok(digests(self.0.prove_inclusion(index as usize).as_bytes()))
    }

    /// The consistency proof (RFC 6962 `PROOF(m, D[n])`) from the first `old_size` leaves to this
    /// tree; empty when `old_size` is 0 or the whole tree.
    pub fn consistency(&self, old_size: u64) -> Result<Vec<Digest>, ProofError> {
        let new_size = self.size();
        if old_size > new_size {
            return Err(ProofError::Truncated {
                old: old_size,
                new: new_size,
            });
        }
        if old_size == 0 {
            return Ok(Vec::new());
        }
        Ok(digests(
            self.0.prove_consistency((new_size - old_size) as usize).as_bytes(),
        ))
    }
}

/// Check that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Digest,
    index: u64,
    size: u64,
    root: &Digest,
    path: &[Digest],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let proof = InclusionProof::<Sha256>::from_digests(path.iter().map(output).collect::<Vec<_>>().iter());
    RootHash::<Sha256>::new(output(root), size)
        .verify_inclusion(leaf, index, &proof)
        .map_err(|e| match e {
            ct_merkle::InclusionVerifError::MalformedProof => {
                ProofError::Malformed(format!("an audit path of {} hashes does not fit this tree", path.len()))
            }
            _ => ProofError::NotIncluded,
        })
}

/// Check that the tree (`old_size`, `old_root`) is a prefix of the tree (`new_size`, `new_root`).
pub fn verify_consistency(
    (old_size, old_root): (u64, &Digest),
    (new_size, new_root): (u64, &Digest),
    proof: &[Digest],
) -> Result<(), ProofError> {
    let inconsistent = ProofError::Inconsistent {
        old: old_size,
        new: new_size,
    };
    if old_size > new_size {
        return Err(ProofError::Truncated {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        // Every tree extends the empty one; a tree is consistent with itself only if equal.
        return if proof.is_empty() && (old_size == 0 || old_root == new_root) {
            Ok(())
        } else {
            Err(inconsistent)
        };
    }
    let consistency = ConsistencyProof::<Sha256>::from_digests(proof.iter().map(output).collect::<Vec<_>>().iter());
    RootHash::<Sha256>::new(output(new_root), new_size)
        .verify_consistency(&RootHash::new(output(old_root), old_size), &consistency)
        .map_err(|_| inconsistent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Digest> {
        (0..n).map(|i| sha256(&i.to_le_bytes())).collect()
    }

    /// RFC 6962 reference tree (transparency-dev/merkle and certificate-transparency test data):
    /// these eight leaves hash to this root.
    #[test]
    fn frontier_root_matches_the_rfc_6962_reference_tree() {
        let data = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ];
        let mut peaks: Vec<Digest> = Vec::new();
        let mut size = 0u64;
        for leaf in data {
            // Same algorithm as Frontier::push, over raw leaf bytes rather than digests.
            let mut hash = leaf_hash(&hex::decode(leaf).unwrap());
            let mut bits = size;
            while bits & 1 == 1 {
                hash = node_hash(&peaks.pop().unwrap(), &hash);
                bits >>= 1;
            }
            peaks.push(hash);
            size += 1;
        }
        let frontier = Frontier { size, peaks };
        assert_eq!(
            hex::encode(frontier.root()),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
        assert_eq!(
            hex::encode(Frontier::default().root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn frontier_and_proof_tree_agree_at_every_size() {
        let all = leaves(70);
        let mut frontier = Frontier::default();
        for (n, leaf) in all.iter().enumerate() {
            frontier.push(leaf);
            assert_eq!(frontier.root(), ProofTree::new(&all[..=n]).root(), "size {}", n + 1);
        }
    }

    #[test]
    fn every_leaf_of_small_trees_proves_and_nothing_else_does() {
        for size in 1..=33u64 {
            let all = leaves(size);
            let tree = ProofTree::new(&all);
            let root = tree.root();
            for index in 0..size {
                let path = tree.inclusion(index).unwrap();
                verify_inclusion(&all[index as usize], index, size, &root, &path).unwrap();
                let wrong_leaf = sha256(b"not a receipt");
                assert_eq!(
                    verify_inclusion(&wrong_leaf, index, size, &root, &path),
                    Err(ProofError::NotIncluded)
                );
                if size > 1 {
                    let other = (index + 1) % size;
                    assert!(verify_inclusion(&all[index as usize], other, size, &root, &path).is_err());
                }
            }
        }
    }

    #[test]
    fn random_leaves_of_a_large_tree_prove() {
        let size = 100_003;
        let all = leaves(size);
        let tree = ProofTree::new(&all);
        let root = tree.root();
        let mut index = 12_345u64;
        for _ in 0..200 {
            index = index
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407)
                % size;
            let path = tree.inclusion(index).unwrap();
            assert!(path.len() <= 17);
            verify_inclusion(&all[index as usize], index, size, &root, &path).unwrap();
        }
    }

    #[test]
    fn consistency_between_every_pair_of_small_sizes() {
        let all = leaves(20);
        for new in 0..=20u64 {
            let tree = ProofTree::new(&all[..new as usize]);
            for old in 0..=new {
                let old_root = ProofTree::new(&all[..old as usize]).root();
                let proof = tree.consistency(old).unwrap();
                verify_consistency((old, &old_root), (new, &tree.root()), &proof).unwrap();
                if old > 0 && old < new {
                    let forged = ProofTree::new(&leaves(old + 1)[1..]).root();
                    assert!(verify_consistency((old, &forged), (new, &tree.root()), &proof).is_err());
                }
            }
        }
        let tree = ProofTree::new(&all[..5]);
        assert_eq!(tree.consistency(6), Err(ProofError::Truncated { old: 6, new: 5 }));
    }

    #[test]
    fn checkpoints_sign_and_round_trip_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let key = HostKey::load_or_create(&dir.path().join("k")).unwrap();
        let (mut entries, mut receipts) = (Frontier::default(), Frontier::default());
        for leaf in leaves(5) {
            entries.push(&leaf);
        }
        for leaf in leaves(3) {
            receipts.push(&leaf);
        }
        let state = JournalState {
            entries: &entries,
            receipts: &receipts,
            genesis: [3; 32],
            configuration: 0,
            configuration_hash: [3; 32],
        };
        let checkpoint = SignedCheckpoint::sign(&key, [4; 16], state);
        checkpoint.verify(&key.public()).unwrap();
        assert_eq!(checkpoint.entry_frontier(), Some(entries.clone()));
        assert_eq!(checkpoint.receipt_frontier(), Some(receipts.clone()));
        let decoded =
            AnyCheckpoint::from_signed_bytes(&checkpoint.body.signing_bytes(), checkpoint.signature.clone()).unwrap();
        assert_eq!(decoded.entries(), Some((5, entries.root())));
        assert_eq!(decoded.receipts(), (3, receipts.root()));
        for forge in [
            |c: &mut CheckpointBody| c.entries = 4,
            |c: &mut CheckpointBody| c.entries_root = [0; 32],
            |c: &mut CheckpointBody| c.receipts = 2,
            |c: &mut CheckpointBody| c.genesis = [0; 32],
            |c: &mut CheckpointBody| c.configuration = 9,
        ] {
            let mut forged = checkpoint.clone();
            forge(&mut forged.body);
            assert_eq!(forged.verify(&key.public()), Err(ReceiptError::BadSignature));
        }
        // Peaks other than the signed root's are not taken.
        let mut other = checkpoint.clone();
        other.entry_peaks[0] = [9; 32];
        assert_eq!(other.entry_frontier(), None);
        other.entry_peaks.pop();
        assert_eq!(other.entry_frontier(), None);
    }

    #[test]
    fn receipt_log_checkpoints_of_older_formats_still_decode_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let key = HostKey::load_or_create(&dir.path().join("k")).unwrap();
        let body = ReceiptCheckpointBody {
            version: 1,
            world_id: [4; 16],
            tree_size: 3,
            root_hash: [7; 32],
            key_id: key.key_id(),
        };
        let bytes = body.signing_bytes();
        assert!(bytes.starts_with(b"agentos.checkpoint.v1\0"));
        let decoded = AnyCheckpoint::from_signed_bytes(&bytes, key.signature(&bytes)).unwrap();
        decoded.verify(&key.public()).unwrap();
        assert_eq!((decoded.receipts(), decoded.entries()), ((3, [7; 32]), None));
    }
}
