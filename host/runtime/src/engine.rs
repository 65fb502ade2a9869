//! The wasm runtime: one deterministic wasmtime engine, a pre-built linker, component loading
//! (with an on-disk compilation cache), the import/export checks that bind a component to its
//! agent, and warm agent instances with fuel and memory limits.
//!
//! The runtime executes no effect itself: effect imports are served by the instance's
//! [`EffectGate`], and the stepper decides which backend the gate uses.

pub mod earlier;
pub mod wasi;

use crate::bindings;

use crate::caps::AgentGrants;
use crate::effects::EffectGate;
use agentos_air::EffectKind;
use std::path::{Path, PathBuf};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Func, HasData, InstancePre, Linker, ResourceTable, Type, Val};
use wasmtime::{Config, Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The version of `agentos:core` this host implements (and, in [`earlier`], every version
/// before it): the one AIR's generated worlds import.
pub use agentos_air::wit::CORE_VERSION;

/// Why a component cannot run as an agent.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    #[error("module `{module}` ({path}): not a valid wasm component: {reason}")]
    Invalid {
        module: String,
        path: String,
        reason: String,
    },
    #[error(
        "agent `{agent}` imports `{interface}` but holds no grant for effect `{effect}`; \
         add a capability with effect = \"{effect}\" to [caps] and list it in agents.{agent}.grants"
    )]
    Ungranted {
        agent: String,
        interface: String,
        effect: EffectKind,
    },
    #[error(
        "agent `{agent}` imports `{interface}`, which this host does not provide (it provides agentos:core@{CORE_VERSION}, \
         the interfaces of agentos:core@0.1.0, and wasi:*)"
    )]
    UnknownImport { agent: String, interface: String },
    #[error(
        "agent `{agent}`: component does not export the agent world: {reason} \
         (its world must include agentos:core/agent@{CORE_VERSION} and export handle: func(event: event) -> result<_, string>)"
    )]
    NotAnAgent { agent: String, reason: String },
    #[error("agent `{agent}` cannot be instantiated: {reason}")]
    Instantiate { agent: String, reason: String },
}

/// A memory growth beyond the instance's cap (distinguishes the failure from other traps).
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "memory limit exceeded: the instance asked for {requested_bytes} bytes in all (memories and tables), its cap \
     (memory_max_bytes) is {limit_bytes} bytes"
)]
pub struct MemoryLimitExceeded {
    pub requested_bytes: u64,
    pub limit_bytes: u64,
}

/// The cap on everything an instance allocates: every linear memory and every table (at
/// [`TABLE_ELEMENT_BYTES`] an element) counted together, so a component cannot multiply its
/// allowance by declaring many memories.
struct InstanceLimiter {
    limit_bytes: u64,
    used_bytes: u64,
}

/// What a table element is counted as against the memory cap.
const TABLE_ELEMENT_BYTES: u64 = 8;

impl InstanceLimiter {
    fn grow(&mut self, current_bytes: u64, desired_bytes: u64) -> wasmtime::Result<bool> {
        let total = self.used_bytes - current_bytes.min(self.used_bytes) + desired_bytes;
        if total > self.limit_bytes {
            return Err(MemoryLimitExceeded {
                requested_bytes: total,
                limit_bytes: self.limit_bytes,
            }
            .into());
        }
        self.used_bytes = total;
        Ok(true)
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current as u64, desired as u64)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(
            current as u64 * TABLE_ELEMENT_BYTES,
            desired as u64 * TABLE_ELEMENT_BYTES,
        )
    }

    fn instances(&self) -> usize {
        INSTANCES_MAX
    }

    fn tables(&self) -> usize {
        TABLES_MAX
    }

    fn memories(&self) -> usize {
        MEMORIES_MAX
    }
}

/// Most core instances, tables and memories one component instance may create.
const INSTANCES_MAX: usize = 64;
const TABLES_MAX: usize = 64;
const MEMORIES_MAX: usize = 16;

/// Everything a store holds: WASI, the effect gate, limits.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: InstanceLimiter,
    clock: StepClock,
    /// The step's virtual clocks (read by the clock interfaces `wasi` links in).
    pub(crate) env: wasi::StepEnv,
    pub gate: EffectGate,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct GateData;

