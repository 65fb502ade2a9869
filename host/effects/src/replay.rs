//! The replay backend: every outcome comes from the journal, after the request is checked
//! against the recorded request digest. A mismatch or a call the journal does not hold is a
//! [`Divergence`], which traps the step and is reported with its exact place.

use super::{EffectBackend, EffectCall, EffectOutcome, EffectRequest};
use crate::journal::SharedJournal;
use crate::journal::entry::{Digest, Payload};
use std::collections::HashMap;
use std::sync::Arc;

/// A recorded call, as found in an effect-receipt entry.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    pub request_digest: Digest,
    pub request: Payload,
    pub outcome: Payload,
}

/// Recorded calls by (step, call index).
pub type RecordedCalls = HashMap<(u64, u32), RecordedCall>;

/// Re-execution asked for something the journal does not record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("divergence at step #{ingress} (agent `{agent}`), effect call #{index}: {detail}")]
pub struct Divergence {
    pub ingress: u64,
    pub agent: String,
    pub index: u32,
    pub detail: String,
}

pub struct ReplayEffects {
    journal: SharedJournal,
    recorded: Arc<RecordedCalls>,
}

impl ReplayEffects {
    pub fn new(journal: SharedJournal, recorded: Arc<RecordedCalls>) -> ReplayEffects {
        ReplayEffects { journal, recorded }
    }

    fn load(&self, payload: &Payload) -> wasmtime::Result<Vec<u8>> {
        let journal = self
            .journal
            .lock()
            .map_err(|_| wasmtime::format_err!("journal lock poisoned"))?;
        journal
            .payload_bytes(payload)?
            .ok_or_else(|| wasmtime::format_err!("payload blob {payload:?} is missing from the journal"))
    }
}

impl EffectBackend for ReplayEffects {
    fn perform(&mut self, call: &EffectCall<'_>) -> wasmtime::Result<EffectOutcome> {
        let divergence = |detail: String| Divergence {
            ingress: call.ingress,
            agent: call.agent.to_string(),
            index: call.index,
            detail,
        };
        let Some(recorded) = self.recorded.get(&(call.ingress, call.index)) else {
            return Err(divergence(format!(
                "the guest made a call the journal does not record: {}",
                call.request.summary()
            ))
            .into());
        };
        if recorded.request_digest != call.request_digest {
            let expected = self
                .load(&recorded.request)
                .ok()
                .and_then(|bytes| postcard::from_bytes::<EffectRequest>(&bytes).ok())
                .map_or_else(|| "(recorded request unreadable)".to_string(), |r| r.summary());
            return Err(divergence(format!(
                "expected request `{expected}`, got `{}`",
                call.request.summary()
            ))
            .into());
        }
        let bytes = self.load(&recorded.outcome)?;
        postcard::from_bytes(&bytes).map_err(|e| wasmtime::format_err!("recorded outcome does not decode: {e}"))
    }
}
