//! The shadow backend: re-running recorded steps under a proposed manifest without touching
//! the world outside. Each call is first checked against the proposed grants (a denial is
//! reported and returned as the live host would); a request identical to the one recorded at the
//! same place is served from its receipt; anything else is not executed — it is reported as
//! "would call" and the guest gets a failure saying so. Log lines are served locally, as live.

use super::replay::RecordedCalls;
use super::{EffectBackend, EffectCall, EffectFailure, EffectOutcome, EffectRequest};
use crate::caps::{AgentGrants, Decision};
use crate::journal::SharedJournal;
use std::sync::{Arc, Mutex};

/// What the shadow did with one call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
#[derive(Debug, Clone, serde::Serialize)]
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
    recorded: Arc<RecordedCalls>,
    calls: Arc<Mutex<Vec<ShadowCall>>>,
}

impl ShadowEffects {
    /// `calls` collects what happened to every call.
    pub fn new(
        journal: SharedJournal,
        grants: Arc<AgentGrants>,
        recorded: Arc<RecordedCalls>,
        calls: Arc<Mutex<Vec<ShadowCall>>>,
    ) -> ShadowEffects {
        ShadowEffects {
            journal,
            grants,
            recorded,
            calls,
        }
    }
}

/// Whether `grants` allow `request` at all (budgets and the timer table, which depend on the
/// live world, are not consulted).
fn permitted(grants: &AgentGrants, request: &EffectRequest, at_ms: u64) -> Result<(), String> {
    let decision = match request {
        EffectRequest::Log { .. } => return Ok(()),
        EffectRequest::Http {
            method, url, headers, ..
        } => grants.check_http(method, url, headers).0,
        EffectRequest::FsRead { path } | EffectRequest::FsListDir { path } => grants.check_fs(path, false).0,
        EffectRequest::FsWrite { path, .. } => grants.check_fs(path, true).0,
        EffectRequest::BlobPut { contents } => grants.check_blob(contents.len() as u64),
        EffectRequest::BlobGet { .. } => grants.check_blob(0),
        EffectRequest::Llm {
            provider,
            model,
            max_tokens,
            ..
        } => return grants.check_llm(provider.as_deref(), model, *max_tokens).map(|_| ()),
        EffectRequest::TimerSchedule { when, .. } => match super::timer::due(*when, at_ms) {
            Ok((_, delay_ms)) => grants.check_timer(delay_ms, 0),
            Err(_) => return Ok(()),
        },
        EffectRequest::TimerCancel { .. } => match grants.timer_grant() {
            Some(_) => return Ok(()),
            None => return Err("no timer grant".into()),
        },
        EffectRequest::Compile { language, .. } => grants.check_compile(language).0,
        EffectRequest::Emit { target, .. } => grants.check_emit(target),
        EffectRequest::GovernanceManifest => grants.check_governance(false),
        EffectRequest::GovernancePropose { .. } => grants.check_governance(true),
        EffectRequest::GovernanceApprove { .. } => grants.check_governance(false),
    };
    match decision {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny { reason } => Err(reason),
    }
}

impl EffectBackend for ShadowEffects {
    fn perform(&mut self, call: &EffectCall<'_>) -> wasmtime::Result<EffectOutcome> {
        let (served, outcome) = if let Err(reason) = permitted(&self.grants, call.request, call.at_ms) {
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
            let outcome = postcard::from_bytes(&bytes)
                .map_err(|e| wasmtime::format_err!("recorded outcome does not decode: {e}"))?;
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
