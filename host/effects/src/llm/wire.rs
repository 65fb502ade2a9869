//! The two wire protocols a provider speaks, mapped onto [`Conversation`] and [`Reply`]:
//! OpenAI-compatible chat completions (`POST {base}/chat/completions`) and Anthropic messages
//! (`POST {base}/messages`), with tools, tool choice, tool calls and results, and structured
//! output (`response_format` json_schema; Anthropic's `output_config.format`).
//!
//! Differences the mapping bridges: Anthropic takes the system prompt apart from the messages,
//! a call's arguments as a JSON object (OpenAI: as JSON text), and tool results as blocks of the
//! next user message (consecutive results and user text are merged into one message); OpenAI
//! has no error flag on a tool result, so only its content says that the call failed.

use super::chat::{ChatMessage, Conversation, Reply, ToolCall, ToolChoice, json_object};
use agentos_air::LlmApi;
use serde_json::{Value, json};

/// The request path under the provider's base URL, and the body.
pub fn request(api: LlmApi, conversation: &Conversation<'_>) -> Result<(&'static str, Value), String> {
    match api {
        LlmApi::OpenaiChat => Ok(("chat/completions", openai_request(conversation))),
        LlmApi::AnthropicMessages => Ok(("messages", anthropic_request(conversation)?)),
    }
}

/// The reply in a provider's JSON answer, or what is missing from it.
pub fn reply(api: LlmApi, body: &Value) -> Result<Reply, String> {
    match api {
        LlmApi::OpenaiChat => openai_reply(body),
        LlmApi::AnthropicMessages => anthropic_reply(body),
    }
}

/// What both protocols' bodies hold alike: model, messages, max tokens, temperature, and the
/// stop sequences under the protocol's name for them.
fn body(conversation: &Conversation<'_>, messages: Vec<Value>, stop_field: &str) -> Value {
    let mut body = json!({ "model": conversation.model, "messages": messages, "max_tokens": conversation.max_tokens });
    if let Some(t) = conversation.temperature_milli {
        body["temperature"] = json!(f64::from(t) / 1000.0);
    }
    if !conversation.stop.is_empty() {
        body[stop_field] = json!(conversation.stop);
    }
    body
}

/// A schema given as JSON text, which [`Conversation::check`] found to be an object.
fn schema(text: &str) -> Value {
    json_object(text).map(Value::Object).unwrap_or_else(|| json!({}))
}

fn openai_request(conversation: &Conversation<'_>) -> Value {
    let messages: Vec<Value> = conversation
        .messages
        .iter()
        .map(|message| match message {
            ChatMessage::System(text) => json!({ "role": "system", "content": text }),
            ChatMessage::User(text) => json!({ "role": "user", "content": text }),
            ChatMessage::Assistant { text, tool_calls } => {
                let mut turn = json!({ "role": "assistant", "content": text });
                if !tool_calls.is_empty() {
                    if text.is_empty() {
                        turn["content"] = Value::Null;
                    }
                    turn["tool_calls"] = tool_calls
                        .iter()
                        .map(|call| {
                            json!({ "id": call.id, "type": "function",
                                    "function": { "name": call.name, "arguments": call.arguments } })
                        })
                        .collect();
                }
                turn
            }
            ChatMessage::Tool { call_id, content, .. } => {
                json!({ "role": "tool", "tool_call_id": call_id, "content": content })
            }
        })
        .collect();
    let mut body = body(conversation, messages, "stop");
    if !conversation.tools.is_empty() {
        body["tools"] = conversation
            .tools
            .iter()
            .map(|tool| {
                json!({ "type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": schema(&tool.parameters) } })
            })
            .collect();
        body["tool_choice"] = match conversation.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(name) => json!({ "type": "function", "function": { "name": name } }),
        };
    }
    if let Some(format) = conversation.response_format {
        body["response_format"] = json!({ "type": "json_schema",
            "json_schema": { "name": format.name, "schema": schema(&format.schema), "strict": true } });
    }
    body
}

fn tokens(value: Option<&Value>, field: &str) -> Result<u32, String> {
    value
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("no `usage.{field}` token count"))
}

