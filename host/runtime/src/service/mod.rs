//! A world held open on a thread of its own, taking events from any number of senders at once
//! (what `serve` and `bench` build on). The thread runs the stepper's loop ([`Kernel::drive`]):
//! between steps it journals what senders handed in, and it answers a sender once the sender's
//! event is durable — or, when the sender asked, once the step that processed it is. Senders
//! that arrive together share one commit: their events, and the steps that process them, are
//! made durable by the same fsync (group commit). A sender is answered only after that fsync,
//! so an event whose sender was answered survives a crash; one whose sender was not may be lost,
//! and the sender retries.
//!
//! A sender may give an idempotency key (`idempotency`): a retry under the same key is answered
//! with the first event's entry, journaling nothing. Reads of the world's live state run on the
//! world's thread between steps ([`Sender::query`]); what needs the whole world (governance,
//! plans run by hand) runs there once the steps in flight are back, nothing new starting
//! meanwhile ([`Sender::with_world`]). Every commit is announced ([`WorldService::committed`]).
//!
//! [`WorldService::stop`] finishes the steps in flight, commits (events still queued stay
//! journaled and are processed when the world next runs) and hands the world back.

pub mod idempotency;
pub mod views;

use crate::error::WorldError;
use crate::ingest::{EventInput, check, journal_ingress};
use crate::journal::SharedJournal;
use crate::kernel::{Driver, Kernel, StepRecord, Waker};
use crate::world::World;
use idempotency::{IdempotencyKeys, KeyError};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// An event as a sender hands it in.
#[derive(Debug, Clone)]
pub enum Event {
    Wave(String),
    Json(serde_json::Value),
}

/// What a sender hands in.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// An agent's name, or a plan's as `plan:<name>`.
    pub agent: String,
    pub event: Event,
    /// Where it comes from, as the ingress records it.
    pub source: String,
    /// A retry under the same key journals nothing and is answered with the first event.
    pub idempotency_key: Option<String>,
    /// Answer once the step that processed it is committed, not only the event.
    pub wait_for_step: bool,
}

/// A sender's event, journaled and durable.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its ingress entry.
    pub seq: u64,
    /// An earlier event sent under the same idempotency key: nothing new was journaled.
    pub duplicate: bool,
    /// When the sender asked to wait: whether the step that processed it is journaled and
    /// committed (`false` when the world stopped before running it: it runs when the world next
    /// does).
    pub stepped: bool,
    /// That step's record and the entry number of its outcome, when this service ran it.
    pub step: Option<(StepRecord, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    World(Box<WorldError>),
    #[error("the world is stopping and takes no more events")]
    Stopping,
    #[error("the world's stepper stopped (see the host's log)")]
    Gone,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("idempotency key `{key}` was first used for entry #{seq}, another event; a key is used for one event only")]
    KeyReused { key: String, seq: u64 },
}

impl From<WorldError> for ServiceError {
    fn from(error: WorldError) -> ServiceError {
        ServiceError::World(Box::new(error))
    }
}

type Query = Box<dyn FnOnce(&Kernel) + Send>;
type Job = Box<dyn FnOnce(&mut World) + Send>;

enum Command {
    Send {
        outgoing: Outgoing,
        reply: mpsc::Sender<Result<Accepted, ServiceError>>,
    },
    Query(Query),
    Job(Job),
    Stop,
}

/// Hands events to a [`WorldService`]; clone one per sending thread.
#[derive(Clone)]
pub struct Sender {
    commands: mpsc::Sender<Command>,
    waker: Waker,
}

impl Sender {
    /// Journal `event` for `agent` (or `plan:<name>`) from `source`; returns once it is
    /// durable, and with `wait_for_step` once the step that processed it is committed too.
    /// An event that does not check is refused with the same error `send` gives, nothing
    /// journaled.
    pub fn send(&self, agent: &str, event: Event, source: &str, wait_for_step: bool) -> Result<Accepted, ServiceError> {
        self.send_outgoing(Outgoing {
            agent: agent.to_string(),
            event,
            source: source.to_string(),
            idempotency_key: None,
            wait_for_step,
        })
    }

    /// [`Sender::send`], with every option.
    pub fn send_outgoing(&self, outgoing: Outgoing) -> Result<Accepted, ServiceError> {
        if let Some(key) = &outgoing.idempotency_key {
            idempotency::check_key(key)?;
        }
        let (reply, answer) = mpsc::channel();
        self.command(Command::Send { outgoing, reply })?;
        answer.recv().map_err(|_| ServiceError::Gone)?
    }