impl HasData for GateData {
    type Data<'a> = &'a mut EffectGate;
}

/// One engine and one linker per process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StoreState>,
    /// The compiled-component cache (see [`component_cache`]).
    cache: Option<PathBuf>,
    _ticker: EpochTicker,
}

/// How often the engine's epoch advances: the resolution of step deadlines.
pub const EPOCH_TICK_MS: u64 = 10;

/// A thread that advances the engine's epoch every [`EPOCH_TICK_MS`], so guest code past its
/// step's deadline reaches an epoch check and is interrupted. It stops when its runtime goes.
struct EpochTicker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> EpochTicker {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (engine, stopped) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(EPOCH_TICK_MS));
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch ticker thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A step that ran its guest code for longer than its agent's `step_deadline_ms`.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "deadline exceeded: the step ran guest code for more than its step_deadline_ms of {limit_ms} ms (time in \
     effects not counted)"
)]
pub struct DeadlineExceeded {
    pub limit_ms: u64,
}

/// What one use of an instance (a step, or starting an agent) may spend: fuel, shared by every
/// call into the guest in it, and guest time before it is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLimits {
    pub fuel: u64,
    pub deadline_ms: u64,
}

impl StepLimits {
    pub fn of(def: &agentos_air::AgentDef) -> StepLimits {
        StepLimits {
            fuel: def.fuel_per_step,
            deadline_ms: def.step_deadline_ms,
        }
    }
}

/// Guest time of the current step: wall time since it began, less the time its effect calls
/// spent in the host (effects have time limits of their own).
struct StepClock {
    started: std::time::Instant,
    deadline: std::time::Duration,
}

fn ticks_for(remaining: std::time::Duration) -> u64 {
    (remaining.as_millis() as u64).div_ceil(EPOCH_TICK_MS).max(1)
}

/// A component checked against its agent: ready to instantiate.
pub struct AgentComponent {
    pub agent: String,
    pre: InstancePre<StoreState>,
    /// The type of `handle`'s single parameter: the agent's event variant.
    pub event_type: Type,
    /// The name of its `lifecycle` export (of the contract version it was built against).
    lifecycle: String,
}

fn invalid(module: &str, path: &Path, reason: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Invalid {
        module: module.to_string(),
        path: path.display().to_string(),
        reason: format!("{reason:#}"),
    }
}

