//! The stepper's loop: agents as actors. Each agent's steps run one at a time in its input
//! order; steps of different agents run side by side on the workers, and their records are
//! journaled in the order the steps finish — the order replay re-executes them in. Between
//! steps the stepper takes input from whoever drives it ([`Driver`]), fires due timers and
//! plan schedules (a holder's once it has nothing queued and no step in flight), and commits:
//! every [`STEPS_PER_COMMIT`] steps, when the blobs held pass [`BATCH_BLOB_BYTES_MAX`], after a
//! plan turn that called an effect or a step recovery runs on its own, when the driver has
//! someone waiting for durability, and whenever the world falls idle. Concurrent steps share
//! those commits (group commit).
//!
//! Some steps run alone, with nothing beside them and nothing after them started before they
//! end: plans' turns (they read every agent's event types and start runs across agents),
//! agents whose effects work on what the world shares (`AgentGrants::shares_world_state`:
//! `governance`, `compile`), and steps recovery commits one at a time.

use super::workers::{Finished, Job, Wakeup};
use super::{AgentSlot, Kernel, KernelError, StepRecord, Timing};
use crate::journal::entry::Ingress;
use std::time::{Duration, Instant};

/// Steps per journal commit while steps keep coming.
pub const STEPS_PER_COMMIT: usize = 256;
/// Steps in flight at most unless the host says otherwise ([`Kernel::set_steps_in_flight`]).
pub const STEPS_IN_FLIGHT_DEFAULT: usize = 16;
/// With steps in flight and someone waiting for durability, how long the stepper waits for
/// another step to finish (and share the commit) before it commits...
const COMMIT_WAIT: Duration = Duration::from_millis(1);
/// ...and how long the first one waiting has waited at most before it does, however many
/// steps keep finishing.
const COMMIT_DELAY_MAX: Duration = Duration::from_millis(5);

/// A batch of steps is committed early once the blobs it holds for the journal pass this size,
/// so host memory stays bounded whatever the steps put.
pub const BATCH_BLOB_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Whoever runs the stepper's loop, and what it wants around it.
pub trait Driver {
    type Error: From<KernelError>;

    /// Journal new input from outside into the kernel (called whenever the stepper wakes).
    fn intake(&mut self, _kernel: &mut Kernel) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Whether input may arrive from outside while steps run. Then every agent's step runs on
    /// a worker, so the stepper stays free to take it; otherwise a step with no other agent's
    /// input queued beside it runs on the stepper's own thread, saving two thread handoffs.
    fn takes_input_while_stepping(&self) -> bool {
        false
    }

    /// Each step's record as it is journaled (not yet committed), with the entry number of its
    /// outcome (`step-committed` or `step-failed`).
    fn on_step(&mut self, _record: &StepRecord, _outcome: u64) {}

    /// Whether someone waits for what is journaled to become durable: the stepper commits
    /// before it waits for anything else.
    fn wants_commit(&self) -> bool {
        false
    }

    /// Everything journaled so far is durable.
    fn committed(&mut self, _kernel: &Kernel) {}

    /// Whether queued input may start; a driver that is stopping lets the steps in flight
    /// finish and nothing new begin.
    fn dispatching(&self) -> bool {
        true
    }

    /// With nothing in flight and nothing that may start: how long to wait for input from
    /// outside before looking again (a due timer wakes the stepper earlier); `None` ends the
    /// loop.
    fn idle(&mut self, _kernel: &Kernel) -> Option<Duration> {
        None
    }
}

/// The driver of [`Kernel::run_until_idle`]: nothing from outside, `on_step` for each record.
struct UntilIdle<F>(F);

impl<F: FnMut(&StepRecord)> Driver for UntilIdle<F> {
    type Error = KernelError;

    fn on_step(&mut self, record: &StepRecord, _outcome: u64) {
        (self.0)(record)
    }
}

/// What the loop has done.
#[derive(Default)]
struct Progress {
    steps: usize,
    /// Something changed on this look around that may let more start.
    moved: bool,
}

impl Kernel {
    /// Process the inbox live until it is empty and no step is in flight. `on_step` sees each
    /// record as it is journaled.
    pub fn run_until_idle(&mut self, on_step: impl FnMut(&StepRecord)) -> Result<usize, KernelError> {
        self.drive(&mut UntilIdle(on_step))
    }

