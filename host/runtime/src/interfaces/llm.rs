//! The guest's side of `llm`: a plain completion, or a turn of a conversation with tools, from
//! a configured model provider.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::llm`.

use crate::bindings::agentos::core::llm::{
    ChatCompletion, ChatMessage, ChatRequest, Completion, CompletionRequest, Host, Role, ToolCall, ToolChoice,
    Usage as TokenUsage,
};
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::llm::PROMPT_MAX_BYTES;
use agentos_effects::llm::chat as effect;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse};

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// A prompt past the limit traps: it is the agent's bug, not something to journal.
fn check_prompt_size(bytes: usize) -> wasmtime::Result<()> {
    if bytes > PROMPT_MAX_BYTES {
        wasmtime::bail!("llm prompt of {bytes} bytes exceeds the limit of {PROMPT_MAX_BYTES} bytes");
    }
    Ok(())
}

fn effect_call(call: ToolCall) -> effect::ToolCall {
    effect::ToolCall {
        id: call.id,
        name: call.name,
        arguments: call.arguments,
    }
}

fn effect_message(message: ChatMessage) -> effect::ChatMessage {
    match message {
        ChatMessage::System(text) => effect::ChatMessage::System(text),
        ChatMessage::User(text) => effect::ChatMessage::User(text),
        ChatMessage::Assistant(turn) => effect::ChatMessage::Assistant {
            text: turn.text,
            tool_calls: turn.tool_calls.into_iter().map(effect_call).collect(),
        },
        ChatMessage::Tool(result) => effect::ChatMessage::Tool {
            call_id: result.call_id,
            content: result.content,
            is_error: result.is_error,
        },
    }
}

impl Host for EffectGate {
    fn complete(&mut self, request: CompletionRequest) -> wasmtime::Result<Result<Completion, EffectError>> {
        check_prompt_size(request.messages.iter().map(|m| m.content.len()).sum())?;
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

    fn chat(&mut self, request: ChatRequest) -> wasmtime::Result<Result<ChatCompletion, EffectError>> {
        let messages: Vec<effect::ChatMessage> = request.messages.into_iter().map(effect_message).collect();
        let tools: Vec<effect::ToolSpec> = request
            .tools
            .into_iter()
            .map(|tool| effect::ToolSpec {
                name: tool.name,
                description: tool.description,
                parameters: tool.parameters,
            })
            .collect();
        let schemas = tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.parameters.len());
        let format = request
            .response_format
            .as_ref()
            .map_or(0, |f| f.name.len() + f.schema.len());
        check_prompt_size(
            messages.iter().map(effect::ChatMessage::len).sum::<usize>() + schemas.sum::<usize>() + format,
        )?;
        let outcome = self.call(EffectRequest::LlmChat {
            provider: request.provider,
            model: request.model,
            messages,
            tools,
            tool_choice: match request.tool_choice {
                ToolChoice::Auto => effect::ToolChoice::Auto,
                ToolChoice::None => effect::ToolChoice::None,
                ToolChoice::Required => effect::ToolChoice::Required,
                ToolChoice::Named(name) => effect::ToolChoice::Named(name),
            },
            response_format: request.response_format.map(|format| effect::ResponseFormat {
                name: format.name,
                schema: format.schema,
            }),
            max_tokens: request.max_tokens,
            temperature_milli: request.temperature_milli,
            stop: request.stop,
        })?;
        Ok(match outcome {
            Ok(EffectResponse::Chat {
                text,
                tool_calls,
                finish_reason,
                input_tokens,
                output_tokens,
            }) => Ok(ChatCompletion {
                text,
                tool_calls: tool_calls
                    .into_iter()
                    .map(|call| ToolCall {
                        id: call.id,
                        name: call.name,
                        arguments: call.arguments,
                    })
                    .collect(),
                finish_reason,
                usage: TokenUsage {
                    input_tokens,
                    output_tokens,
                },
            }),
            Ok(other) => wasmtime::bail!("journal holds a non-chat outcome for an llm chat call: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }
}