impl Runtime {
    /// The deterministic engine: fuel metering, NaN canonicalisation, deterministic relaxed SIMD,
    /// no threads (the `threads` feature is not compiled in).
    pub fn new() -> Result<Runtime, RuntimeError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.cranelift_nan_canonicalization(true);
        config.relaxed_simd_deterministic(true);
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        let link = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link)?;
        use bindings::agentos::core::{blob, compile, emit, fs, governance, http, llm, log, mcp, timer, types};
        types::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        log::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        http::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        fs::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        blob::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        emit::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        llm::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        timer::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        compile::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        governance::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        mcp::add_to_linker::<StoreState, GateData>(&mut linker, |s| &mut s.gate).map_err(link)?;
        earlier::link(&mut linker).map_err(link)?;
        wasi::link_virtual_clocks(&mut linker).map_err(link)?;
        let ticker = EpochTicker::start(&engine);
        Ok(Runtime {
            cache: component_cache(&engine),
            engine,
            linker,
            _ticker: ticker,
        })
    }

    /// Compile a component, reusing the native code this host compiled for the same bytes
    /// before (see [`component_cache`]). `source` names the component in errors.
    pub fn load(&self, module: &str, bytes: &[u8], source: &Path) -> Result<Component, RuntimeError> {
        let digest = hex::encode(crate::journal::entry::sha256(bytes));
        let cached = self.cache.as_ref().map(|dir| dir.join(format!("{digest}.cwasm")));
        if let Some(cached) = &cached
            && cached.exists()
            && let Ok(component) = deserialize_cached(&self.engine, cached)
        {
            return Ok(component);
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| invalid(module, source, e))?;
        if let (Some(cached), Ok(serialized)) = (&cached, component.serialize()) {
            // The cache is an optimisation: a failed write only costs a recompile next time.
            let temporary = cached.with_extension(format!("{}.tmp", std::process::id()));
            if crate::private::write_new(&temporary, &serialized).is_ok()
                && std::fs::rename(&temporary, cached).is_err()
            {
                let _ = std::fs::remove_file(&temporary);
            }
        }
        Ok(component)
    }

    /// Check a component against its agent's grants and the agent world, and pre-link it.
    pub fn prepare(&self, component: &Component, grants: &AgentGrants) -> Result<AgentComponent, RuntimeError> {
        let agent = grants.agent.clone();
        let ty = component.component_type();
        for (name, item) in ty.imports(&self.engine) {
            if matches!(item.ty, ComponentItem::Type(_)) || name.starts_with("wasi:") {
                continue;
            }
            let unknown = || RuntimeError::UnknownImport {
                agent: agent.clone(),
                interface: name.to_string(),
            };
            let Some(rest) = name.strip_prefix("agentos:core/") else {
                return Err(unknown());
            };
            let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
            let served = version == CORE_VERSION
                || earlier::interfaces_of(version).is_some_and(|interfaces| interfaces.contains(&interface));
            if !served {
                return Err(unknown());
            }
            if interface == "types" {
                continue;
            }
            let effect = EffectKind::from_name(interface).ok_or_else(unknown)?;
            if !grants.holds(effect) {
                return Err(RuntimeError::Ungranted {
                    agent,
                    interface: name.to_string(),
                    effect,
                });
            }
        }
        let not_agent = |reason: String| RuntimeError::NotAnAgent {
            agent: agent.clone(),
            reason,
        };
        let lifecycle = std::iter::once(CORE_VERSION)
            .chain(earlier::EARLIER_VERSIONS.iter().copied())
            .map(|version| format!("agentos:core/lifecycle@{version}"))
            .find(|name| {
                matches!(
                    ty.get_export(&self.engine, name).map(|e| e.ty),
                    Some(ComponentItem::ComponentInstance(_))
                )
            })
            .ok_or_else(|| not_agent(format!("no `agentos:core/lifecycle@{CORE_VERSION}` export")))?;
        let event_type = match ty.get_export(&self.engine, "handle").map(|e| e.ty) {
            Some(ComponentItem::ComponentFunc(func)) => {
                let params: Vec<Type> = func.params().map(|(_, ty)| ty).collect();
                let results: Vec<Type> = func.results().collect();
                let result_ok = matches!(results.as_slice(), [Type::Result(r)] if r.ok().is_none() && matches!(r.err(), Some(Type::String)));
                match params.as_slice() {
                    [event] if result_ok => event.clone(),
                    _ => {
                        return Err(not_agent(
                            "`handle` must take one event and return result<_, string>".into(),
                        ));
                    }
                }
            }
            _ => return Err(not_agent("no `handle` function export".into())),
        };
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| RuntimeError::Instantiate {
                agent: agent.clone(),
                reason: format!("{e:#}"),
            })?;
        Ok(AgentComponent {
            agent,
            pre,
            event_type,
            lifecycle,
        })
    }

    /// A fresh instance with its own store, limits and deterministic WASI; instantiating it may
    /// spend `limits` (its start functions run).
    pub fn instantiate(
        &self,
        component: &AgentComponent,
        world_id: &[u8; 16],
        memory_max_bytes: u64,
        limits: StepLimits,
    ) -> Result<AgentInstance, RuntimeError> {
        let fail = |e: wasmtime::Error| RuntimeError::Instantiate {
            agent: component.agent.clone(),
            reason: format!("{e:#}"),
        };
        let env = wasi::StepEnv::default();
        let stdout = wasi::CapturedOutput::default();
        let stderr = wasi::CapturedOutput::default();
        let state = StoreState {
            wasi: wasi::deterministic_ctx(&env, world_id, &stdout, &stderr),
            table: ResourceTable::new(),
            limiter: InstanceLimiter {
                limit_bytes: memory_max_bytes,
                used_bytes: 0,
            },
            clock: StepClock {
                started: std::time::Instant::now(),
                deadline: std::time::Duration::from_millis(limits.deadline_ms),
            },
            env: env.clone(),
            gate: EffectGate::new(&component.agent),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // At the deadline, count only the step's own time: what its effect calls spent in the
        // host extends it.
        store.epoch_deadline_callback(|store| {
            let state = store.data();
            let guest = state.clock.started.elapsed().saturating_sub(state.gate.effect_time());
            match state.clock.deadline.checked_sub(guest) {
                Some(remaining) if !remaining.is_zero() => Ok(wasmtime::UpdateDeadline::Continue(ticks_for(remaining))),
                _ => Err(DeadlineExceeded {
                    limit_ms: state.clock.deadline.as_millis() as u64,
                }
                .into()),
            }
        });
        store.set_fuel(limits.fuel).map_err(fail)?;
        store.set_epoch_deadline(ticks_for(std::time::Duration::from_millis(limits.deadline_ms)));
        let instance = component.pre.instantiate(&mut store).map_err(fail)?;
        let lifecycle = Lifecycle::of(&mut store, &instance, &component.lifecycle).map_err(fail)?;
        let handle = instance
            .get_func(&mut store, "handle")
            .ok_or_else(|| fail(wasmtime::format_err!("`handle` export disappeared after instantiation")))?;
        Ok(AgentInstance {
            store,
            handle,
            lifecycle,
            limits,
            stdout,
            stderr,
        })
    }
}