fn openai_reply(body: &Value) -> Result<Reply, String> {
    let choice = body.pointer("/choices/0").ok_or("no `choices[0]`")?;
    let message = choice.get("message").ok_or("no `choices[0].message`")?;
    let refusal = message.get("refusal").and_then(Value::as_str);
    let text = match (message.get("content"), refusal) {
        (Some(Value::String(text)), _) => text.clone(),
        (_, Some(refusal)) => refusal.to_string(),
        (None | Some(Value::Null), None) => String::new(),
        (Some(_), None) => return Err("`message.content` is neither text nor null".into()),
    };
    let mut tool_calls = Vec::new();
    for (i, call) in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = |pointer: &str| {
            call.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("tool call {i} has no `{}`", &pointer[1..].replace('/', ".")))
        };
        tool_calls.push(ToolCall {
            id: field("/id")?,
            name: field("/function/name")?,
            arguments: field("/function/arguments")?,
        });
    }
    let finish_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("tool_calls") => "tool-calls".to_string(),
        Some(_) if refusal.is_some() && message.get("content").is_none_or(Value::is_null) => "refusal".to_string(),
        Some(other) => other.to_string(),
        None => "unknown".to_string(),
    };
    let usage = body.get("usage");
    Ok(Reply {
        text,
        tool_calls,
        finish_reason,
        input_tokens: tokens(usage.and_then(|u| u.get("prompt_tokens")), "prompt_tokens")?,
        output_tokens: tokens(usage.and_then(|u| u.get("completion_tokens")), "completion_tokens")?,
    })
}

