//! The guest's side of `log`: a line in the journal's output.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::log`.

use crate::bindings::agentos::core::log::{Host, Level};
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::log::LOG_LINE_MAX_BYTES;
use agentos_effects::{EffectGate, EffectRequest};

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

impl Host for EffectGate {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<Result<(), EffectError>> {
        if message.len() > LOG_LINE_MAX_BYTES {
            wasmtime::bail!(
                "log line of {} bytes exceeds the limit of {LOG_LINE_MAX_BYTES} bytes",
                message.len()
            );
        }
        let outcome = self.call(EffectRequest::Log {
            level: level_name(level).to_string(),
            message,
        })?;
        Ok(outcome.map(|_| ()).map_err(EffectError::from))
    }
}