/// Where this host keeps the native code it compiled: the user's cache directory
/// (`$XDG_CACHE_HOME`, or `~/.cache`), under `agentos/components/<engine>`, one directory per
/// engine configuration and wasmtime version, private to the user (0700). Never inside a world
/// directory: a world received from someone else would otherwise bring native code that this
/// host would run as its own. `None` (no cache) without a home directory.
pub fn component_cache(engine: &Engine) -> Option<PathBuf> {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    crate::private::user_cache(&["components", &format!("{:016x}", hasher.finish())])
}

#[expect(
    unsafe_code,
    reason = "deserialising native code this host compiled into the user's private cache"
)]
fn deserialize_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `Component::serialize` of a host of this user, with this
    // engine configuration, into a 0700 directory of the user's own (`component_cache`); no
    // world directory is ever read for native code. Whoever can write there runs as the user
    // already. wasmtime checks the engine compatibility header and refuses other artifacts.
    unsafe { Component::deserialize_file(engine, path) }
}

/// How a call into the guest ended.
#[derive(Debug)]
pub enum CallError {
    /// The guest's `handle` returned `Err(message)`.
    Guest(String),
    OutOfFuel {
        limit: u64,
    },
    Memory(MemoryLimitExceeded),
    Deadline(DeadlineExceeded),
    Trap(wasmtime::Error),
}

/// The `lifecycle` export of an instance, of whichever contract version it was built against
/// (its functions are the same in every version).
struct Lifecycle {
    init: Func,
    snapshot: wasmtime::component::TypedFunc<(), (Vec<u8>,)>,
    restore: Func,
}

impl Lifecycle {
    fn of(
        store: &mut Store<StoreState>,
        instance: &wasmtime::component::Instance,
        name: &str,
    ) -> wasmtime::Result<Lifecycle> {
        let exports = instance
            .get_export_index(&mut *store, None, name)
            .ok_or_else(|| wasmtime::format_err!("no `{name}` export"))?;
        let func = |store: &mut Store<StoreState>, func: &str| {
            let index = instance
                .get_export_index(&mut *store, Some(&exports), func)
                .ok_or_else(|| wasmtime::format_err!("`{name}` has no `{func}`"))?;
            instance
                .get_func(&mut *store, index)
                .ok_or_else(|| wasmtime::format_err!("`{name}.{func}` is not a function"))
        };
        let init = func(store, "init")?;
        let snapshot = func(store, "snapshot")?.typed(&*store)?;
        let restore = func(store, "restore")?;
        // Checked once here; each call checks again, cheaply.
        init.typed::<(&str,), (Result<(), String>,)>(&*store)?;
        restore.typed::<(&[u8],), (Result<(), String>,)>(&*store)?;
        Ok(Lifecycle {
            init,
            snapshot,
            restore,
        })
    }
}

