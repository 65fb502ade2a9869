//! What a served world shows of its agents while it runs: each agent's module, grants, last
//! committed state digest, whether a step of it is in flight, how much input waits for it, and
//! the use of its budgeted grants in their windows. Read on the world's thread
//! ([`super::Sender::query`]).

use crate::kernel::Kernel;

#[derive(Debug, Clone)]
pub struct AgentView {
    pub name: String,
    pub module: String,
    /// Names of the capabilities it holds (`caps` of the manifest).
    pub grants: Vec<String>,
    /// sha256 of its last committed state, hex.
    pub state_digest: String,
    /// A step of it is running.
    pub busy: bool,
    /// Inputs queued for it, not yet started.
    pub queued: usize,
    pub budgets: Vec<BudgetView>,
}

/// One budgeted grant: what its budget allows and what was used of it.
#[derive(Debug, Clone)]
pub struct BudgetView {
    pub grant: String,
    /// The budget's sliding window of logical time; the world's whole life when absent.
    pub window_ms: Option<u64>,
    pub calls: Use,
    pub bytes: Use,
    pub tokens: Use,
}

#[derive(Debug, Clone, Copy)]
pub struct Use {
    pub used: u64,
    /// No limit when absent.
    pub limit: Option<u64>,
}

/// Every agent of the world, by name.
pub fn agents(kernel: &Kernel) -> Vec<AgentView> {
    kernel
        .agents()
        .iter()
        .map(|(name, slot)| AgentView {
            name: name.clone(),
            module: slot.def.module.clone(),
            grants: slot.def.grants.clone(),
            state_digest: hex::encode(slot.state_digest),
            busy: kernel.busy(name),
            queued: kernel.queued_for(name),
            budgets: slot
                .grants
                .budgets()
                .iter()
                .map(|(grant, budget)| {
                    let (calls, bytes, tokens) = kernel.budget_used(name, grant, budget.window_ms);
                    BudgetView {
                        grant: grant.clone(),
                        window_ms: budget.window_ms,
                        calls: Use {
                            used: calls,
                            limit: budget.calls,
                        },
                        bytes: Use {
                            used: bytes,
                            limit: budget.bytes,
                        },
                        tokens: Use {
                            used: tokens,
                            limit: budget.tokens,
                        },
                    }
                })
                .collect(),
        })
        .collect()
}
