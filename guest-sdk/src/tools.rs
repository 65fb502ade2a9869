//! A tool loop: model → tool calls → results → model, until the model answers or a turn limit
//! is reached. Every model turn is an `llm.chat` effect call and every tool an `mcp` call
//! ([`ToolLoop::mcp_tools`]) or a function of the agent's own ([`ToolLoop::tool`]), so each is
//! gated and receipted like any other call.
//!
//! A tool call the model gets wrong — a tool that does not exist, arguments that are not JSON or
//! do not match the tool's schema — is not run: its result is an error the model reads, so it
//! can correct itself on the next turn.
//!
//! One step must stay within its fuel, deadline and effect-call limits. A loop that may run long
//! is split across steps: [`ToolLoop::run`] stops after `max_turns` and returns
//! [`LoopOutcome::TurnLimit`] with the conversation so far; keep it in the agent's state and
//! continue with [`ToolLoop::resume`] on a later step (an event the agent `emit`s to itself, or a
//! timer), so each step does a bounded part of the work.
//!
//! The schema check covers `type` (`object`, `string`, `number`, `integer`, `boolean`, `array`,
//! `null`), `required`, `properties` and `enum`, which is what tool schemas use in practice;
//! other keywords are not checked.

use crate::llm::{AssistantTurn, ChatMessage, ChatRequest, Tool, ToolCall, ToolChoice, ToolResult};
use serde_json::Value;

/// What runs a tool: its checked arguments in, its result (or why it failed) out.
type RunTool<'a> = Box<dyn Fn(&Value) -> Result<String, String> + 'a>;

/// What is told of each tool call.
type OnCall<'a> = Box<dyn Fn(&CallRecord) + 'a>;

/// A tool: its definition for the model and what runs it.
pub struct ToolDef<'a> {
    pub tool: Tool,
    schema: Value,
    run: RunTool<'a>,
}

impl<'a> ToolDef<'a> {
    /// A tool that runs `run` with the (checked) arguments; `Err` is returned to the model as a
    /// failed call. `parameters` is the JSON Schema of the arguments, as JSON text.
    pub fn new(
        name: &str,
        description: &str,
        parameters: &str,
        run: impl Fn(&Value) -> Result<String, String> + 'a,
    ) -> ToolDef<'a> {
        ToolDef {
            tool: Tool {
                name: name.into(),
                description: description.into(),
                parameters: parameters.into(),
            },
            schema: serde_json::from_str(parameters).unwrap_or(Value::Null),
            run: Box::new(run),
        }
    }
}

/// How a loop ended.
#[derive(Debug, Clone)]
pub enum LoopOutcome {
    /// The model's final answer, after `turns` model turns.
    Answer { text: String, turns: u32 },
    /// `max_turns` turns without a final answer: the conversation so far, to resume later.
    TurnLimit { messages: Vec<ChatMessage> },
}

/// One tool call of a loop, as it went (for logging and tests).
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub call: ToolCall,
    pub result: String,
    pub is_error: bool,
}

/// The loop's settings and tools.
pub struct ToolLoop<'a> {
    pub provider: Option<String>,
    pub model: String,
    pub system: String,
    pub max_turns: u32,
    pub max_tokens: u32,
    pub temperature_milli: Option<u32>,
    tools: Vec<ToolDef<'a>>,
    /// Called after each tool call.
    on_call: Option<OnCall<'a>>,
}

