//! `agentos-host bench`: stepper throughput as ratios against floors measured in the same run.
//!
//! Floors: raw calls of the counter's `handle` export in wasmtime (no journal, no snapshot), and
//! raw fsynced redb commits of a small value. Measured: batched journaled steps (ingress +
//! step + snapshot digest, committed every `STEPS_PER_COMMIT` steps), journal commits of one
//! entry each (the entry and the checkpoint signed over the journal, one fsync), and durable
//! steps (each event and its step committed and fsynced before the next); then effects,
//! recovery and `verify` (`bench_verifiability`) and agents side by side
//! (`bench_concurrency`).

use agentos_runtime::caps::AgentGrants;
use agentos_runtime::components::ensure_built;
use agentos_runtime::engine::Runtime;
use agentos_runtime::world::{EventInput, OpenMode, World};
use anyhow::Result;
use std::time::Instant;

fn per_second(count: u64, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}

/// What the agents-side-by-side measurements run (see `bench_concurrency`).
#[derive(Debug, Clone)]
pub struct SideBySideRuns {
    pub agents: Vec<usize>,
    pub calls: u32,
    pub latency_ms: u64,
    pub senders: usize,
}

pub fn run(steps: u64, recovery_steps: u64, side_by_side: &SideBySideRuns, json: bool) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let world_dir = scratch.path().join("bench-world");
    super::init::init(&world_dir, super::init::Template::Counter)?;

    // Floor 1: raw wasmtime calls of the same export.
    let runtime = Runtime::new()?;
    let bytes = std::fs::read(ensure_built("counter")?)?;
    let component = runtime.load("counter", &bytes, &world_dir)?;
    let manifest = agentos_runtime::world::read_manifest(&agentos_runtime::world::WorldPaths::new(&world_dir))?;
    let grants = AgentGrants::from_manifest(&manifest, "counter", &world_dir)?;
    let prepared = runtime.prepare(&component, &grants)?;
    let unlimited = agentos_runtime::engine::StepLimits {
        fuel: u64::MAX / 2,
        deadline_ms: 3_600_000,
    };
    let mut instance = runtime.instantiate(&prepared, &[0; 16], 64 << 20, unlimited)?;
    instance.begin_step(&[0; 16], 0, 0, unlimited);
    instance.init("null").map_err(|e| anyhow::anyhow!("init: {e:?}"))?;
    let event = agentos_runtime::values::parse_wave(&prepared.event_type, "increment(1)")?;
    let started = Instant::now();
    for _ in 0..steps {
        instance.handle(event.clone()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let raw_calls = per_second(steps, started);

    // Measured 1: the full stepper, batched commits.
    let mut world = World::open(&world_dir, OpenMode::Run)?;
    let started = Instant::now();
    for _ in 0..steps {
        world.ingest("counter", EventInput::Wave("increment(1)"), "bench")?;
    }
    world.run(|_| {})?;
    let batched = per_second(steps, started);

    // Floor 2: raw fsynced redb commits.
    let durable_steps = (steps / 20).max(50);
    let db = redb::Database::create(scratch.path().join("raw.redb"))?;
    let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");
    let started = Instant::now();
    for i in 0..durable_steps {
        let txn = db.begin_write()?;
        txn.open_table(table)?.insert(i, [0u8; 64].as_slice())?;
        txn.commit()?;
    }
    let raw_commits = per_second(durable_steps, started);

    // Measured 2: journal commits of one entry each, with the checkpoint that ends every commit.
    let signed_commits = {
        let mut journal = agentos_runtime::journal::Journal::open(&scratch.path().join("commits.redb"))?;
        journal.open_new_for_appends(
            [0; 16],
            std::sync::Arc::new(agentos_runtime::receipts::HostKey::ephemeral()?),
        );
        let started = Instant::now();
        for i in 0..durable_steps {
            journal.append(agentos_runtime::journal::entry::EntryBody::TimerCancelled(
                agentos_runtime::journal::entry::TimerCancelled { ingress: i, id: i },
            ));
            journal.commit()?;
        }
        per_second(durable_steps, started)
    };

    // Measured 3: durable steps, one at a time (the event and its step in one fsynced commit).
    let started = Instant::now();
    for _ in 0..durable_steps {
        world.ingest("counter", EventInput::Wave("increment(1)"), "bench")?;
        world.run(|_| {})?;
    }
    let durable = per_second(durable_steps, started);
    drop(world);

    let side_by_side_runs = side_by_side
        .agents
        .iter()
        .map(|&agents| {
            super::bench_concurrency::side_by_side(scratch.path(), agents, side_by_side.calls, side_by_side.latency_ms)
        })
        .collect::<Result<Vec<_>>>()?;
    let one_sender = super::bench_concurrency::durable_senders(scratch.path(), 1, durable_steps)?;
    let many_senders = super::bench_concurrency::durable_senders(
        scratch.path(),
        side_by_side.senders,
        durable_steps.div_ceil(side_by_side.senders as u64),
    )?;

    let served = super::bench_serve::run(scratch.path(), side_by_side.senders, durable_steps.max(400))?;
    let effects = effect_overhead(scratch.path(), (steps / 10).max(200))?;
    let tools = super::bench_mcp::tool_call_overhead(scratch.path(), (steps / 10).max(200))?;
    let recovery = super::bench_verifiability::recovery(scratch.path(), recovery_steps)?;
    let verify = super::bench_verifiability::verify_throughput(scratch.path(), (steps / 4).max(100))?;

    let served_json = serde_json::json!({
        "clients": served.clients, "events": served.events,
        "raw_http_requests_per_s": served.raw_http.per_s,
        "raw_http_p50_ms": served.raw_http.p50_ms, "raw_http_p99_ms": served.raw_http.p99_ms,
        "http_events_per_s": served.http.per_s,
        "http_p50_ms": served.http.p50_ms, "http_p99_ms": served.http.p99_ms,
        "in_process_events_per_s": served.in_process.per_s,
        "in_process_p50_ms": served.in_process.p50_ms, "in_process_p99_ms": served.in_process.p99_ms,
        "http_vs_in_process_ratio": served.http.per_s / served.in_process.per_s,
    });
    let mcp_json = serde_json::json!({
        "mcp_calls": tools.calls,
        "raw_rmcp_call_us": tools.raw_rmcp_us,
        "choke_point_mcp_us": tools.choke_point_us,
        "choke_point_mcp_added_us": tools.choke_point_us - tools.raw_rmcp_us,
        "choke_point_mcp_vs_raw_ratio": tools.choke_point_us / tools.raw_rmcp_us,
        "choke_point_mcp_with_intent_us": tools.choke_point_with_intent_us,
    });
    if json {
        let mut report = serde_json::json!({
                "steps": steps, "raw_wasmtime_calls_per_s": raw_calls, "journaled_steps_per_s": batched,
                "journaled_vs_raw_ratio": batched / raw_calls, "durable_steps": durable_steps,
                "raw_redb_commits_per_s": raw_commits, "durable_steps_per_s": durable,
                "signed_journal_commits_per_s": signed_commits,
                "signed_commit_vs_raw_commit_ratio": signed_commits / raw_commits,
                "durable_vs_raw_commit_ratio": durable / raw_commits,
                "effect_calls": effects.calls,
                "raw_http_adapter_us": effects.raw_http_us,
                "choke_point_http_us": effects.gated_http_us,
                "choke_point_added_us": effects.gated_http_us - effects.raw_http_us,
                "choke_point_log_us": effects.gated_log_us,
                "raw_ed25519_sign_us": effects.raw_sign_us,
                "recovery_steps": recovery.steps,
                "recovery_snapshots": recovery.snapshots,
                "open_from_snapshot_and_step_ms": recovery.open_and_step_ms,
                "replay_from_genesis_ms": recovery.replay_from_genesis_ms,
                "verify_entries": verify.entries,
                "verify_entries_per_s": verify.verify_entries_per_s,
                "verify_receipts_per_s": verify.verify_receipts_per_s,
                "raw_ed25519_verifications_per_s": verify.raw_verifications_per_s,
                "verify_vs_raw_ratio": verify.verify_receipts_per_s / verify.raw_verifications_per_s,
                "side_by_side": side_by_side_runs.iter().map(|r| serde_json::json!({
                    "agents": r.agents, "calls_per_agent": r.calls_per_agent, "latency_ms": r.latency_ms,
                    "wall_s": r.wall_s, "serial_s": r.serial_s, "ideal_s": r.ideal_s, "speed_up": r.speed_up(),
                    "speed_up_per_agent": r.speed_up() / r.agents as f64,
                })).collect::<Vec<_>>(),
                "durable_one_sender_steps_per_s": one_sender,
                "durable_many_senders": side_by_side.senders,
                "durable_many_senders_steps_per_s": many_senders,
                "durable_one_sender_vs_raw_commit_ratio": one_sender / raw_commits,
                "durable_many_vs_one_sender_ratio": many_senders / one_sender,
                "serve": served_json,
        });
        if let (Some(report), serde_json::Value::Object(mcp)) = (report.as_object_mut(), mcp_json) {
            report.extend(mcp);
        }
        outln!("{report}")?;
    } else {
        outln!("counter agent, {steps} steps (durable: {durable_steps})")?;
        outln!("  raw wasmtime calls of `handle`       {raw_calls:>12.0} /s")?;
        outln!(
            "  journaled steps (batched commits)    {batched:>12.0} /s   ratio {:.3} of raw calls",
            batched / raw_calls
        )?;
        outln!("  raw redb fsynced commits             {raw_commits:>12.0} /s")?;
        outln!(
            "  journal commits, 1 entry + checkpoint{signed_commits:>12.0} /s   ratio {:.3} of raw commits",
            signed_commits / raw_commits
        )?;
        outln!(
            "  durable steps (1 fsynced commit)     {durable:>12.0} /s   ratio {:.3} of raw commits",
            durable / raw_commits
        )?;
        outln!("effects, {} calls each, journal commit (fsync) excluded", effects.calls)?;
        outln!(
            "  raw http adapter GET (loopback)      {:>12.1} µs",
            effects.raw_http_us
        )?;
        outln!(
            "  http GET through the choke point     {:>12.1} µs   added {:.1} µs (grant check, receipt signing, journaling)",
            effects.gated_http_us,
            effects.gated_http_us - effects.raw_http_us
        )?;
        outln!(
            "  log line through the choke point     {:>12.1} µs   (no adapter work: bound by receipt signing)",
            effects.gated_log_us
        )?;
        outln!(
            "  raw ed25519 receipt signature        {:>12.1} µs   (done on the signer thread, overlapping adapters)",
            effects.raw_sign_us
        )?;
        outln!(
            "MCP tool `add` of mcp-files over stdio, {} calls, journal commit excluded",
            tools.calls
        )?;
        outln!("  raw rmcp call_tool                   {:>12.1} µs", tools.raw_rmcp_us)?;
        outln!(
            "  through the choke point (hints trusted){:>10.1} µs   added {:.1} µs, ratio {:.2} of raw",
            tools.choke_point_us,
            tools.choke_point_us - tools.raw_rmcp_us,
            tools.choke_point_us / tools.raw_rmcp_us
        )?;
        outln!(
            "  ... with an intent (fsynced) first   {:>12.1} µs   (grants that do not trust hints)",
            tools.choke_point_with_intent_us
        )?;
        outln!(
            "recovery, a counter world of {} steps with {} snapshots",
            recovery.steps,
            recovery.snapshots
        )?;
        outln!(
            "  open from latest snapshot + 1 step   {:>12.1} ms   (durable)",
            recovery.open_and_step_ms
        )?;
        outln!(
            "  replay from genesis                  {:>12.1} ms   ratio {:.1}x slower",
            recovery.replay_from_genesis_ms,
            recovery.replay_from_genesis_ms / recovery.open_and_step_ms
        )?;
        outln!(
            "agents side by side, each making {} calls to a {} ms loopback endpoint",
            side_by_side.calls,
            side_by_side.latency_ms
        )?;
        for r in &side_by_side_runs {
            outln!(
                "  {:>3} agents: {:>7.2} s   serial sum {:>6.2} s, ideal {:>5.2} s   speed-up {:.2} ({:.2} per agent)",
                r.agents,
                r.wall_s,
                r.serial_s,
                r.ideal_s,
                r.speed_up(),
                r.speed_up() / r.agents as f64
            )?;
        }
        outln!(
            "  durable steps, 1 sender              {one_sender:>12.0} /s   ratio {:.3} of raw commits",
            one_sender / raw_commits
        )?;
        outln!(
            "  durable steps, {} senders            {many_senders:>12.0} /s   ratio {:.2} of 1 sender",
            side_by_side.senders,
            many_senders / one_sender
        )?;
        outln!(
            "serve, {} clients on loopback, {} events each way, answered once the step is committed",
            served.clients,
            served.events
        )?;
        for (label, rate) in [
            ("raw HTTP requests (GET /v1/worlds)  ", served.raw_http),
            ("events POSTed over HTTP             ", served.http),
            ("events sent in-process              ", served.in_process),
        ] {
            outln!(
                "  {label}{:>10.0} /s   p50 {:.2} ms  p99 {:.2} ms",
                rate.per_s,
                rate.p50_ms,
                rate.p99_ms
            )?;
        }
        outln!(
            "  HTTP vs in-process                   ratio {:.2}",
            served.http.per_s / served.in_process.per_s
        )?;
        outln!("verify, {} entries with {} receipts", verify.entries, verify.receipts)?;
        outln!(
            "  raw ed25519 verifications            {:>12.0} /s",
            verify.raw_verifications_per_s
        )?;
        outln!(
            "  verify (receipts checked)            {:>12.0} /s   ratio {:.2} of raw ({:.0} entries/s)",
            verify.verify_receipts_per_s,
            verify.verify_receipts_per_s / verify.raw_verifications_per_s,
            verify.verify_entries_per_s
        )?;
    }
    Ok(())
}

struct EffectCosts {
    calls: u64,
    raw_sign_us: f64,
    raw_http_us: f64,
    gated_http_us: f64,
    gated_log_us: f64,
}

/// A loopback HTTP server answering `calls` requests with `ok`, one connection each.
fn serve(calls: u64) -> Result<(String, std::thread::JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/bench", listener.local_addr()?);
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(calls as usize) {
            let Ok(stream) = stream else { continue };
            answer_ok(stream, std::time::Duration::ZERO);
        }
    });
    Ok((url, handle))
}

