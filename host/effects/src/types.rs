//! The `types` interface, which has no functions.

use super::EffectGate;
use crate::bindings::agentos::core::types::Host;

impl Host for EffectGate {}
