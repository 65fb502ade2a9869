//! `bench`'s figures for agents side by side: `N` agents each calling a slow loopback endpoint
//! (wall time against the serial sum of the calls and against the ideal, one agent's calls one
//! after another), and durable steps with one and with many senders, against raw fsynced redb
//! commits measured in the same run.

use agentos_runtime::service::{Event, WorldService};
use agentos_runtime::world::{EventInput, OpenMode, World};
use anyhow::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// `agents` agents, each making `calls` calls to an endpoint answering after `latency_ms`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SideBySide {
    pub agents: usize,
    pub calls_per_agent: u32,
    pub latency_ms: u64,
    pub wall_s: f64,
    /// Every call one after another.
    pub serial_s: f64,
    /// Each agent's calls one after another, the agents side by side.
    pub ideal_s: f64,
}

impl SideBySide {
    /// How many times faster than every call in turn.
    pub fn speed_up(&self) -> f64 {
        self.serial_s / self.wall_s
    }
}

/// A loopback HTTP server answering every request with `ok` after `latency`, each connection
/// on its own thread, for as long as the process runs.
fn slow_server(latency: Duration) -> Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/slow", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || super::bench::answer_ok(stream, latency));
        }
    });
    Ok(url)
}

/// A `hello` world of `agents` agents (`hello`, `hello-1`, …), all with the template's grants.
fn hello_world(scratch: &Path, agents: usize) -> Result<std::path::PathBuf> {
    let dir = scratch.join(format!("side-by-side-{agents}"));
    super::init::init(&dir, super::init::Template::Hello)?;
    let mut manifest = std::fs::read_to_string(dir.join("world.toml"))?;
    for i in 1..agents {
        manifest.push_str(&format!(
            "\n[agents.hello-{i}]\nmodule = \"hello\"\ngrants = [\"data\", \"local-web\"]\n"
        ));
    }
    std::fs::write(dir.join("world.toml"), manifest)?;
    Ok(dir)
}

/// Run `calls` fetches of a `latency_ms` endpoint for each of `agents` agents, queued round
/// robin and processed until idle.
pub fn side_by_side(scratch: &Path, agents: usize, calls: u32, latency_ms: u64) -> Result<SideBySide> {
    let url = slow_server(Duration::from_millis(latency_ms))?;
    let dir = hello_world(scratch, agents)?;
    let mut world = World::open(&dir, OpenMode::Run)?;
    let names: Vec<String> = world.kernel.agents().keys().cloned().collect();
    let event = format!("fetch(\"{url}\")");
    for _ in 0..calls {
        for name in &names {
            world.ingest(name, EventInput::Wave(&event), "bench")?;
        }
    }
    world.commit()?;
    let started = Instant::now();
    let steps = world.run(|_| {})?;
    let wall_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        steps == agents * calls as usize,
        "{steps} steps ran, {} were queued",
        agents * calls as usize
    );
    let latency_s = latency_ms as f64 / 1000.0;
    Ok(SideBySide {
        agents,
        calls_per_agent: calls,
        latency_ms,
        wall_s,
        serial_s: latency_s * f64::from(calls) * agents as f64,
        ideal_s: latency_s * f64::from(calls),
    })
}

/// Durable steps per second with `senders` threads sending to one counter world held by a
/// [`WorldService`]: each sender waits for its step to be committed before it sends again, so
/// senders that arrive together share a commit.
pub fn durable_senders(scratch: &Path, senders: usize, steps_per_sender: u64) -> Result<f64> {
    let dir = scratch.join(format!("senders-{senders}"));
    super::init::init(&dir, super::init::Template::Counter)?;
    let service = WorldService::start(World::open(&dir, OpenMode::Run)?)?;
    let started = Instant::now();
    let threads: Vec<_> = (0..senders)
        .map(|_| {
            let sender = service.sender();
            std::thread::spawn(move || -> Result<()> {
                for _ in 0..steps_per_sender {
                    let accepted = sender.send("counter", Event::Wave("increment(1)".into()), "bench", true)?;
                    anyhow::ensure!(accepted.step.is_some(), "entry #{} was not stepped", accepted.seq);
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("sender thread")?;
    }
    let per_second = (senders as u64 * steps_per_sender) as f64 / started.elapsed().as_secs_f64();
    service.stop()?;
    Ok(per_second)
}
