//! A world held open on a thread of its own, taking events from any number of senders at once
//! (what `serve` and `bench` build on). The thread runs the stepper's loop ([`Kernel::drive`]):
//! between steps it journals what senders handed in, and it answers a sender once the sender's
//! event is durable — or, when the sender asked, once the step that processed it is. Senders
//! that arrive together share one commit: their events, and the steps that process them, are
//! made durable by the same fsync (group commit). A sender is answered only after that fsync,
//! so an event whose sender was answered survives a crash; one whose sender was not may be lost,
//! and the sender retries.
//!
//! [`WorldService::stop`] finishes the steps in flight, commits (events still queued stay
//! journaled and are processed when the world next runs) and hands the world back.

use crate::error::WorldError;
use crate::ingest::{EventInput, ingest};
use crate::kernel::{Driver, Kernel, StepRecord, Waker};
use crate::world::World;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// An event as a sender hands it in.
#[derive(Debug, Clone)]
pub enum Event {
    Wave(String),
    Json(serde_json::Value),
}

/// A sender's event, journaled and durable.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its ingress entry.
    pub seq: u64,
    /// The step that processed it, committed, when the sender asked to wait for it (`None`
    /// when the world stopped before running it: it runs when the world next does).
    pub step: Option<StepRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    World(Box<WorldError>),
    #[error("the world is stopping and takes no more events")]
    Stopping,
    #[error("the world's stepper stopped (see the host's log)")]
    Gone,
}

impl From<WorldError> for ServiceError {
    fn from(error: WorldError) -> ServiceError {
        ServiceError::World(Box::new(error))
    }
}

enum Command {
    Send {
        agent: String,
        event: Event,
        source: String,
        wait_for_step: bool,
        reply: mpsc::Sender<Result<Accepted, ServiceError>>,
    },
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
        let (reply, answer) = mpsc::channel();
        let command = Command::Send {
            agent: agent.to_string(),
            event,
            source: source.to_string(),
            wait_for_step,
            reply,
        };
        self.commands.send(command).map_err(|_| ServiceError::Gone)?;
        self.waker.wake();
        answer.recv().map_err(|_| ServiceError::Gone)?
    }
}

/// A world running on its own thread.
pub struct WorldService {
    sender: Sender,
    thread: std::thread::JoinHandle<Result<World, WorldError>>,
}

impl WorldService {
    /// Run `world` on a thread of its own until [`WorldService::stop`].
    pub fn start(mut world: World) -> WorldService {
        let (commands, received) = mpsc::channel();
        let sender = Sender {
            commands,
            waker: world.kernel.waker(),
        };
        let thread = std::thread::Builder::new()
            .name("agentos-world".into())
            .spawn(move || {
                let mut serving = Serving {
                    commands: received,
                    manifest: world.paths.manifest(),
                    awaiting: Vec::new(),
                    stopping: false,
                };
                world.kernel.drive(&mut serving)?;
                serving.answer_the_rest();
                Ok(world)
            })
            .expect("the world's thread starts");
        WorldService { sender, thread }
    }

    pub fn sender(&self) -> Sender {
        self.sender.clone()
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
    wait_for_step: bool,
    step: Option<StepRecord>,
    reply: mpsc::Sender<Result<Accepted, ServiceError>>,
}

impl Awaiting {
    /// Whether the answer is due once what is journaled is durable.
    fn ready(&self) -> bool {
        !self.wait_for_step || self.step.is_some()
    }

    fn answer(self) {
        // A sender that gave up waiting finds its event journaled all the same.
        let _ = self.reply.send(Ok(Accepted {
            seq: self.seq,
            step: self.step,
        }));
    }
}

/// The service's side of the stepper's loop.
struct Serving {
    commands: mpsc::Receiver<Command>,
    manifest: PathBuf,
    awaiting: Vec<Awaiting>,
    stopping: bool,
}

impl Serving {
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
                Ok(Command::Send {
                    agent,
                    event,
                    source,
                    wait_for_step,
                    reply,
                }) => {
                    if self.stopping {
                        let _ = reply.send(Err(ServiceError::Stopping));
                        continue;
                    }
                    let input = match &event {
                        Event::Wave(text) => EventInput::Wave(text),
                        Event::Json(json) => EventInput::Json(json),
                    };
                    match ingest(kernel, &self.manifest, &agent, input, &source) {
                        Ok(seq) => self.awaiting.push(Awaiting {
                            seq,
                            wait_for_step,
                            step: None,
                            reply,
                        }),
                        Err(error) => {
                            let _ = reply.send(Err(error.into()));
                        }
                    }
                }
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

    fn on_step(&mut self, record: &StepRecord) {
        if let Some(awaiting) = self
            .awaiting
            .iter_mut()
            .find(|awaiting| awaiting.wait_for_step && awaiting.seq == record.ingress)
        {
            awaiting.step = Some(record.clone());
        }
    }

    fn wants_commit(&self) -> bool {
        self.awaiting.iter().any(Awaiting::ready)
    }

    fn committed(&mut self) {
        let (ready, waiting) = std::mem::take(&mut self.awaiting)
            .into_iter()
            .partition(Awaiting::ready);
        self.awaiting = waiting;
        for awaiting in ready {
            Awaiting::answer(awaiting);
        }
    }

    fn dispatching(&self) -> bool {
        !self.stopping
    }

    fn idle(&mut self, _kernel: &Kernel) -> Option<Duration> {
        // New input wakes the stepper at once; the wait only bounds how long it sleeps.
        (!self.stopping).then_some(Duration::from_secs(60))
    }
}
