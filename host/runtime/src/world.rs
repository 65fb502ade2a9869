//! A world directory: `world.toml` (the manifest), `.agentos/journal.redb` (journal, blobs) and
//! `.agentos/host.key` (ed25519 secret); `.agentos/` is private to its owner (0700, files 0600).
//!
//! Opening a world reads the manifest, writes genesis on first open (recording the manifest,
//! the host public key and every module's bytes), checks that the manifest and key still match
//! the manifest of record in force (genesis, or the last applied governance change), loads and
//! checks each agent's component, and recovers from the latest snapshot by replaying every
//! committed step after it, redoing any manifest change on the way. Events journaled but never
//! processed are queued for [`World::run`].

use crate::caps::AgentGrants;
use crate::effects::clock::{Clock as _, WallClock};
use crate::effects::live::{RecoveredCall, WorldDirs};
use crate::effects::replay::{RecordedCall, RecordedCalls};
use crate::engine::{AgentComponent, Runtime};
pub use crate::error::WorldError;
pub use crate::governance::ledger::{Configuration, configuration_at, genesis};
use crate::governance::record::ManifestApplied;
pub use crate::ingest::EventInput;
use crate::journal::entry::{EntryBody, FORMAT_VERSION, Genesis, Ingress, Stream};
use crate::journal::{Journal, SharedJournal};
use crate::kernel::{Kernel, Recorded, ReplayDivergence, StepOutcome, StepRecord, Surroundings};
use crate::receipts::{HostKey, ReceiptSigner};
use crate::transparency::SignedCheckpoint;
use agentos_air::{AgentDef, Manifest};

type Result<T, E = WorldError> = std::result::Result<T, E>;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MANIFEST_FILE: &str = "world.toml";

/// Attempts a step gets after the host stopped during it, before it is set aside: the first
/// run and this many more.
pub const STEP_ATTEMPTS_MAX: u32 = 2;
pub use crate::private::STATE_DIR;

/// Paths of a world directory.
#[derive(Debug, Clone)]
pub struct WorldPaths {
    pub root: PathBuf,
}

impl WorldPaths {
    pub fn new(root: &Path) -> WorldPaths {
        WorldPaths {
            root: root.to_path_buf(),
        }
    }
    pub fn manifest(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }
    pub fn state(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }
    pub fn journal(&self) -> PathBuf {
        self.state().join("journal.redb")
    }
    pub fn key(&self) -> PathBuf {
        self.state().join("host.key")
    }
    /// The next host key while a rotation is under way.
    pub fn next_key(&self) -> PathBuf {
        self.state().join("host.key.next")
    }
}

/// Read and validate `world.toml`, and check that the programs of its stdio MCP servers exist
/// (what AIR, which reads no files, cannot), naming each where it is declared.
pub fn read_manifest(paths: &WorldPaths) -> Result<Manifest> {
    let file = paths.manifest();
    let text = std::fs::read_to_string(&file).map_err(|source| WorldError::NoManifest {
        file: file.clone(),
        root: paths.root.clone(),
        source,
    })?;
    let manifest = Manifest::parse_toml(&text, &file.display().to_string())?;
    let problems: Vec<agentos_air::Problem> = manifest
        .mcp
        .iter()
        .filter_map(|(name, server)| {
            let command = server.command.as_ref()?;
            let missing = crate::effects::mcp::program(command, &paths.root).err()?;
            Some(agentos_air::Problem {
                definition: format!("mcp.{name}.command"),
                message: format!(
                    "{missing} (a path with `/` is read against the world directory, a name is looked up on PATH)"
                ),
                at: None,
            })
        })
        .collect();
    if !problems.is_empty() {
        let invalid = agentos_air::ValidationError {
            file: file.display().to_string(),
            problems,
        };
        return Err(agentos_air::AirError::from(invalid.located_in(&text)).into());
    }
    Ok(manifest)
}

/// Open the journal of an existing world without creating anything.
pub fn open_existing_journal(paths: &WorldPaths) -> Result<Journal> {
    let path = paths.journal();
    if !path.exists() {
        return Err(WorldError::NoJournal {
            root: paths.root.clone(),
            journal: path,
        });
    }
    open_journal_file(&path)
}

/// A world's journal file, which must be this user's own regular file, not a link (through
/// which a world directory from elsewhere would have the host write another world's journal).
fn open_journal_file(path: &Path) -> Result<Journal> {
    crate::private::file(path)?;
    Ok(Journal::open(path)?)
}

/// Open the journal of an existing world to append to it outside a running world (governance
/// commands, key rotation): the host key in force signs the checkpoint that ends each commit.
pub fn open_journal_to_write(paths: &WorldPaths) -> Result<Journal> {
    crate::private::dir(&paths.state())?;
    let mut journal = open_existing_journal(paths)?;
    let genesis = genesis(&journal)?;
    let key = key_in_force(paths, &journal, &genesis)?;
    // Governance reads the whole history: all of it is checked against the last checkpoint.
    open_for_appends(&mut journal, &genesis, Arc::new(key), ReadFrom::Genesis)?;
    Ok(journal)
}

/// What a writer of an existing journal reads of it, so what must be checked before it writes.
enum ReadFrom {
    /// Every entry.
    Genesis,
    /// The snapshot at this entry, the entries after it, the inputs it left unprocessed and the
    /// manifest in force at it.
    Snapshot(u64),
    /// Nothing but genesis and the last checkpoint.
    End,
}

