//! The `notifier` agent: exercises `blob` and `emit`.
//!
//! Notes are stored as blobs (the state keeps only their digests); `relay` passes an event to
//! another agent. Effect errors are logged and counted, not turned into step failures, except
//! in `relay-then-fail`, which exists to show that a failed step delivers nothing.

use agentos_sdk::{Agent, blob, emit, log};
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Notifier {
    notes: Vec<String>,
    relayed: u32,
    errors: u32,
}

impl Notifier {
    fn note_error(&mut self, what: &str, error: agentos_sdk::EffectError) {
        self.errors += 1;
        log::warn(format!("{what} failed: {error:?}"));
    }
}

impl Agent for Notifier {
    type Event = Event;

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Notify(text) => match blob::put(text.as_bytes()) {
                Ok(digest) => {
                    log::info(format!("stored note {digest}"));
                    self.notes.push(digest);
                }
                Err(error) => self.note_error("blob put", error),
            },
            Event::Recall(digest) => match blob::get(&digest) {
                Ok(bytes) => log::info(format!("note {digest}: {}", String::from_utf8_lossy(&bytes))),
                Err(error) => self.note_error("blob get", error),
            },
            Event::Relay((target, event)) => match emit::send(&target, &event) {
                Ok(()) => self.relayed += 1,
                Err(error) => self.note_error("emit", error),
            },
            Event::RelayThenFail((target, event)) => {
                emit::send(&target, &event).map_err(|e| format!("emit failed: {e:?}"))?;
                return Err(format!("failing after sending {event} to {target}"));
            }
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Notifier, world: "notifier");