    /// Run `read` on the world's thread between two looks around the stepper's loop, with the
    /// steps in flight still running: the kernel as it is then (agents whose step is in flight
    /// show their last committed state).
    pub fn query<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Kernel) -> R + Send + 'static,
    ) -> Result<R, ServiceError> {
        let (reply, answer) = mpsc::channel();
        self.command(Command::Query(Box::new(move |kernel| {
            let _ = reply.send(read(kernel));
        })))?;
        answer.recv().map_err(|_| ServiceError::Gone)
    }

    /// Run `job` with the whole world once the steps in flight are back, nothing new starting
    /// before it ends; what it journals is committed before anyone is answered after it.
    pub fn with_world<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut World) -> R + Send + 'static,
    ) -> Result<R, ServiceError> {
        let (reply, answer) = mpsc::channel();
        self.command(Command::Job(Box::new(move |world| {
            let _ = reply.send(job(world));
        })))?;
        answer.recv().map_err(|_| ServiceError::Gone)
    }

    fn command(&self, command: Command) -> Result<(), ServiceError> {
        self.commands.send(command).map_err(|_| ServiceError::Gone)?;
        self.waker.wake();
        Ok(())
    }
}

/// A world running on its own thread.
pub struct WorldService {
    sender: Sender,
    journal: SharedJournal,
    committed: tokio::sync::watch::Receiver<u64>,
    thread: std::thread::JoinHandle<Result<World, WorldError>>,
}

impl WorldService {
    /// Run `world` on a thread of its own until [`WorldService::stop`]. Reads the idempotency
    /// keys of the last day back from the journal first.
    pub fn start(mut world: World) -> Result<WorldService, WorldError> {
        let keys = IdempotencyKeys::recover(&world.kernel.journal(), world.kernel.next_time_ms())?;
        let (commands, received) = mpsc::channel();
        let sender = Sender {
            commands,
            waker: world.kernel.waker(),
        };
        let journal = world.kernel.shared_journal().clone();
        let (announce, committed) = tokio::sync::watch::channel(world.kernel.journal().len());
        let thread = std::thread::Builder::new()
            .name("agentos-world".into())
            .spawn(move || {
                let mut serving = Serving {
                    commands: received,
                    manifest: world.paths.manifest(),
                    awaiting: Vec::new(),
                    keys,
                    jobs: Vec::new(),
                    announce,
                    stopping: false,
                };
                loop {
                    world.kernel.drive(&mut serving)?;
                    if serving.jobs.is_empty() {
                        break;
                    }
                    for job in std::mem::take(&mut serving.jobs) {
                        job(&mut world);
                    }
                    serving.after_jobs(&mut world)?;
                }
                serving.answer_the_rest();
                Ok(world)
            })
            .expect("the world's thread starts");
        Ok(WorldService {
            sender,
            journal,
            committed,
            thread,
        })
    }

    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// The world's journal, to read committed entries from (reads take its lock briefly; the
    /// stepper holds it while it appends and commits).
    pub fn journal(&self) -> SharedJournal {
        self.journal.clone()
    }

