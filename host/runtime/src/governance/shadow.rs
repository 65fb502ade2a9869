//! Shadow runs: what a proposal would do to the world's real state and history, without
//! changing either.
//!
//! The world is forked in memory just before the window (the last N recorded steps under the
//! manifest in force), migrated to the proposed manifest exactly as `apply` would, and the
//! window's recorded events are re-run there with effects from [`ShadowEffects`]: identical
//! requests served from their receipts, new or changed ones not executed ("would call"), calls
//! the proposed grants refuse listed as denials. Each step is compared with what the journal
//! recorded. With given events instead, the fork is taken at the present and the events run under
//! both the manifest in force and the proposed one. Only the report is journaled.

use super::ledger::{Configuration, Ledger};
use super::record::ShadowRecord;
use super::{GovernanceError, Result};
use crate::effects::replay::{RecordedCall, RecordedCalls};
use crate::effects::shadow::{ShadowCall, ShadowEffects, ShadowServed};
use crate::journal::Journal;
use crate::journal::entry::{Digest, EntryBody, Ingress, StepCommitted, StepFailed, sha256};
use crate::kernel::{StepOutcome, StepRecord, describe_outcome};
use crate::world::{World, WorldPaths, load_configuration};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Steps re-run when no window is given.
pub const DEFAULT_WINDOW: usize = 100;

/// What to re-run.
#[derive(Debug, Clone)]
pub enum Workload {
    /// The last N recorded steps under the manifest in force.
    Window(usize),
    /// These (agent, event in WAVE) pairs, after the present state.
    Events(Vec<(String, String)>),
}

/// One side of a compared step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSide {
    pub outcome: String,
    pub committed: bool,
    pub outputs: Vec<String>,
    pub effects: u32,
    pub fuel: u64,
    /// For a plan's turn: what it recorded about its runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<String>,
}

impl StepSide {
    fn of(record: &StepRecord) -> StepSide {
        StepSide {
            outcome: match &record.outcome {
                StepOutcome::Committed { state_digest } => {
                    format!("committed, state sha256:{}", hex::encode(&state_digest[..8]))
                }
                failed => describe_outcome(failed),
            },
            committed: matches!(record.outcome, StepOutcome::Committed { .. }),
            outputs: record.outputs.iter().map(|(_, line)| line.clone()).collect(),
            effects: record.effects,
            fuel: record.fuel_used,
            plan: record
                .plan_events
                .iter()
                .map(|(run, event)| event.of_run(*run))
                .collect(),
        }
    }
}

/// A step as recorded (or as the manifest in force runs it) and as the proposal runs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparedStep {
    /// `step #N` (recorded, N its ingress entry) or `event N` (given).
    pub label: String,
    pub step: u64,
    pub agent: String,
    pub event: String,
    pub before: StepSide,
    pub after: StepSide,
    /// What differs, one phrase each (empty: the same).
    pub differences: Vec<String>,
}

/// The report, journaled (JSON, in the blob table) and printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShadowReport {
    pub proposal: u64,
    pub proposal_hash: String,
    pub base: String,
    /// `window` (recorded steps) or `events` (given events).
    pub workload: String,
    /// Set when the new manifest could not be loaded or an agent's `restore` failed.
    pub migration_error: Option<String>,
    /// Each agent's state digest after migration.
    pub migrated_states: Vec<(String, String)>,
    pub new_capabilities: Vec<String>,
    pub steps: Vec<ComparedStep>,
    pub would_call: Vec<ShadowCall>,
    pub denials: Vec<ShadowCall>,
    pub served_from_receipts: usize,
    /// Steps that committed before and fail under the proposal.
    pub new_failures: usize,
    pub fuel_before: u64,
    pub fuel_after: u64,
    pub elapsed_ms: u64,
    pub clean: bool,
    pub summary: String,
}

/// A recorded step of the window, with what the journal says it did.
struct RecordedStep {
    seq: u64,
    /// Where its record is in the journal: the world it ran on is the one just before.
    record_at: u64,
    ingress: Ingress,
    side: StepSide,
}

/// A shadow run's report, not yet journaled.
pub struct Shadowed {
    report: ShadowReport,
    proposal_hash: Digest,
    /// The ledger the run read, brought up to date when the report is journaled.
    ledger: Ledger,
}

impl Shadowed {
    pub fn report(&self) -> &ShadowReport {
        &self.report
    }
}

/// Shadow-run proposal `proposal` of the world at `root` and journal the report.
pub fn shadow(root: &Path, proposal: u64, workload: &Workload) -> Result<(u64, ShadowReport)> {
    // What is shadow-run is what the journal's checkpoints signed.
    let mut journal = crate::world::open_journal_to_write(&WorldPaths::new(root))?;
    let ledger = Ledger::read(&journal)?;
    let shadowed = run(root, journal.read_view(), ledger, proposal, workload)?;
    record(&mut journal, shadowed)
}

