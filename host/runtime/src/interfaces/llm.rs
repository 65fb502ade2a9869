//! The guest's side of `llm`: one completion from a configured model provider.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::llm`.

use crate::bindings::agentos::core::llm::{Completion, CompletionRequest, Host, Role, Usage as TokenUsage};
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::llm::PROMPT_MAX_BYTES;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse};

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

impl Host for EffectGate {
    fn complete(&mut self, request: CompletionRequest) -> wasmtime::Result<Result<Completion, EffectError>> {
        let prompt_bytes: usize = request.messages.iter().map(|m| m.content.len()).sum();
        if prompt_bytes > PROMPT_MAX_BYTES {
            wasmtime::bail!("llm prompt of {prompt_bytes} bytes exceeds the limit of {PROMPT_MAX_BYTES} bytes");
        }
        let outcome = self.call(EffectRequest::Llm {
            provider: request.provider,
            model: request.model,
            messages: request
                .messages
                .into_iter()
                .map(|m| (role_name(m.role).to_string(), m.content))
                .collect(),
            max_tokens: request.max_tokens,
            temperature_milli: request.temperature_milli,
            stop: request.stop,
        })?;
        Ok(match outcome {
            Ok(EffectResponse::Completion {
                text,
                finish_reason,
                input_tokens,
                output_tokens,
            }) => Ok(Completion {
                text,
                finish_reason,
                usage: TokenUsage {
                    input_tokens,
                    output_tokens,
                },
            }),
            Ok(other) => wasmtime::bail!("journal holds a non-completion outcome for an llm call: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }
}
