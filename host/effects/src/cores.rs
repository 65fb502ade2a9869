//! How many steps may run guest code at once: one per core. Steps side by side spend most of
//! their time waiting on effects; while one runs guest code it holds a core, and it gives the
//! core back while its adapter runs. A step's deadline counts its own wall time less the time
//! in effects, so waiting for a core — before the step starts, or after an effect, inside the
//! call — never counts against it, and steps cannot eat each other's deadlines.

use std::sync::{Condvar, Mutex};

#[derive(Debug)]
pub struct Cores {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Cores {
    pub fn new(count: usize) -> Cores {
        Cores {
            free: Mutex::new(count.max(1)),
            freed: Condvar::new(),
        }
    }

    /// One per core of this machine.
    pub fn of_machine() -> Cores {
        Cores::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Wait for a free core and hold it.
    pub fn take(&self) {
        let mut free = self.free.lock().expect("cores lock");
        while *free == 0 {
            free = self.freed.wait(free).expect("cores lock");
        }
        *free -= 1;
    }

    /// Run `work` holding a core.
    pub fn holding<T>(&self, work: impl FnOnce() -> T) -> T {
        /// Gives the core back however `work` ends, a panic included.
        struct Held<'c>(&'c Cores);
        impl Drop for Held<'_> {
            fn drop(&mut self) {
                self.0.give();
            }
        }
        self.take();
        let _held = Held(self);
        work()
    }

    /// Give back a core taken with [`Cores::take`].
    pub fn give(&self) {
        *self.free.lock().expect("cores lock") += 1;
        self.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn no_more_holders_than_cores_at_once() {
        let cores = Arc::new(Cores::new(2));
        let (holding, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cores, holding, most) = (cores.clone(), holding.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        cores.take();
                        most.fetch_max(holding.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                        std::thread::yield_now();
                        holding.fetch_sub(1, Ordering::SeqCst);
                        cores.give();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert_eq!(*cores.free.lock().unwrap(), 2);
    }
}
