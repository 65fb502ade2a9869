//! The `llm` effect's adapters: chat completions over HTTP, in the OpenAI-compatible
//! chat-completions protocol (OpenAI, vLLM, llama.cpp server, Ollama) and the Anthropic
//! messages protocol.
//!
//! API keys are read from the provider's environment variable or key file at call time and sent
//! only in the request headers: they never enter the guest, the hashed request, a receipt, the
//! journal or an error message (provider error texts are redacted before they are recorded).

use super::{EffectFailure, EffectOutcome, EffectResponse};
use crate::caps::LlmRoute;
use crate::receipts::Usage;
use agentos_air::{LlmApi, LlmProvider};
use serde_json::{Value, json};

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

/// One completion request, as the adapter receives it.
#[derive(Debug)]
pub struct Prompt<'a> {
    pub model: &'a str,
    pub messages: &'a [(String, String)],
    pub max_tokens: u32,
    pub temperature_milli: Option<u32>,
    pub stop: &'a [String],
}

fn wire_request(api: LlmApi, prompt: &Prompt<'_>) -> (&'static str, Value) {
    let temperature = prompt.temperature_milli.map(|t| f64::from(t) / 1000.0);
    match api {
        LlmApi::OpenaiChat => {
            let messages: Vec<Value> = prompt
                .messages
                .iter()
                .map(|(role, content)| json!({ "role": role, "content": content }))
                .collect();
            let mut body = json!({ "model": prompt.model, "messages": messages, "max_tokens": prompt.max_tokens });
            if let Some(t) = temperature {
                body["temperature"] = json!(t);
            }
            if !prompt.stop.is_empty() {
                body["stop"] = json!(prompt.stop);
            }
            ("chat/completions", body)
        }
        LlmApi::AnthropicMessages => {
            let system: Vec<&str> = prompt
                .messages
                .iter()
                .filter(|(role, _)| role == "system")
                .map(|(_, c)| c.as_str())
                .collect();
            let messages: Vec<Value> = prompt
                .messages
                .iter()
                .filter(|(role, _)| role != "system")
                .map(|(role, content)| json!({ "role": role, "content": content }))
                .collect();
            let mut body = json!({ "model": prompt.model, "messages": messages, "max_tokens": prompt.max_tokens });
            if !system.is_empty() {
                body["system"] = json!(system.join("\n\n"));
            }
            if let Some(t) = temperature {
                body["temperature"] = json!(t);
            }
            if !prompt.stop.is_empty() {
                body["stop_sequences"] = json!(prompt.stop);
            }
            ("messages", body)
        }
    }
}

/// (text, finish reason, input tokens, output tokens) from a provider's JSON answer.
fn wire_response(api: LlmApi, body: &Value) -> Option<(String, String, u32, u32)> {
    let tokens = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    match api {
        LlmApi::OpenaiChat => {
            let choice = body.get("choices")?.get(0)?;
            let text = choice
                .get("message")?
                .get("content")?
                .as_str()
                .unwrap_or_default()
                .to_string();
            let finish = choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            let usage = body.get("usage")?;
            Some((
                text,
                finish,
                tokens(usage.get("prompt_tokens")?)?,
                tokens(usage.get("completion_tokens")?)?,
            ))
        }
        LlmApi::AnthropicMessages => {
            let text: String = body
                .get("content")?
                .as_array()?
                .iter()
                .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect();
            let finish = match body.get("stop_reason").and_then(Value::as_str) {
                Some("end_turn" | "stop_sequence") => "stop".to_string(),
                Some("max_tokens") => "length".to_string(),
                Some(other) => other.to_string(),
                None => "unknown".to_string(),
            };
            let usage = body.get("usage")?;
            Some((
                text,
                finish,
                tokens(usage.get("input_tokens")?)?,
                tokens(usage.get("output_tokens")?)?,
            ))
        }
    }
}

/// Call the provider of `route`.
pub fn execute(route: &LlmRoute<'_>, prompt: &Prompt<'_>) -> (EffectOutcome, Usage) {
    let name = route.provider_name;
    let provider = route.provider;
    let key = match api_key(name, provider) {
        Ok(key) => key,
        Err(reason) => return (Err(EffectFailure::Failed(reason)), Usage::default()),
    };
    let redact = |text: String| match &key {
        Some(key) if key.len() >= 4 => text.replace(key.as_str(), "[redacted]"),
        _ => text,
    };
    let (path, body) = wire_request(provider.api, prompt);
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
        .ok()
        .and_then(|body| wire_response(provider.api, &body));
    match parsed {
        Some((text, finish_reason, input_tokens, output_tokens)) => {
            let usage = Usage {
                tokens_in: u64::from(input_tokens),
                tokens_out: u64::from(output_tokens),
                ..usage
            };
            (
                Ok(EffectResponse::Completion {
                    text,
                    finish_reason,
                    input_tokens,
                    output_tokens,
                }),
                usage,
            )
        }
        None => {
            let excerpt: String = text.chars().take(200).collect();
            let reason = redact(format!(
                "provider `{name}` returned malformed JSON for its protocol: {excerpt}"
            ));
            (Err(EffectFailure::Failed(reason)), usage)
        }
    }
}
