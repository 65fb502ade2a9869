//! The `llm` effect's adapters: chat completions over HTTP, in the OpenAI-compatible
//! chat-completions protocol (OpenAI, vLLM, llama.cpp server, Ollama) and the Anthropic
//! messages protocol (`wire`), with tools and structured output (`chat`). A plain completion
//! (`complete`) is a conversation of text messages without tools.
//!
//! API keys are read from the provider's environment variable or key file at call time and sent
//! only in the request headers: they never enter the guest, the hashed request, a receipt, the
//! journal or an error message (provider error texts are redacted before they are recorded).

pub mod chat;
mod wire;

use super::{EffectFailure, EffectOutcome, EffectResponse};
use crate::caps::LlmRoute;
use crate::receipts::Usage;
use agentos_air::{LlmApi, LlmProvider};
use chat::{ChatMessage, Conversation, Reply};
use serde_json::Value;

/// Most prompt bytes (all messages) one call may send.
pub const PROMPT_MAX_BYTES: usize = 1024 * 1024;
/// Largest provider response the adapter reads.
const RESPONSE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The provider's API key, or why there is none. The message names the variable or file,
/// never a key.
fn api_key(name: &str, provider: &LlmProvider) -> Result<Option<String>, String> {
    if let Some(var) = &provider.api_key_env {
        return match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_string())),
            _ => Err(format!(
                "provider `{name}`: environment variable `{var}` (its API key) is not set"
            )),
        };
    }
    if let Some(file) = &provider.api_key_file {
        return match std::fs::read_to_string(file) {
            Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_string())),
            Ok(_) => Err(format!("provider `{name}`: API key file {file} is empty")),
            Err(e) => Err(format!("provider `{name}`: cannot read API key file {file}: {e}")),
        };
    }
    Ok(None)
}

/// A plain completion's text messages (role, content) as a conversation's.
pub fn plain_messages(messages: &[(String, String)]) -> Vec<ChatMessage> {
    messages
        .iter()
        .map(|(role, content)| match role.as_str() {
            "system" => ChatMessage::System(content.clone()),
            "assistant" => ChatMessage::Assistant {
                text: content.clone(),
                tool_calls: Vec::new(),
            },
            _ => ChatMessage::User(content.clone()),
        })
        .collect()
}

/// A plain completion: the conversation's reply as text.
pub fn complete(route: &LlmRoute<'_>, conversation: &Conversation<'_>) -> (EffectOutcome, Usage) {
    let (reply, usage) = execute(route, conversation);
    let outcome = reply.map(|reply| EffectResponse::Completion {
        text: reply.text,
        finish_reason: reply.finish_reason,
        input_tokens: reply.input_tokens,
        output_tokens: reply.output_tokens,
    });
    (outcome, usage)
}

/// A turn of a conversation with tools: text and the tool calls the model asked for.
pub fn chat(route: &LlmRoute<'_>, conversation: &Conversation<'_>) -> (EffectOutcome, Usage) {
    let (reply, usage) = execute(route, conversation);
    let outcome = reply.map(|reply| EffectResponse::Chat {
        text: reply.text,
        tool_calls: reply.tool_calls,
        finish_reason: reply.finish_reason,
        input_tokens: reply.input_tokens,
        output_tokens: reply.output_tokens,
    });
    (outcome, usage)
}

/// Call the provider of `route`.
fn execute(route: &LlmRoute<'_>, conversation: &Conversation<'_>) -> (Result<Reply, EffectFailure>, Usage) {
    let name = route.provider_name;
    let provider = route.provider;
    let refused = |reason: String| (Err(EffectFailure::Failed(reason)), Usage::default());
    if let Err(reason) = conversation.check() {
        return refused(format!("provider `{name}`: request not sent: {reason}"));
    }
    let (path, body) = match wire::request(provider.api, conversation) {
        Ok(request) => request,
        Err(reason) => return refused(format!("provider `{name}`: request not sent: {reason}")),
    };
    let key = match api_key(name, provider) {
        Ok(key) => key,
        Err(reason) => return refused(reason),
    };
    let redact = |text: String| match &key {
        Some(key) if key.len() >= 4 => text.replace(key.as_str(), "[redacted]"),
        _ => text,
    };
    let url = format!("{}/{path}", provider.base_url.trim_end_matches('/'));
    // The provider's address is the operator's configuration, not the guest's.
    let agent = super::http::client(route.cap.timeout_ms, false);
    let mut request = agent.post(&url).header("content-type", "application/json");
    match (provider.api, &key) {
        (LlmApi::OpenaiChat, Some(key)) => request = request.header("authorization", &format!("Bearer {key}")),
        (LlmApi::AnthropicMessages, key) => {
            request = request.header("anthropic-version", "2023-06-01");
            if let Some(key) = key {
                request = request.header("x-api-key", key);
            }
        }
        (LlmApi::OpenaiChat, None) => {}
    }
    let sent = body.to_string();
    let mut response = match request.send(sent.as_bytes()) {
        Ok(response) => response,
        Err(ureq::Error::Timeout(_)) => {
            let reason = format!("provider `{name}` did not answer within {} ms", route.cap.timeout_ms);
            return (Err(EffectFailure::Timeout(reason)), Usage::default());
        }
        Err(e) => {
            let reason = redact(format!("provider `{name}` ({url}) unreachable: {e}"));
            return (Err(EffectFailure::Failed(reason)), Usage::default());
        }
    };
    let status = response.status().as_u16();
    let text = match response
        .body_mut()
        .with_config()
        .limit(RESPONSE_MAX_BYTES)
        .read_to_string()
    {
        Ok(text) => text,
        Err(e) => {
            return (
                Err(EffectFailure::Failed(redact(format!("provider `{name}`: {e}")))),
                Usage::default(),
            );
        }
    };
    let usage = Usage {
        bytes_sent: sent.len() as u64,
        bytes_received: text.len() as u64,
        ..Usage::default()
    };
    if !(200..300).contains(&status) {
        let excerpt: String = text.chars().take(500).collect();
        return (
            Err(EffectFailure::Failed(redact(format!(
                "provider `{name}` answered HTTP {status}: {excerpt}"
            )))),
            usage,
        );
    }
    let parsed = serde_json::from_str::<Value>(&text)
        .map_err(|e| e.to_string())
        .and_then(|body| wire::reply(provider.api, &body));
    match parsed {
        Ok(reply) => {
            let usage = Usage {
                tokens_in: u64::from(reply.input_tokens),
                tokens_out: u64::from(reply.output_tokens),
                ..usage
            };
            (Ok(reply), usage)
        }
        Err(what) => {
            let excerpt: String = text.chars().take(200).collect();
            let reason = redact(format!(
                "provider `{name}` returned malformed JSON for its protocol: {excerpt} ({what})"
            ));
            (Err(EffectFailure::Failed(reason)), usage)
        }
    }
}