    /// Run the stepper's loop for `driver` until it is idle and the driver lets it end.
    /// Returns the number of steps processed.
    pub fn drive<D: Driver>(&mut self, driver: &mut D) -> Result<usize, D::Error> {
        let mut progress = Progress::default();
        // Since when someone has waited for a commit.
        let mut waited_since: Option<Instant> = None;
        loop {
            progress.moved = false;
            driver.intake(self)?;
            while let Some(wakeup) = self.workers.ready() {
                self.take(wakeup, driver, &mut progress)?;
            }
            if driver.dispatching() {
                self.dispatch(driver, &mut progress)?;
                if self.fire_due()? {
                    // The firing's commit made everything before it durable too.
                    driver.committed(self);
                    progress.moved = true;
                }
            }
            if progress.moved {
                continue;
            }
            // Nothing to do this instant.
            let quiet = self.in_flight.is_empty();
            if !driver.wants_commit() {
                waited_since = None;
            } else if !quiet {
                // Group commit: a step about to finish shares the commit.
                let waited = waited_since.get_or_insert_with(Instant::now).elapsed();
                if let Some(wait) = COMMIT_DELAY_MAX.checked_sub(waited).filter(|left| !left.is_zero())
                    && let Some(wakeup) = self.workers.wait(Some(wait.min(COMMIT_WAIT)))
                {
                    self.take(wakeup, driver, &mut progress)?;
                    continue;
                }
            }
            if quiet || driver.wants_commit() {
                self.commit_with_snapshot()?;
                driver.committed(self);
                waited_since = None;
            }
            // Nothing new starts while the driver is stopping: then no timer is worth waking for.
            let next_due = driver.dispatching().then(|| self.until_next_due()).flatten();
            let wait = if quiet {
                match driver.idle(self) {
                    None => return Ok(progress.steps),
                    Some(wait) => Some(next_due.map_or(wait, |due| due.min(wait))),
                }
            } else {
                next_due
            };
            if let Some(wakeup) = self.workers.wait(wait) {
                self.take(wakeup, driver, &mut progress)?;
            }
        }
    }

    /// How long until the next timer or plan schedule of an idle holder is due, if any.
    fn until_next_due(&self) -> Option<Duration> {
        let timers = self
            .live
            .timers
            .lock()
            .expect("timer lock")
            .next_due_ms_of(|holder| self.idle(holder));
        let schedules = self
            .plans
            .iter()
            .filter(|(name, _)| self.idle(&crate::plans::address(name)))
            .filter_map(|(_, plan)| plan.next_due_ms());
        let due = timers.into_iter().chain(schedules).min()?;
        Some(Duration::from_millis(due.saturating_sub(self.now_ms())))
    }

    /// Whether `holder` (an agent, or a plan as `plan:<name>`) has nothing queued and no step
    /// in flight: only then do its timers and schedules fire, after the input before them.
    fn idle(&self, holder: &str) -> bool {
        !self.queue.holds_for(holder) && !self.busy(holder)
    }

    /// A step back from its worker: its agent's store goes home, its record is journaled.
    fn take<D: Driver>(&mut self, wakeup: Wakeup, driver: &mut D, progress: &mut Progress) -> Result<(), D::Error> {
        let finished = match wakeup {
            Wakeup::Finished(finished) => finished,
            Wakeup::Panicked(panic) => std::panic::resume_unwind(panic),
            Wakeup::Nudge => {
                // New input may be waiting for the next look around.
                progress.moved = true;
                return Ok(());
            }
        };
        let Finished {
            seq,
            at_ms,
            record,
            store,
        } = *finished;
        let agent = self.in_flight.remove(&seq).expect("a finished step was in flight");
        if self.exclusive == Some(seq) {
            self.exclusive = None;
        }
        let slot = self
            .agents
            .get_mut(&agent)
            .expect("no agent leaves the world while its step runs");
        slot.bring_home(store, &record);
        self.journal_finished(&record, at_ms, driver, progress)
    }