/// Read one HTTP request's head from `stream` and, after `latency`, answer it `200 ok`.
pub fn answer_ok(mut stream: std::net::TcpStream, latency: std::time::Duration) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    std::thread::sleep(latency);
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
}

/// Per-call cost of the effect choke point vs the raw adapter, on the same loopback server.
fn effect_overhead(scratch: &std::path::Path, calls: u64) -> Result<EffectCosts> {
    use agentos_runtime::effects::{EFFECTS_MAX_PER_STEP, EffectGate, EffectRequest};
    let world_dir = scratch.join("effects-world");
    super::init::init(&world_dir, super::init::Template::Hello)?;
    let world = World::open(&world_dir, OpenMode::Run)?;
    // Raw and gated blocks alternate, so drift on a shared machine hits both alike; medians.
    const ROUNDS: u64 = 10;
    let per_round = (calls / ROUNDS).max(1);
    let (url, server) = serve(per_round * ROUNDS * 2)?;
    let cap = agentos_air::HttpCap {
        urls: vec![],
        methods: vec![],
        max_body_bytes: 1024,
        timeout_ms: 5000,
        deny_private_addresses: false,
        budget: None,
    };

    let parsed = url::Url::parse(&url)?;
    let raw_http = || -> Result<()> {
        let (outcome, _) = agentos_runtime::effects::http::execute(&cap, "GET", &parsed, &[], None);
        outcome.map_err(|e| anyhow::anyhow!("raw http call failed: {e:?}"))?;
        Ok(())
    };

    let journal = world.kernel.shared_journal().clone();
    let mut gate = EffectGate::new("hello");
    let backend = world
        .kernel
        .live_backend("hello")
        .ok_or_else(|| anyhow::anyhow!("no hello agent"))?;
    gate.set_backend(Box::new(backend));
    let mut step = 1_000_000;
    // A block of gated calls in steps of the maximum size; each step ends sealed (receipts signed,
    // entries encoded and chained), then the block is written outside the timed part.
    let mut gated = |request: &dyn Fn() -> EffectRequest, count: u64| -> Result<f64> {
        let started = Instant::now();
        for i in 0..count {
            if i % u64::from(EFFECTS_MAX_PER_STEP) == 0 {
                journal.lock().expect("journal lock").seal();
                step += 1;
                gate.begin_step(step, 0, agentos_runtime::effects::GateLimits::default());
            }
            gate.call(request())
                .map_err(|e| anyhow::anyhow!("{e:#}"))?
                .map_err(|e| anyhow::anyhow!("gated call failed: {e:?}"))?;
        }
        journal.lock().expect("journal lock").seal();
        let elapsed = started.elapsed().as_secs_f64() * 1e6 / count as f64;
        journal.lock().expect("journal lock").commit()?;
        Ok(elapsed)
    };
    let http_request = || EffectRequest::Http {
        method: "GET".into(),
        url: url.clone(),
        headers: vec![],
        body: None,
    };
    let log_request = || EffectRequest::Log {
        level: "info".into(),
        message: "benchmark line".into(),
    };

    let (mut raw_http_us, mut gated_http_us, mut gated_log_us) = (vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..per_round {
            raw_http()?;
        }
        raw_http_us.push(started.elapsed().as_secs_f64() * 1e6 / per_round as f64);
        gated_http_us.push(gated(&http_request, per_round)?);
        gated_log_us.push(gated(&log_request, per_round)?);
    }

    // Floor: one raw ed25519 signature over a receipt body.
    let key = agentos_runtime::receipts::HostKey::load_or_create(&scratch.join("bench.key"))?;
    let body = agentos_runtime::receipts::ReceiptBody {
        version: 1,
        world_id: [0; 16],
        ingress: 0,
        effect_index: 0,
        agent: "hello".into(),
        effect: "log".into(),
        subject: "info".into(),
        grant: Some("log".into()),
        request_digest: [0; 32],
        outcome_digest: [0; 32],
        status: agentos_runtime::receipts::ReceiptStatus::Ok,
        started_ms: 0,
        finished_ms: 0,
        usage: agentos_runtime::receipts::Usage::default(),
        key_id: key.key_id(),
    };
    let started = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(key.sign(std::hint::black_box(body.clone())));
    }
    let raw_sign_us = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
    let _ = server.join();
    Ok(EffectCosts {
        calls: per_round * ROUNDS,
        raw_http_us: median(&mut raw_http_us),
        gated_http_us: median(&mut gated_http_us),
        gated_log_us: median(&mut gated_log_us),
        raw_sign_us,
    })
}

pub(super) fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
