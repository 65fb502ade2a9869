//! The `hello` agent: exercises log, wall clock, randomness, fs and http (GET and POST).
//!
//! It is the template for `agentos-host init --template hello` and the component the effect
//! tests drive. Effect errors are logged and counted, never turned into step failures, so a
//! denial shows up as a receipt and a log line while the agent carries on.

use agentos_sdk::{Agent, fs, http, log};
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Hello {
    greeted: Vec<String>,
    fetched: u32,
    errors: u32,
    last_random: u64,
}

impl Agent for Hello {
    type Event = Event;

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Greet(name) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|e| e.to_string())?;
                let mut random = [0u8; 8];
                getrandom::fill(&mut random).map_err(|e| e.to_string())?;
                self.last_random = u64::from_le_bytes(random);
                let greeting = match fs::read_to_string("data/greeting.txt") {
                    Ok(text) => text.trim().to_string(),
                    Err(error) => {
                        self.errors += 1;
                        log::warn(format!("no greeting file: {error:?}"));
                        "Hello".to_string()
                    }
                };
                log::info(format!(
                    "{greeting}, {name}! (t = {} ms, dice = {})",
                    now.as_millis(),
                    self.last_random % 6 + 1
                ));
                println!("greeted {name}");
                self.greeted.push(name);
            }
            Event::Fetch(url) => match http::get(&url) {
                Ok(response) => {
                    self.fetched += 1;
                    log::info(format!(
                        "GET {url} -> {} ({} bytes)",
                        response.status,
                        response.body.len()
                    ));
                }
                Err(error) => {
                    self.errors += 1;
                    log::warn(format!("GET {url} failed: {error:?}"));
                }
            },
            Event::Post((url, body)) => {
                let request = http::Request {
                    method: "POST".into(),
                    url: url.clone(),
                    headers: vec![agentos_sdk::Field {
                        name: "content-type".into(),
                        value: "text/plain".into(),
                    }],
                    body: Some(body.into_bytes()),
                };
                match http::send(&request) {
                    Ok(response) => log::info(format!("POST {url} -> {}", response.status)),
                    Err(error) => {
                        self.errors += 1;
                        log::warn(format!("POST {url} failed: {error:?}"));
                    }
                }
            }
            Event::ReadFile(path) => match fs::read(&path) {
                Ok(bytes) => log::info(format!("{path}: {} bytes", bytes.len())),
                Err(error) => {
                    self.errors += 1;
                    log::warn(format!("read {path} failed: {error:?}"));
                }
            },
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Hello, world: "hello");
