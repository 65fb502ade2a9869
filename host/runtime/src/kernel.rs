//! The stepper: delivers journaled inputs to agents, each agent's in its input order and one
//! step at a time; steps of different agents run side by side on worker threads (see
//! [`drive`]), their records journaled in the order the steps finish.
//!
//! A step is a transaction over one agent's state. On success its outputs and the digest of
//! the agent's new snapshot are journaled as `step-committed`; on a trap, an error, exhausted
//! fuel or memory, the state is rolled back (the instance is discarded and rebuilt from the
//! last committed snapshot, or restored in place after a plain error) and `step-failed` is
//! journaled. Either way the world goes on with the next event.
//!
//! The same code runs live and in replay; only the effect backend differs. In replay the
//! kernel compares each step's outcome, outputs and state digest with the journal and reports
//! the first divergence. The kernel performs no IO itself besides the journal.

use crate::caps::AgentGrants;
use crate::effects::GateLimits;
use crate::effects::clock::Clock;
use crate::effects::live::{LiveContext, LiveEffects, RecoveredCall, WorldDirs};
use crate::effects::replay::{Divergence, RecordedCalls, ReplayEffects};
use crate::effects::{Deferred, EffectOutcome};
use crate::engine::{AgentComponent, AgentInstance, CallError, Runtime, StepLimits};
use crate::journal::entry::{
    Digest, EntryBody, FailureKind, Ingress, Output, Snapshot, StepCommitted, StepFailed, Stream, TimerCancelled,
    TimerScheduled, sha256,
};
use crate::journal::{JournalError, SharedJournal};
use crate::plans::PlanSlot;
use crate::plans::record::{PlanEntry, PlanEvent};
use crate::receipts::{HostKey, ReceiptSigner};
use agentos_air::{AgentDef, Manifest};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub mod drive;
mod queue;
mod workers;

pub use drive::{BATCH_BLOB_BYTES_MAX, Driver, STEPS_IN_FLIGHT_DEFAULT, STEPS_PER_COMMIT};
pub use workers::Waker;

/// How a step's wall-clock deadline applies: live, or re-executing a journaled step, whose
/// outcome must not depend on how busy the machine replaying it is. Fuel bounds a replayed step
/// exactly; its deadline is the agent's times [`REPLAY_DEADLINE_SLACK`], a backstop against a
/// journal from elsewhere whose steps would run for hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timing {
    Live,
    Replay,
}

/// See [`Timing`].
pub const REPLAY_DEADLINE_SLACK: u64 = 10;

/// An agent as the stepper holds it.
pub struct AgentSlot {
    pub def: Arc<AgentDef>,
    pub component: Arc<AgentComponent>,
    pub grants: Arc<AgentGrants>,
    /// Away on a worker while a step of the agent runs there.
    store: Option<AgentStore>,
    /// The digest of the agent's last committed state.
    pub state_digest: Digest,
    /// Committed steps since the world's last snapshot entry.
    steps_since_snapshot: u64,
}

/// What a step works on: the agent's instance (none until its next step instantiates it) and
/// its last committed snapshot, what a failed step rolls back to.
struct AgentStore {
    instance: Option<AgentInstance>,
    state: Vec<u8>,
}

impl AgentSlot {
    /// The agent's store; only the stepper calls this, between its steps.
    fn home(&mut self) -> &mut AgentStore {
        self.store.as_mut().expect("an agent's store is home between its steps")
    }

    /// The agent's store, for a step to take away.
    fn send_away(&mut self) -> AgentStore {
        self.store.take().expect("an agent's store is home between its steps")
    }

    /// The store back from step `record`: a committed step moves the agent's state on.
    fn bring_home(&mut self, store: AgentStore, record: &StepRecord) {
        self.store = Some(store);
        if let StepOutcome::Committed { state_digest } = record.outcome {
            self.state_digest = state_digest;
            self.steps_since_snapshot += 1;
        }
    }
}

pub use agentos_journal::stepper::StepperState as KernelState;

/// How one step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    Committed { state_digest: Digest },
    Failed { kind: FailureKind, reason: String },
}

/// Everything a step produced.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub ingress: u64,
    pub agent: String,
    pub outcome: StepOutcome,
    pub outputs: Vec<(Stream, String)>,
    pub fuel_used: u64,
    pub effects: u32,
    /// Events for other agents and timers to set or cancel, journaled only if the step commits.
    pub deferred: Vec<Deferred>,
    /// Set in replay when an effect call did not match the journal (not journaled).
    pub divergence: Option<String>,
    /// What a plan's turn recorded about its runs, as (run, event).
    pub plan_events: Vec<(u64, PlanEvent)>,
    /// Plan step outputs for the blob table.
    pub blobs: Vec<Vec<u8>>,
}

impl StepRecord {
    /// A step of `agent` on input `ingress` that failed before doing anything.
    fn failed(ingress: u64, agent: &str, kind: FailureKind, reason: String) -> StepRecord {
        StepRecord {
            ingress,
            agent: agent.to_string(),
            outcome: StepOutcome::Failed { kind, reason },
            outputs: Vec::new(),
            fuel_used: 0,
            effects: 0,
            deferred: Vec::new(),
            divergence: None,
            plan_events: Vec::new(),
            blobs: Vec::new(),
        }
    }
}