/// Check an existing journal before appending to it (see [`Journal::open_for_appends`]): it
/// must end with a checkpoint signed by `key`, every entry the writer will read must be what
/// that checkpoint signs, and the caches it reads them through must agree with it.
fn open_for_appends(journal: &mut Journal, genesis: &Genesis, key: Arc<HostKey>, reads: ReadFrom) -> Result<()> {
    let end = journal.signed_end(genesis.world_id, &key.public())?;
    let mut manifest_at_snapshot = None;
    let from = match (&end, reads) {
        (None, _) | (_, ReadFrom::Genesis) => 0,
        (Some(end), ReadFrom::End) => end.body.entries,
        (Some(_), ReadFrom::Snapshot(snapshot)) => match snapshot_reads(journal, snapshot)? {
            // A snapshot from before the world signed every entry: check everything.
            SnapshotReads {
                closing_checkpoint: None,
                ..
            } => 0,
            SnapshotReads {
                pending,
                closing_checkpoint: Some((at, checkpoint)),
            } => {
                let cached = configuration_at(journal, genesis, snapshot)?.since;
                if checkpoint.body.configuration != cached {
                    return Err(WorldError::Journal(crate::journal::JournalError::Unauthentic {
                        path: journal.path().to_path_buf(),
                        reason: format!(
                            "its cached manifest changes say entry #{cached} was in force at snapshot #{snapshot}, \
                             the checkpoint after it says entry #{}",
                            checkpoint.body.configuration
                        ),
                    }));
                }
                manifest_at_snapshot = Some((at, checkpoint));
                pending.into_iter().chain([snapshot]).min().unwrap_or(snapshot)
            }
        },
    };
    journal.open_for_appends(end.as_ref(), from, genesis.world_id, key)?;
    // The manifest in force at the snapshot may stand long before it: that one entry is
    // checked by the hash the (now checked) checkpoint after the snapshot signs.
    if let Some((at, checkpoint)) = manifest_at_snapshot {
        journal.check_entry_hash(checkpoint.body.configuration, checkpoint.body.configuration_hash, at)?;
    }
    Ok(())
}

/// What reopening from a snapshot reads besides the entries after it.
struct SnapshotReads {
    /// The inputs the snapshot lists as unprocessed.
    pending: Vec<u64>,
    /// The checkpoint that ends the snapshot's commit, with its entry number; `None` if there
    /// is none of format 5.
    closing_checkpoint: Option<(u64, SignedCheckpoint)>,
}

/// The [`SnapshotReads`] of the snapshot at entry `seq`.
fn snapshot_reads(journal: &Journal, seq: u64) -> Result<SnapshotReads> {
    let Some(EntryBody::Snapshot(snapshot)) = journal.entry(seq)?.map(|e| e.body) else {
        return Err(WorldError::ListedAsSnapshot {
            journal: journal.path().to_path_buf(),
            seq,
        });
    };
    let state: crate::kernel::KernelState = journal
        .blob(&snapshot.kernel)?
        .and_then(|bytes| postcard::from_bytes(&bytes).ok())
        .ok_or(WorldError::SnapshotState { seq })?;
    // The snapshot's commit ends a few entries on; a receipt-log checkpoint (format 4 or
    // earlier) or the end of the journal means there is none of format 5.
    let mut at = seq + 1;
    let checkpoint = loop {
        match journal.entry(at)?.map(|e| e.body) {
            Some(EntryBody::Checkpoint(c)) => break Some((at, c)),
            Some(EntryBody::ReceiptCheckpoint(_)) | None => break None,
            Some(_) => at += 1,
        }
    };
    Ok(SnapshotReads {
        pending: state.pending,
        closing_checkpoint: checkpoint,
    })
}

/// What recovery (or an explicit replay) found.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    pub steps_replayed: u64,
    pub effects_served: u64,
    pub failed_steps: u64,
    pub divergence: Option<ReplayDivergence>,
    pub elapsed: Duration,
    pub pending: usize,
    /// The snapshot entry replay started from (`None`: genesis).
    pub from_snapshot: Option<u64>,
    /// Snapshots compared with re-executed states.
    pub snapshots_checked: u64,
    /// Each agent's state digest (hex) at the end.
    pub agent_states: BTreeMap<String, String>,
}

/// An open, recovered world.
pub struct World {
    pub paths: WorldPaths,
    /// The manifest of record in force and its components.
    pub configuration: Configuration,
    pub genesis: Genesis,
    pub kernel: Kernel,
    pub recovery: ReplayReport,
    /// Things the user should know that do not stop the world (for the CLI to print).
    pub notices: Vec<String>,
}

/// How to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create genesis if needed; start from the latest snapshot; refuse a world whose replay
    /// diverges.
    Run,
    /// Never write; report divergences instead of refusing.
    Replay(ReplayFrom),
    /// Like `Run` for an existing world, but from the manifest of record alone: `world.toml`
    /// is not read (governance commands, which may be changing it).
    Govern,
    /// Never write; the world as it was just before entry N (N = the journal's length: as it
    /// is now), for running steps in memory that the journal never sees (shadow runs).
    Fork(u64),
}

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Genesis: every step re-executed, every snapshot checked against re-execution.
    Genesis,
    /// The latest snapshot at or before this entry number (the latest of all when `None`).
    Snapshot(Option<u64>),
}

