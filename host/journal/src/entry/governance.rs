//! The journal entries of the governance loop and what their signatures cover.
//!
//! A proposal is signed by its author: a person's key (`keys new`), or the host key in force
//! when an agent proposes through the `governance` effect. A verdict (approval or rejection) is
//! signed by the person giving it, over the proposal's hash. Applying journals the new manifest
//! of record with its module table and the agents' migrated state digests, so replay can redo
//! the migration and compare. This module does no IO.

use crate::entry::{Digest, sha256};
use crate::receipts::{HostKey, domain_separated};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Domain separation prefix of a proposal's signed bytes.
pub const PROPOSAL_DOMAIN: &[u8] = b"agentos.proposal.v1\0";
/// Domain separation prefix of a verdict's signed bytes.
pub const VERDICT_DOMAIN: &[u8] = b"agentos.verdict.v1\0";

/// Who wrote a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Author {
    /// A person, by the name of their key file and its public key.
    Person { name: String, public_key: [u8; 32] },
    /// An agent of the world, through the `governance` effect; the host signs on its behalf.
    Agent { name: String },
}

impl std::fmt::Display for Author {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Author::Person { name, public_key } => write!(f, "{name} (key {})", hex::encode(&public_key[..8])),
            Author::Agent { name } => write!(f, "agent `{name}` (signed by the host)"),
        }
    }
}

/// What a proposal states. Field order is part of the signed format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalBody {
    pub version: u8,
    pub world_id: [u8; 16],
    /// Digest of the manifest in force the patch was written against.
    pub base: Digest,
    /// The AIR patch (`agentos_air::Patch`, JSON form).
    pub patch_json: String,
    /// Component bytes of every module of the proposed manifest (sha256, in the blob table).
    pub modules: Vec<(String, Digest)>,
    pub description: String,
    pub author: Author,
    /// Set when the proposal returns the world to an earlier manifest.
    pub reverts_to: Option<Digest>,
}

impl ProposalBody {
    pub fn signing_bytes(&self) -> Vec<u8> {
        domain_separated(PROPOSAL_DOMAIN, self)
    }

    /// The proposal's identity: what verdicts sign.
    pub fn hash(&self) -> Digest {
        sha256(&self.signing_bytes())
    }
}

/// A proposal with its author's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub body: ProposalBody,
    /// The key that signed: the person's, or the host key in force for an agent.
    pub signer: [u8; 32],
    pub signature: Vec<u8>,
}

impl Proposal {
    pub fn sign(body: ProposalBody, key: &HostKey) -> Proposal {
        Proposal {
            signature: key.signature(&body.signing_bytes()),
            signer: key.public().to_bytes(),
            body,
        }
    }

    /// Check a person's proposal: signed by the author's own key.
    pub fn verify_person(&self) -> Result<(), SignatureError> {
        match &self.body.author {
            Author::Person { public_key, .. } if *public_key == self.signer => {
                check_signature(&self.signer, &self.body.signing_bytes(), &self.signature)
            }
            Author::Person { .. } => Err(SignatureError::NotTheAuthors),
            Author::Agent { .. } => Err(SignatureError::AgentNotByHostKey("agent-authored but")),
        }
    }

    /// Check the signature; `host_key` is the host key in force at this entry.
    pub fn verify(&self, host_key: &VerifyingKey) -> Result<(), SignatureError> {
        match &self.body.author {
            Author::Person { public_key, .. } if *public_key != self.signer => {
                return Err(SignatureError::NotTheAuthors);
            }
            Author::Agent { .. } if self.signer != host_key.to_bytes() => {
                return Err(SignatureError::AgentNotByHostKey("agent-authored but"));
            }
            _ => {}
        }
        check_signature(&self.signer, &self.body.signing_bytes(), &self.signature)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Reject => "rejected",
        }
    }
}

/// What a verdict states. Field order is part of the signed format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictBody {
    pub version: u8,
    pub world_id: [u8; 16],
    /// Entry number and hash of the proposal judged.
    pub proposal: u64,
    pub proposal_hash: Digest,
    pub verdict: Verdict,
    /// The approver's name in the policy in force.
    pub approver: String,
    /// Set for an agent approver (the policy lists it as `agent:<name>`): the verdict is then
    /// signed by the host key in force on the agent's behalf.
    pub by_agent: Option<String>,
    pub comment: String,
}

impl VerdictBody {
    pub fn signing_bytes(&self) -> Vec<u8> {
        domain_separated(VERDICT_DOMAIN, self)
    }
}

/// An approval or rejection, signed by the approver's key (the host key for an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVerdict {
    pub body: VerdictBody,
    pub public_key: [u8; 32],
    pub signature: Vec<u8>,
}

impl SignedVerdict {
    pub fn sign(body: VerdictBody, key: &HostKey) -> SignedVerdict {
        SignedVerdict {
            signature: key.signature(&body.signing_bytes()),
            public_key: key.public().to_bytes(),
            body,
        }
    }

