//! The live backend: grant check → intent → adapter → signed receipt → result.
//!
//! It also serves recovery: when a step that never committed is re-executed, calls whose
//! receipts are already journaled get those outcomes back (no effect runs twice), and a
//! non-idempotent call whose intent is journaled without a receipt gets `in-doubt`.

use super::{
    EffectBackend, EffectCall, EffectFailure, EffectOutcome, EffectRequest, blob, emit, encode_outcome, fs, http, llm,
    log, outcome_status,
};
use crate::caps::{AgentGrants, Decision};
use crate::journal::SharedJournal;
use crate::journal::entry::{Digest, EffectIntent, EntryBody, ReceiptEntry, sha256};
use crate::receipts::{HostKey, ReceiptBody, Usage};
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::component::Type;

/// What the journal already holds for a call of a step that never committed.
#[derive(Debug, Clone)]
pub enum RecoveredCall {
    Receipt {
        request_digest: Digest,
        outcome: EffectOutcome,
    },
    Intent {
        request_digest: Digest,
    },
}

pub struct LiveEffects {
    journal: SharedJournal,
    key: Arc<HostKey>,
    world_id: [u8; 16],
    grants: Arc<AgentGrants>,
    event_types: Arc<HashMap<String, Type>>,
    recovered: HashMap<(u64, u32), RecoveredCall>,
}

/// What a live backend needs to know about its world.
#[derive(Clone)]
pub struct LiveContext {
    pub journal: SharedJournal,
    pub key: Arc<HostKey>,
    pub world_id: [u8; 16],
    /// Every agent's event type, for checking emitted events.
    pub event_types: Arc<HashMap<String, Type>>,
}

impl LiveEffects {
    pub fn new(
        context: &LiveContext,
        grants: Arc<AgentGrants>,
        recovered: HashMap<(u64, u32), RecoveredCall>,
    ) -> LiveEffects {
        LiveEffects {
            journal: context.journal.clone(),
            key: context.key.clone(),
            world_id: context.world_id,
            grants,
            event_types: context.event_types.clone(),
            recovered,
        }
    }

    /// Check the grant and, if allowed, run the adapter.
    fn execute(&self, request: &EffectRequest) -> (Option<String>, EffectOutcome, Usage) {
        let (decision, outcome_and_usage) = match request {
            EffectRequest::Log { .. } => (
                Decision::Allow { grant: "log".into() },
                Some((log::execute(), Usage::default())),
            ),
            EffectRequest::Http {
                method,
                url,
                headers,
                body,
            } => {
                let (decision, cap) = self.grants.check_http(method, url);
                let run = cap.map(|cap| http::execute(cap, method, url, headers, body.as_deref()));
                (decision, run)
            }
            EffectRequest::FsRead { path }
            | EffectRequest::FsListDir { path }
            | EffectRequest::FsWrite { path, .. } => {
                let write = matches!(request, EffectRequest::FsWrite { .. });
                let (decision, target) = self.grants.check_fs(path, write);
                let run = target.map(|(dir, relative)| fs::execute(request, &dir, &relative));
                (decision, run)
            }
            EffectRequest::BlobPut { contents } => {
                let decision = self.grants.check_blob(contents.len() as u64);
                let run = matches!(decision, Decision::Allow { .. }).then(|| blob::put(&mut self.journal(), contents));
                (decision, run)
            }
            EffectRequest::BlobGet { digest } => {
                return blob::get(&self.journal(), digest, |size| self.grants.check_blob(size));
            }
            EffectRequest::Llm {
                provider,
                model,
                messages,
                max_tokens,
                temperature_milli,
                stop,
            } => match self.grants.check_llm(provider.as_deref(), model, *max_tokens) {
                Ok((grant, route)) => {
                    let prompt = llm::Prompt {
                        model,
                        messages,
                        max_tokens: *max_tokens,
                        temperature_milli: *temperature_milli,
                        stop,
                    };
                    (Decision::Allow { grant }, Some(llm::execute(&route, &prompt)))
                }
                Err(reason) => (Decision::Deny { reason }, None),
            },
            EffectRequest::Emit { target, event } => {
                let decision = self.grants.check_emit(target);
                let run = matches!(decision, Decision::Allow { .. })
                    .then(|| (emit::execute(&self.event_types, target, event), Usage::default()));
                (decision, run)
            }
        };
        match (decision, outcome_and_usage) {
            (Decision::Allow { grant }, Some((outcome, usage))) => (Some(grant), outcome, usage),
            (Decision::Deny { reason }, _) => (None, Err(EffectFailure::Denied(reason)), Usage::default()),
            (Decision::Allow { .. }, None) => unreachable!("an allowed call always runs its adapter"),
        }
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, crate::journal::Journal> {
        self.journal.lock().expect("journal lock poisoned")
    }

    fn journal_receipt(
        &self,
        call: &EffectCall<'_>,
        grant: Option<String>,
        outcome: &EffectOutcome,
        (started_ms, finished_ms): (u64, u64),
        usage: Usage,
    ) -> wasmtime::Result<()> {
        let outcome_bytes = encode_outcome(outcome);
        let receipt = self.key.sign(ReceiptBody {
            version: 1,
            world_id: self.world_id,
            ingress: call.ingress,
            effect_index: call.index,
            agent: call.agent.to_string(),
            effect: call.request.effect().to_string(),
            grant,
            request_digest: call.request_digest,
            outcome_digest: sha256(&outcome_bytes),
            status: outcome_status(outcome),
            started_ms,
            finished_ms,
            usage,
            key_id: self.key.key_id(),
        });
        let mut journal = self
            .journal
            .lock()
            .map_err(|_| wasmtime::format_err!("journal lock poisoned"))?;
        let request = journal.payload(call.request_bytes);
        let outcome = journal.payload(&outcome_bytes);
        journal.append(EntryBody::EffectReceipt(ReceiptEntry {
            receipt,
            request,
            outcome,
        }));
        Ok(())
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl EffectBackend for LiveEffects {
    fn perform(&mut self, call: &EffectCall<'_>) -> wasmtime::Result<EffectOutcome> {
        match self.recovered.remove(&(call.ingress, call.index)) {
            Some(RecoveredCall::Receipt {
                request_digest,
                outcome,
            }) if request_digest == call.request_digest => {
                return Ok(outcome);
            }
            Some(RecoveredCall::Intent { request_digest }) if request_digest == call.request_digest => {
                let now = now_ms();
                let outcome = Err(EffectFailure::InDoubt(format!(
                    "{} started before the host stopped and its outcome is unknown; it is not retried",
                    call.request.summary()
                )));
                self.journal_receipt(call, None, &outcome, (now, now), Usage::default())?;
                return Ok(outcome);
            }
            _ => {}
        }
        if !call.request.idempotent() {
            let mut journal = self
                .journal
                .lock()
                .map_err(|_| wasmtime::format_err!("journal lock poisoned"))?;
            journal.append(EntryBody::EffectIntent(EffectIntent {
                ingress: call.ingress,
                effect_index: call.index,
                effect: call.request.effect().to_string(),
                request_digest: call.request_digest,
            }));
            journal.commit()?;
        }
        let started = now_ms();
        let (grant, outcome, usage) = self.execute(call.request);
        self.journal_receipt(call, grant, &outcome, (started, now_ms()), usage)?;
        Ok(outcome)
    }
}
