//! The `editor` agent: reviews the texts a plan sends it and replies to the plan.
//!
//! Configuration (JSON, from the manifest): `{"reply_to": "plan:<name>"}`. Each `review(text)`
//! is answered by emitting `{headline: "<first sentence, at most 60 characters>", words: <n>}`
//! to that plan, the reply its `send` step awaits. Texts it cannot reply to (no `reply_to`, or
//! the emit refused) fail the step, so the plan's wait ends at its deadline.

use agentos_sdk::{Agent, emit, log, wave};
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Editor {
    reply_to: Option<String>,
    reviewed: u32,
}

#[derive(serde::Deserialize)]
struct Config {
    reply_to: Option<String>,
}

/// The first sentence of `text`, cut at 60 characters.
fn headline(text: &str) -> String {
    let first = text
        .split(['.', '!', '?', '\n'])
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    let first = first.trim();
    match first.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &first[..cut]),
        None => first.to_string(),
    }
}

impl Agent for Editor {
    type Event = Event;

    fn init(config: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(config).map_err(|e| format!("bad config: {e}"))?;
        Ok(Editor {
            reply_to: config.reply_to,
            reviewed: 0,
        })
    }

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Review(text) => {
                let target = self.reply_to.as_deref().ok_or("no `reply_to` in the config")?;
                let words = text.split_whitespace().count();
                let title = headline(&text);
                let reply = format!("{{headline: {}, words: {words}}}", wave::string(&title));
                emit::send(target, &reply).map_err(|e| format!("replying to {target}: {e:?}"))?;
                self.reviewed += 1;
                log::info(format!("review #{}: {title:?} ({words} words)", self.reviewed));
            }
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Editor, world: "editor");
