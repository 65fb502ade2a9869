//! The threads agents' steps run on beside the stepper. A step takes its agent's store with it
//! (the instance and its last committed state) and brings it back with its record, so no two
//! threads ever hold one agent; the stepper journals the records as steps come back and stays
//! free meanwhile to take input, fire timers and start other agents' steps. Threads are started
//! as the number of steps in flight first needs them and live as long as the kernel.

use super::{AgentStore, StepRecord, Timing, agent_step};
use crate::effects::EffectBackend;
use crate::effects::cores::Cores;
use crate::engine::Runtime;
use crate::journal::entry::Ingress;
use agentos_air::AgentDef;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a thread that runs out of work polls for more before it sleeps: a short step comes
/// back sooner than a sleeping thread wakes.
const SPIN: Duration = Duration::from_micros(50);

/// The next message on `receiver` within `timeout` (forever when `None`), polled for [`SPIN`]
/// before sleeping; `None` when none came or every sender is gone.
fn next<T>(receiver: &Receiver<T>, timeout: Option<Duration>) -> Option<T> {
    let spinning = Instant::now();
    let spin = timeout.map_or(SPIN, |timeout| timeout.min(SPIN));
    loop {
        match receiver.try_recv() {
            Ok(message) => return Some(message),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if spinning.elapsed() < spin => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => break,
        }
    }
    match timeout {
        None => receiver.recv().ok(),
        Some(timeout) => receiver.recv_timeout(timeout.saturating_sub(spinning.elapsed())).ok(),
    }
}

/// One step to run on a worker.
pub(super) struct Job {
    pub seq: u64,
    pub ingress: Ingress,
    pub def: Arc<AgentDef>,
    pub component: Arc<crate::engine::AgentComponent>,
    pub store: AgentStore,
    pub backend: Option<Box<dyn EffectBackend>>,
}

/// A step back from its worker, with its agent's store.
pub(super) struct Finished {
    pub seq: u64,
    pub at_ms: u64,
    pub record: StepRecord,
    pub store: AgentStore,
}

/// What wakes the stepper.
pub(super) enum Wakeup {
    Finished(Box<Finished>),
    /// A worker panicked (a host bug): the stepper resumes the panic.
    Panicked(Box<dyn std::any::Any + Send>),
    /// New input from outside (see [`Waker`]).
    Nudge,
}

/// Wakes a stepper waiting for work, once new input is there for it to take. Cheap to clone,
/// one per thread that hands a world input.
#[derive(Clone)]
pub struct Waker(Sender<Wakeup>);

impl Waker {
    pub fn wake(&self) {
        // A stepper that is gone has nothing to wake.
        let _ = self.0.send(Wakeup::Nudge);
    }
}

/// The pool of step threads and the channel their steps come back on.
pub(super) struct Workers {
    runtime: Arc<Runtime>,
    world_id: [u8; 16],
    cores: Arc<Cores>,
    jobs: Sender<Job>,
    queue: Arc<Mutex<Receiver<Job>>>,
    back: Sender<Wakeup>,
    wakeups: Receiver<Wakeup>,
    threads: usize,
}

impl Workers {
    pub fn new(runtime: Arc<Runtime>, world_id: [u8; 16], cores: Arc<Cores>) -> Workers {
        let (jobs, queue) = channel();
        let (back, wakeups) = channel();
        Workers {
            runtime,
            world_id,
            cores,
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            back,
            wakeups,
            threads: 0,
        }
    }

    /// A wakeup already there, if any.
    pub fn ready(&self) -> Option<Wakeup> {
        self.wakeups.try_recv().ok()
    }

    /// The next wakeup within `timeout` (forever when `None`).
    pub fn wait(&self, timeout: Option<Duration>) -> Option<Wakeup> {
        next(&self.wakeups, timeout)
    }

    pub fn waker(&self) -> Waker {
        Waker(self.back.clone())
    }

    /// Start `job` on a worker; `busy` workers are running steps already.
    pub fn start(&mut self, job: Job, busy: usize) {
        if busy >= self.threads {
            self.spawn();
        }
        self.jobs.send(job).expect("the workers live as long as the kernel");
    }

    fn spawn(&mut self) {
        let (runtime, world_id, cores) = (self.runtime.clone(), self.world_id, self.cores.clone());
        let (queue, back) = (self.queue.clone(), self.back.clone());
        self.threads += 1;
        std::thread::Builder::new()
            .name(format!("agentos-step-{}", self.threads))
            .spawn(move || {
                loop {
                    // The lock is held only while waiting: one idle worker takes the next job.
                    let job = next(&queue.lock().expect("job queue lock"), None);
                    let Some(Job {
                        seq,
                        ingress,
                        def,
                        component,
                        mut store,
                        backend,
                    }) = job
                    else {
                        return;
                    };
                    let run = std::panic::AssertUnwindSafe(|| {
                        // Waiting for a core comes before the step's clock starts.
                        cores.holding(|| {
                            agent_step(
                                &runtime,
                                world_id,
                                (&def, &component, &mut store),
                                (seq, &ingress),
                                backend,
                                Timing::Live,
                            )
                        })
                    });
                    let wakeup = match std::panic::catch_unwind(run) {
                        Ok(record) => Wakeup::Finished(Box::new(Finished {
                            seq,
                            at_ms: ingress.at_ms,
                            record,
                            store,
                        })),
                        Err(panic) => Wakeup::Panicked(panic),
                    };
                    if back.send(wakeup).is_err() {
                        return;
                    }
                }
            })
            .expect("a step thread starts");
    }
}