/// A live instance of an agent's component.
pub struct AgentInstance {
    store: Store<StoreState>,
    handle: Func,
    lifecycle: Lifecycle,
    /// What the current step may spend (set by [`AgentInstance::begin_step`]).
    limits: StepLimits,
    stdout: wasi::CapturedOutput,
    stderr: wasi::CapturedOutput,
}

fn classify(error: wasmtime::Error, fuel_limit: u64) -> CallError {
    if let Some(memory) = error.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::Memory(memory.clone());
    }
    if let Some(deadline) = error.downcast_ref::<DeadlineExceeded>() {
        return CallError::Deadline(deadline.clone());
    }
    if let Some(wasmtime::Trap::OutOfFuel) = error.downcast_ref::<wasmtime::Trap>() {
        return CallError::OutOfFuel { limit: fuel_limit };
    }
    CallError::Trap(error)
}

impl AgentInstance {
    pub fn gate(&mut self) -> &mut EffectGate {
        &mut self.store.data_mut().gate
    }

    /// Begin a use of the instance: clocks and randomness for the step of ingress `ingress` at
    /// logical time `at_ms`, and `limits` shared by every call into the guest until the next
    /// `begin_step` (the step's `restore`, `handle` and `snapshot`, or an agent's `init`).
    pub fn begin_step(&mut self, world_id: &[u8; 16], ingress: u64, at_ms: u64, limits: StepLimits) {
        let state = self.store.data_mut();
        state.env.begin_step(world_id, ingress, at_ms);
        state.clock = StepClock {
            started: std::time::Instant::now(),
            deadline: std::time::Duration::from_millis(limits.deadline_ms),
        };
        self.limits = limits;
        // Fuel can always be set on a store configured to consume it.
        let _ = self.store.set_fuel(limits.fuel);
        self.store
            .set_epoch_deadline(ticks_for(std::time::Duration::from_millis(limits.deadline_ms)));
    }

    /// Fuel spent since the last `begin_step`.
    pub fn fuel_used(&self) -> u64 {
        self.limits.fuel.saturating_sub(self.store.get_fuel().unwrap_or(0))
    }

    /// What the guest wrote to stdout and stderr since the last call.
    pub fn take_output(&mut self) -> (Vec<u8>, Vec<u8>) {
        (self.stdout.drain(), self.stderr.drain())
    }

    fn lifecycle_call<R>(
        &mut self,
        call: impl FnOnce(&Lifecycle, &mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        call(&self.lifecycle, &mut self.store).map_err(|e| classify(e, self.limits.fuel))
    }

    pub fn init(&mut self, config: &str) -> Result<(), CallError> {
        self.lifecycle_call(|lifecycle, store| {
            let (result,) = lifecycle
                .init
                .typed::<(&str,), (Result<(), String>,)>(&*store)?
                .call(&mut *store, (config,))?;
            Ok(result)
        })?
        .map_err(CallError::Guest)
    }

    pub fn snapshot(&mut self) -> Result<Vec<u8>, CallError> {
        self.lifecycle_call(|lifecycle, store| Ok(lifecycle.snapshot.call(store, ())?.0))
    }

    pub fn restore(&mut self, state: &[u8]) -> Result<(), CallError> {
        self.lifecycle_call(|lifecycle, store| {
            let (result,) = lifecycle
                .restore
                .typed::<(&[u8],), (Result<(), String>,)>(&*store)?
                .call(&mut *store, (state,))?;
            Ok(result)
        })?
        .map_err(CallError::Guest)
    }

    /// Deliver one event, spending what is left of the step's limits.
    pub fn handle(&mut self, event: Val) -> Result<(), CallError> {
        let mut results = [Val::Bool(false)];
        let outcome = self.handle.call(&mut self.store, &[event], &mut results);
        match outcome {
            Err(e) => Err(classify(e, self.limits.fuel)),
            Ok(()) => match &results[0] {
                Val::Result(Ok(_)) => Ok(()),
                Val::Result(Err(Some(message))) => match &**message {
                    Val::String(text) => Err(CallError::Guest(text.clone())),
                    other => Err(CallError::Guest(format!("{other:?}"))),
                },
                other => Err(CallError::Guest(format!(
                    "`handle` returned an unexpected value {other:?}"
                ))),
            },
        }
    }
}