impl World {
    pub fn open(root: &Path, mode: OpenMode) -> Result<World> {
        World::open_with_progress(root, mode, |_, _| {})
    }

    /// Open, reporting replay progress as (steps done, steps to replay).
    pub fn open_with_progress(root: &Path, mode: OpenMode, progress: impl FnMut(u64, u64)) -> Result<World> {
        World::open_from(WorldPaths::new(root), mode, None, progress)
    }

    /// The world at `root` as it was just before entry `before` (see [`OpenMode::Fork`]), read
    /// through `journal`, a view of its journal: a world that a running host holds open can be
    /// forked from that host's own view of it, since its file cannot be opened twice.
    pub fn fork_of(root: &Path, journal: Journal, before: u64) -> Result<World> {
        World::open_from(WorldPaths::new(root), OpenMode::Fork(before), Some(journal), |_, _| {})
    }

    fn open_from(
        paths: WorldPaths,
        mode: OpenMode,
        journal: Option<Journal>,
        progress: impl FnMut(u64, u64),
    ) -> Result<World> {
        let given = journal;
        let mut notices = Vec::new();
        let (journal, key, genesis) = match mode {
            // Replay needs only the journal: the manifests of record are in it, and nothing is
            // signed (effects are served from receipts), so the key file is not read.
            OpenMode::Replay(_) | OpenMode::Fork(_) => {
                let journal = match given {
                    Some(journal) => journal,
                    None => open_existing_journal(&paths)?,
                };
                let genesis = genesis(&journal)?;
                (journal, Arc::new(HostKey::ephemeral()?), genesis)
            }
            OpenMode::Run | OpenMode::Govern => {
                let file_manifest = match mode {
                    OpenMode::Run => Some(read_manifest(&paths)?),
                    _ => None,
                };
                crate::private::dir(&paths.state())?;
                let mut journal = match &file_manifest {
                    Some(_) => open_journal_file(&paths.journal())?,
                    None => open_existing_journal(&paths)?,
                };
                crate::private::restrict(&paths.journal())?;
                let (genesis, key) = match &file_manifest {
                    Some(manifest) if journal.is_empty() => {
                        let key = Arc::new(HostKey::load_or_create(&paths.key())?);
                        let genesis = write_genesis(&mut journal, &paths, manifest, &key)?;
                        journal.open_new_for_appends(genesis.world_id, key.clone());
                        (genesis, key)
                    }
                    _ => {
                        let genesis = genesis(&journal)?;
                        let key = Arc::new(key_in_force(&paths, &journal, &genesis)?);
                        // Governance reads the whole history; a run, what its snapshot needs.
                        let reads = match (mode, journal.latest_snapshot()) {
                            (OpenMode::Run, Some(snapshot)) => ReadFrom::Snapshot(snapshot),
                            _ => ReadFrom::Genesis,
                        };
                        open_for_appends(&mut journal, &genesis, key.clone(), reads)?;
                        (genesis, key)
                    }
                };
                if let Some(manifest) = &file_manifest {
                    let in_force = configuration_at(&journal, &genesis, u64::MAX)?;
                    check_matches_record(&paths, manifest, &in_force, &mut notices)?;
                }
                (journal, key, genesis)
            }
        };
        let start = match mode {
            OpenMode::Run | OpenMode::Govern | OpenMode::Replay(ReplayFrom::Snapshot(None)) => {
                journal.latest_snapshot()
            }
            OpenMode::Replay(ReplayFrom::Snapshot(Some(at))) => snapshot_at_or_before(&journal, at)?,
            OpenMode::Fork(before) => snapshot_at_or_before(&journal, before.saturating_sub(1))?,
            OpenMode::Replay(ReplayFrom::Genesis) => None,
        };
        let configuration = configuration_at(&journal, &genesis, start.unwrap_or(0))?;
        let journal: SharedJournal = Arc::new(Mutex::new(journal));
        let runtime = Runtime::new()?;
        let loaded = load_configuration(&runtime, &journal, &paths, &configuration)?;
        let surroundings = Surroundings {
            signer: Arc::new(ReceiptSigner::spawn(key.clone())),
            key,
            clock: Arc::new(WallClock),
            cores: Arc::new(crate::effects::cores::Cores::of_machine()),
            dirs: WorldDirs {
                root: paths.root.clone(),
                world_id: genesis.world_id,
            },
        };
        let kernel = Kernel::new(
            genesis.world_id,
            journal,
            runtime,
            genesis.created_ms,
            loaded,
            surroundings,
        )?;
        // A new world's genesis becomes durable only once its agents loaded and initialised, so
        // a world whose first open fails can be fixed and opened again.
        kernel.journal().commit()?;
        let mut world = World {
            paths,
            configuration,
            genesis,
            kernel,
            recovery: ReplayReport::default(),
            notices,
        };
        let until = match mode {
            OpenMode::Fork(before) => before,
            _ => u64::MAX,
        };
        world.recovery = world.recover(start, until, progress)?;
        if mode == OpenMode::Run && world.recovery.divergence.is_none() {
            world.guard_against_crash_loops()?;
        }
        if matches!(mode, OpenMode::Run | OpenMode::Govern | OpenMode::Fork(_))
            && let Some(divergence) = &world.recovery.divergence
        {
            return Err(WorldError::Diverged {
                root: world.paths.root.clone(),
                divergence: divergence.to_string(),
            });
        }
        Ok(world)
    }