fn anthropic_request(conversation: &Conversation<'_>) -> Result<Value, String> {
    let system: Vec<&str> = conversation
        .messages
        .iter()
        .filter_map(|message| match message {
            ChatMessage::System(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    // (role, content blocks), consecutive blocks of one role in one message.
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for (i, message) in conversation.messages.iter().enumerate() {
        let (role, blocks) = match message {
            ChatMessage::System(_) => continue,
            ChatMessage::User(text) => ("user", vec![json!({ "type": "text", "text": text })]),
            // The protocol refuses an empty assistant turn.
            ChatMessage::Assistant { text, tool_calls } if text.is_empty() && tool_calls.is_empty() => continue,
            ChatMessage::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({ "type": "text", "text": text }));
                }
                for call in tool_calls {
                    let input = json_object(&call.arguments).ok_or_else(|| {
                        format!(
                            "message {i}: the arguments of tool call `{}` are not a JSON object, as the Anthropic \
                             protocol carries them",
                            call.id
                        )
                    })?;
                    blocks.push(json!({ "type": "tool_use", "id": call.id, "name": call.name, "input": input }));
                }
                ("assistant", blocks)
            }
            ChatMessage::Tool {
                call_id,
                content,
                is_error,
            } => (
                "user",
                vec![
                    json!({ "type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error }),
                ],
            ),
        };
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut blocks)| {
            // A user turn's tool results come first, answering the assistant turn before it.
            blocks.sort_by_key(|block| block["type"] != "tool_result");
            (role, blocks)
        })
        .map(|(role, blocks)| match blocks.as_slice() {
            // A message of text alone is sent as a string, as plain completions always were.
            [only] if only["type"] == "text" => json!({ "role": role, "content": only["text"] }),
            _ => json!({ "role": role, "content": blocks }),
        })
        .collect();
    let mut body = body(conversation, messages, "stop_sequences");
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !conversation.tools.is_empty() {
        body["tools"] = conversation
            .tools
            .iter()
            .map(|tool| json!({ "name": tool.name, "description": tool.description, "input_schema": schema(&tool.parameters) }))
            .collect();
        body["tool_choice"] = match conversation.tool_choice {
            ToolChoice::Auto => json!({ "type": "auto" }),
            ToolChoice::None => json!({ "type": "none" }),
            ToolChoice::Required => json!({ "type": "any" }),
            ToolChoice::Named(name) => json!({ "type": "tool", "name": name }),
        };
    }
    if let Some(format) = conversation.response_format {
        body["output_config"] = json!({ "format": { "type": "json_schema", "schema": schema(&format.schema) } });
    }
    Ok(body)
}

fn anthropic_reply(body: &Value) -> Result<Reply, String> {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or("no `content` blocks")?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            Some("tool_use") => {
                let field = |name: &str| {
                    block
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| format!("tool_use block {i} has no `{name}`"))
                };
                let input = block
                    .get("input")
                    .filter(|input| input.is_object())
                    .ok_or_else(|| format!("tool_use block {i} has no `input` object"))?;
                tool_calls.push(ToolCall {
                    id: field("id")?,
                    name: field("name")?,
                    arguments: input.to_string(),
                });
            }
            _ => {}
        }
    }
    let finish_reason = match body.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn" | "stop_sequence") => "stop".to_string(),
        Some("max_tokens") => "length".to_string(),
        Some("tool_use") => "tool-calls".to_string(),
        Some(other) => other.to_string(),
        None => "unknown".to_string(),
    };
    let usage = body.get("usage");
    Ok(Reply {
        text,
        tool_calls,
        finish_reason,
        input_tokens: tokens(usage.and_then(|u| u.get("input_tokens")), "input_tokens")?,
        output_tokens: tokens(usage.and_then(|u| u.get("output_tokens")), "output_tokens")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::chat::{ResponseFormat, ToolSpec};

    fn weather_conversation() -> (Vec<ChatMessage>, Vec<ToolSpec>) {
        let messages = vec![
            ChatMessage::System("be brief".into()),
            ChatMessage::User("weather in Paris?".into()),
            ChatMessage::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into(),
                }],
            },
            ChatMessage::Tool {
                call_id: "call_1".into(),
                content: "18 °C".into(),
                is_error: false,
            },
            ChatMessage::User("and tomorrow?".into()),
        ];
        let tools = vec![ToolSpec {
            name: "weather".into(),
            description: "Weather of a city".into(),
            parameters: r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#.into(),
        }];
        (messages, tools)
    }

    fn conversation<'a>(
        messages: &'a [ChatMessage],
        tools: &'a [ToolSpec],
        choice: &'a ToolChoice,
        format: Option<&'a ResponseFormat>,
    ) -> Conversation<'a> {
        Conversation {
            model: "m",
            messages: messages.into(),
            tools,
            tool_choice: choice,
            response_format: format,
            max_tokens: 100,
            temperature_milli: Some(250),
            stop: &[],
        }
    }

    #[test]
    fn openai_carries_tools_calls_results_and_the_schema() {
        let (messages, tools) = weather_conversation();
        let format = ResponseFormat {
            name: "forecast".into(),
            schema: r#"{"type":"object"}"#.into(),
        };
        let choice = ToolChoice::Named("weather".into());
        let (path, body) = request(
            LlmApi::OpenaiChat,
            &conversation(&messages, &tools, &choice, Some(&format)),
        )
        .unwrap();
        assert_eq!(path, "chat/completions");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"},
                {"role": "user", "content": "and tomorrow?"},
            ])
        );
        assert_eq!(body["tools"][0]["function"]["parameters"]["required"], json!(["city"]));
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "weather"}})
        );
        assert_eq!(body["response_format"]["json_schema"]["name"], "forecast");
        assert_eq!(body["temperature"], json!(0.25));
    }

    #[test]
    fn anthropic_merges_results_into_the_next_user_turn_and_sends_input_objects() {
        let (messages, tools) = weather_conversation();
        let choice = ToolChoice::Required;
        let (path, body) = request(
            LlmApi::AnthropicMessages,
            &conversation(&messages, &tools, &choice, None),
        )
        .unwrap();
        assert_eq!(path, "messages");
        assert_eq!(body["system"], "be brief");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18 °C", "is_error": false},
                    {"type": "text", "text": "and tomorrow?"}]},
            ])
        );
        assert_eq!(body["tool_choice"], json!({"type": "any"}));
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn replies_give_text_and_tool_calls_with_their_ids() {
        let openai = json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 7, "completion_tokens": 3}});
        let answer = reply_of(LlmApi::OpenaiChat, &openai);
        assert_eq!(answer.tool_calls[0].id, "call_9");
        assert_eq!(answer.finish_reason, "tool-calls");
        assert_eq!((answer.text.as_str(), answer.input_tokens), ("", 7));
        let anthropic = json!({"content": [{"type": "text", "text": "Let me add."},
            {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 1}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 2}});
        let answer = reply_of(LlmApi::AnthropicMessages, &anthropic);
        assert_eq!(answer.text, "Let me add.");
        assert_eq!(answer.tool_calls[0].arguments, r#"{"a":1}"#);
        assert_eq!(answer.finish_reason, "tool-calls");
        // Malformed answers name what is missing.
        let error = reply(
            LlmApi::OpenaiChat,
            &json!({"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]}),
        )
        .unwrap_err();
        assert!(error.contains("function.name"), "{error}");
        let error = reply(
            LlmApi::AnthropicMessages,
            &json!({"content": [{"type": "tool_use", "id": "t", "name": "n"}]}),
        )
        .unwrap_err();
        assert!(error.contains("`input` object"), "{error}");
    }

    fn reply_of(api: LlmApi, body: &Value) -> Reply {
        reply(api, body).unwrap()
    }

    #[test]
    fn a_call_whose_arguments_are_not_an_object_cannot_be_sent_to_anthropic() {
        let messages = vec![
            ChatMessage::User("x".into()),
            ChatMessage::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "t".into(),
                    arguments: "not json".into(),
                }],
            },
        ];
        let error = request(
            LlmApi::AnthropicMessages,
            &conversation(&messages, &[], &ToolChoice::Auto, None),
        )
        .unwrap_err();
        assert!(error.contains("tool call `c`"), "{error}");
        // OpenAI carries them as text, as the model wrote them.
        request(
            LlmApi::OpenaiChat,
            &conversation(&messages, &[], &ToolChoice::Auto, None),
        )
        .unwrap();
    }
}