    /// Journal a finished step's record and queue what it delivered; commit if this step asks
    /// for it (see the module's doc).
    fn journal_finished<D: Driver>(
        &mut self,
        record: &StepRecord,
        at_ms: u64,
        driver: &mut D,
        progress: &mut Progress,
    ) -> Result<(), D::Error> {
        self.last_step = record.ingress;
        let (outcome, deliveries) = self.journal_record(record, at_ms);
        for (seq, delivery) in deliveries {
            self.queue.push(seq, delivery);
        }
        driver.on_step(record, outcome);
        progress.steps += 1;
        progress.moved = true;
        self.uncommitted_steps += 1;
        let plan_effects = record.effects > 0 && crate::plans::addressed(&record.agent).is_some();
        let heavy = self.journal().pending_blob_bytes() > BATCH_BLOB_BYTES_MAX;
        if plan_effects || self.careful(record.ingress) || heavy || self.uncommitted_steps >= STEPS_PER_COMMIT {
            self.commit_with_snapshot()?;
            driver.committed(self);
        }
        Ok(())
    }

    /// Start every queued input that may start now, in journal order: each holder's next
    /// input once its previous step is back, at most the steps in flight the host allows,
    /// nothing journaled after an input that must run alone.
    fn dispatch<D: Driver>(&mut self, driver: &mut D, progress: &mut Progress) -> Result<(), D::Error> {
        if self.exclusive.is_some() {
            return Ok(());
        }
        if self.snapshot_overdue() {
            if !self.in_flight.is_empty() {
                return Ok(());
            }
            self.commit_with_snapshot()?;
            driver.committed(self);
        }
        // A holder's inputs all run alone or none does (the only exception, recovery's, runs
        // its earliest inputs alone), so an input that must is found among the heads.
        for seq in self.queue.heads() {
            if self.in_flight.len() >= self.steps_in_flight_max {
                break;
            }
            let ingress = self.queue.get(seq);
            if self.busy(&ingress.agent) {
                continue;
            }
            if !self.may_run_beside_others(seq, ingress) {
                if self.queue.first() == Some(seq) && self.in_flight.is_empty() {
                    let (seq, ingress) = self.queue.take(seq);
                    self.start_alone(seq, ingress, driver, progress)?;
                }
                break;
            }
            let (seq, ingress) = self.queue.take(seq);
            let alone_anyway = self.in_flight.is_empty()
                && !driver.takes_input_while_stepping()
                && !self.queue.holds_for_others_than(&ingress.agent);
            if alone_anyway {
                self.step_here(seq, ingress, driver, progress)?;
                // Its record may have queued input for others; the next look around sees it.
                return Ok(());
            }
            self.start_on_worker(seq, ingress);
            progress.moved = true;
        }
        Ok(())
    }

    /// Whether the step of `ingress` depends on nothing another agent's step may change.
    fn may_run_beside_others(&self, seq: u64, ingress: &Ingress) -> bool {
        let agent = self.agents.get(&ingress.agent);
        !self.careful(seq)
            && crate::plans::addressed(&ingress.agent).is_none()
            && agent.is_some_and(|slot| !slot.grants.shares_world_state())
    }

    /// A step that runs alone: a plan's turn, a step recovery commits on its own and one for
    /// a holder the world does not have run here; an agent's runs on a worker with nothing
    /// started beside it until it is back.
    fn start_alone<D: Driver>(
        &mut self,
        seq: u64,
        ingress: Ingress,
        driver: &mut D,
        progress: &mut Progress,
    ) -> Result<(), D::Error> {
        let on_worker = self.agents.contains_key(&ingress.agent) && !self.careful(seq);
        if on_worker {
            self.exclusive = Some(seq);
            self.start_on_worker(seq, ingress);
            progress.moved = true;
            return Ok(());
        }
        self.step_here(seq, ingress, driver, progress)
    }

    /// Run the step of input `seq` on the stepper's thread and journal it.
    fn step_here<D: Driver>(
        &mut self,
        seq: u64,
        ingress: Ingress,
        driver: &mut D,
        progress: &mut Progress,
    ) -> Result<(), D::Error> {
        let backend = self.live_step_backend(seq, &ingress.agent);
        let cores = self.live.cores.clone();
        let record = cores.holding(|| self.step(seq, &ingress, backend, Timing::Live));
        self.journal_finished(&record, ingress.at_ms, driver, progress)
    }