/// The journal entry of a timer that committed step `record` set or cancelled, if `deferred`
/// is one: what a live commit journals and what the timer table folds.
fn timer_entry(record: &StepRecord, deferred: &Deferred) -> Option<EntryBody> {
    match deferred {
        Deferred::TimerScheduled { id, due_ms, event } => Some(EntryBody::TimerScheduled(TimerScheduled {
            ingress: record.ingress,
            id: *id,
            agent: record.agent.clone(),
            event: event.clone(),
            due_ms: *due_ms,
        })),
        Deferred::TimerCancelled { id } => Some(EntryBody::TimerCancelled(TimerCancelled {
            ingress: record.ingress,
            id: *id,
        })),
        Deferred::Emit { .. } | Deferred::Continue { .. } => None,
    }
}

/// What the journal says a committed step did (the replay oracle).
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    pub outcome: Option<StepOutcome>,
    pub outputs: Vec<(Stream, String)>,
    pub effects: u32,
    pub plan_events: Vec<(u64, PlanEvent)>,
}

/// Operating errors of the stepper.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("agent `{agent}`: {reason}")]
    Agent { agent: String, reason: String },
    #[error("the world's latest snapshot cannot be restored: {0}")]
    Snapshot(String),
}

/// The first place where re-execution disagreed with the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayDivergence {
    pub ingress: u64,
    pub agent: String,
    pub detail: String,
}

impl std::fmt::Display for ReplayDivergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step #{} (agent `{}`): {}", self.ingress, self.agent, self.detail)
    }
}

/// What the kernel is handed by whoever opens its world: besides the journal, its only ways to
/// the outside (the host key and the thread that signs with it, the wall clock, the cores steps
/// run on, the directories effects work in). The kernel itself does no other IO.
pub struct Surroundings {
    pub key: Arc<HostKey>,
    pub signer: Arc<ReceiptSigner>,
    pub clock: Arc<dyn Clock>,
    /// The cores steps run guest code on (see [`crate::effects::cores`]).
    pub cores: Arc<crate::effects::cores::Cores>,
    pub dirs: WorldDirs,
}

pub struct Kernel {
    world_id: [u8; 16],
    journal: SharedJournal,
    live: LiveContext,
    runtime: Arc<Runtime>,
    agents: BTreeMap<String, AgentSlot>,
    /// The plans, by name (their ingresses are addressed `plan:<name>`).
    plans: BTreeMap<String, PlanSlot>,
    /// Inputs journaled and not yet started.
    queue: queue::Queue,
    /// Steps running on the workers: input seq → agent.
    in_flight: BTreeMap<u64, String>,
    /// The input of a step running alone (see [`drive`]), while it runs.
    exclusive: Option<u64>,
    steps_in_flight_max: usize,
    /// Steps journaled since the last commit.
    uncommitted_steps: usize,
    workers: workers::Workers,
    recovered: HashMap<u64, HashMap<(u64, u32), RecoveredCall>>,
    /// After the host stopped with steps unfinished: commit after each step up to this ingress,
    /// so that if one of them stops the host again, it is the first left unfinished.
    commit_each_step_through: Option<u64>,
    last_at_ms: u64,
    /// Ingress seq of the last step processed (live or replayed).
    last_step: u64,
}

fn call_error(error: CallError) -> (FailureKind, String) {
    match error {
        CallError::Guest(message) => (FailureKind::Error, message),
        CallError::OutOfFuel { limit } => (
            FailureKind::FuelExhausted,
            format!("fuel exhausted: the step used all {limit} units"),
        ),
        CallError::Memory(memory) => (FailureKind::MemoryExhausted, memory.to_string()),
        CallError::Deadline(deadline) => (FailureKind::DeadlineExceeded, deadline.to_string()),
        CallError::Trap(error) => (FailureKind::Trap, format!("{error:#}")),
    }
}

fn lines(bytes: Vec<u8>, stream: Stream, out: &mut Vec<(Stream, String)>) {
    if bytes.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    out.extend(text.lines().map(|line| (stream, line.to_string())));
}

