//! The stepper's own state as a snapshot stores it, and the folds that rebuild it from entries:
//! pending timers and the use of budgeted grants. Recovery and `verify` both rebuild them here,
//! so a snapshot is judged by the same rules the stepper kept. Pure.

use std::collections::BTreeMap;

/// The stepper's own state, as a snapshot stores it (`postcard`, in the blob table).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StepperState {
    pub last_at_ms: u64,
    pub last_step: u64,
    pub timers: TimerTable,
    pub budgets: BudgetLedger,
    /// Ingress entries journaled but not yet processed, in order.
    pub pending: Vec<u64>,
}

/// A timer that has been journaled and has neither fired nor been cancelled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingTimer {
    pub agent: String,
    pub event: String,
    pub due_ms: u64,
}

/// The world's pending timers, by id.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TimerTable {
    pub pending: BTreeMap<u64, PendingTimer>,
}

impl TimerTable {
    pub fn pending_of(&self, agent: &str) -> u32 {
        self.pending.values().filter(|t| t.agent == agent).count() as u32
    }

    /// The timer due first (by due time, then id) among those of agents `ready` accepts, if
    /// it is due at `now_ms`.
    pub fn take_due(&mut self, now_ms: u64, ready: impl Fn(&str) -> bool) -> Option<(u64, PendingTimer)> {
        let (&id, _) = self
            .pending
            .iter()
            .filter(|(_, t)| t.due_ms <= now_ms && ready(&t.agent))
            .min_by_key(|(id, t)| (t.due_ms, **id))?;
        self.pending.remove(&id).map(|timer| (id, timer))
    }

    /// When the next timer is due.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.next_due_ms_of(|_| true)
    }

    /// When the next timer of an agent `ready` accepts is due.
    pub fn next_due_ms_of(&self, ready: impl Fn(&str) -> bool) -> Option<u64> {
        self.pending
            .values()
            .filter(|t| ready(&t.agent))
            .map(|t| t.due_ms)
            .min()
    }

    /// Take in a journaled entry: a timer scheduled or cancelled, or a timer's firing (an
    /// ingress from `timer:<id>`). Recovery and `verify` rebuild the table through here.
    pub fn observe(&mut self, entry: &crate::entry::EntryBody) {
        use crate::entry::EntryBody;
        match entry {
            EntryBody::TimerScheduled(t) => {
                let timer = PendingTimer {
                    agent: t.agent.clone(),
                    event: t.event.clone(),
                    due_ms: t.due_ms,
                };
                self.pending.insert(t.id, timer);
            }
            EntryBody::TimerCancelled(t) => {
                self.pending.remove(&t.id);
            }
            EntryBody::Ingress(ingress) => {
                if let Some(id) = ingress.source.strip_prefix("timer:").and_then(|id| id.parse().ok()) {
                    self.pending.remove(&id);
                }
            }
            _ => {}
        }
    }
}

/// One call counted against a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BudgetUse {
    /// Logical time of the step that made the call.
    pub at_ms: u64,
    pub bytes: u64,
    pub tokens: u64,
}

/// A call a grant's budget does not admit: the limit its use has reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("grant `{grant}` of agent `{agent}` has used {used} of its {limit} {what}{}", per(*.window_ms))]
pub struct OverBudget {
    pub agent: String,
    pub grant: String,
    pub used: u64,
    pub limit: u64,
    /// `calls`, `bytes` or `tokens`.
    pub what: &'static str,
    pub window_ms: Option<u64>,
}

fn per(window_ms: Option<u64>) -> String {
    window_ms.map(|w| format!(" per {w} ms")).unwrap_or_default()
}

/// Use of budgeted grants, from receipts, per (agent, grant), oldest first.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct BudgetLedger {
    uses: std::collections::BTreeMap<(String, String), std::collections::VecDeque<BudgetUse>>,
}

impl BudgetLedger {
    /// The uses held per (agent, grant), oldest first (those that left a window are forgotten).
    pub fn uses(&self) -> std::collections::BTreeMap<(String, String), Vec<BudgetUse>> {
        self.uses
            .iter()
            .map(|(key, uses)| (key.clone(), uses.iter().copied().collect()))
            .collect()
    }

    /// Count one call that reached its adapter.
    pub fn record(&mut self, agent: &str, grant: &str, at_ms: u64, bytes: u64, tokens: u64) {
        self.uses
            .entry((agent.to_string(), grant.to_string()))
            .or_default()
            .push_back(BudgetUse { at_ms, bytes, tokens });
    }

    /// Count a receipt against its grant's budget, when the grant has one (`budgeted` says) and
    /// the call reached its adapter. Live calls and recovery both count through here.
    pub fn count(&mut self, budgeted: impl Fn(&str) -> bool, receipt: &crate::receipts::ReceiptBody, at_ms: u64) {
        let Some(grant) = &receipt.grant else { return };
        if budgeted(grant) && receipt.status.reached_adapter() {
            let usage = &receipt.usage;
            let tokens = usage.tokens_in + usage.tokens_out;
            self.record(
                &receipt.agent,
                grant,
                at_ms,
                usage.bytes_sent + usage.bytes_received,
                tokens,
            );
        }
    }

    /// Calls, bytes and tokens `agent` used under `grant` in the window before `at_ms` (or
    /// in all, with no window).
    pub fn used(&self, agent: &str, grant: &str, window_ms: Option<u64>, at_ms: u64) -> (u64, u64, u64) {
        let Some(uses) = self.uses.get(&(agent.to_string(), grant.to_string())) else {
            return (0, 0, 0);
        };
        let inside = uses
            .iter()
            .filter(|u| window_ms.is_none_or(|window| u.at_ms.saturating_add(window) > at_ms));
        inside.fold((0, 0, 0), |(calls, bytes, tokens), u| {
            (calls + 1, bytes + u.bytes, tokens + u.tokens)
        })
    }

    /// Whether one more call under `grant` fits its budget at logical time `at_ms`. A call that
    /// crosses a byte or token limit is allowed; the ones after it are not.
    pub fn admit(
        &mut self,
        agent: &str,
        grant: &str,
        budget: &agentos_air::Budget,
        at_ms: u64,
    ) -> Result<(), OverBudget> {
        let Some(uses) = self.uses.get_mut(&(agent.to_string(), grant.to_string())) else {
            return Ok(());
        };
        if let Some(window) = budget.window_ms {
            while uses.front().is_some_and(|u| u.at_ms.saturating_add(window) <= at_ms) {
                uses.pop_front();
            }
        }
        let calls = uses.len() as u64;
        let bytes: u64 = uses.iter().map(|u| u.bytes).sum();
        let tokens: u64 = uses.iter().map(|u| u.tokens).sum();
        for (limit, used, what) in [
            (budget.calls, calls, "calls"),
            (budget.bytes, bytes, "bytes"),
            (budget.tokens, tokens, "tokens"),
        ] {
            if let Some(limit) = limit
                && used >= limit
            {
                return Err(OverBudget {
                    agent: agent.to_string(),
                    grant: grant.to_string(),
                    used,
                    limit,
                    what,
                    window_ms: budget.window_ms,
                });
            }
        }
        Ok(())
    }
}