    /// The number of entries durable in the journal, announced after every commit.
    pub fn committed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Finish the steps in flight, commit, and hand the world back.
    pub fn stop(self) -> Result<World, ServiceError> {
        // A stepper already gone reports why through its thread.
        let _ = self.sender.commands.send(Command::Stop);
        self.sender.waker.wake();
        match self.thread.join() {
            Ok(result) => Ok(result?),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// A sender waiting for its answer.
struct Awaiting {
    seq: u64,
    duplicate: bool,
    wait_for_step: bool,
    stepped: bool,
    step: Option<(StepRecord, u64)>,
    reply: mpsc::Sender<Result<Accepted, ServiceError>>,
}

impl Awaiting {
    /// Whether the answer is due once what is journaled is durable.
    fn ready(&self) -> bool {
        !self.wait_for_step || self.stepped
    }

    fn answer(self) {
        // A sender that gave up waiting finds its event journaled all the same.
        let _ = self.reply.send(Ok(Accepted {
            seq: self.seq,
            duplicate: self.duplicate,
            stepped: self.stepped,
            step: self.step,
        }));
    }
}

/// The service's side of the stepper's loop.
struct Serving {
    commands: mpsc::Receiver<Command>,
    manifest: PathBuf,
    awaiting: Vec<Awaiting>,
    keys: IdempotencyKeys,
    /// Jobs for the whole world: the loop ends for them once nothing is in flight.
    jobs: Vec<Job>,
    announce: tokio::sync::watch::Sender<u64>,
    stopping: bool,
}

impl Serving {
    /// Journal a sender's event, or find the one sent earlier under its key.
    fn take_outgoing(
        &mut self,
        kernel: &mut Kernel,
        outgoing: Outgoing,
        reply: mpsc::Sender<Result<Accepted, ServiceError>>,
    ) {
        let Outgoing {
            agent,
            event,
            source,
            idempotency_key,
            wait_for_step,
        } = outgoing;
        let input = match &event {
            Event::Wave(text) => EventInput::Wave(text),
            Event::Json(json) => EventInput::Json(json),
        };
        let canonical = match check(kernel, &self.manifest, &agent, input) {
            Ok(canonical) => canonical,
            Err(error) => {
                let _ = reply.send(Err(error.into()));
                return;
            }
        };
        if let Some(first) = idempotency_key.as_deref().and_then(|key| self.keys.get(&source, key)) {
            let key = idempotency_key.clone().unwrap_or_default();
            if first.agent != agent || first.event != crate::journal::entry::sha256(canonical.as_bytes()) {
                let _ = reply.send(Err(ServiceError::KeyReused { key, seq: first.seq }));
                return;
            }
            // Answered once the first event is durable (it may have been journaled a moment
            // ago), and, when asked, once its step is.
            self.awaiting.push(Awaiting {
                seq: first.seq,
                duplicate: true,
                wait_for_step,
                stepped: wait_for_step && !kernel.is_pending(first.seq),
                step: None,
                reply,
            });
            return;
        }
        let source = match &idempotency_key {
            Some(key) => idempotency::source_with_key(&source, key),
            None => source,
        };
        let seq = journal_ingress(kernel, &agent, canonical.clone(), &source);
        if idempotency_key.is_some() {
            let ingress = crate::journal::entry::Ingress {
                agent,
                event: canonical,
                at_ms: kernel.next_time_ms(),
                source,
            };
            self.keys.remember_ingress(seq, &ingress);
        }
        self.awaiting.push(Awaiting {
            seq,
            duplicate: false,
            wait_for_step,
            stepped: false,
            step: None,
            reply,
        });
    }

    /// After the jobs for the whole world: their steps (a job may run the world) count as
    /// done for whoever waits for them, and what they journaled is committed and announced.
    fn after_jobs(&mut self, world: &mut World) -> Result<(), WorldError> {
        for awaiting in &mut self.awaiting {
            awaiting.stepped |= awaiting.wait_for_step && !world.kernel.is_pending(awaiting.seq);
        }
        world.commit()?;
        self.committed(&world.kernel);
        Ok(())
    }

    /// After the loop: whoever still waits for a step the world stopped before running, and
    /// whoever sent after the world last looked.
    fn answer_the_rest(&mut self) {
        for awaiting in self.awaiting.drain(..) {
            awaiting.answer();
        }
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Send { reply, .. } = command {
                let _ = reply.send(Err(ServiceError::Stopping));
            }
        }
    }
}

impl Driver for Serving {
    type Error = WorldError;

    fn intake(&mut self, kernel: &mut Kernel) -> Result<(), WorldError> {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Send { outgoing, reply }) => {
                    if self.stopping {
                        let _ = reply.send(Err(ServiceError::Stopping));
                        continue;
                    }
                    self.take_outgoing(kernel, outgoing, reply);
                }
                Ok(Command::Query(read)) => read(kernel),
                // A job after `stop` is dropped: its caller hears the world is gone.
                Ok(Command::Job(job)) if !self.stopping => self.jobs.push(job),
                Ok(Command::Job(_)) => {}
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => {
                    self.stopping = true;
                    return Ok(());
                }
                Err(mpsc::TryRecvError::Empty) => return Ok(()),
            }
        }
    }

    fn takes_input_while_stepping(&self) -> bool {
        true
    }

    fn on_step(&mut self, record: &StepRecord, outcome: u64) {
        for awaiting in &mut self.awaiting {
            if awaiting.wait_for_step && awaiting.seq == record.ingress {
                awaiting.stepped = true;
                awaiting.step = Some((record.clone(), outcome));
            }
        }
    }

    fn wants_commit(&self) -> bool {
        self.awaiting.iter().any(Awaiting::ready)
    }

    fn committed(&mut self, kernel: &Kernel) {
        let (ready, waiting) = std::mem::take(&mut self.awaiting)
            .into_iter()
            .partition(Awaiting::ready);
        self.awaiting = waiting;
        for awaiting in ready {
            Awaiting::answer(awaiting);
        }
        self.keys.forget_before(kernel.next_time_ms());
        let entries = kernel.journal().len();
        self.announce.send_if_modified(|announced| {
            let moved = *announced != entries;
            *announced = entries;
            moved
        });
    }

    fn dispatching(&self) -> bool {
        !self.stopping && self.jobs.is_empty()
    }

    fn idle(&mut self, _kernel: &Kernel) -> Option<Duration> {
        // New input wakes the stepper at once; the wait only bounds how long it sleeps.
        (!self.stopping && self.jobs.is_empty()).then_some(Duration::from_secs(60))
    }
}
