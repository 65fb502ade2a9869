//! The `faulty` agent: a test component that loops, panics, errors or allocates on request.
//!
//! Each failing event first changes the state, so tests can check that the host rolled the state
//! back. It is not a template; nothing outside the test suite uses it.

use agentos_sdk::Agent;
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Faulty {
    total: u64,
    hoard: Vec<Vec<u8>>,
}

impl Agent for Faulty {
    type Event = Event;

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Add(n) => self.total += u64::from(n),
            Event::AddThenSpin(n) => {
                self.total += u64::from(n);
                let mut x: u64 = self.total;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            Event::AddThenPanic(n) => {
                self.total += u64::from(n);
                panic!("asked to panic at total {}", self.total);
            }
            Event::AddThenFail(n) => {
                self.total += u64::from(n);
                return Err(format!("asked to fail at total {}", self.total));
            }
            Event::Grow(mib) => {
                let block = vec![1u8; mib as usize * 1024 * 1024];
                self.total += block.iter().map(|&b| u64::from(b)).sum::<u64>() / (1024 * 1024);
                self.hoard.push(block);
                self.hoard.clear();
            }
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Faulty, world: "faulty");
