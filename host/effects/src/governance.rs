//! The `governance` effect's adapter: an agent reads the manifest of record in force
//! and proposes changes to it.
//!
//! A proposal made here is authored by the calling agent and signed by the host key in force on
//! its behalf; it goes through the same drafting and policy checks as a person's (`propose`),
//! and is appended to the journal in the same commit as the call's receipt. An agent approves
//! only where the policy in force names it (`agent:<name>`), never its own proposal; otherwise
//! the call is denied.

use super::{EffectFailure, EffectOutcome, EffectResponse};
use crate::journal::Journal;
use crate::journal::ledger::{configuration_at, genesis};
use crate::receipts::HostKey;
use std::path::Path;

/// Longest change text an agent may propose.
pub const CHANGE_MAX_BYTES: usize = 1024 * 1024;

/// The manifest of record in force, as JSON.
pub fn manifest(journal: &Journal) -> EffectOutcome {
    let in_force = genesis(journal).and_then(|genesis| configuration_at(journal, &genesis, u64::MAX));
    match in_force {
        Ok(configuration) => Ok(EffectResponse::Manifest(configuration.manifest.to_json())),
        Err(error) => Err(EffectFailure::Failed(error.to_string())),
    }
}

/// What an agent's `propose` and `approve` calls need from the world: drafting a proposal
/// (reading module files against the world directory) and judging a verdict against the
/// policy in force. The runtime provides it; effects cannot reach the world themselves.
pub trait GovernanceDesk: Send + Sync {
    /// Draft, sign (with the host key, for `agent`) and journal a proposal from `change`: a
    /// patch whose hashes may be left out, or a whole manifest, as JSON.
    fn propose(
        &self,
        journal: &mut Journal,
        world_dir: &Path,
        key: &HostKey,
        agent: &str,
        change: &str,
        description: &str,
    ) -> EffectOutcome;

    /// Approve proposal `proposal` (its entry number, `#` optional) as `agent`, if the policy in
    /// force names it an approver; signed by the host key.
    fn approve(
        &self,
        journal: &mut Journal,
        key: &HostKey,
        agent: &str,
        proposal: &str,
        comment: &str,
    ) -> EffectOutcome;
}
