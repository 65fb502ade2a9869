//! Conversations with tools, as the `llm` effect records them: messages that carry the
//! assistant's tool calls and the tools' results, tool definitions, tool choice and structured
//! output. These are the hashed request's own types (postcard-encoded into the receipt), so
//! their shape is part of the journal format: new fields go in new variants, never into these.
//!
//! [`Conversation::check`] is what the host checks before anything is sent: names, that schemas
//! and arguments are JSON objects, that a named tool exists, that every tool result answers a
//! call the model made. What it refuses is a failed call, receipted, whose reason the agent can
//! show the model.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tool the model may ask to call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of its arguments, JSON text.
    pub parameters: String,
}

/// Whether and which tools the model is to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of an object.
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChatMessage {
    System(String),
    User(String),
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

impl ChatMessage {
    /// Bytes of text it carries (what the prompt limit counts).
    pub fn len(&self) -> usize {
        match self {
            ChatMessage::System(text) | ChatMessage::User(text) => text.len(),
            ChatMessage::Assistant { text, tool_calls } => {
                text.len()
                    + tool_calls
                        .iter()
                        .map(|c| c.id.len() + c.name.len() + c.arguments.len())
                        .sum::<usize>()
            }
            ChatMessage::Tool { call_id, content, .. } => call_id.len() + content.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Structured output: the reply is JSON matching `schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    pub name: String,
    /// A JSON Schema, JSON text.
    pub schema: String,
}

/// One request to a model, as the adapter sends it in either protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation<'a> {
    pub model: &'a str,
    pub messages: std::borrow::Cow<'a, [ChatMessage]>,
    pub tools: &'a [ToolSpec],
    pub tool_choice: &'a ToolChoice,
    pub response_format: Option<&'a ResponseFormat>,
    pub max_tokens: u32,
    pub temperature_milli: Option<u32>,
    pub stop: &'a [String],
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `tool-calls`, `length`, or the provider's own.
    pub finish_reason: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// Most tools one request may define.
pub const TOOLS_MAX: usize = 128;

/// `text` parsed, if it is a JSON object.
pub fn json_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

impl Conversation<'_> {
    /// Why this conversation cannot be sent, naming the part that is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.tools.len() > TOOLS_MAX {
            return Err(format!("{} tools defined; at most {TOOLS_MAX}", self.tools.len()));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, tool) in self.tools.iter().enumerate() {
            if !agentos_air::mcp::valid_name(&tool.name) {
                return Err(format!(
                    "tool {i}: name {:?} is not 1 to 64 letters, digits, `_` or `-`",
                    tool.name
                ));
            }
            if !names.insert(tool.name.as_str()) {
                return Err(format!("tool `{}` is defined twice", tool.name));
            }
            if json_object(&tool.parameters).is_none() {
                return Err(format!(
                    "tool `{}`: its parameters are not a JSON Schema object",
                    tool.name
                ));
            }
        }
        match self.tool_choice {
            ToolChoice::Named(name) if !names.contains(name.as_str()) => {
                return Err(format!("tool choice names `{name}`, which no tool of the request is"));
            }
            ToolChoice::Required if self.tools.is_empty() => {
                return Err("tool choice `required` with no tools defined".into());
            }
            _ => {}
        }
        if let Some(format) = self.response_format {
            if !agentos_air::mcp::valid_name(&format.name) {
                return Err(format!(
                    "response format name {:?} is not 1 to 64 letters, digits, `_` or `-`",
                    format.name
                ));
            }
            if json_object(&format.schema).is_none() {
                return Err(format!(
                    "response format `{}`: its schema is not a JSON object",
                    format.name
                ));
            }
        }
        let mut calls = std::collections::BTreeSet::new();
        for (i, message) in self.messages.iter().enumerate() {
            match message {
                ChatMessage::Assistant { tool_calls, .. } => {
                    for call in tool_calls {
                        if json_object(&call.arguments).is_none() {
                            return Err(format!(
                                "message {i}: the arguments of tool call `{}` are not a JSON object",
                                call.id
                            ));
                        }
                        calls.insert(call.id.as_str());
                    }
                }
                ChatMessage::Tool { call_id, .. } if !calls.contains(call_id.as_str()) => {
                    return Err(format!(
                        "message {i}: a tool result for call `{call_id}`, which no earlier assistant message made"
                    ));
                }
                _ => {}
            }
        }
        if self.messages.is_empty() {
            return Err("no messages".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation<'a>(
        messages: &'a [ChatMessage],
        tools: &'a [ToolSpec],
        choice: &'a ToolChoice,
    ) -> Conversation<'a> {
        Conversation {
            model: "m",
            messages: messages.into(),
            tools,
            tool_choice: choice,
            response_format: None,
            max_tokens: 10,
            temperature_milli: None,
            stop: &[],
        }
    }

    fn tool(name: &str, parameters: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: parameters.into(),
        }
    }

    #[test]
    fn check_names_what_is_wrong() {
        let user = [ChatMessage::User("hi".into())];
        let object = r#"{"type":"object"}"#;
        let cases: Vec<(Vec<ToolSpec>, ToolChoice, Vec<ChatMessage>, &str)> = vec![
            (
                vec![tool("a b", object)],
                ToolChoice::Auto,
                user.to_vec(),
                "name \"a b\"",
            ),
            (
                vec![tool("a", object), tool("a", object)],
                ToolChoice::Auto,
                user.to_vec(),
                "defined twice",
            ),
            (
                vec![tool("a", "[]")],
                ToolChoice::Auto,
                user.to_vec(),
                "not a JSON Schema object",
            ),
            (
                vec![tool("a", object)],
                ToolChoice::Named("b".into()),
                user.to_vec(),
                "names `b`",
            ),
            (vec![], ToolChoice::Required, user.to_vec(), "`required` with no tools"),
            (
                vec![],
                ToolChoice::Auto,
                vec![ChatMessage::Tool {
                    call_id: "x".into(),
                    content: String::new(),
                    is_error: false,
                }],
                "call `x`, which no earlier",
            ),
            (
                vec![],
                ToolChoice::Auto,
                vec![ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c".into(),
                        name: "a".into(),
                        arguments: "1".into(),
                    }],
                }],
                "arguments of tool call `c`",
            ),
            (vec![], ToolChoice::Auto, vec![], "no messages"),
        ];
        for (tools, choice, messages, says) in cases {
            let error = conversation(&messages, &tools, &choice).check().unwrap_err();
            assert!(error.contains(says), "{error} should say {says}");
        }
        let tools = [tool("read_file", object)];
        conversation(&user, &tools, &ToolChoice::Named("read_file".into()))
            .check()
            .unwrap();
    }
}
