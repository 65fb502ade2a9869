//! The `summarizer` agent: fs → llm → blob → emit in one step.
//!
//! Configuration (JSON, from the manifest): `{"model": "...", "notify": "<agent>",
//! "remind_after_ms": 1000}`. A summary is stored as a blob, sent to the `notify` agent as
//! `notify("<summary>")`, and, when `remind_after_ms` is set, followed by a timer that delivers
//! `remind("<digest>")` to the agent itself. Effect errors are logged and counted; the agent
//! carries on.

use agentos_sdk::llm::{CompletionRequest, Message, Role};
use agentos_sdk::timer::{self, When};
use agentos_sdk::{Agent, blob, emit, fs, llm, log, wave};
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Summarizer {
    model: String,
    notify: Option<String>,
    remind_after_ms: Option<u64>,
    summaries: Vec<String>,
    reminders: u32,
    tokens_used: u64,
    errors: u32,
}

#[derive(serde::Deserialize)]
struct Config {
    model: String,
    notify: Option<String>,
    remind_after_ms: Option<u64>,
}

impl Summarizer {
    fn complete(&mut self, provider: Option<String>, system: &str, prompt: String) -> Option<String> {
        let request = CompletionRequest {
            provider,
            model: self.model.clone(),
            messages: vec![
                Message {
                    role: Role::System,
                    content: system.to_string(),
                },
                Message {
                    role: Role::User,
                    content: prompt,
                },
            ],
            max_tokens: 256,
            temperature_milli: Some(0),
            stop: vec![],
        };
        match llm::complete(&request) {
            Ok(completion) => {
                self.tokens_used += u64::from(completion.usage.input_tokens + completion.usage.output_tokens);
                Some(completion.text)
            }
            Err(error) => {
                self.errors += 1;
                log::warn(format!("llm call failed: {error:?}"));
                None
            }
        }
    }
}

impl Agent for Summarizer {
    type Event = Event;

    fn init(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config).map_err(|e| format!("summarizer config: {e}"))?;
        Ok(Summarizer {
            model: config.model,
            notify: config.notify,
            remind_after_ms: config.remind_after_ms,
            ..Summarizer::default()
        })
    }

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Summarize(path) => {
                let text = match fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(error) => {
                        self.errors += 1;
                        log::warn(format!("cannot read {path}: {error:?}"));
                        return Ok(());
                    }
                };
                let Some(summary) = self.complete(None, "Summarise the text in one sentence.", text) else {
                    return Ok(());
                };
                match blob::put(summary.as_bytes()) {
                    Ok(digest) => {
                        log::info(format!("summary of {path} stored as {digest}"));
                        if let Some(delay) = self.remind_after_ms {
                            let reminder = format!("remind({})", wave::string(&digest));
                            if let Err(error) = timer::schedule(When::AfterMs(delay), &reminder) {
                                log::warn(format!("reminder not set: {error:?}"));
                            }
                        }
                        self.summaries.push(digest);
                    }
                    Err(error) => log::warn(format!("blob put failed: {error:?}")),
                }
                if let Some(target) = &self.notify
                    && let Err(error) = emit::send(target, &format!("notify({})", wave::string(&summary)))
                {
                    log::warn(format!("notify {target} failed: {error:?}"));
                }
            }
            Event::Remind(digest) => {
                self.reminders += 1;
                log::info(format!("reminder: summary {digest} is waiting to be read"));
            }
            Event::Ask((provider, prompt)) => {
                if let Some(answer) = self.complete(Some(provider), "Answer briefly.", prompt) {
                    log::info(format!("answer: {answer}"));
                }
            }
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Summarizer, world: "summarizer");
