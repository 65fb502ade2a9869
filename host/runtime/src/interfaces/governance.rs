//! The guest's side of `governance`: read the manifest of record, propose and approve changes.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::governance`.

use crate::bindings::agentos::core::governance::Host;
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::governance::CHANGE_MAX_BYTES;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse};

impl Host for EffectGate {
    fn manifest(&mut self) -> wasmtime::Result<Result<String, EffectError>> {
        Ok(match self.call(EffectRequest::GovernanceManifest)? {
            Ok(EffectResponse::Manifest(json)) => Ok(json),
            Ok(other) => wasmtime::bail!("journal holds a non-manifest outcome for a manifest read: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }

    fn propose(&mut self, patch: String, description: String) -> wasmtime::Result<Result<String, EffectError>> {
        if patch.len() + description.len() > CHANGE_MAX_BYTES {
            wasmtime::bail!(
                "a proposal of {} bytes exceeds the limit of {CHANGE_MAX_BYTES} bytes",
                patch.len()
            );
        }
        let request = EffectRequest::GovernancePropose {
            change: patch,
            description,
        };
        Ok(match self.call(request)? {
            Ok(EffectResponse::Proposed { proposal, .. }) => Ok(proposal.to_string()),
            Ok(other) => wasmtime::bail!("journal holds a non-proposal outcome for a proposal: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }

    fn approve(&mut self, proposal: String, comment: String) -> wasmtime::Result<Result<(), EffectError>> {
        if proposal.len() + comment.len() > CHANGE_MAX_BYTES {
            wasmtime::bail!(
                "an approval of {} bytes exceeds the limit of {CHANGE_MAX_BYTES} bytes",
                comment.len()
            );
        }
        Ok(
            match self.call(EffectRequest::GovernanceApprove { proposal, comment })? {
                Ok(EffectResponse::Unit) => Ok(()),
                Ok(other) => wasmtime::bail!("journal holds a non-unit outcome for an approval: {other:?}"),
                Err(failure) => Err(failure.into()),
            },
        )
    }
}