/// Shadow-run proposal `proposal` of the world at `root` as `journal` (a view of its journal,
/// e.g. a running host's) shows it, writing nothing, with `ledger` the ledger of that view:
/// [`record`] journals the report.
pub fn run(root: &Path, journal: Journal, ledger: Ledger, proposal: u64, workload: &Workload) -> Result<Shadowed> {
    let started = Instant::now();
    let length = journal.len();
    let state = ledger.proposal(proposal)?;
    if let Some(reason) = ledger.closed(state) {
        return Err(GovernanceError::CannotShadow { proposal, reason });
    }
    let current = ledger.in_force();
    let manifest = agentos_air::apply(&state.patch()?, &current.manifest)?;
    let proposed = Configuration {
        since: length,
        digest: manifest.digest(),
        manifest,
        modules: state.proposal.body.modules.clone(),
        proposal: Some(proposal),
        at_ms: 0,
    };
    let judgement = agentos_air::judge(
        &current.manifest,
        &proposed.manifest,
        proposed.modules != current.modules,
    );
    let mut report = ShadowReport {
        proposal,
        proposal_hash: hex::encode(state.hash),
        base: hex::encode(current.digest),
        workload: String::new(),
        migration_error: None,
        migrated_states: Vec::new(),
        new_capabilities: judgement.widenings.iter().map(ToString::to_string).collect(),
        steps: Vec::new(),
        would_call: Vec::new(),
        denials: Vec::new(),
        served_from_receipts: 0,
        new_failures: 0,
        fuel_before: 0,
        fuel_after: 0,
        elapsed_ms: 0,
        clean: false,
        summary: String::new(),
    };
    let calls = Arc::new(Mutex::new(Vec::new()));
    match workload {
        Workload::Window(n) => {
            let (window, recorded_calls) = recorded_window(&journal, current.since, *n)?;
            if window.is_empty() {
                return Err(GovernanceError::NoWorkload);
            }
            report.workload = format!(
                "the last {} recorded step(s), #{} first, #{} last",
                window.len(),
                window[0].seq,
                window[window.len() - 1].seq
            );
            // Steps finish, and are recorded, in an order of their own: the window starts with
            // the world as the first of them found it, after every step recorded before it.
            let mut world = World::fork_of(root, journal.read_view(), window[0].record_at)?;
            if migrate(&mut world, &proposed, (proposal, window[0].ingress.at_ms), &mut report) {
                let recorded_calls = Arc::new(recorded_calls);
                for step in window {
                    let after = run_step(&mut world, step.seq, &step.ingress, &recorded_calls, &calls);
                    report.steps.push(compare(
                        format!("step #{}", step.seq),
                        step.seq,
                        &step.ingress,
                        step.side,
                        &after,
                    ));
                }
            }
        }
        Workload::Events(events) => {
            report.workload = format!("{} given event(s) after the present state", events.len());
            let no_calls = Arc::new(HashMap::new());
            let mut before_world = World::fork_of(root, journal.read_view(), length)?;
            let ingresses = events
                .iter()
                .map(|(agent, event)| as_ingress(&before_world, agent, event))
                .collect::<Result<Vec<_>>>()?;
            let ignored = Arc::new(Mutex::new(Vec::new()));
            let before: Vec<StepRecord> = ingresses
                .iter()
                .enumerate()
                .map(|(i, ingress)| run_step(&mut before_world, length + i as u64, ingress, &no_calls, &ignored))
                .collect();
            drop(before_world);
            let mut world = World::fork_of(root, journal.read_view(), length)?;
            let at_ms = ingresses.first().map_or(0, |i| i.at_ms);
            if migrate(&mut world, &proposed, (proposal, at_ms), &mut report) {
                for (i, (ingress, before)) in ingresses.iter().zip(&before).enumerate() {
                    let seq = length + i as u64;
                    let after = run_step(&mut world, seq, ingress, &no_calls, &calls);
                    let label = format!("event {}", i + 1);
                    report
                        .steps
                        .push(compare(label, seq, ingress, StepSide::of(before), &after));
                }
            }
        }
    }
    for call in calls.lock().expect("shadow call lock").drain(..) {
        match &call.served {
            ShadowServed::FromReceipt => report.served_from_receipts += 1,
            ShadowServed::WouldCall => report.would_call.push(call),
            ShadowServed::Denied { .. } => report.denials.push(call),
        }
    }
    report.new_failures = report
        .steps
        .iter()
        .filter(|s| s.before.committed && !s.after.committed)
        .count();
    report.fuel_before = report.steps.iter().map(|s| s.before.fuel).sum();
    report.fuel_after = report.steps.iter().map(|s| s.after.fuel).sum();
    report.clean = report.migration_error.is_none() && report.denials.is_empty() && report.new_failures == 0;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report.summary = summary(&report);
    let proposal_hash = state.hash;
    Ok(Shadowed {
        report,
        proposal_hash,
        ledger,
    })
}

