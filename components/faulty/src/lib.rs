//! The `faulty` agent: a test component that loops, panics, errors, allocates, sleeps, floods
//! the journal with payloads or events, or makes its own snapshot loop, on request.
//!
//! Each failing event first changes the state, so tests can check that the host rolled the state
//! back. It is not a template; nothing outside the test suite uses it.

use agentos_sdk::Agent;
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Faulty {
    total: u64,
    hoard: Vec<Vec<u8>>,
    poison: Poison,
}

/// Serialises as a bool, or never returns once set: a `lifecycle.snapshot()` that loops.
#[derive(Default, serde::Deserialize)]
struct Poison(bool);

impl serde::Serialize for Poison {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut x = 1u64;
        // The flag is read through `black_box` each time round, so the loop is the guest's own
        // (the compiler may not prove it endless).
        while std::hint::black_box(self.0) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        serializer.serialize_bool(x == 0)
    }
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
            Event::Sleep(ms) => {
                let started = std::time::Instant::now();
                std::thread::sleep(std::time::Duration::from_millis(ms));
                println!("slept {} ms", started.elapsed().as_millis());
                self.total += 1;
            }
            Event::PoisonSnapshot => {
                self.total += 1;
                self.poison = Poison(true);
            }
            Event::FloodBlobs((count, kib)) => {
                self.total += 1;
                for i in 0..count {
                    let block = vec![i as u8; kib as usize * 1024];
                    agentos_sdk::blob::put(&block).map_err(|e| format!("blob {i}: {e:?}"))?;
                }
            }
            Event::FetchWith((url, headers)) => {
                let request = agentos_sdk::http::Request {
                    method: "GET".into(),
                    url,
                    headers: headers
                        .into_iter()
                        .map(|(name, value)| agentos_sdk::Field { name, value })
                        .collect(),
                    body: None,
                };
                match agentos_sdk::http::send(&request) {
                    Ok(response) => println!(
                        "status {}: {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    ),
                    Err(error) => println!("refused: {error:?}"),
                }
            }
            Event::FloodEmits(count) => {
                self.total += 1;
                for _ in 0..count {
                    agentos_sdk::emit::send("faulty", "add(1)").map_err(|e| format!("emit: {e:?}"))?;
                }
            }
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Faulty, world: "faulty");