impl<'a> ToolLoop<'a> {
    pub fn new(model: &str, system: &str) -> ToolLoop<'a> {
        ToolLoop {
            provider: None,
            model: model.into(),
            system: system.into(),
            max_turns: 8,
            max_tokens: 1024,
            temperature_milli: Some(0),
            tools: Vec::new(),
            on_call: None,
        }
    }

    /// Offer `tool` to the model.
    pub fn tool(mut self, tool: ToolDef<'a>) -> ToolLoop<'a> {
        self.tools.push(tool);
        self
    }

    /// Offer the model these MCP tools (from [`crate::mcp::list_tools`]); each call goes
    /// through the `mcp` effect. A tool is offered under its name made fit for both model
    /// protocols (1 to 64 letters, digits, `_` or `-`), as `<server>__<tool>` when another
    /// offered tool already has that name; one that still clashes is left out.
    pub fn mcp_tools(mut self, tools: Vec<crate::mcp::ToolInfo>) -> ToolLoop<'a> {
        let fit = |name: &str| -> String {
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect()
        };
        for info in tools {
            let taken = |name: &str| self.tools.iter().any(|t| t.tool.name == name);
            let mut name = fit(&info.name);
            if taken(&name) {
                name = fit(&format!("{}__{}", info.server, info.name));
            }
            if name.is_empty() || taken(&name) {
                continue;
            }
            let (server, tool) = (info.server.clone(), info.name.clone());
            self.tools.push(ToolDef::new(
                &name,
                &info.description,
                &info.input_schema,
                move |arguments| match crate::mcp::call_tool(&server, &tool, &arguments.to_string()) {
                    Ok(output) if output.is_error => Err(crate::mcp::text_of(&output)),
                    Ok(output) => Ok(crate::mcp::text_of(&output)),
                    // Timed out or cut short, it may have run: say so, so it is not simply repeated.
                    Err(error) => Err(format!("the call failed (it may have run): {error:?}")),
                },
            ));
        }
        self
    }

    /// Run `each` after every tool call (e.g. to log it).
    pub fn on_call(mut self, each: impl Fn(&CallRecord) + 'a) -> ToolLoop<'a> {
        self.on_call = Some(Box::new(each));
        self
    }

    /// Ask `question` and run tool calls until the model answers or `max_turns` turns passed.
    pub fn run(&self, question: &str) -> Result<LoopOutcome, crate::EffectError> {
        let mut messages = Vec::new();
        if !self.system.is_empty() {
            messages.push(ChatMessage::System(self.system.clone()));
        }
        messages.push(ChatMessage::User(question.into()));
        self.resume(messages)
    }

    /// Go on with a conversation a [`LoopOutcome::TurnLimit`] returned.
    pub fn resume(&self, mut messages: Vec<ChatMessage>) -> Result<LoopOutcome, crate::EffectError> {
        for turn in 1..=self.max_turns {
            let reply = crate::llm::chat(&ChatRequest {
                provider: self.provider.clone(),
                model: self.model.clone(),
                messages: messages.clone(),
                tools: self.tools.iter().map(|t| t.tool.clone()).collect(),
                tool_choice: ToolChoice::Auto,
                response_format: None,
                max_tokens: self.max_tokens,
                temperature_milli: self.temperature_milli,
                stop: Vec::new(),
            })?;
            if reply.tool_calls.is_empty() {
                return Ok(LoopOutcome::Answer {
                    text: reply.text,
                    turns: turn,
                });
            }
            messages.push(ChatMessage::Assistant(AssistantTurn {
                text: reply.text,
                tool_calls: reply.tool_calls.clone(),
            }));
            for call in reply.tool_calls {
                let (result, is_error) = match self.call(&call) {
                    Ok(result) => (result, false),
                    Err(error) => (error, true),
                };
                if let Some(each) = &self.on_call {
                    each(&CallRecord {
                        call: call.clone(),
                        result: result.clone(),
                        is_error,
                    });
                }
                messages.push(ChatMessage::Tool(ToolResult {
                    call_id: call.id,
                    content: result,
                    is_error,
                }));
            }
        }
        Ok(LoopOutcome::TurnLimit { messages })
    }

    /// Run one call the model asked for, or say why it cannot run.
    fn call(&self, call: &ToolCall) -> Result<String, String> {
        let Some(tool) = self.tools.iter().find(|t| t.tool.name == call.name) else {
            let names: Vec<&str> = self.tools.iter().map(|t| t.tool.name.as_str()).collect();
            return Err(format!(
                "there is no tool `{}`; the tools are: {}",
                call.name,
                names.join(", ")
            ));
        };
        let arguments: Value = serde_json::from_str(&call.arguments)
            .map_err(|e| format!("the arguments of `{}` are not JSON: {e}", call.name))?;
        check(&tool.schema, &arguments, "arguments")
            .map_err(|problem| format!("the arguments of `{}` do not match its schema: {problem}", call.name))?;
        (tool.run)(&arguments)
    }
}

/// Whether `value` matches `schema` (the subset in the module docs), naming the first mismatch.
pub fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let matches = match kind {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|x| x.fract() == 0.0),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => true,
        };
        if !matches {
            return Err(format!("{at} must be of type {kind}, not {value}"));
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(value)
    {
        return Err(format!("{at} must be one of {}", Value::Array(choices.clone())));
    }
    if let Some(object) = value.as_object() {
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = name.as_str()
                && !object.contains_key(name)
            {
                return Err(format!("{at} lacks the required `{name}`"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                if let Some(inner) = object.get(name) {
                    check(property, inner, &format!("{at}.{name}"))?;
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;
    use serde_json::json;

    #[test]
    fn the_schema_check_names_the_first_mismatch() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "number"}, "unit": {"enum": ["m", "s"]}, "xs": {"type": "array", "items": {"type": "integer"}}}});
        assert!(check(&schema, &json!({"a": 1, "unit": "m", "xs": [1, 2]}), "arguments").is_ok());
        let error = |value| check(&schema, &value, "arguments").unwrap_err();
        assert!(error(json!({})).contains("lacks the required `a`"));
        assert!(error(json!({"a": "1"})).contains("arguments.a must be of type number"));
        assert!(error(json!({"a": 1, "unit": "h"})).contains("arguments.unit must be one of"));
        assert!(error(json!({"a": 1, "xs": [1, 2.5]})).contains("arguments.xs[1] must be of type integer"));
        assert!(error(json!([1])).contains("must be of type object"));
    }
}
