//! The one loop that keeps a world going: process everything queued, let the caller look at
//! the world, then sleep until the next timer (or plan schedule) is due, and go again. `run`,
//! `run --follow`, `plan run` and the demo all drive their worlds through it.

use crate::kernel::StepRecord;
use crate::world::World;
use crate::world::WorldError;
use std::time::Duration;

/// When a world in rounds wakes up again.
#[derive(Debug, Clone, Copy)]
pub struct Wake {
    /// Wake for plan schedules as well as agents' timers.
    pub schedules: bool,
    /// Longest sleep between two rounds, in milliseconds.
    pub at_most_ms: u64,
    /// With nothing due: keep polling every `at_most_ms` (new input may arrive from outside)
    /// rather than stop.
    pub poll_when_idle: bool,
}

impl Wake {
    /// Until no timer is pending any more.
    pub const TIMERS: Wake = Wake {
        schedules: false,
        at_most_ms: u64::MAX,
        poll_when_idle: false,
    };
}

/// What the caller wants after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Stop,
}

/// What a caller of [`World::run_rounds`] does around the rounds, failing with its own error
/// type `E` (into which the world's errors convert). A closure over the world is the `after` of
/// a caller that needs nothing else.
pub trait Rounds<E> {
    /// Before each round: take new input from outside (an inbox, say).
    fn before(&mut self, _world: &mut World) -> Result<(), E> {
        Ok(())
    }

    /// Each step of a round, as it is journaled (not yet committed).
    fn on_step(&mut self, _record: &StepRecord) {}

    /// After each round, once its steps are committed: whether to go on.
    fn after(&mut self, world: &mut World) -> Result<Next, E>;
}

impl<E, F: FnMut(&mut World) -> Result<Next, E>> Rounds<E> for F {
    fn after(&mut self, world: &mut World) -> Result<Next, E> {
        self(world)
    }
}

impl World {
    /// Run the world in rounds: each round takes input ([`Rounds::before`]), processes
    /// everything queued ([`World::run`]) and asks [`Rounds::after`] whether to go on; then the
    /// loop sleeps until the next due time `wake` names, or ends when nothing is due and `wake`
    /// does not poll. Returns the number of steps processed.
    pub fn run_rounds<E: From<WorldError>>(&mut self, wake: Wake, mut rounds: impl Rounds<E>) -> Result<usize, E> {
        let mut steps = 0;
        loop {
            rounds.before(self)?;
            steps += self.run(|record| rounds.on_step(record))?;
            if rounds.after(self)? == Next::Stop {
                return Ok(steps);
            }
            let schedules = wake.schedules.then(|| self.kernel.next_schedule_due_ms()).flatten();
            let next_due = self.kernel.next_timer_due_ms().into_iter().chain(schedules).min();
            let sleep_ms = match next_due {
                Some(due) => due.saturating_sub(self.kernel.now_ms()).min(wake.at_most_ms),
                None if wake.poll_when_idle => wake.at_most_ms,
                None => return Ok(steps),
            };
            std::thread::sleep(Duration::from_millis(sleep_ms));
        }
    }
}
