//! `agentos-host bench`: stepper throughput as ratios against floors measured in the same run.
//!
//! Floors: raw calls of the counter's `handle` export in wasmtime (no journal, no snapshot), and
//! raw fsynced redb commits of a small value. Measured: batched journaled steps (ingress +
//! step + snapshot digest, committed every `STEPS_PER_COMMIT` steps) and durable steps (each
//! event and each step committed and fsynced before the next).

use crate::caps::AgentGrants;
use crate::components::ensure_built;
use crate::runtime::Runtime;
use crate::world::{EventInput, OpenMode, World};
use anyhow::Result;
use std::time::Instant;

fn per_second(count: u64, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64()
}

pub fn run(steps: u64, json: bool) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let world_dir = scratch.path().join("bench-world");
    super::init::init(&world_dir, super::init::Template::Counter)?;

    // Floor 1: raw wasmtime calls of the same export.
    let runtime = Runtime::new()?;
    let bytes = std::fs::read(ensure_built("counter")?)?;
    let component = runtime.load("counter", &bytes, &world_dir, &scratch.path().join("cache"))?;
    let manifest = crate::world::read_manifest(&crate::world::WorldPaths::new(&world_dir))?;
    let grants = AgentGrants::from_manifest(&manifest, "counter", &world_dir)?;
    let prepared = runtime.prepare(&component, &grants)?;
    let mut instance = runtime.instantiate(&prepared, &[0; 16], 64 << 20)?;
    instance.init("null").map_err(|e| anyhow::anyhow!("init: {e:?}"))?;
    let event = crate::values::parse_wave(&prepared.event_type, "increment(1)").map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    for _ in 0..steps {
        instance
            .handle(event.clone(), u64::MAX / 2)
            .1
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
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

    // Measured 2: durable steps (event committed, then step committed, each fsynced).
    let started = Instant::now();
    for _ in 0..durable_steps {
        world.ingest("counter", EventInput::Wave("increment(1)"), "bench")?;
        world.run(|_| {})?;
    }
    let durable = per_second(durable_steps, started);

    if json {
        println!(
            "{}",
            serde_json::json!({
                "steps": steps, "raw_wasmtime_calls_per_s": raw_calls, "journaled_steps_per_s": batched,
                "journaled_vs_raw_ratio": batched / raw_calls, "durable_steps": durable_steps,
                "raw_redb_commits_per_s": raw_commits, "durable_steps_per_s": durable,
                "durable_vs_raw_commit_ratio": durable / raw_commits,
            })
        );
    } else {
        println!("counter agent, {steps} steps (durable: {durable_steps})");
        println!("  raw wasmtime calls of `handle`       {raw_calls:>12.0} /s");
        println!(
            "  journaled steps (batched commits)    {batched:>12.0} /s   ratio {:.3} of raw calls",
            batched / raw_calls
        );
        println!("  raw redb fsynced commits             {raw_commits:>12.0} /s");
        println!(
            "  durable steps (2 fsynced commits)    {durable:>12.0} /s   ratio {:.3} of raw commits",
            durable / raw_commits
        );
    }
    Ok(())
}
