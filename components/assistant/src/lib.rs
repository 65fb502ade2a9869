//! The `assistant` agent: answers a question with a language model that may call tools, in a
//! tool loop (`agentos_sdk::tools`). Every model turn is an `llm.chat` receipt; every tool call
//! is logged with its result.
//!
//! Configuration (JSON, from the manifest): `{"model": "...", "provider": "...", "system":
//! "...", "max_turns": 6}` (all but `model` optional). Its tools are whatever MCP tools its
//! `mcp` grants allow, listed at each question: pointing it at other servers is configuration
//! only. A question whose loop reaches `max_turns` is kept, and `resume` goes on with it in a
//! later step, so no single step runs long. `call` runs one tool directly, for an operator.

use agentos_sdk::llm::ChatMessage;
use agentos_sdk::tools::{LoopOutcome, ToolLoop};
use agentos_sdk::{Agent, log, mcp};
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Assistant {
    config: Config,
    /// Questions answered, with their answers.
    answers: Vec<(String, String)>,
    /// A question whose loop stopped at its turn limit: the conversation so far.
    pending: Option<(String, Vec<ChatMessage>)>,
}

#[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
struct Config {
    model: String,
    provider: Option<String>,
    system: Option<String>,
    max_turns: Option<u32>,
}

impl Assistant {
    fn tool_loop(&self) -> Result<ToolLoop<'static>, String> {
        let config = &self.config;
        let tools = mcp::list_tools(None).map_err(|e| format!("cannot list the granted tools: {e:?}"))?;
        let mut tools = ToolLoop::new(
            &config.model,
            config
                .system
                .as_deref()
                .unwrap_or("Answer the question. Use the tools to read files and to do arithmetic."),
        )
        .mcp_tools(tools)
        .on_call(|record| {
            let outcome = if record.is_error { "failed" } else { "→" };
            log::info(format!(
                "tool {}({}) {outcome} {}",
                record.call.name, record.call.arguments, record.result
            ));
        });
        tools.provider = config.provider.clone();
        tools.max_turns = config.max_turns.unwrap_or(6);
        Ok(tools)
    }

    fn finish(&mut self, question: String, outcome: LoopOutcome) {
        match outcome {
            LoopOutcome::Answer { text, turns } => {
                log::info(format!("answer after {turns} model turn(s): {text}"));
                self.answers.push((question, text));
            }
            LoopOutcome::TurnLimit { messages } => {
                log::warn("the tool loop reached its turn limit; `resume` goes on with it");
                self.pending = Some((question, messages));
            }
        }
    }
}

impl Agent for Assistant {
    type Event = Event;

    fn init(config: &str) -> Result<Self, String> {
        let config: Config =
            serde_json::from_str(config).map_err(|e| format!("assistant config: {e} (needs at least \"model\")"))?;
        Ok(Assistant {
            config,
            ..Assistant::default()
        })
    }

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Ask(question) => {
                let outcome = self.tool_loop()?.run(&question).map_err(|e| format!("{e:?}"))?;
                self.finish(question, outcome);
            }
            Event::Call((server, tool, arguments)) => {
                let output = mcp::call_tool(&server, &tool, &arguments).map_err(|e| format!("{e:?}"))?;
                let verdict = if output.is_error { "tool error" } else { "result" };
                log::info(format!("{server}/{tool} {verdict}: {}", mcp::text_of(&output)));
            }
            Event::Resume => {
                let Some((question, messages)) = self.pending.take() else {
                    return Err("no question waits to be resumed".into());
                };
                let outcome = self.tool_loop()?.resume(messages).map_err(|e| format!("{e:?}"))?;
                self.finish(question, outcome);
            }
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Assistant, world: "assistant");
