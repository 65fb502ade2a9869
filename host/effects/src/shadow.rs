//! The shadow backend: re-running recorded steps under a proposed manifest without touching
//! the world outside. Each call is first decided against the proposed grants by the same
//! [`decide`] as live, on the blobs the journal holds and the fork's pending timers (a denial is
//! reported and returned as the live host would; budgets, which only the live world's receipts
//! hold, are not consulted); a request identical to the one recorded at the same place is served
//! from its receipt; anything else is not executed — it is reported as
//! "would call" and the guest gets a failure saying so. Log lines are served locally, as live.

use super::decide::{Facts, Verdict, decide};
use super::replay::RecordedCalls;
use super::timer::TimerTable;
use super::{EffectBackend, EffectCall, EffectFailure, EffectOutcome, EffectRequest, EffectResponse};
use crate::caps::AgentGrants;
use crate::journal::SharedJournal;
use std::sync::{Arc, Mutex};

/// What the shadow did with one call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShadowServed {
    /// The recorded receipt's outcome.
    FromReceipt,
    /// Not executed: new, or different from the recorded request.
    WouldCall,
    /// The proposed grants do not allow it.
    Denied { reason: String },
}

/// One call of a shadow step.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShadowCall {
    pub step: u64,
    pub index: u32,
    pub effect: String,
    pub request: String,
    pub served: ShadowServed,
}

pub struct ShadowEffects {
    journal: SharedJournal,
    grants: Arc<AgentGrants>,
    /// The fork's pending timers.
    timers: Arc<Mutex<TimerTable>>,
    /// Timers this step has set so far (they join the table when it commits).
    scheduled: u32,
    recorded: Arc<RecordedCalls>,
    calls: Arc<Mutex<Vec<ShadowCall>>>,
}

impl ShadowEffects {
    /// `calls` collects what happened to every call.
    pub fn new(
        journal: SharedJournal,
        grants: Arc<AgentGrants>,
        timers: Arc<Mutex<TimerTable>>,
        recorded: Arc<RecordedCalls>,
        calls: Arc<Mutex<Vec<ShadowCall>>>,
    ) -> ShadowEffects {
        ShadowEffects {
            journal,
            grants,
            timers,
            scheduled: 0,
            recorded,
            calls,
        }
    }

    /// What deciding `call` depends on, as the fork has it.
    fn facts(&self, call: &EffectCall<'_>) -> wasmtime::Result<Facts> {
        let mut facts = Facts::default();
        match call.request {
            EffectRequest::BlobGet { digest } => {
                let journal = self
                    .journal
                    .lock()
                    .map_err(|_| wasmtime::format_err!("journal lock poisoned"))?;
                facts.blob_size = super::blob::lookup(&journal, digest).ok().map(|b| b.len() as u64);
            }
            EffectRequest::TimerSchedule { .. } => {
                facts.pending_timers = self.timers.lock().expect("timer lock").pending_of(call.agent) + self.scheduled;
            }
            _ => {}
        }
        Ok(facts)
    }
}

impl EffectBackend for ShadowEffects {
    fn perform(&mut self, call: &EffectCall<'_>) -> wasmtime::Result<EffectOutcome> {
        let facts = self.facts(call)?;
        let (served, outcome) = if let Verdict::Deny { reason } = decide(&self.grants, call.request, call.at_ms, facts)
        {
            (
                ShadowServed::Denied { reason: reason.clone() },
                Err(EffectFailure::Denied(reason)),
            )
        } else if let Some(recorded) = self
            .recorded
            .get(&(call.ingress, call.index))
            .filter(|r| r.request_digest == call.request_digest)
        {
            let journal = self
                .journal
                .lock()
                .map_err(|_| wasmtime::format_err!("journal lock poisoned"))?;
            let bytes = journal
                .payload_bytes(&recorded.outcome)?
                .ok_or_else(|| wasmtime::format_err!("a recorded outcome is missing from the journal"))?;
            let outcome: EffectOutcome = postcard::from_bytes(&bytes)
                .map_err(|e| wasmtime::format_err!("recorded outcome does not decode: {e}"))?;
            if matches!(outcome, Ok(EffectResponse::TimerScheduled { .. })) {
                self.scheduled += 1;
            }
            (ShadowServed::FromReceipt, outcome)
        } else if matches!(call.request, EffectRequest::Log { .. }) {
            return Ok(super::log::execute());
        } else {
            (
                ShadowServed::WouldCall,
                Err(EffectFailure::Failed(
                    "not executed: this is a shadow run, and the journal records no identical call here".into(),
                )),
            )
        };
        self.calls.lock().expect("shadow call lock").push(ShadowCall {
            step: call.ingress,
            index: call.index,
            effect: call.request.effect().to_string(),
            request: call.request.summary(),
            served,
        });
        Ok(outcome)
    }
}
