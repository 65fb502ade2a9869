//! The `types` interface, which has no functions, and nothing else.
//!
//! The effect interface this host does not implement yet (governance) is deliberately not linked: `runtime` refuses to instantiate a component that
//! imports one, naming the effect, before any call could reach a stub.

use super::EffectGate;
use crate::runtime::bindings::agentos::core::types::Host;

impl Host for EffectGate {}