    /// Hand the step of input `seq` to a worker, its agent's store with it.
    fn start_on_worker(&mut self, seq: u64, ingress: Ingress) {
        let backend = self.live_step_backend(seq, &ingress.agent);
        let slot: &mut AgentSlot = self
            .agents
            .get_mut(&ingress.agent)
            .expect("only agents' steps go to workers");
        let store = slot.send_away();
        let job = Job {
            seq,
            def: slot.def.clone(),
            component: slot.component.clone(),
            store,
            backend,
            ingress: ingress.clone(),
        };
        self.in_flight.insert(seq, ingress.agent);
        self.workers.start(job, self.in_flight.len() - 1);
    }

    /// Journal the firing of the first due timer, else of the first due plan schedule, make
    /// it durable and queue it. A firing is durable before its step runs: were that step to
    /// stop the host, the reopened world finds it unfinished and counts the attempt, where it
    /// would otherwise fire anew each time.
    fn fire_due(&mut self) -> Result<bool, KernelError> {
        let Some(ingress) = self.due_timer().or_else(|| self.due_schedule()) else {
            return Ok(false);
        };
        let mut journal = self.journal();
        let seq = journal.append(crate::journal::entry::EntryBody::Ingress(ingress.clone()));
        journal.commit()?;
        drop(journal);
        self.queue.push(seq, ingress);
        Ok(true)
    }

    /// The firing of the first due timer of an idle holder (as its ingress, at its due time).
    fn due_timer(&self) -> Option<Ingress> {
        let now = self.now_ms();
        let (id, timer) = self
            .live
            .timers
            .lock()
            .expect("timer lock")
            .take_due(now, |holder| self.idle(holder))?;
        Some(Ingress {
            agent: timer.agent,
            event: timer.event,
            at_ms: timer.due_ms,
            source: format!("timer:{id}"),
        })
    }

    /// The firing of the first due schedule of an idle plan, as the plan's ingress at the
    /// latest due time not after now (runs missed while the world was closed are not made up).
    fn due_schedule(&self) -> Option<Ingress> {
        let now = self.now_ms();
        let (name, plan) = self
            .plans
            .iter()
            .filter(|(name, _)| self.idle(&crate::plans::address(name)))
            .filter_map(|(name, plan)| Some((name, plan, plan.next_due_ms()?)))
            .filter(|(_, _, due)| *due <= now)
            .min_by_key(|(_, _, due)| *due)
            .map(|(name, plan, _)| (name, plan))?;
        let due = plan.def.trigger.latest_due_ms(plan.state.last_scheduled_ms, now)?;
        Some(Ingress {
            agent: crate::plans::address(name),
            event: "null".into(),
            at_ms: due.max(self.last_at_ms),
            source: crate::plans::SCHEDULE_SOURCE.into(),
        })
    }

    /// Whether an agent is twice past its snapshot interval: then nothing new starts until the
    /// steps in flight are back and the snapshot is taken (a snapshot describes every agent
    /// between two steps).
    fn snapshot_overdue(&self) -> bool {
        self.recovered.is_empty() && self.snapshot_due(2)
    }

    /// Whether an agent has made `intervals` times its snapshot interval of steps since the
    /// last snapshot.
    fn snapshot_due(&self, intervals: u64) -> bool {
        self.agents.values().any(|slot| {
            slot.def.snapshot_every > 0
                && slot.steps_since_snapshot >= slot.def.snapshot_every.saturating_mul(intervals)
        })
    }

    /// Commit, first journaling a snapshot if an agent has reached its snapshot interval and
    /// no step is in flight.
    pub(super) fn commit_with_snapshot(&mut self) -> Result<(), KernelError> {
        // Right after a crash, queued steps still hold journaled intents and receipts to reuse.
        if self.snapshot_due(1) && self.in_flight.is_empty() && self.recovered.is_empty() {
            self.snapshot();
        }
        self.journal().commit()?;
        self.uncommitted_steps = 0;
        Ok(())
    }
}
