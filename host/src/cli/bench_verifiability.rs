//! `bench`, continued: reopening a long world from its latest snapshot vs replaying it from
//! genesis, and `verify` throughput vs raw ed25519 verification, measured in the same run.

use agentos_runtime::journal::entry::EntryBody;
use agentos_runtime::world::{EventInput, OpenMode, ReplayFrom, World, WorldPaths, open_existing_journal};
use anyhow::{Result, bail};
use ed25519_dalek::Verifier as _;
use std::path::Path;
use std::time::Instant;

pub struct RecoveryCosts {
    pub steps: u64,
    pub snapshots: u64,
    /// Open the world (restoring its latest snapshot) and process one new event, durably.
    pub open_and_step_ms: f64,
    /// Open the world replaying every step from genesis.
    pub replay_from_genesis_ms: f64,
}

/// A counter world of `steps` steps, snapshotting every 1000.
pub fn recovery(scratch: &Path, steps: u64) -> Result<RecoveryCosts> {
    let dir = scratch.join("recovery-world");
    super::init::init(&dir, super::init::Template::Counter)?;
    let manifest = dir.join("world.toml");
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest)? + "snapshot_every = 1000\n",
    )?;
    {
        let mut world = World::open(&dir, OpenMode::Run)?;
        for _ in 0..steps {
            world.ingest("counter", EventInput::Wave("increment(1)"), "bench")?;
        }
        world.run(|_| {})?;
    }
    let started = Instant::now();
    let mut world = World::open(&dir, OpenMode::Run)?;
    world.ingest("counter", EventInput::Wave("increment(1)"), "bench")?;
    world.run(|_| {})?;
    let open_and_step_ms = started.elapsed().as_secs_f64() * 1e3;
    if world.recovery.from_snapshot.is_none() {
        bail!("the recovery world did not open from a snapshot");
    }
    drop(world);
    let started = Instant::now();
    let replayed = World::open(&dir, OpenMode::Replay(ReplayFrom::Genesis))?;
    let replay_from_genesis_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some(divergence) = &replayed.recovery.divergence {
        bail!("replaying the recovery world diverged at {divergence}");
    }
    Ok(RecoveryCosts {
        steps: replayed.recovery.steps_replayed,
        snapshots: replayed.recovery.snapshots_checked,
        open_and_step_ms,
        replay_from_genesis_ms,
    })
}

pub struct VerifyCosts {
    pub entries: u64,
    pub receipts: u64,
    pub verify_entries_per_s: f64,
    pub verify_receipts_per_s: f64,
    pub raw_verifications_per_s: f64,
}

/// A hello world whose `steps` steps make two effects each: `verify` against raw ed25519
/// verification of the same receipts.
pub fn verify_throughput(scratch: &Path, steps: u64) -> Result<VerifyCosts> {
    let dir = scratch.join("verify-world");
    super::init::init(&dir, super::init::Template::Hello)?;
    {
        let mut world = World::open(&dir, OpenMode::Run)?;
        for _ in 0..steps {
            world.ingest("hello", EventInput::Wave(r#"greet("bench")"#), "bench")?;
        }
        world.run(|_| {})?;
    }
    let journal = open_existing_journal(&WorldPaths::new(&dir))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&agentos_runtime::world::genesis(&journal)?.host_public_key)?;
    let signed: Vec<(Vec<u8>, ed25519_dalek::Signature)> = journal
        .entries()?
        .into_iter()
        .filter_map(|entry| match entry.body {
            EntryBody::EffectReceipt(r) => Some((
                r.receipt.body.signing_bytes(),
                ed25519_dalek::Signature::from_slice(&r.receipt.signature).ok()?,
            )),
            _ => None,
        })
        .collect();

    let started = Instant::now();
    for (bytes, signature) in &signed {
        key.verify(bytes, signature)?;
    }
    let raw_verifications_per_s = signed.len() as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let report = agentos_runtime::verify::verify(&journal, &agentos_runtime::verify::Trust::default())?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(VerifyCosts {
        entries: report.entries,
        receipts: report.receipts,
        verify_entries_per_s: report.entries as f64 / seconds,
        verify_receipts_per_s: report.receipts as f64 / seconds,
        raw_verifications_per_s,
    })
}