impl Kernel {
    /// A stepper over freshly initialised agents (`lifecycle.init` already called).
    pub fn new(
        world_id: [u8; 16],
        journal: SharedJournal,
        runtime: Runtime,
        genesis_ms: u64,
        Loaded { agents, plans }: Loaded,
        Surroundings {
            key,
            signer,
            clock,
            cores,
            dirs,
        }: Surroundings,
    ) -> Result<Kernel, KernelError> {
        let mut slots = BTreeMap::new();
        for (name, def, component, grants) in agents {
            let slot = start_slot(
                &runtime,
                &world_id,
                (0, genesis_ms),
                name.clone(),
                def,
                component,
                grants,
                None,
            )?;
            slots.insert(name, slot);
        }
        let mcp = Arc::new(mcp_clients(&dirs.root, &plans.0));
        let plans = plan_slots(plans, &BTreeMap::new(), genesis_ms)?;
        let live = LiveContext {
            journal: journal.clone(),
            signer,
            world_id,
            event_types: Arc::new(event_types(&slots, &plans)),
            budgets: Arc::default(),
            timers: Arc::default(),
            dirs,
            key,
            desk: Arc::new(crate::governance::desk::WorldDesk),
            clock,
            cores,
            mcp,
        };
        let runtime = Arc::new(runtime);
        let workers = workers::Workers::new(runtime.clone(), world_id, live.cores.clone());
        Ok(Kernel {
            world_id,
            journal,
            live,
            runtime,
            agents: slots,
            plans,
            queue: queue::Queue::default(),
            in_flight: BTreeMap::new(),
            exclusive: None,
            steps_in_flight_max: STEPS_IN_FLIGHT_DEFAULT,
            uncommitted_steps: 0,
            workers,
            recovered: HashMap::new(),
            commit_each_step_through: None,
            last_at_ms: genesis_ms,
            last_step: 0,
        })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Let at most `steps` steps run at once (at least one).
    pub fn set_steps_in_flight(&mut self, steps: usize) {
        self.steps_in_flight_max = steps.max(1);
    }

    /// A handle that wakes the stepper waiting in [`Kernel::drive`] once new input is there
    /// for its driver to take.
    pub fn waker(&self) -> Waker {
        self.workers.waker()
    }

    /// Switch to a new set of agents (a manifest change): every agent is instantiated from its
    /// new component and grants; one the world already had gets its last committed state through
    /// `lifecycle.restore` (the new module migrates it), a new one is initialised from its
    /// config. `clock` is the (entry, logical ms) the agents see. Nothing changes unless every
    /// agent starts; returns each agent's state digest after the switch.
    pub fn migrate(
        &mut self,
        Loaded { agents, plans }: Loaded,
        clock: (u64, u64),
    ) -> Result<Vec<(String, Digest)>, KernelError> {
        // A change of any server definition replaces the clients: every server starts again,
        // from its new definition, at its next call.
        let mcp =
            (self.live.mcp.servers() != &plans.0.mcp).then(|| Arc::new(mcp_clients(&self.live.dirs.root, &plans.0)));
        let plans = plan_slots(plans, &self.plans, clock.1)?;
        let mut slots = BTreeMap::new();
        for (name, def, component, grants) in agents {
            let previous = self.agents.get_mut(&name).map(|slot| slot.home().state.as_slice());
            let slot = start_slot(
                &self.runtime,
                &self.world_id,
                clock,
                name.clone(),
                def,
                component,
                grants,
                previous,
            )?;
            slots.insert(name, slot);
        }
        self.live.event_types = Arc::new(event_types(&slots, &plans));
        if let Some(mcp) = mcp {
            self.live.mcp = mcp;
        }
        self.agents = slots;
        self.plans = plans;
        self.last_at_ms = self.last_at_ms.max(clock.1);
        Ok(self
            .agents
            .iter()
            .map(|(name, slot)| (name.clone(), slot.state_digest))
            .collect())
    }

    /// A live effect backend for `agent`, as its steps get one (used by the benchmark to measure
    /// the choke point without wasm).
    /// What `run` warns of in `manifest`'s `mcp` grants: a tool pattern that matches nothing
    /// its server offers, or a server that does not start (each server is started to list its
    /// tools).
    pub fn mcp_grant_warnings(&self, manifest: &Manifest) -> Vec<String> {
        let mut warnings = Vec::new();
        for (name, cap) in &manifest.caps {
            let agentos_air::Cap::Mcp(mcp) = cap else {
                continue;
            };
            for pattern in &mcp.tools {
                let Some((server, tool)) = pattern.split_once('/') else {
                    continue;
                };
                match self.live.mcp.tools(server) {
                    Err(reason) => warnings.push(format!("caps.{name}.tools: `{pattern}`: {reason}")),
                    Ok(tools) if !tools.iter().any(|t| agentos_air::mcp::glob(tool, &t.name)) => {
                        let offered: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
                        warnings.push(format!(
                            "caps.{name}.tools: `{pattern}` matches no tool server `{server}` offers (it offers: {})",
                            if offered.is_empty() {
                                "none".to_string()
                            } else {
                                offered.join(", ")
                            }
                        ));
                    }
                    Ok(_) => {}
                }
            }
        }
        warnings
    }

    pub fn live_backend(&self, agent: &str) -> Option<LiveEffects> {
        let slot = self.agents.get(agent)?;
        Some(LiveEffects::new(&self.live, slot.grants.clone(), HashMap::new()))
    }

    /// Count a journaled receipt against its grant's budget (recovery rebuilds the ledger).
    pub fn count_receipt(&self, receipt: &crate::receipts::ReceiptBody, at_ms: u64) {
        if let Some(grants) = self.grants_of(&receipt.agent) {
            self.live.budgets.lock().expect("budget lock").count(
                |grant| grants.budget(grant).is_some(),
                receipt,
                at_ms,
            );
        }
    }

    /// Events journaled but not yet processed (queued or in flight).
    pub fn pending(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// Whether the input journaled as `seq` is queued or its step is in flight.
    pub fn is_pending(&self, seq: u64) -> bool {
        self.queue.contains(seq) || self.in_flight.contains_key(&seq)
    }

    /// The first and the last input queued and not yet started.
    pub fn pending_range(&self) -> Option<(u64, u64)> {
        Some((self.queue.first()?, self.queue.last()?))
    }

    /// Set aside the next queued event without running it: its step is journaled as failed
    /// with `kind` and `reason`.
    pub fn set_aside_next(&mut self, kind: FailureKind, reason: String) -> Option<u64> {
        let (seq, ingress) = self.queue.take_first()?;
        self.recovered.remove(&seq);
        let record = StepRecord::failed(seq, &ingress.agent, kind, reason);
        self.last_step = seq;
        self.journal_record(&record, ingress.at_ms);
        Some(seq)
    }

    /// Commit after every step up to ingress `last` (see the field).
    pub fn commit_each_step_through(&mut self, last: u64) {
        self.commit_each_step_through = Some(last);
    }

    /// Queue a journaled ingress for live processing; `recovered` holds what the journal
    /// already has for its effect calls (non-empty only after a crash mid-step).
    pub fn enqueue(&mut self, seq: u64, ingress: Ingress, recovered: HashMap<(u64, u32), RecoveredCall>) {
        self.last_at_ms = self.last_at_ms.max(ingress.at_ms);
        if !recovered.is_empty() {
            self.recovered.insert(seq, recovered);
        }
        self.queue.push(seq, ingress);
    }

    /// Logical time for a new ingress: the wall clock, never earlier than the last event. The
    /// stepper's clock moves only when the time is journaled ([`Kernel::enqueue`], a migration).
    pub fn next_time_ms(&self) -> u64 {
        self.live.clock.now_ms().max(self.last_at_ms)
    }

    /// The world's journal, locked.
    pub fn journal(&self) -> std::sync::MutexGuard<'_, crate::journal::Journal> {
        self.journal.lock().expect("journal lock poisoned")
    }

    /// The world's journal, to share with what works beside the kernel (a shadow run, a
    /// configuration load).
    pub fn shared_journal(&self) -> &SharedJournal {
        &self.journal
    }

    /// The world's agents, by name.
    pub fn agents(&self) -> &BTreeMap<String, AgentSlot> {
        &self.agents
    }

    /// Calls, bytes and tokens `agent` used under its budgeted `grant`, in the budget's
    /// window before now.
    pub fn budget_used(&self, agent: &str, grant: &str, window_ms: Option<u64>) -> (u64, u64, u64) {
        let now = self.next_time_ms();
        self.live
            .budgets
            .lock()
            .expect("budget lock")
            .used(agent, grant, window_ms, now)
    }

    /// Inputs of `holder` queued and not yet started.
    pub fn queued_for(&self, holder: &str) -> usize {
        self.queue.queued_for(holder)
    }

    /// Whether a step of `holder` is in flight.
    pub fn busy(&self, holder: &str) -> bool {
        self.in_flight.values().any(|busy| busy == holder)
    }

    /// The world's plans, by name.
    pub fn plans(&self) -> &BTreeMap<String, PlanSlot> {
        &self.plans
    }

    /// The wall clock the kernel was given.
    pub fn now_ms(&self) -> u64 {
        self.live.clock.now_ms()
    }

    /// Whether the step of input `seq` is one recovery commits on its own (see the field
    /// `commit_each_step_through`).
    fn careful(&self, seq: u64) -> bool {
        self.commit_each_step_through.is_some_and(|last| seq <= last)
    }

    /// The live backend of the step of input `seq` to `holder` (an agent or `plan:<name>`),
    /// with what the journal already holds for its calls; `None` for a holder the world lacks.
    fn live_step_backend(&mut self, seq: u64, holder: &str) -> Option<Box<dyn crate::effects::EffectBackend>> {
        let recovered = self.recovered.remove(&seq).unwrap_or_default();
        let grants = self.grants_of(holder)?;
        Some(Box::new(LiveEffects::new(&self.live, grants, recovered)))
    }

    /// Journal a snapshot of every agent and of the stepper (blobs deduplicate unchanged states).
    pub fn snapshot(&mut self) {
        let state = KernelState {
            last_at_ms: self.last_at_ms,
            last_step: self.last_step,
            timers: self.live.timers.lock().expect("timer lock").clone(),
            budgets: self.live.budgets.lock().expect("budget lock").clone(),
            pending: self.queue.seqs().collect(),
        };
        let bytes = postcard::to_allocvec(&state).expect("kernel state always encodes");
        let mut journal = self.journal.lock().expect("journal lock poisoned");
        let kernel = journal.put_blob(&bytes);
        let mut agents: Vec<(String, Digest)> = self
            .agents
            .iter_mut()
            .map(|(name, slot)| {
                slot.steps_since_snapshot = 0;
                (name.clone(), journal.put_blob(&slot.home().state))
            })
            .collect();
        agents.extend(
            self.plans
                .iter()
                .map(|(name, plan)| (crate::plans::address(name), journal.put_blob(&plan.state_bytes()))),
        );
        journal.append(EntryBody::Snapshot(Snapshot {
            after_step: self.last_step,
            agents,
            kernel,
        }));
    }

    /// Start from a journaled snapshot: agent states (restored into fresh instances at their
    /// next step) and the stepper's state. Returns the ingress entries it had not processed.
    pub fn restore(&mut self, snapshot: &Snapshot) -> Result<Vec<u64>, KernelError> {
        let journal = self.journal.lock().expect("journal lock poisoned");
        let missing = |what: String| KernelError::Snapshot(format!("{what} is missing from the blob table"));
        for (name, digest) in &snapshot.agents {
            let state = journal
                .blob(digest)?
                .ok_or_else(|| missing(format!("`{name}`'s state sha256:{}", hex::encode(digest))))?;
            if let Some(plan) = crate::plans::addressed(name) {
                let slot = self.plans.get_mut(plan).ok_or_else(|| {
                    KernelError::Snapshot(format!("it names plan `{plan}`, which the world does not have"))
                })?;
                slot.restore(&state).map_err(|e| KernelError::Snapshot(e.to_string()))?;
                continue;
            }
            let slot = self.agents.get_mut(name).ok_or_else(|| {
                KernelError::Snapshot(format!("it names agent `{name}`, which the world does not have"))
            })?;
            slot.state_digest = sha256(&state);
            *slot.home() = AgentStore { instance: None, state };
        }
        let bytes = journal
            .blob(&snapshot.kernel)?
            .ok_or_else(|| missing("the stepper state".into()))?;
        let state: KernelState = postcard::from_bytes(&bytes)
            .map_err(|e| KernelError::Snapshot(format!("the stepper state does not decode: {e}")))?;
        self.last_at_ms = state.last_at_ms;
        self.last_step = state.last_step;
        *self.live.timers.lock().expect("timer lock") = state.timers;
        *self.live.budgets.lock().expect("budget lock") = state.budgets;
        Ok(state.pending)
    }

    /// The world's pending timers (what grant decisions on timers count).
    pub fn timers(&self) -> Arc<std::sync::Mutex<crate::effects::timer::TimerTable>> {
        self.live.timers.clone()
    }

    /// When the next pending timer (an agent's, or a plan's reply deadline) is due (logical
    /// ms), if any.
    pub fn next_timer_due_ms(&self) -> Option<u64> {
        self.live.timers.lock().expect("timer lock").next_due_ms()
    }

    /// When the next plan schedule fires (world time), if any plan has one.
    pub fn next_schedule_due_ms(&self) -> Option<u64> {
        self.plans.values().filter_map(PlanSlot::next_due_ms).min()
    }

    /// Recovery: a journaled timer entry or a timer's firing.
    pub fn restore_timer(&self, entry: &EntryBody) {
        self.live.timers.lock().expect("timer lock").observe(entry);
    }

    /// Journal a live step's outputs, emitted events (if it committed) and outcome; returns the
    /// outcome's entry number and the emitted events as new inbox entries.
    fn journal_record(&self, record: &StepRecord, at_ms: u64) -> (u64, Vec<(u64, Ingress)>) {
        let mut journal = self.journal();
        let mut deliveries = Vec::new();
        for blob in &record.blobs {
            journal.put_blob(blob);
        }
        for (run, event) in &record.plan_events {
            journal.append(EntryBody::Plan(PlanEntry {
                ingress: record.ingress,
                plan: crate::plans::addressed(&record.agent).unwrap_or_default().to_string(),
                run: *run,
                event: event.clone(),
            }));
        }
        if matches!(record.outcome, StepOutcome::Committed { .. }) {
            let mut timers = self.live.timers.lock().expect("timer lock");
            for deferred in &record.deferred {
                match deferred {
                    Deferred::Emit { target, event } => {
                        let ingress = Ingress {
                            agent: target.clone(),
                            event: event.clone(),
                            at_ms,
                            source: format!("emit:{}", record.agent),
                        };
                        deliveries.push((journal.append(EntryBody::Ingress(ingress.clone())), ingress));
                    }
                    Deferred::TimerScheduled { .. } | Deferred::TimerCancelled { .. } => {
                        if let Some(entry) = timer_entry(record, deferred) {
                            timers.observe(&entry);
                            journal.append(entry);
                        }
                    }
                    Deferred::Continue { run } => {
                        let ingress = Ingress {
                            agent: record.agent.clone(),
                            event: run.to_string(),
                            at_ms,
                            source: crate::plans::CONTINUE_SOURCE.into(),
                        };
                        deliveries.push((journal.append(EntryBody::Ingress(ingress.clone())), ingress));
                    }
                }
            }
        }
        for (stream, text) in &record.outputs {
            journal.append(EntryBody::Output(Output {
                ingress: record.ingress,
                agent: record.agent.clone(),
                stream: *stream,
                text: text.clone(),
            }));
        }
        let outcome = journal.append(match &record.outcome {
            StepOutcome::Committed { state_digest } => EntryBody::StepCommitted(StepCommitted {
                ingress: record.ingress,
                agent: record.agent.clone(),
                state_digest: *state_digest,
                fuel_used: record.fuel_used,
                effects: record.effects,
            }),
            StepOutcome::Failed { kind, reason } => EntryBody::StepFailed(StepFailed {
                ingress: record.ingress,
                agent: record.agent.clone(),
                kind: *kind,
                reason: reason.clone(),
                fuel_used: record.fuel_used,
                effects: record.effects,
            }),
        });
        (outcome, deliveries)
    }

    /// Re-execute a committed step with effects served from `recorded_calls`, and compare it
    /// with what the journal recorded. Returns the record and the first difference, if any.
    pub fn replay_step(
        &mut self,
        seq: u64,
        ingress: &Ingress,
        recorded: &Recorded,
        recorded_calls: &Arc<RecordedCalls>,
    ) -> (StepRecord, Option<ReplayDivergence>) {
        if let Some(record) = self.recorded_without_running(seq, ingress, recorded) {
            return (record, None);
        }
        let backend = Box::new(ReplayEffects::new(self.journal.clone(), recorded_calls.clone()));
        let record = self.step(seq, ingress, Some(backend), Timing::Replay);
        let diverged = |detail: String| {
            Some(ReplayDivergence {
                ingress: seq,
                agent: ingress.agent.clone(),
                detail,
            })
        };
        let divergence = match (&record.outcome, &recorded.outcome) {
            _ if record.divergence.is_some() => diverged(record.divergence.clone().unwrap_or_default()),
            (actual, Some(expected)) if actual != expected => diverged(format!(
                "journal records {}, re-execution gave {}",
                describe_outcome(expected),
                describe_outcome(actual)
            )),
            _ if record.effects != recorded.effects => diverged(format!(
                "journal records {} effect calls, re-execution made {}",
                recorded.effects, record.effects
            )),
            _ if record.plan_events != recorded.plan_events => {
                let first = first_difference(&record.plan_events, &recorded.plan_events);
                let describe = |events: &[(u64, PlanEvent)]| {
                    events
                        .get(first)
                        .map_or("nothing".to_string(), |(run, e)| e.of_run(*run))
                };
                diverged(format!(
                    "plan event {} differs: journal {}, re-execution {}",
                    first + 1,
                    describe(&recorded.plan_events),
                    describe(&record.plan_events)
                ))
            }
            _ if record.outputs != recorded.outputs => {
                let first = first_difference(&record.outputs, &recorded.outputs);
                diverged(format!(
                    "output line {} differs: journal {:?}, re-execution {:?}",
                    first + 1,
                    recorded.outputs.get(first).map(|(_, t)| t),
                    record.outputs.get(first).map(|(_, t)| t)
                ))
            }
            _ => None,
        };
        self.last_at_ms = self.last_at_ms.max(ingress.at_ms);
        (record, divergence)
    }

    /// Steps whose outcome came from outside the guest are not re-executed: one that ran out of
    /// time (how long guest code takes is not part of what replay reproduces), one set aside
    /// after stopping the host. The recorded failure stands (state rolled back, instance
    /// discarded, as it was live); effects it made keep their receipts.
    fn recorded_without_running(&mut self, seq: u64, ingress: &Ingress, recorded: &Recorded) -> Option<StepRecord> {
        let outcome @ StepOutcome::Failed {
            kind: FailureKind::DeadlineExceeded | FailureKind::Abandoned,
            ..
        } = recorded.outcome.clone()?
        else {
            return None;
        };
        if let Some(slot) = self.agents.get_mut(&ingress.agent) {
            slot.home().instance = None;
        }
        self.last_step = seq;
        self.last_at_ms = self.last_at_ms.max(ingress.at_ms);
        Some(StepRecord {
            ingress: seq,
            agent: ingress.agent.clone(),
            outcome,
            outputs: recorded.outputs.clone(),
            fuel_used: 0,
            effects: recorded.effects,
            deferred: Vec::new(),
            divergence: None,
            plan_events: Vec::new(),
            blobs: Vec::new(),
        })
    }

    /// A step served by `backend` and journaled nowhere (shadow runs): the agent's state moves
    /// on in memory only, and so does the timer table — a timer that fires leaves it, the
    /// timers a committed step sets or cancels join or leave it — folded from the entries a
    /// live commit would journal, so the steps after are decided on the same pending timers.
    pub fn unjournaled_step(
        &mut self,
        seq: u64,
        ingress: &Ingress,
        backend: Box<dyn crate::effects::EffectBackend>,
    ) -> StepRecord {
        self.live
            .timers
            .lock()
            .expect("timer lock")
            .observe(&EntryBody::Ingress(ingress.clone()));
        let record = self.step(seq, ingress, Some(backend), Timing::Live);
        self.last_at_ms = self.last_at_ms.max(ingress.at_ms);
        if matches!(record.outcome, StepOutcome::Committed { .. }) {
            let mut timers = self.live.timers.lock().expect("timer lock");
            for entry in record
                .deferred
                .iter()
                .filter_map(|deferred| timer_entry(&record, deferred))
            {
                timers.observe(&entry);
            }
        }
        record
    }

    /// The state digest of an agent (or a plan, by its `plan:<name>` address), if the world has
    /// it.
    pub fn state_digest_of(&self, holder: &str) -> Option<Digest> {
        match crate::plans::addressed(holder) {
            Some(plan) => self.plans.get(plan).map(|slot| slot.state_digest),
            None => self.agents.get(holder).map(|slot| slot.state_digest),
        }
    }

    /// The grants an agent (or a plan, by its `plan:<name>` address) holds, if the world has it.
    pub fn grants_of(&self, holder: &str) -> Option<Arc<AgentGrants>> {
        match crate::plans::addressed(holder) {
            Some(plan) => self.plans.get(plan).map(|slot| slot.grants.clone()),
            None => self.agents.get(holder).map(|slot| slot.grants.clone()),
        }
    }

    /// One step, in whichever mode `backend` implies.
    fn step(
        &mut self,
        seq: u64,
        ingress: &Ingress,
        backend: Option<Box<dyn crate::effects::EffectBackend>>,
        timing: Timing,
    ) -> StepRecord {
        let mut record = StepRecord::failed(seq, &ingress.agent, FailureKind::Undeliverable, String::new());
        let world_id = self.world_id;
        self.last_step = seq;
        if let Some(plan) = crate::plans::addressed(&ingress.agent) {
            self.plan_turn(plan, seq, ingress, backend, &mut record);
            return record;
        }
        let Some(slot) = self.agents.get_mut(&ingress.agent) else {
            record.outcome = StepOutcome::Failed {
                kind: FailureKind::Undeliverable,
                reason: format!("no agent `{}` in the world", ingress.agent),
            };
            return record;
        };
        let mut store = slot.send_away();
        let record = agent_step(
            &self.runtime,
            world_id,
            (&slot.def, &slot.component, &mut store),
            (seq, ingress),
            backend,
            timing,
        );
        slot.bring_home(store, &record);
        record
    }
}

/// One step of an agent: its event handled in its store, its effects through `backend`, then
/// its new state, or a rollback to its last one.
fn agent_step(
    runtime: &Runtime,
    world_id: [u8; 16],
    (def, component, slot): (&AgentDef, &AgentComponent, &mut AgentStore),
    (seq, ingress): (u64, &Ingress),
    backend: Option<Box<dyn crate::effects::EffectBackend>>,
    timing: Timing,
) -> StepRecord {
    let mut record = StepRecord::failed(seq, &ingress.agent, FailureKind::Undeliverable, String::new());
    let undeliverable = |reason: String| StepOutcome::Failed {
        kind: FailureKind::Undeliverable,
        reason,
    };
    let event = match crate::values::parse_wave(&component.event_type, &ingress.event) {
        Ok(event) => event,
        Err(e) => {
            record.outcome = undeliverable(format!(
                "event `{}` no longer matches the agent's event type: {e}",
                ingress.event
            ));
            return record;
        }
    };
    let mut limits = StepLimits::of(def);
    if timing == Timing::Replay {
        limits.deadline_ms = limits.deadline_ms.saturating_mul(REPLAY_DEADLINE_SLACK);
    }
    let fresh = slot.instance.is_none();
    if fresh {
        match runtime.instantiate(component, &world_id, def.memory_max_bytes, limits) {
            Ok(instance) => slot.instance = Some(instance),
            Err(e) => {
                record.outcome = undeliverable(e.to_string());
                return record;
            }
        }
    }
    let instance = slot.instance.as_mut().expect("instantiated above");
    // Restoring a fresh instance has fuel and a deadline of its own: whether a step finds
    // its instance live (and restores nothing) is not journaled, so what restoring spends
    // cannot count towards the step's limits, which replay must meet exactly as live did.
    if fresh {
        instance.begin_step(&world_id, seq, ingress.at_ms, limits);
        if let Err(error) = instance.restore(&slot.state) {
            let (kind, reason) = call_error(error);
            record.outcome = StepOutcome::Failed {
                kind,
                reason: format!("restoring the last snapshot failed: {reason}"),
            };
            slot.instance = None;
            return record;
        }
    }
    // The step's fuel and deadline cover `handle` and the snapshot after it.
    instance.begin_step(&world_id, seq, ingress.at_ms, limits);
    if let Some(backend) = backend {
        instance.gate().set_backend(backend);
    }
    instance.gate().begin_step(seq, ingress.at_ms, GateLimits::of(def));
    let result = instance.handle(event);
    (record.effects, record.deferred) = instance.gate().end_step();
    let (stdout, stderr) = instance.take_output();
    lines(stdout, Stream::Stdout, &mut record.outputs);
    lines(stderr, Stream::Stderr, &mut record.outputs);
    let server_lines = instance.gate().take_server_lines();
    record
        .outputs
        .extend(server_lines.into_iter().map(|line| (Stream::ServerStderr, line)));
    let result = result.and_then(|()| instance.snapshot());
    record.fuel_used = instance.fuel_used();
    record.outcome = match result {
        Ok(state) => {
            let state_digest = sha256(&state);
            slot.state = state;
            StepOutcome::Committed { state_digest }
        }
        Err(error) => {
            record.divergence = match &error {
                CallError::Trap(e) => e.downcast_ref::<Divergence>().map(|d| d.detail.clone()),
                _ => None,
            };
            let keep_instance = matches!(error, CallError::Guest(_));
            let (kind, reason) = call_error(error);
            if keep_instance {
                if instance.restore(&slot.state).is_err() {
                    slot.instance = None;
                }
            } else {
                slot.instance = None;
            }
            StepOutcome::Failed { kind, reason }
        }
    };
    record
}

impl Kernel {
    /// A plan's turn, recorded as a step of `plan:<name>`.
    fn plan_turn(
        &mut self,
        plan: &str,
        seq: u64,
        ingress: &Ingress,
        backend: Option<Box<dyn crate::effects::EffectBackend>>,
        record: &mut StepRecord,
    ) {
        let (Some(slot), Some(backend)) = (self.plans.get_mut(plan), backend) else {
            record.outcome = StepOutcome::Failed {
                kind: FailureKind::Undeliverable,
                reason: format!("no plan `{plan}` in the world"),
            };
            return;
        };
        let turn = slot.turn(seq, ingress, backend, &self.live.event_types.agents);
        record.effects = turn.effects;
        record.divergence = turn.divergence;
        record.outcome = match turn.refused {
            Some(reason) => StepOutcome::Failed {
                kind: FailureKind::Undeliverable,
                reason,
            },
            None => StepOutcome::Committed {
                state_digest: slot.state_digest,
            },
        };
        record.plan_events = turn.events;
        record.blobs = turn.blobs;
        record.deferred = turn.deferred;
    }
}

/// A configuration ready for the stepper: its agents (definition, checked component, grants)
/// and its plans.
pub struct Loaded {
    pub agents: Vec<(String, AgentDef, AgentComponent, AgentGrants)>,
    pub plans: LoadedPlans,
}

/// The MCP clients of `manifest`'s servers; no command or secret file is taken from the
/// world's private directory or from a directory an `fs` grant covers.
fn mcp_clients(root: &std::path::Path, manifest: &Manifest) -> crate::effects::mcp::McpClients {
    let mut guarded = vec![root.join(crate::world::STATE_DIR)];
    guarded.extend(manifest.caps.values().filter_map(|cap| match cap {
        agentos_air::Cap::Fs(fs) => Some(root.join(&fs.dir)),
        _ => None,
    }));
    crate::effects::mcp::McpClients::new(root, &manifest.mcp, guarded)
}

/// Plans ready for the stepper: the manifest in force and each plan's name and grants.
pub type LoadedPlans = (Arc<Manifest>, Vec<(String, AgentGrants)>);

/// The plan slots of a configuration; a plan the world had keeps its state (its runs go on),
/// unless its definition changed while runs are in progress, which refuses the change.
fn plan_slots(
    (manifest, plans): LoadedPlans,
    previous: &BTreeMap<String, PlanSlot>,
    since_ms: u64,
) -> Result<BTreeMap<String, PlanSlot>, KernelError> {
    for (name, old) in previous {
        if !old.state.runs.is_empty() && manifest.plans.get(name) != Some(&old.def) {
            return Err(KernelError::Agent {
                agent: crate::plans::address(name),
                reason: format!(
                    "{} run(s) in progress ({}); the plan can change once they end",
                    old.state.runs.len(),
                    old.state
                        .runs
                        .keys()
                        .map(|r| format!("#{r}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(plans
        .into_iter()
        .map(|(name, grants)| {
            let state = previous.get(&name).map(|old| old.state.clone());
            let slot = PlanSlot::new(&name, manifest.clone(), grants, since_ms, state);
            (name, slot)
        })
        .collect())
}

/// Instantiate an agent and give it its starting state: `previous` through `lifecycle.restore`,
/// else `lifecycle.init` with its config. `clock` is the (entry, logical ms) it sees.
#[allow(clippy::too_many_arguments)]
fn start_slot(
    runtime: &Runtime,
    world_id: &[u8; 16],
    clock: (u64, u64),
    name: String,
    def: AgentDef,
    component: AgentComponent,
    grants: AgentGrants,
    previous: Option<&[u8]>,
) -> Result<AgentSlot, KernelError> {
    let agent_error = |reason: String| KernelError::Agent {
        agent: name.clone(),
        reason,
    };
    let limits = StepLimits::of(&def);
    let mut instance = runtime
        .instantiate(&component, world_id, def.memory_max_bytes, limits)
        .map_err(|e| agent_error(e.to_string()))?;
    instance.begin_step(world_id, clock.0, clock.1, limits);
    match previous {
        Some(state) => instance.restore(state).map_err(|e| {
            agent_error(format!(
                "restore rejected the state it had before the change: {}",
                call_error(e).1
            ))
        })?,
        None => instance
            .init(&def.config)
            .map_err(|e| agent_error(format!("init failed: {}", call_error(e).1)))?,
    }
    let state = instance
        .snapshot()
        .map_err(|e| agent_error(format!("snapshot failed: {}", call_error(e).1)))?;
    Ok(AgentSlot {
        def: Arc::new(def),
        component: Arc::new(component),
        grants: Arc::new(grants),
        state_digest: sha256(&state),
        store: Some(AgentStore {
            instance: Some(instance),
            state,
        }),
        steps_since_snapshot: 0,
    })
}

fn event_types(
    slots: &BTreeMap<String, AgentSlot>,
    plans: &BTreeMap<String, PlanSlot>,
) -> crate::effects::emit::EventTypes {
    crate::effects::emit::EventTypes {
        agents: slots
            .iter()
            .map(|(name, slot)| (name.clone(), slot.component.event_type.clone()))
            .collect(),
        plans: plans
            .iter()
            .map(|(name, plan)| (name.clone(), plan.accepts.clone()))
            .collect(),
    }
}

/// Where two sequences first differ (the shorter one's length when one is a prefix of the other).
pub fn first_difference<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter()
        .zip(b)
        .position(|(a, b)| a != b)
        .unwrap_or(a.len().min(b.len()))
}

/// One phrase for an outcome, for divergence reports.
pub fn describe_outcome(outcome: &StepOutcome) -> String {
    match outcome {
        StepOutcome::Committed { state_digest } => format!("committed with state sha256:{}", hex::encode(state_digest)),
        StepOutcome::Failed { kind, reason } => format!("failed ({}: {reason})", kind.label()),
    }
}

/// Outcome of a recorded effect, decoded (for `log`).
pub fn decode_outcome(bytes: &[u8]) -> Option<EffectOutcome> {
    postcard::from_bytes(bytes).ok()
}
