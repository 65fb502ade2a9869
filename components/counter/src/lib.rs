//! The `counter` agent: the smallest AgentOS agent, with state and no effects.
//!
//! It exists as the template for `agentos-host init --template counter` and as the workload of
//! the stepper benchmark; it deliberately performs no effect so a step measures the runtime alone.

use agentos_sdk::Agent;
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter {
    value: u64,
    events: u64,
}

impl Agent for Counter {
    type Event = Event;

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Increment(by) => {
                self.value = self
                    .value
                    .checked_add(u64::from(by))
                    .ok_or_else(|| format!("counter overflow: {} + {by}", self.value))?;
            }
            Event::Reset => self.value = 0,
        }
        self.events += 1;
        Ok(())
    }
}

agentos_sdk::export_agent!(Counter, world: "counter");
