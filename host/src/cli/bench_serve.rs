//! `bench`'s measurement of `serve`: events posted over HTTP on loopback by concurrent clients,
//! each answered once its step is committed (`?wait=step`), next to the same events handed to
//! the world's service in-process by as many threads, and to a floor measured in the same run —
//! raw HTTP requests to a handler that does no world work (`GET /v1/worlds`). Each figure is
//! events (or requests) per second with the p50 and p99 latency.

use super::serve::InProcess;
use agentos_runtime::service::Event;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Throughput and latency of one way in.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub struct ServeRun {
    pub clients: usize,
    pub events: u64,
    pub raw_http: Rate,
    pub http: Rate,
    pub in_process: Rate,
}

/// `clients` threads each doing `each` times what `one` does; latencies of every call.
fn measure(clients: usize, each: u64, one: impl Fn() -> Result<()> + Send + Sync) -> Result<Rate> {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| -> Result<Vec<Duration>> {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| -> Result<Vec<Duration>> {
                    (0..each)
                        .map(|_| {
                            let call = Instant::now();
                            one()?;
                            Ok(call.elapsed())
                        })
                        .collect()
                })
            })
            .collect();
        let mut all = Vec::new();
        for thread in threads {
            all.extend(thread.join().expect("a client thread")?);
        }
        Ok(all)
    })?;
    let wall = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3;
    Ok(Rate {
        per_s: latencies.len() as f64 / wall,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    })
}

pub fn run(scratch: &Path, clients: usize, events: u64) -> Result<ServeRun> {
    let dir = scratch.join("served");
    super::init::init(&dir, super::init::Template::Counter)?;
    let server = InProcess::start(&BTreeMap::from([("bench".to_string(), dir)]))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let each = events.div_ceil(clients as u64);
    let worlds = format!("{}/v1/worlds", server.url);
    let raw_http = measure(clients, each, || {
        agent.get(&worlds).call()?.into_body().read_to_string()?;
        Ok(())
    })?;
    let events_url = format!("{}/v1/worlds/bench/events?wait=step", server.url);
    let body = serde_json::json!({"agent": "counter", "wave": "increment(1)"});
    let http = measure(clients, each, || {
        let answer: serde_json::Value = agent.post(&events_url).send_json(&body)?.into_body().read_json()?;
        anyhow::ensure!(answer["step"]["outcome"] == "committed", "not stepped: {answer}");
        Ok(())
    })?;
    let sender = server.sender("bench").expect("the bench world is served");
    let in_process = measure(clients, each, || {
        let accepted = sender.send("counter", Event::Wave("increment(1)".into()), "bench", true)?;
        anyhow::ensure!(accepted.stepped, "entry #{} was not stepped", accepted.seq);
        Ok(())
    })?;
    server.stop()?;
    Ok(ServeRun {
        clients,
        events: each * clients as u64,
        raw_http,
        http,
        in_process,
    })
}