/// Journal a shadow run's report, unless its proposal closed meanwhile (a report on a closed
/// proposal would say nothing of what can still be applied). Only the entries journaled since
/// the run are read.
pub fn record(journal: &mut Journal, shadowed: Shadowed) -> Result<(u64, ShadowReport)> {
    let Shadowed {
        report,
        proposal_hash,
        mut ledger,
    } = shadowed;
    ledger.update(journal)?;
    let state = ledger.proposal(report.proposal)?;
    if state.hash != proposal_hash {
        return Err(GovernanceError::CannotShadow {
            proposal: report.proposal,
            reason: "the report is of another proposal".into(),
        });
    }
    if let Some(reason) = ledger.closed(state) {
        return Err(GovernanceError::CannotShadow {
            proposal: report.proposal,
            reason,
        });
    }
    let bytes = serde_json::to_vec_pretty(&report).expect("shadow reports always encode");
    let digest = journal.put_blob(&bytes);
    debug_assert_eq!(digest, sha256(&bytes));
    let seq = journal.append(EntryBody::ShadowReport(ShadowRecord {
        proposal: report.proposal,
        proposal_hash,
        report: digest,
        clean: report.clean,
        summary: report.summary.clone(),
    }));
    journal.commit()?;
    Ok((seq, report))
}

/// One line for the ledger and `history`.
fn summary(report: &ShadowReport) -> String {
    if let Some(error) = &report.migration_error {
        return format!("the proposed manifest does not start: {error}");
    }
    let diverged = report.steps.iter().filter(|s| !s.differences.is_empty()).count();
    format!(
        "{} step(s) re-run, {diverged} differ; {} effect(s) served from receipts, {} would call, {} denied; \
         {} new failure(s); fuel {} → {}",
        report.steps.len(),
        report.served_from_receipts,
        report.would_call.len(),
        report.denials.len(),
        report.new_failures,
        report.fuel_before,
        report.fuel_after
    )
}

/// Entries read at once while scanning the journal.
const SCAN_CHUNK: u64 = 4096;

/// Each entry of `range`, read a chunk at a time (a window's scan holds no more than it keeps).
fn scan(
    journal: &Journal,
    range: std::ops::Range<u64>,
    mut each: impl FnMut(crate::journal::entry::Entry),
) -> Result<()> {
    let mut from = range.start;
    while from < range.end {
        let to = range.end.min(from + SCAN_CHUNK);
        journal.entries_in(from..to)?.into_iter().for_each(&mut each);
        from = to;
    }
    Ok(())
}

/// The last `n` finished steps after entry `since`, with their recorded calls: one pass finds
/// which steps they are, a second reads theirs alone from the first one's ingress on.
fn recorded_window(journal: &Journal, since: u64, n: usize) -> Result<(Vec<RecordedStep>, RecordedCalls)> {
    let end = journal.len();
    let mut last = std::collections::VecDeque::with_capacity(n + 1);
    scan(journal, since + 1..end, |entry| {
        if let EntryBody::StepCommitted(StepCommitted { ingress, .. })
        | EntryBody::StepFailed(StepFailed { ingress, .. }) = entry.body
        {
            last.push_back(ingress);
            if last.len() > n {
                last.pop_front();
            }
        }
    })?;
    // A step whose event came before the manifest in force has no recorded ingress under it.
    let wanted: std::collections::HashSet<u64> = last.iter().copied().filter(|ingress| *ingress > since).collect();
    let Some(&first) = wanted.iter().min() else {
        return Ok((Vec::new(), HashMap::new()));
    };
    let (mut ingresses, mut outputs, mut finished) = (HashMap::new(), HashMap::<u64, Vec<String>>::new(), Vec::new());
    let mut plan = HashMap::<u64, Vec<String>>::new();
    let mut calls = HashMap::new();
    scan(journal, first..end, |entry| {
        let at = entry.seq;
        match entry.body {
            EntryBody::Ingress(ingress) if wanted.contains(&at) => {
                ingresses.insert(entry.seq, ingress);
            }
            EntryBody::Output(output) if wanted.contains(&output.ingress) => {
                outputs.entry(output.ingress).or_default().push(output.text)
            }
            EntryBody::Plan(entry) if wanted.contains(&entry.ingress) => plan
                .entry(entry.ingress)
                .or_default()
                .push(entry.event.of_run(entry.run)),
            EntryBody::EffectReceipt(r) if wanted.contains(&r.receipt.body.ingress) => {
                calls.insert(
                    (r.receipt.body.ingress, r.receipt.body.effect_index),
                    RecordedCall {
                        request_digest: r.receipt.body.request_digest,
                        request: r.request,
                        outcome: r.outcome,
                    },
                );
            }
            EntryBody::StepCommitted(StepCommitted {
                ingress,
                state_digest,
                fuel_used,
                effects,
                ..
            }) if wanted.contains(&ingress) => finished.push((
                at,
                ingress,
                format!("committed, state sha256:{}", hex::encode(&state_digest[..8])),
                true,
                fuel_used,
                effects,
            )),
            EntryBody::StepFailed(StepFailed {
                ingress,
                kind,
                reason,
                fuel_used,
                effects,
                ..
            }) if wanted.contains(&ingress) => finished.push((
                at,
                ingress,
                describe_outcome(&StepOutcome::Failed { kind, reason }),
                false,
                fuel_used,
                effects,
            )),
            _ => {}
        }
    })?;
    let skip = finished.len().saturating_sub(n);
    let window = finished
        .into_iter()
        .skip(skip)
        .filter_map(|(record_at, seq, outcome, committed, fuel, effects)| {
            Some(RecordedStep {
                seq,
                record_at,
                ingress: ingresses.remove(&seq)?,
                side: StepSide {
                    outcome,
                    committed,
                    outputs: outputs.remove(&seq).unwrap_or_default(),
                    effects,
                    fuel,
                    plan: plan.remove(&seq).unwrap_or_default(),
                },
            })
        })
        .collect();
    Ok((window, calls))
}

