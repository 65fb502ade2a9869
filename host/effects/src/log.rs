//! The `log` effect: journaled log lines. Always granted; oversized lines trap.

use super::{EffectOutcome, EffectResponse};

/// Longest log line a guest may write.
pub const LOG_LINE_MAX_BYTES: usize = 16 * 1024;

/// The adapter: the line itself is in the journaled request, so there is nothing to do.
pub fn execute() -> EffectOutcome {
    Ok(EffectResponse::Unit)
}
