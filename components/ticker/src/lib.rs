//! The `ticker` agent: schedules and cancels timers for itself and records the ticks.
//!
//! Effect errors (a denied or failed timer) are logged and counted, never step failures.

use agentos_sdk::timer::{self, When};
use agentos_sdk::{Agent, log};
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Ticker {
    ticks: Vec<u32>,
    scheduled: Vec<u64>,
    errors: u32,
}

impl Ticker {
    fn schedule(&mut self, when: When, event: &str) {
        match timer::schedule(when, event) {
            Ok(id) => {
                log::info(format!("timer {id} set for {event}"));
                self.scheduled.push(id);
            }
            Err(error) => {
                self.errors += 1;
                log::warn(format!("timer for {event} refused: {error:?}"));
            }
        }
    }
}

impl Agent for Ticker {
    type Event = Event;

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Schedule((delay_ms, n)) => self.schedule(When::AfterMs(delay_ms), &format!("tick({n})")),
            Event::ScheduleAt(at_ms) => self.schedule(When::AtMs(at_ms), "tick(0)"),
            Event::Cancel(id) => {
                if let Err(error) = timer::cancel(id) {
                    self.errors += 1;
                    log::warn(format!("cancel {id} failed: {error:?}"));
                }
            }
            Event::Tick(n) => {
                log::info(format!("tick {n}"));
                self.ticks.push(n);
            }
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Ticker, world: "ticker");
