//! The effect interfaces of `wit/agentos.wit` as the guest calls them: one file per interface,
//! each implementing its generated `Host` trait for [`EffectGate`] by turning the call into an
//! [`agentos_effects::EffectRequest`] and the outcome back into WIT types. Nothing here runs an
//! effect: every call goes through [`EffectGate::call`].

pub mod blob;
pub mod compile;
pub mod emit;
pub mod fs;
pub mod governance;
pub mod http;
pub mod llm;
pub mod log;
pub mod mcp;
pub mod timer;

use crate::bindings::agentos::core::types::{EffectError, Host};
use agentos_effects::{EffectFailure, EffectGate};

impl Host for EffectGate {}

impl From<EffectFailure> for EffectError {
    fn from(failure: EffectFailure) -> EffectError {
        match failure {
            EffectFailure::Denied(r) => EffectError::Denied(r),
            EffectFailure::Failed(r) => EffectError::Failed(r),
            EffectFailure::BudgetExceeded(r) => EffectError::BudgetExceeded(r),
            EffectFailure::InDoubt(r) => EffectError::InDoubt(r),
            EffectFailure::Timeout(r) => EffectError::Timeout(r),
        }
    }
}