    /// The host stopped with steps unfinished, and the first of them may be what stopped it
    /// (an event that crashes the host each time it is processed would otherwise keep the
    /// world from ever running again). Journal another attempt at it before it runs, or, once
    /// it has had [`STEP_ATTEMPTS_MAX`], set it aside as abandoned; and until the steps found
    /// unfinished are done, commit after each, so a step that stops the host is always the
    /// first left unfinished.
    fn guard_against_crash_loops(&mut self) -> Result<()> {
        let Some((first, last)) = self.kernel.pending_range() else {
            return Ok(());
        };
        let attempts = {
            let journal = self.kernel.journal();
            journal
                .entries_from(first)?
                .iter()
                .filter(|e| matches!(&e.body, EntryBody::StepAttempt(a) if a.ingress == first))
                .count() as u32
        };
        if attempts >= STEP_ATTEMPTS_MAX {
            self.kernel.set_aside_next(
                crate::journal::entry::FailureKind::Abandoned,
                format!(
                    "the host stopped during this step at each of its {} attempts; the event is set aside so the \
                     world can go on",
                    attempts + 1
                ),
            );
            self.notices.push(format!(
                "step #{first} stopped the host at each of its {} attempts and is set aside (abandoned); \
                 `agentos-host log {}` shows it",
                attempts + 1,
                self.paths.root.display()
            ));
        } else {
            self.kernel
                .journal()
                .append(EntryBody::StepAttempt(crate::journal::entry::StepAttempt {
                    ingress: first,
                    attempt: attempts + 1,
                }));
            self.kernel.commit_each_step_through(last);
        }
        self.commit()
    }

    /// Restore the snapshot at entry `seq`; returns the ingresses it had not processed.
    fn restore_snapshot(&mut self, seq: u64) -> Result<Vec<(u64, Ingress)>> {
        let journal = self.kernel.shared_journal().clone();
        let entry = |seq: u64| -> Result<EntryBody> {
            let journal = journal.lock().expect("journal lock");
            Ok(journal.entry(seq)?.ok_or(WorldError::MissingEntry(seq))?.body)
        };
        let EntryBody::Snapshot(snapshot) = entry(seq)? else {
            return Err(WorldError::NotASnapshot(seq));
        };
        let pending = self
            .kernel
            .restore(&snapshot)
            .map_err(|source| WorldError::Restore { seq, source })?;
        pending
            .into_iter()
            .map(|p| match entry(p)? {
                EntryBody::Ingress(ingress) => Ok((p, ingress)),
                other => Err(WorldError::SnapshotPending {
                    seq,
                    entry: p,
                    kind: other.kind(),
                }),
            })
            .collect()
    }

