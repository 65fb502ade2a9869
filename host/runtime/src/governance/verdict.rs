//! `approve` / `reject`: a signed verdict on a proposal. Only an approver the policy in force
//! names counts, under the name the policy gives it: a person by their key, or an agent listed
//! as `agent:<name>` (through the `governance` effect, signed by the host). Each approver judges
//! a proposal once; no agent judges its own proposal.

use super::ledger::{Ledger, Readiness};
use super::record::{Author, SignedVerdict, Verdict, VerdictBody};
use super::{GovernanceError, Result};
use crate::journal::Journal;
use crate::journal::entry::EntryBody;
use crate::receipts::HostKey;
use crate::world::{WorldPaths, open_journal_to_write};
use agentos_air::Approver;
use std::path::Path;

/// A verdict journaled, and where the proposal stands after it.
#[derive(Debug, Clone)]
pub struct Judged {
    pub seq: u64,
    pub approver: String,
    pub readiness: Readiness,
}

/// A person's verdict on proposal `proposal`, signed by `key` (the key file `key_name`).
pub fn judge(
    root: &Path,
    proposal: u64,
    key_name: &str,
    key: &HostKey,
    verdict: Verdict,
    comment: &str,
) -> Result<Judged> {
    let mut journal = open_journal_to_write(&WorldPaths::new(root))?;
    let ledger = Ledger::read(&journal)?;
    let policy = ledger.in_force().manifest.policy.clone().unwrap_or_default();
    let Some(approver) = policy.approver_named(Approver::Person(key.public().to_bytes())) else {
        let named: Vec<String> = policy
            .approvers
            .iter()
            .map(|(name, k)| format!("{name} ({}…)", &k[..16.min(k.len())]))
            .collect();
        return Err(GovernanceError::NotAnApprover {
            key_name: key_name.to_string(),
            public_key: hex::encode(key.public().as_bytes()),
            approvers: crate::text::listed(&named, ", "),
        });
    };
    let approver = approver.to_string();
    let (seq, entry) = journal_verdict(
        &mut journal,
        &ledger,
        proposal,
        (&approver, None),
        key,
        verdict,
        comment,
    )?;
    committed(&mut journal, ledger, (seq, &entry), proposal, approver)
}

/// Commit a verdict journaled as `seq`, and say where its proposal stands.
fn committed(
    journal: &mut Journal,
    mut ledger: Ledger,
    (seq, entry): (u64, &EntryBody),
    proposal: u64,
    approver: String,
) -> Result<Judged> {
    journal.commit()?;
    ledger
        .observe(seq, entry)
        .map_err(|problem| GovernanceError::Contradiction { seq, problem })?;
    Ok(Judged {
        seq,
        approver,
        readiness: ledger.readiness(proposal),
    })
}

/// A person's verdict signed elsewhere (by an approver's own key, on their machine or in
/// their browser), checked and journaled: it must be for this world and the proposal as
/// journaled, by a key the policy in force names under the name it gives, signed over the
/// documented verdict bytes. The journal stays as it was if any check fails.
pub fn judge_signed(journal: &mut Journal, signed: SignedVerdict) -> Result<Judged> {
    let ledger = Ledger::read(journal)?;
    let body = &signed.body;
    let refused = |reason: String| {
        Err(GovernanceError::CannotJudge {
            proposal: body.proposal,
            reason,
        })
    };
    if body.version != 1 {
        return refused(format!("verdict version {} (this host takes version 1)", body.version));
    }
    if body.world_id != ledger.world_id {
        return refused(format!(
            "the verdict is for world {}, not this world ({})",
            hex::encode(body.world_id),
            hex::encode(ledger.world_id)
        ));
    }
    if body.by_agent.is_some() {
        return refused("an agent's verdict is given through the `governance` effect, not signed elsewhere".into());
    }
    let state = ledger.proposal(body.proposal)?;
    if body.proposal_hash != state.hash {
        return refused(format!(
            "the verdict signs proposal hash sha256:{}, but proposal #{} is sha256:{}",
            hex::encode(body.proposal_hash),
            body.proposal,
            hex::encode(state.hash)
        ));
    }
    let policy = ledger.in_force().manifest.policy.clone().unwrap_or_default();
    let Some(approver) = policy.approver_named(Approver::Person(signed.public_key)) else {
        return Err(GovernanceError::NotAnApprover {
            key_name: "the signing key".into(),
            public_key: hex::encode(signed.public_key),
            approvers: crate::text::listed(&policy.approvers.keys().cloned().collect::<Vec<_>>(), ", "),
        });
    };
    if approver != body.approver {
        return refused(format!(
            "the policy names the signing key `{approver}`, but the verdict says `{}`",
            body.approver
        ));
    }
    if let Err(error) = signed.verify_signature() {
        return refused(format!("its signature does not check: {error}"));
    }
    check_verdict(&ledger, body.proposal, (&body.approver, None))?;
    let proposal = body.proposal;
    let approver = body.approver.clone();
    let entry = EntryBody::Verdict(signed);
    let seq = journal.append(entry.clone());
    committed(journal, ledger, (seq, &entry), proposal, approver)
}

/// Whether `approver` (and the agent, when an agent judges) may judge `proposal` now.
fn check_verdict(ledger: &Ledger, proposal: u64, (approver, by_agent): (&str, Option<&str>)) -> Result<()> {
    let state = ledger.proposal(proposal)?;
    if let Some(reason) = ledger.closed(state) {
        return Err(GovernanceError::CannotJudge { proposal, reason });
    }
    if let (Some(agent), Author::Agent { name }) = (by_agent, &state.proposal.body.author)
        && agent == name
    {
        return Err(GovernanceError::OwnProposal {
            agent: agent.to_string(),
            proposal,
        });
    }
    if let Some((at, earlier)) = state.verdicts.iter().find(|(_, v)| v.body.approver == approver) {
        return Err(GovernanceError::AlreadyJudged {
            approver: approver.to_string(),
            verdict: earlier.body.verdict.label(),
            proposal,
            at: *at,
        });
    }
    Ok(())
}

/// Check and append (not commit) a verdict by `approver` (its name in the policy, and the agent
/// when an agent gives it), signed by `key`. Returns its entry number and the entry.
pub fn journal_verdict(
    journal: &mut Journal,
    ledger: &Ledger,
    proposal: u64,
    (approver, by_agent): (&str, Option<&str>),
    key: &HostKey,
    verdict: Verdict,
    comment: &str,
) -> Result<(u64, EntryBody)> {
    check_verdict(ledger, proposal, (approver, by_agent))?;
    let state = ledger.proposal(proposal)?;
    let body = VerdictBody {
        version: 1,
        world_id: ledger.world_id,
        proposal,
        proposal_hash: state.hash,
        verdict,
        approver: approver.to_string(),
        by_agent: by_agent.map(str::to_string),
        comment: comment.to_string(),
    };
    let entry = EntryBody::Verdict(SignedVerdict::sign(body, key));
    Ok((journal.append(entry.clone()), entry))
}