    /// Check the signature of a person's verdict: by the key it carries.
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        check_signature(&self.public_key, &self.body.signing_bytes(), &self.signature)
    }

    /// Check the signature; `host_key` is the host key in force at this entry, which must have
    /// signed an agent's verdict.
    pub fn verify(&self, host_key: &VerifyingKey) -> Result<(), SignatureError> {
        if self.body.by_agent.is_some() && self.public_key != host_key.to_bytes() {
            return Err(SignatureError::AgentNotByHostKey("an agent's verdict"));
        }
        check_signature(&self.public_key, &self.body.signing_bytes(), &self.signature)
    }
}

/// A shadow run of a proposal: its report (JSON, in the blob table) and verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowRecord {
    pub proposal: u64,
    pub proposal_hash: Digest,
    /// sha256 of the report's JSON bytes.
    pub report: Digest,
    /// No trap, failed migration or denial under the new manifest.
    pub clean: bool,
    pub summary: String,
}

/// The manifest of record changes: from this entry on, the world runs `manifest_json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestApplied {
    pub proposal: u64,
    pub proposal_hash: Digest,
    /// Digest of the manifest this one replaces.
    pub previous: Digest,
    pub manifest_json: String,
    pub manifest_digest: Digest,
    pub modules: Vec<(String, Digest)>,
    /// Logical time of the migration (what the agents' clocks read during `restore`).
    pub at_ms: u64,
    /// Every agent's state digest after migration.
    pub agents: Vec<(String, Digest)>,
}

/// An apply that was refused after the approvals checked out (the new components do not
/// match their worlds, or a `restore` rejected the old state). Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyRefused {
    pub proposal: u64,
    pub reason: String,
}

/// Why a proposal's or verdict's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signed by a key other than its author's")]
    NotTheAuthors,
    /// What was signed by another key ("agent-authored but", "an agent's verdict").
    #[error("{0} not signed by the host key in force")]
    AgentNotByHostKey(&'static str),
    #[error("{key} is not an ed25519 key: {reason}")]
    NotAKey { key: String, reason: String },
    #[error("the signature is not 64 bytes")]
    Length,
    #[error("the signature does not verify")]
    DoesNotVerify,
}

fn check_signature(public_key: &[u8; 32], bytes: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|e| SignatureError::NotAKey {
        key: hex::encode(public_key),
        reason: e.to_string(),
    })?;
    let signature = Signature::from_slice(signature).map_err(|_| SignatureError::Length)?;
    key.verify(bytes, &signature).map_err(|_| SignatureError::DoesNotVerify)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(author: Author) -> ProposalBody {
        ProposalBody {
            version: 1,
            world_id: [7; 16],
            base: [1; 32],
            patch_json: "{}".into(),
            modules: vec![("m".into(), [2; 32])],
            description: "d".into(),
            author,
            reverts_to: None,
        }
    }

    #[test]
    fn proposals_and_verdicts_verify_only_under_their_signers() {
        let (ada, host, other) = (
            HostKey::ephemeral().unwrap(),
            HostKey::ephemeral().unwrap(),
            HostKey::ephemeral().unwrap(),
        );
        let person = Author::Person {
            name: "ada".into(),
            public_key: ada.public().to_bytes(),
        };
        let proposal = Proposal::sign(body(person.clone()), &ada);
        assert_eq!(proposal.verify(&host.public()), Ok(()));
        let mut altered = proposal.clone();
        altered.body.description = "e".into();
        assert_eq!(altered.verify(&host.public()), Err(SignatureError::DoesNotVerify));
        assert!(Proposal::sign(body(person), &other).verify(&host.public()).is_err());

        let by_agent = Proposal::sign(body(Author::Agent { name: "a".into() }), &host);
        assert_eq!(by_agent.verify(&host.public()), Ok(()));
        assert_eq!(
            by_agent.verify(&other.public()).unwrap_err().to_string(),
            "agent-authored but not signed by the host key in force"
        );

        let verdict = SignedVerdict::sign(
            VerdictBody {
                version: 1,
                world_id: [7; 16],
                proposal: 4,
                proposal_hash: proposal.body.hash(),
                verdict: Verdict::Approve,
                approver: "ada".into(),
                by_agent: None,
                comment: String::new(),
            },
            &ada,
        );
        assert_eq!(verdict.verify(&host.public()), Ok(()));
        let mut flipped = verdict.clone();
        flipped.body.verdict = Verdict::Reject;
        assert!(flipped.verify(&host.public()).is_err());
        let mut posing = verdict.clone();
        posing.body.by_agent = Some("reviewer".into());
        assert!(
            posing
                .verify(&host.public())
                .unwrap_err()
                .to_string()
                .contains("host key in force")
        );
    }
}
