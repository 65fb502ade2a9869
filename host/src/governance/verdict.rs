//! `approve` / `reject`: a person's signed verdict on a proposal. Only a key the policy in force
//! names counts, under the name the policy gives it; each approver judges a proposal once.

use super::ledger::{Ledger, Readiness};
use super::record::{SignedVerdict, Verdict, VerdictBody};
use crate::journal::entry::EntryBody;
use crate::receipts::HostKey;
use crate::world::{WorldPaths, open_existing_journal};
use anyhow::{Result, bail};
use std::path::Path;

/// A verdict journaled, and where the proposal stands after it.
#[derive(Debug, Clone)]
pub struct Judged {
    pub seq: u64,
    pub approver: String,
    pub readiness: Readiness,
}

/// Journal `verdict` on proposal `proposal`, signed by `key` (the key file `key_name`).
pub fn judge(
    root: &Path,
    proposal: u64,
    key_name: &str,
    key: &HostKey,
    verdict: Verdict,
    comment: &str,
) -> Result<Judged> {
    let mut journal = open_existing_journal(&WorldPaths::new(root))?;
    let mut ledger = Ledger::read(&journal)?;
    let state = ledger.proposal(proposal)?.clone();
    let policy = ledger.in_force().manifest.policy.clone().unwrap_or_default();
    let public = hex::encode(key.public().as_bytes());
    let Some(approver) = policy
        .approvers
        .iter()
        .find(|(_, k)| **k == public)
        .map(|(name, _)| name.clone())
    else {
        let named: Vec<String> = policy
            .approvers
            .iter()
            .map(|(name, k)| format!("{name} ({}…)", &k[..16.min(k.len())]))
            .collect();
        bail!(
            "key `{key_name}` (public key {public}) is not an approver in the policy in force; approvers: {}",
            if named.is_empty() {
                "none".to_string()
            } else {
                named.join(", ")
            }
        );
    };
    if let Some(at) = state.applied {
        bail!("proposal #{proposal} was already applied (entry #{at})");
    }
    if let Some((at, earlier)) = state
        .verdicts
        .iter()
        .find(|(_, v)| v.body.approver == approver && v.public_key == key.public().to_bytes())
    {
        bail!(
            "{approver} already {} proposal #{proposal} (entry #{at})",
            earlier.body.verdict.label()
        );
    }
    let current = ledger.in_force().digest;
    if state.proposal.body.base != current {
        bail!(
            "proposal #{proposal} was written against manifest sha256:{}, but the world now runs sha256:{}; it can no longer be applied (propose the change again)",
            hex::encode(state.proposal.body.base),
            hex::encode(current)
        );
    }
    let body = VerdictBody {
        version: 1,
        world_id: ledger.world_id,
        proposal,
        proposal_hash: state.hash,
        verdict,
        approver: approver.clone(),
        comment: comment.to_string(),
    };
    let entry = EntryBody::Verdict(SignedVerdict::sign(body, key));
    let seq = journal.append(entry.clone());
    journal.commit()?;
    ledger
        .observe(seq, &entry)
        .map_err(|problem| anyhow::anyhow!("entry #{seq}: {problem}"))?;
    Ok(Judged {
        seq,
        approver,
        readiness: ledger.readiness(proposal),
    })
}