/// Switch the fork to the proposed configuration as `apply` would; false (with the reason in
/// the report) when it does not start.
fn migrate(world: &mut World, proposed: &Configuration, clock: (u64, u64), report: &mut ShadowReport) -> bool {
    let migrated = load_configuration(
        world.kernel.runtime(),
        world.kernel.shared_journal(),
        &world.paths,
        proposed,
    )
    .map_err(|e| crate::text::chain(&e))
    .and_then(|loaded| world.kernel.migrate(loaded, clock).map_err(|e| e.to_string()));
    match migrated {
        Ok(states) => {
            report.migrated_states = states.into_iter().map(|(a, d)| (a, hex::encode(d))).collect();
            true
        }
        Err(error) => {
            report.migration_error = Some(error);
            false
        }
    }
}

fn run_step(
    world: &mut World,
    seq: u64,
    ingress: &Ingress,
    recorded: &Arc<RecordedCalls>,
    calls: &Arc<Mutex<Vec<ShadowCall>>>,
) -> StepRecord {
    let grants = world.kernel.grants_of(&ingress.agent).unwrap_or_default();
    let backend = ShadowEffects::new(
        world.kernel.shared_journal().clone(),
        grants,
        world.kernel.timers(),
        recorded.clone(),
        calls.clone(),
    );
    world.kernel.unjournaled_step(seq, ingress, Box::new(backend))
}

fn as_ingress(world: &World, agent: &str, event: &str) -> Result<Ingress> {
    let slot = world
        .kernel
        .agents()
        .get(agent)
        .ok_or_else(|| GovernanceError::UnknownAgent {
            agent: agent.to_string(),
        })?;
    let value =
        crate::values::parse_wave(&slot.component.event_type, event).map_err(|reason| GovernanceError::BadEvent {
            event: event.to_string(),
            agent: agent.to_string(),
            reason,
        })?;
    Ok(Ingress {
        agent: agent.to_string(),
        event: crate::values::to_wave(&value),
        at_ms: world.kernel.now_ms(),
        source: "shadow".into(),
    })
}

fn compare(label: String, seq: u64, ingress: &Ingress, before: StepSide, after: &StepRecord) -> ComparedStep {
    let after = StepSide::of(after);
    let mut differences = Vec::new();
    if before.committed != after.committed || (!before.committed && before.outcome != after.outcome) {
        differences.push(format!("{} → {}", before.outcome, after.outcome));
    } else if before.plan != after.plan {
        let first = crate::kernel::first_difference(&before.plan, &after.plan);
        let nothing = String::from("nothing");
        differences.push(format!(
            "{} → {}",
            before.plan.get(first).unwrap_or(&nothing),
            after.plan.get(first).unwrap_or(&nothing)
        ));
    } else if before.outcome != after.outcome {
        differences.push("the agent's state after the step differs".into());
    }
    if before.outputs != after.outputs {
        differences.push(format!("output {:?} → {:?}", before.outputs, after.outputs));
    }
    if before.effects != after.effects {
        differences.push(format!("{} effect call(s) → {}", before.effects, after.effects));
    }
    ComparedStep {
        label,
        step: seq,
        agent: ingress.agent.clone(),
        event: ingress.event.clone(),
        before,
        after,
        differences,
    }
}