    /// Replay every committed step after `snapshot` (from genesis when `None`) and before entry
    /// `until`, redoing the manifest changes on the way, and queue the rest. Stops at the first
    /// divergence. `progress` sees (done, total) counts.
    fn recover(
        &mut self,
        snapshot: Option<u64>,
        until: u64,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ReplayReport> {
        let started = Instant::now();
        let mut ingresses = match snapshot {
            Some(seq) => self.restore_snapshot(seq)?,
            None => Vec::new(),
        };
        let first = snapshot.map_or(0, |seq| seq + 1);
        let mut entries = self.kernel.journal().entries_from(first)?;
        entries.retain(|e| e.seq < until);
        let total = entries
            .iter()
            .filter(|e| matches!(e.body, EntryBody::StepCommitted(_) | EntryBody::StepFailed(_)))
            .count() as u64;
        let mut history = RecordedHistory::default();
        let mut report = ReplayReport::default();
        // Steps in the order their records were journaled: the order they committed in.
        let mut finished = Vec::new();
        for entry in entries {
            self.kernel.restore_timer(&entry.body);
            match entry.body {
                EntryBody::Ingress(ingress) => {
                    history.at_ms_of.insert(entry.seq, ingress.at_ms);
                    ingresses.push((entry.seq, ingress));
                }
                EntryBody::EffectIntent(intent) => {
                    history
                        .intents
                        .entry(intent.ingress)
                        .or_default()
                        .push((intent.effect_index, intent.request_digest));
                }
                EntryBody::EffectReceipt(r) => {
                    let at_ms = history
                        .at_ms_of
                        .get(&r.receipt.body.ingress)
                        .copied()
                        .unwrap_or_default();
                    self.kernel.count_receipt(&r.receipt.body, at_ms);
                    history
                        .calls_of
                        .entry(r.receipt.body.ingress)
                        .or_default()
                        .push(r.receipt.body.effect_index);
                    history.calls.insert(
                        (r.receipt.body.ingress, r.receipt.body.effect_index),
                        RecordedCall {
                            request_digest: r.receipt.body.request_digest,
                            request: r.request,
                            outcome: r.outcome,
                        },
                    );
                }
                EntryBody::Plan(plan) => {
                    history
                        .recorded
                        .entry(plan.ingress)
                        .or_default()
                        .plan_events
                        .push((plan.run, plan.event));
                }
                EntryBody::Output(output) => {
                    history
                        .recorded
                        .entry(output.ingress)
                        .or_default()
                        .outputs
                        .push((output.stream, output.text));
                }
                EntryBody::StepCommitted(step) => {
                    finished.push(step.ingress);
                    let r = history.recorded.entry(step.ingress).or_default();
                    r.outcome = Some(StepOutcome::Committed {
                        state_digest: step.state_digest,
                    });
                    r.effects = step.effects;
                }
                EntryBody::StepFailed(step) => {
                    finished.push(step.ingress);
                    let r = history.recorded.entry(step.ingress).or_default();
                    r.outcome = Some(StepOutcome::Failed {
                        kind: step.kind,
                        reason: step.reason,
                    });
                    r.effects = step.effects;
                }
                EntryBody::Snapshot(snapshot) => {
                    history
                        .snapshots
                        .entry(snapshot.after_step)
                        .or_default()
                        .push((entry.seq, snapshot));
                }
                EntryBody::ManifestApplied(applied) => {
                    // Every step before a manifest change finished under the old manifest.
                    let before = std::mem::take(&mut ingresses);
                    self.replay_recorded(
                        before,
                        std::mem::take(&mut finished),
                        &mut history,
                        &mut report,
                        &mut |done| progress(done, total),
                        false,
                    )?;
                    if report.divergence.is_none() {
                        report.divergence = self.redo_manifest_change(entry.seq, &applied)?;
                    }
                }
                EntryBody::Genesis(_)
                | EntryBody::TimerScheduled(_)
                | EntryBody::TimerCancelled(_)
                | EntryBody::Checkpoint(_)
                | EntryBody::StepAttempt(_)
                | EntryBody::ReceiptCheckpoint(_)
                | EntryBody::KeyRotation(_)
                | EntryBody::Proposal(_)
                | EntryBody::Verdict(_)
                | EntryBody::ShadowReport(_)
                | EntryBody::ApplyRefused(_) => {}
            }
        }
        self.replay_recorded(
            ingresses,
            finished,
            &mut history,
            &mut report,
            &mut |done| progress(done, total),
            true,
        )?;
        report.pending = self.kernel.pending();
        report.from_snapshot = snapshot;
        report.agent_states = self
            .kernel
            .agents()
            .iter()
            .map(|(name, slot)| (name.clone(), hex::encode(slot.state_digest)))
            .collect();
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Re-execute the steps of `ingresses` that finished, in `finished` order (the order their
    /// records were journaled in, which is the order they committed in live). Those never
    /// finished are queued to run live (reusing what the journal already holds) when `last`;
    /// before a manifest change every step must have finished.
    fn replay_recorded(
        &mut self,
        ingresses: Vec<(u64, Ingress)>,
        finished: Vec<u64>,
        history: &mut RecordedHistory,
        report: &mut ReplayReport,
        progress: &mut dyn FnMut(u64),
        last: bool,
    ) -> Result<()> {
        let calls = Arc::new(std::mem::take(&mut history.calls));
        let mut unfinished: std::collections::BTreeMap<u64, Ingress> = ingresses.into_iter().collect();
        for seq in finished {
            let (Some(ingress), Some(r)) = (unfinished.remove(&seq), history.recorded.get(&seq)) else {
                continue;
            };
            if report.divergence.is_some() {
                continue;
            }
            let (record, divergence) = self.kernel.replay_step(seq, &ingress, r, &calls);
            report.steps_replayed += 1;
            report.effects_served += u64::from(record.effects);
            if matches!(record.outcome, StepOutcome::Failed { .. }) {
                report.failed_steps += 1;
            }
            report.divergence = divergence.or_else(|| self.check_snapshots(history.snapshots.remove(&seq), report));
            progress(report.steps_replayed);
        }
        for (seq, ingress) in unfinished {
            if !last {
                report.divergence.get_or_insert(ReplayDivergence {
                    ingress: seq,
                    agent: ingress.agent.clone(),
                    detail: "the step never finished, yet the manifest changed after it".into(),
                });
                continue;
            }
            // Never committed: re-execute live, reusing what the journal already holds.
            let mut recovered = HashMap::new();
            for (index, digest) in history.intents.remove(&seq).unwrap_or_default() {
                recovered.insert((seq, index), RecoveredCall::Intent { request_digest: digest });
            }
            let journal = self.kernel.journal();
            for index in history.calls_of.remove(&seq).unwrap_or_default() {
                let call = &calls[&(seq, index)];
                let outcome = journal
                    .payload_bytes(&call.outcome)?
                    .and_then(|bytes| crate::kernel::decode_outcome(&bytes))
                    .ok_or(WorldError::UnreadableOutcome { seq, index })?;
                recovered.insert(
                    (seq, index),
                    RecoveredCall::Receipt {
                        request_digest: call.request_digest,
                        outcome,
                    },
                );
            }
            drop(journal);
            self.kernel.enqueue(seq, ingress, recovered);
        }
        Ok(())
    }

    /// Replay of a manifest-applied entry: load the new agents, migrate, and compare the
    /// migrated states with the recorded ones.
    fn redo_manifest_change(&mut self, seq: u64, applied: &ManifestApplied) -> Result<Option<ReplayDivergence>> {
        let configuration = Configuration::of_applied(seq, applied)?;
        let diverged = |agent: &str, detail: String| {
            Ok(Some(ReplayDivergence {
                ingress: seq,
                agent: agent.to_string(),
                detail,
            }))
        };
        let loaded = load_configuration(
            self.kernel.runtime(),
            self.kernel.shared_journal(),
            &self.paths,
            &configuration,
        )
        .map_err(|source| WorldError::Redo {
            seq,
            source: Box::new(source),
        })?;
        let migrated = match self.kernel.migrate(loaded, (applied.proposal, applied.at_ms)) {
            Ok(migrated) => migrated,
            Err(error) => return diverged("", format!("the recorded manifest change fails on replay: {error}")),
        };
        if migrated != applied.agents {
            let agent = migrated
                .iter()
                .zip(&applied.agents)
                .find(|(a, b)| a != b)
                .map_or(String::new(), |((name, _), _)| name.clone());
            return diverged(
                &agent,
                format!("the manifest change of entry #{seq} migrated the agents' states differently than recorded"),
            );
        }
        self.configuration = configuration;
        Ok(None)
    }

    /// Compare snapshots taken right after a replayed step with the agents' re-executed states.
    fn check_snapshots(
        &self,
        snapshots: Option<Vec<(u64, crate::journal::entry::Snapshot)>>,
        report: &mut ReplayReport,
    ) -> Option<ReplayDivergence> {
        for (seq, snapshot) in snapshots.unwrap_or_default() {
            report.snapshots_checked += 1;
            for (agent, digest) in &snapshot.agents {
                let replayed = self.kernel.state_digest_of(agent);
                if replayed != Some(*digest) {
                    return Some(ReplayDivergence {
                        ingress: snapshot.after_step,
                        agent: agent.clone(),
                        detail: format!(
                            "snapshot #{seq} records state sha256:{}, re-execution gave {}",
                            hex::encode(digest),
                            replayed.map_or("no such agent".into(), |d| format!("sha256:{}", hex::encode(d)))
                        ),
                    });
                }
            }
        }
        None
    }

    /// Journal a manual run of `plan` with `input` (JSON text; `null` when the plan takes none).
    /// Returns the run's id (its ingress seq); `run` processes it.
    pub fn start_plan(&mut self, plan: &str, input: &str) -> Result<u64> {
        let slot = self.plan(plan)?;
        slot.check_input(input).map_err(|reason| WorldError::PlanInput {
            plan: plan.to_string(),
            reason,
        })?;
        let input: serde_json::Value = serde_json::from_str(input).expect("check_input parsed it");
        Ok(crate::ingest::journal_ingress(
            &mut self.kernel,
            &crate::plans::address(plan),
            input.to_string(),
            crate::plans::MANUAL_SOURCE,
        ))
    }

    /// The plan named `plan`, or an error listing the world's plans.
    pub fn plan(&self, plan: &str) -> Result<&crate::plans::PlanSlot> {
        crate::ingest::plan(&self.kernel, plan)
    }

    /// Validate and journal an event for `agent` (WAVE text or JSON), or for a plan addressed
    /// `plan:<name>` (WAVE: an event of the schema that triggers it). Returns its seq.
    pub fn ingest(&mut self, agent: &str, event: EventInput<'_>, source: &str) -> Result<u64> {
        crate::ingest::ingest(&mut self.kernel, &self.paths.manifest(), agent, event, source)
    }

    /// Journal the events waiting in the inbox directory (see [`crate::inbox`]). Returns the
    /// number journaled and, for each rejected file, where it went and why.
    pub fn ingest_inbox(&mut self) -> Result<(usize, Vec<(PathBuf, String)>)> {
        let files = crate::inbox::pending(&self.paths.state())?;
        if files.is_empty() {
            return Ok((0, Vec::new()));
        }
        let journaled: std::collections::HashSet<String> = self
            .kernel
            .journal()
            .entries()?
            .into_iter()
            .filter_map(|e| match e.body {
                EntryBody::Ingress(i) if i.source.starts_with("inbox:") => Some(i.source),
                _ => None,
            })
            .collect();
        let (mut count, mut rejected, mut done) = (0, Vec::new(), Vec::new());
        for file in files {
            let source = crate::inbox::source_of(&file);
            if journaled.contains(&source) {
                done.push(file);
                continue;
            }
            let outcome = crate::inbox::read(&file).map_err(WorldError::from).and_then(|event| {
                let json: serde_json::Value;
                let input = if event.json {
                    json = serde_json::from_str(&event.event).map_err(WorldError::EventNotJson)?;
                    EventInput::Json(&json)
                } else {
                    EventInput::Wave(&event.event)
                };
                self.ingest(&event.agent, input, &source)
            });
            match outcome {
                Ok(_) => {
                    count += 1;
                    done.push(file);
                }
                Err(error) => {
                    let reason = crate::text::chain(&error);
                    let moved = crate::inbox::reject(&file, &reason)?;
                    rejected.push((moved, reason));
                }
            }
        }
        self.commit()?;
        for file in done {
            std::fs::remove_file(&file).map_err(|source| WorldError::Remove { path: file, source })?;
        }
        Ok((count, rejected))
    }

    /// Make journaled input durable.
    pub fn commit(&mut self) -> Result<()> {
        self.kernel.journal().commit()?;
        Ok(())
    }

    /// Switch the running world to `manifest` (with component table `modules`) as proposal
    /// `proposal` asks: load and check the new components, migrate every agent's state, then
    /// journal the change with a snapshot and commit. `Ok(Err(reason))`: the new manifest
    /// cannot run (a component does not match its world, a `restore` rejected the old state);
    /// nothing changed and nothing was journaled.
    pub fn change_configuration(
        &mut self,
        proposal: (u64, crate::journal::entry::Digest),
        manifest: Manifest,
        modules: Vec<(String, crate::journal::entry::Digest)>,
    ) -> Result<Result<u64, String>> {
        if self.kernel.pending() > 0 {
            return Err(WorldError::EventsWaiting {
                count: self.kernel.pending(),
                root: self.paths.root.clone(),
            });
        }
        let at_ms = self.kernel.next_time_ms();
        let mut configuration = Configuration {
            since: 0,
            digest: manifest.digest(),
            manifest,
            modules,
            proposal: Some(proposal.0),
            at_ms,
        };
        let loaded = match load_configuration(
            self.kernel.runtime(),
            self.kernel.shared_journal(),
            &self.paths,
            &configuration,
        ) {
            Ok(loaded) => loaded,
            Err(error) => return Ok(Err(crate::text::chain(&error))),
        };
        let migrated = match self.kernel.migrate(loaded, (proposal.0, at_ms)) {
            Ok(migrated) => migrated,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let applied = ManifestApplied {
            proposal: proposal.0,
            proposal_hash: proposal.1,
            previous: self.configuration.digest,
            manifest_json: configuration.manifest.to_json(),
            manifest_digest: configuration.digest,
            modules: configuration.modules.clone(),
            at_ms,
            agents: migrated,
        };
        let seq = self.kernel.journal().append(EntryBody::ManifestApplied(applied));
        self.kernel.snapshot();
        self.commit()?;
        configuration.since = seq;
        self.configuration = configuration;
        Ok(Ok(seq))
    }

    /// Process every queued event; returns the step records.
    ///
    /// Inputs queued behind the next one are made durable before any is processed. The next
    /// one alone becomes durable with the commit of the step that processes it (or earlier,
    /// with the intent of a non-idempotent effect of that step), so one event costs one fsync.
    pub fn run(&mut self, mut on_step: impl FnMut(&StepRecord)) -> Result<usize> {
        if self.kernel.pending() > 1 {
            self.commit()?;
        }
        Ok(self.kernel.run_until_idle(&mut on_step)?)
    }
}

/// What the journal recorded after the starting point, gathered for replay.
#[derive(Default)]
struct RecordedHistory {
    /// Snapshots to check against re-execution, by the step after which each was taken.
    snapshots: HashMap<u64, Vec<(u64, crate::journal::entry::Snapshot)>>,
    at_ms_of: HashMap<u64, u64>,
    recorded: HashMap<u64, Recorded>,
    calls: RecordedCalls,
    /// Per step: intents and receipted call numbers, for re-executing steps that never committed.
    intents: HashMap<u64, Vec<(u32, crate::journal::entry::Digest)>>,
    calls_of: HashMap<u64, Vec<u32>>,
}

/// The last snapshot entry at or before entry `at`.
fn snapshot_at_or_before(journal: &Journal, at: u64) -> Result<Option<u64>> {
    Ok(journal.snapshot_at_or_before(at)?)
}

/// An agent ready for the stepper: its definition, checked component and grants.
pub type LoadedAgent = (String, AgentDef, AgentComponent, AgentGrants);

/// Load every agent of `configuration` from the components in the journal's blob table,
/// checking each against its event schema, and its plans with their grants.
pub fn load_configuration(
    runtime: &Runtime,
    journal: &SharedJournal,
    paths: &WorldPaths,
    configuration: &Configuration,
) -> Result<crate::kernel::Loaded> {
    let manifest = Arc::new(configuration.manifest.clone());
    let plans = manifest
        .plans
        .keys()
        .map(|name| Ok((name.clone(), AgentGrants::for_plan(&manifest, name, &paths.root)?)))
        .collect::<Result<Vec<_>>>()?;
    let refused: Vec<String> = plans
        .iter()
        .flat_map(|(name, grants)| crate::plans::refused_literals(name, &manifest.plans[name], grants))
        .collect();
    if !refused.is_empty() {
        return Err(WorldError::PlansRefused { refused });
    }
    let agents = load_agents(runtime, journal, paths, configuration)?;
    Ok(crate::kernel::Loaded {
        agents,
        plans: (manifest, plans),
    })
}

fn load_agents(
    runtime: &Runtime,
    journal: &SharedJournal,
    paths: &WorldPaths,
    configuration: &Configuration,
) -> Result<Vec<LoadedAgent>> {
    let manifest = &configuration.manifest;
    let mut agents = Vec::new();
    for (name, def) in &manifest.agents {
        let module = &manifest.modules[&def.module];
        let digest = configuration
            .module_digest(&def.module)
            .ok_or_else(|| WorldError::NoComponent {
                module: def.module.clone(),
            })?;
        let bytes = journal
            .lock()
            .expect("journal lock")
            .blob(&digest)?
            .ok_or_else(|| WorldError::MissingModule {
                module: def.module.clone(),
                digest: hex::encode(digest),
            })?;
        let component = runtime.load(&def.module, &bytes, &paths.root.join(&module.component))?;
        let grants = AgentGrants::from_manifest(manifest, name, &paths.root)?;
        let prepared = runtime.prepare(&component, &grants)?;
        if let Some(schema) = &def.event {
            let differences = crate::conformance::differences(manifest, schema, &prepared.event_type);
            if !differences.is_empty() {
                return Err(WorldError::Nonconforming {
                    agent: name.clone(),
                    component: module.component.clone(),
                    schema: schema.clone(),
                    differences,
                });
            }
        }
        agents.push((name.clone(), def.clone(), prepared, grants));
    }
    Ok(agents)
}

/// Append (not yet commit) the genesis entry of a new world, with its module bytes as blobs.
fn write_genesis(journal: &mut Journal, paths: &WorldPaths, manifest: &Manifest, key: &HostKey) -> Result<Genesis> {
    let mut modules = Vec::new();
    for (name, module) in &manifest.modules {
        let path = paths.root.join(&module.component);
        let bytes = std::fs::read(&path).map_err(|source| WorldError::UnreadableComponent {
            module: name.clone(),
            path: path.clone(),
            manifest: paths.manifest(),
            source,
        })?;
        let digest = journal.put_blob(&bytes);
        if let Some(pinned) = &module.sha256
            && *pinned != hex::encode(digest)
        {
            return Err(WorldError::PinMismatch {
                module: name.clone(),
                path,
                actual: hex::encode(digest),
                manifest: paths.manifest(),
                pinned: pinned.clone(),
            });
        }
        modules.push((name.clone(), digest));
    }
    let mut world_id = [0u8; 16];
    getrandom::fill(&mut world_id).map_err(|e| WorldError::WorldId(e.to_string()))?;
    let genesis = Genesis {
        format_version: FORMAT_VERSION,
        world_id,
        host_public_key: key.public().to_bytes(),
        created_ms: WallClock.now_ms(),
        manifest_json: manifest.to_json(),
        manifest_digest: manifest.digest(),
        modules,
    };
    journal.append(EntryBody::Genesis(genesis.clone()));
    Ok(genesis)
}

/// `world.toml` must say what the manifest of record in force says: the world never runs
/// anything else, and a changed file would otherwise be silently ignored. A component file
/// rebuilt since is only noted: the world runs the recorded bytes.
fn check_matches_record(
    paths: &WorldPaths,
    manifest: &Manifest,
    in_force: &Configuration,
    notices: &mut Vec<String>,
) -> Result<()> {
    // Compare as this host reads the record: a later host may add defaulted fields, which
    // changes the canonical digest of an unchanged configuration.
    if in_force.manifest.digest() != manifest.digest() {
        return Err(WorldError::DiffersFromRecord {
            manifest: paths.manifest(),
            root: paths.root.clone(),
            record: hex::encode(in_force.digest),
            ours: hex::encode(manifest.digest()),
        });
    }
    for (name, module) in &manifest.modules {
        let path = paths.root.join(&module.component);
        if let Ok(bytes) = std::fs::read(&path) {
            let digest = crate::journal::entry::sha256(&bytes);
            if in_force.module_digest(name).is_some_and(|d| d != digest) {
                notices.push(format!(
                    "module `{name}`: {} (sha256:{}) is not the component in force; the world runs the recorded one \
                     (to run the new build, propose it: `agentos-host propose {} --from {}`)",
                    path.display(),
                    hex::encode(&digest[..8]),
                    paths.root.display(),
                    paths.manifest().display()
                ));
            }
        }
    }
    Ok(())
}

/// The host key file holding the key in force (by the journal's record of rotations),
/// completing a rotation that stopped between journaling the new key and installing its file —
/// only once the journal's last checkpoint is signed by the new key, so that a planted record
/// cannot have the key in use replaced.
fn key_in_force(paths: &WorldPaths, journal: &Journal, genesis: &Genesis) -> Result<HostKey> {
    let in_force = journal.rotated_key().unwrap_or(genesis.host_public_key);
    let key = HostKey::load_or_create(&paths.key())?;
    if key.public().to_bytes() == in_force {
        return Ok(key);
    }
    if paths.next_key().exists() {
        let next = HostKey::load_or_create(&paths.next_key())?;
        if next.public().to_bytes() == in_force && journal.signed_end(genesis.world_id, &next.public()).is_ok() {
            std::fs::rename(paths.next_key(), paths.key()).map_err(|source| WorldError::Install {
                path: paths.key(),
                source,
            })?;
            return Ok(next);
        }
    }
    Err(WorldError::NotTheKeyInForce {
        path: paths.key(),
        public_key: hex::encode(in_force),
    })
}

/// Replace the world's host key: journal a rotation signed by the key in force and the new key,
/// then install the new key file. Returns (old public key, new public key).
pub fn rotate_key(root: &Path) -> Result<([u8; 32], [u8; 32])> {
    let paths = WorldPaths::new(root);
    crate::private::dir(&paths.state())?;
    let mut journal = open_existing_journal(&paths)?;
    let genesis = genesis(&journal)?;
    let old = Arc::new(key_in_force(&paths, &journal, &genesis)?);
    open_for_appends(&mut journal, &genesis, old.clone(), ReadFrom::End)?;
    // A leftover from a rotation that stopped before journaling: never in force.
    let _ = std::fs::remove_file(paths.next_key());
    let new = Arc::new(HostKey::load_or_create(&paths.next_key())?);
    journal.append(EntryBody::KeyRotation(crate::rotation::KeyRotation::new(
        genesis.world_id,
        &old,
        &new,
    )));
    // From the rotation on, the new key signs: the checkpoint that ends this commit too.
    journal.hand_over_to(new.clone());
    journal.commit()?;
    std::fs::rename(paths.next_key(), paths.key()).map_err(|source| WorldError::Install {
        path: paths.key(),
        source,
    })?;
    Ok((old.public().to_bytes(), new.public().to_bytes()))
}

/// Text of an output line for display.
pub fn stream_label(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
        Stream::ServerStderr => "server stderr",
    }
}
