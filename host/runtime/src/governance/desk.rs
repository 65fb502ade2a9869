//! The world's side of an agent's governance calls: drafting an agent's proposal against the
//! world directory and judging an agent's approval against the policy in force, for the
//! `governance` adapter in `agentos-effects`.
//!
//! A proposal made here is authored by the calling agent and signed by the host key in force on
//! its behalf; it goes through the same drafting and policy checks as a person's (`propose`),
//! and is appended to the journal in the same commit as the call's receipt. An agent approves
//! only where the policy in force names it (`agent:<name>`), never its own proposal; otherwise
//! the call is denied.

use super::GovernanceError;
use super::ledger::{Ledger, configuration_at, genesis};
use super::propose::{Source, draft, journal_proposal};
use super::record::{Author, Verdict};
use super::verdict::journal_verdict;
use crate::journal::Journal;
use crate::receipts::HostKey;
use crate::world::WorldPaths;
use agentos_air::Approver;
use agentos_effects::governance::GovernanceDesk;
use agentos_effects::{EffectFailure, EffectOutcome, EffectResponse};
use std::path::Path;

/// The runtime's [`GovernanceDesk`].
#[derive(Debug, Default)]
pub struct WorldDesk;

impl GovernanceDesk for WorldDesk {
    fn propose(
        &self,
        journal: &mut Journal,
        world_dir: &Path,
        key: &HostKey,
        agent: &str,
        change: &str,
        description: &str,
    ) -> EffectOutcome {
        let journaled = (|| -> Result<_, GovernanceError> {
            let genesis = genesis(journal)?;
            let ledger = Ledger::present(genesis.world_id, configuration_at(journal, &genesis, u64::MAX)?);
            let draft = draft(&WorldPaths::new(world_dir), journal, &ledger, Source::Json(change))?;
            let author = Author::Agent {
                name: agent.to_string(),
            };
            journal_proposal(journal, &ledger, draft, description, author, key)
        })();
        match journaled {
            Ok(journaled) => Ok(EffectResponse::Proposed {
                proposal: journaled.seq,
                hash: hex::encode(journaled.hash),
            }),
            Err(error) => Err(EffectFailure::Failed(crate::text::chain(&error))),
        }
    }

    fn approve(
        &self,
        journal: &mut Journal,
        key: &HostKey,
        agent: &str,
        proposal: &str,
        comment: &str,
    ) -> EffectOutcome {
        let judged = (|| {
            let ledger = Ledger::read_uncommitted(journal)?;
            let policy = ledger.in_force().manifest.policy.clone().unwrap_or_default();
            let Some(name) = policy.approver_named(Approver::Agent(agent)) else {
                return Ok(Err(EffectFailure::Denied(format!(
                    "the policy in force does not name agent `{agent}` as an approver (`agent:{agent}` in [policy] approvers)"
                ))));
            };
            let name = name.to_string();
            let seq: u64 = proposal
                .trim_start_matches('#')
                .parse()
                .map_err(|_| GovernanceError::NotAProposalNumber(proposal.to_string()))?;
            journal_verdict(
                journal,
                &ledger,
                seq,
                (&name, Some(agent)),
                key,
                Verdict::Approve,
                comment,
            )?;
            Ok::<_, GovernanceError>(Ok(EffectResponse::Unit))
        })();
        judged.unwrap_or_else(|error| Err(EffectFailure::Failed(crate::text::chain(&error))))
    }
}
