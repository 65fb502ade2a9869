//! Deterministic WASI: what a component sees of time, randomness and stdio.
//!
//! The host links standard `wasi:*` interfaces (so agents can use ordinary crates) but backs
//! them with step-scoped, journaled values: the wall clock reads the current event's logical
//! time, the monotonic clock is a counter, randomness is ChaCha20 seeded from the world id and
//! the step's ingress sequence, and stdout/stderr are captured per step for the journal. There
//! are no preopened directories, no environment variables and no arguments.
//!
//! Nothing a guest calls here waits on real time: `wasi:clocks/monotonic-clock` is linked in
//! place of wasmtime's (whose pollables sleep), and its pollables are ready at once, moving the
//! step's monotonic clock forward to the instant the guest waited for. A guest that sleeps an
//! hour finishes its step at once, having seen an hour go by.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{SeedableRng, TryRng};
use sha2::{Digest as _, Sha256};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError, StreamResult, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

/// Bytes a step may write to stdout or stderr (each) before the write traps.
pub const OUTPUT_MAX_BYTES_PER_STEP: usize = 64 * 1024;

/// The per-step values behind the deterministic clocks and generators.
#[derive(Clone)]
pub struct StepEnv(Arc<Mutex<StepEnvInner>>);

struct StepEnvInner {
    wall_ms: u64,
    monotonic_ns: u64,
    secure: ChaCha20Rng,
    insecure: ChaCha20Rng,
}

fn seeded(world_id: &[u8; 16], ingress: u64, purpose: &[u8]) -> ChaCha20Rng {
    let mut hasher = Sha256::new();
    hasher.update(b"agentos.random.v1\0");
    hasher.update(purpose);
    hasher.update(world_id);
    hasher.update(ingress.to_le_bytes());
    ChaCha20Rng::from_seed(hasher.finalize().into())
}

impl Default for StepEnv {
    fn default() -> StepEnv {
        StepEnv(Arc::new(Mutex::new(StepEnvInner {
            wall_ms: 0,
            monotonic_ns: 0,
            secure: ChaCha20Rng::from_seed([0; 32]),
            insecure: ChaCha20Rng::from_seed([0; 32]),
        })))
    }
}

impl StepEnv {
    /// The monotonic clock's reading (each read advances it by 1 µs).
    fn monotonic_now(&self) -> u64 {
        self.with(|env| {
            // Saturates: a guest that slept until the end of time reads the end of time.
            env.monotonic_ns = env.monotonic_ns.saturating_add(1_000);
            env.monotonic_ns
        })
    }

    /// Wait, virtually, until the monotonic clock reads `instant`.
    fn advance_to(&self, instant: u64) {
        self.with(|env| env.monotonic_ns = env.monotonic_ns.max(instant));
    }

    /// Point the clocks and generators at a new step.
    pub fn begin_step(&self, world_id: &[u8; 16], ingress: u64, at_ms: u64) {
        let mut inner = self.0.lock().expect("step env lock");
        inner.wall_ms = at_ms;
        inner.monotonic_ns = at_ms.saturating_mul(1_000_000);
        inner.secure = seeded(world_id, ingress, b"secure");
        inner.insecure = seeded(world_id, ingress, b"insecure");
    }

    fn with<R>(&self, f: impl FnOnce(&mut StepEnvInner) -> R) -> R {
        f(&mut self.0.lock().expect("step env lock"))
    }
}

struct WallClock(StepEnv);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.with(|env| env.wall_ms))
    }
}

/// Advances by 1µs per read, so elapsed-time loops in guests terminate deterministically.
struct MonotonicClock(StepEnv);

impl HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0.monotonic_now()
    }
}

/// `wasi:clocks/monotonic-clock` over the step's virtual clock.
pub struct VirtualClock<'a> {
    env: &'a StepEnv,
    table: &'a mut ResourceTable,
}

struct VirtualClockData;

impl HasData for VirtualClockData {
    type Data<'a> = VirtualClock<'a>;
}

/// A pollable that is ready at once: what every virtual wait resolves to.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

impl VirtualClock<'_> {
    fn ready(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(Ready)?;
        subscribe(self.table, ready)
    }
}

impl monotonic_clock::Host for VirtualClock<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.env.monotonic_now())
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1_000)
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        self.env.advance_to(when);
        self.ready()
    }

    fn subscribe_duration(&mut self, duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let now = self.env.monotonic_now();
        self.env.advance_to(now.saturating_add(duration));
        self.ready()
    }
}

/// Link the virtual `wasi:clocks/monotonic-clock` over the one `wasmtime_wasi` linked.
pub fn link_virtual_clocks(linker: &mut Linker<super::StoreState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    monotonic_clock::add_to_linker::<super::StoreState, VirtualClockData>(linker, |state| VirtualClock {
        env: &state.env,
        table: &mut state.table,
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

struct StepRng {
    env: StepEnv,
    secure: bool,
}

impl TryRng for StepRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
        let secure = self.secure;
        self.env.with(|env| {
            if secure {
                env.secure.try_fill_bytes(dest)
            } else {
                env.insecure.try_fill_bytes(dest)
            }
        })
    }
}

/// stdout or stderr of one instance, drained after every step.
#[derive(Clone, Default)]
pub struct CapturedOutput(Arc<Mutex<Vec<u8>>>);

impl CapturedOutput {
    /// Take what the current step wrote.
    pub fn drain(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("output lock"))
    }

    fn append(&self, bytes: &[u8]) -> Result<(), String> {
        let mut buffer = self.0.lock().expect("output lock");
        if buffer.len() + bytes.len() > OUTPUT_MAX_BYTES_PER_STEP {
            return Err(format!(
                "a step may write at most {OUTPUT_MAX_BYTES_PER_STEP} bytes to stdout/stderr"
            ));
        }
        buffer.extend_from_slice(bytes);
        Ok(())
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes)
            .map_err(|message| StreamError::Trap(wasmtime::format_err!("{message}")))
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(OUTPUT_MAX_BYTES_PER_STEP)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.append(buf).map(|()| buf.len()).map_err(std::io::Error::other))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The WASI context of one instance: deterministic clocks and randomness, captured stdio,
/// nothing else.
pub fn deterministic_ctx(
    env: &StepEnv,
    world_id: &[u8; 16],
    stdout: &CapturedOutput,
    stderr: &CapturedOutput,
) -> WasiCtx {
    let seed = u128::from_le_bytes(*world_id);
    WasiCtxBuilder::new()
        .wall_clock(WallClock(env.clone()))
        .monotonic_clock(MonotonicClock(env.clone()))
        .secure_random(StepRng {
            env: env.clone(),
            secure: true,
        })
        .insecure_random(StepRng {
            env: env.clone(),
            secure: false,
        })
        .insecure_random_seed(seed)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}
