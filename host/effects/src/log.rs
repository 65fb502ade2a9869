//! The `log` interface: journaled log lines. Always granted; oversized lines trap.

use super::{EffectGate, EffectOutcome, EffectRequest, EffectResponse};
use crate::bindings::agentos::core::log::{Host, Level};
use crate::bindings::agentos::core::types::EffectError;

/// Longest log line a guest may write.
pub const LOG_LINE_MAX_BYTES: usize = 16 * 1024;

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

/// The adapter: the line itself is in the journaled request, so there is nothing to do.
pub fn execute() -> EffectOutcome {
    Ok(EffectResponse::Unit)
}
