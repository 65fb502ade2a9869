//! The wasm runtime: one deterministic wasmtime engine, a pre-built linker, component loading
//! (with an on-disk compilation cache), the import/export checks that bind a component to its
//! agent, and warm agent instances with fuel and memory limits.
//!
//! The runtime executes no effect itself: effect imports are served by the instance's
//! [`EffectGate`], and the stepper decides which backend the gate uses.

pub mod bindings;
pub mod wasi;

use crate::caps::AgentGrants;
use crate::effects::EffectGate;
use agentos_air::EffectKind;
use std::path::{Path, PathBuf};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Func, HasData, InstancePre, Linker, ResourceTable, Type, Val};
use wasmtime::{Config, Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The version of `agentos:core` this host implements.
pub const CORE_VERSION: &str = "0.1.0";

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
        "agent `{agent}` imports `{interface}`, which this host does not provide (it provides agentos:core@{CORE_VERSION} and wasi:*)"
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
#[error("memory limit exceeded: the instance asked for {requested_bytes} bytes, its cap is {limit_bytes} bytes")]
pub struct MemoryLimitExceeded {
    pub requested_bytes: u64,
    pub limit_bytes: u64,
}

struct MemoryLimiter {
    limit_bytes: u64,
}

/// Most table elements an instance may have.
const TABLE_ELEMENTS_MAX: usize = 1_000_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit_bytes {
            return Err(MemoryLimitExceeded {
                requested_bytes: desired as u64,
                limit_bytes: self.limit_bytes,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

/// Everything a store holds: WASI, the effect gate, limits.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
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
}

/// A component checked against its agent: ready to instantiate.
pub struct AgentComponent {
    pub agent: String,
    pre: InstancePre<StoreState>,
    /// The type of `handle`'s single parameter: the agent's event variant.
    pub event_type: Type,
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
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        let link = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link)?;
        use bindings::agentos::core::{blob, compile, emit, fs, governance, http, llm, log, timer, types};
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
        Ok(Runtime { engine, linker })
    }

    /// Compile a component, reusing `<cache_dir>/<sha256>.cwasm` when present.
    pub fn load(&self, module: &str, bytes: &[u8], source: &Path, cache_dir: &Path) -> Result<Component, RuntimeError> {
        let digest = hex::encode(crate::journal::entry::sha256(bytes));
        let cached: PathBuf = cache_dir.join(format!("{digest}.cwasm"));
        if cached.exists()
            && let Ok(component) = deserialize_cached(&self.engine, &cached)
        {
            return Ok(component);
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| invalid(module, source, e))?;
        if let Ok(serialized) = component.serialize() {
            // The cache is an optimisation: a failed write only costs a recompile next time.
            let _ = std::fs::create_dir_all(cache_dir).and_then(|()| std::fs::write(&cached, serialized));
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
            if version != CORE_VERSION {
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
        let lifecycle = format!("agentos:core/lifecycle@{CORE_VERSION}");
        match ty.get_export(&self.engine, &lifecycle).map(|e| e.ty) {
            Some(ComponentItem::ComponentInstance(_)) => {}
            _ => return Err(not_agent(format!("no `{lifecycle}` export"))),
        }
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
        Ok(AgentComponent { agent, pre, event_type })
    }

    /// A fresh instance with its own store, limits and deterministic WASI.
    pub fn instantiate(
        &self,
        component: &AgentComponent,
        world_id: &[u8; 16],
        memory_max_bytes: u64,
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
            limiter: MemoryLimiter {
                limit_bytes: memory_max_bytes,
            },
            gate: EffectGate::new(&component.agent),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(INSTANTIATE_FUEL).map_err(fail)?;
        let instance = component.pre.instantiate(&mut store).map_err(fail)?;
        let lifecycle = bindings::Agent::new(&mut store, &instance).map_err(fail)?;
        let handle = instance
            .get_func(&mut store, "handle")
            .ok_or_else(|| fail(wasmtime::format_err!("`handle` export disappeared after instantiation")))?;
        Ok(AgentInstance {
            store,
            handle,
            lifecycle,
            env,
            stdout,
            stderr,
        })
    }
}

#[expect(
    unsafe_code,
    reason = "deserialising precompiled code from the world's own cache directory"
)]
fn deserialize_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `Component::serialize` of this host into the world's
    // private `.agentos/cache`; anyone able to alter it can alter the journal and key as well.
    // wasmtime checks the engine compatibility header and refuses mismatched artifacts.
    unsafe { Component::deserialize_file(engine, path) }
}

/// Fuel for instantiation and lifecycle calls (init, snapshot, restore).
const INSTANTIATE_FUEL: u64 = 10_000_000_000;

/// How a call into the guest ended.
#[derive(Debug)]
pub enum CallError {
    /// The guest's `handle` returned `Err(message)`.
    Guest(String),
    OutOfFuel {
        limit: u64,
    },
    Memory(MemoryLimitExceeded),
    Trap(wasmtime::Error),
}

/// A live instance of an agent's component.
pub struct AgentInstance {
    store: Store<StoreState>,
    handle: Func,
    lifecycle: bindings::Agent,
    env: wasi::StepEnv,
    stdout: wasi::CapturedOutput,
    stderr: wasi::CapturedOutput,
}

fn classify(error: wasmtime::Error, fuel_limit: u64) -> CallError {
    if let Some(memory) = error.downcast_ref::<MemoryLimitExceeded>() {
        return CallError::Memory(memory.clone());
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

    /// Point clocks and randomness at the step of ingress `ingress` at logical time `at_ms`.
    pub fn begin_step(&mut self, world_id: &[u8; 16], ingress: u64, at_ms: u64) {
        self.env.begin_step(world_id, ingress, at_ms);
    }

    /// What the guest wrote to stdout and stderr since the last call.
    pub fn take_output(&mut self) -> (Vec<u8>, Vec<u8>) {
        (self.stdout.drain(), self.stderr.drain())
    }

    fn lifecycle_call<R>(
        &mut self,
        call: impl FnOnce(
            &bindings::exports::agentos::core::lifecycle::Guest,
            &mut Store<StoreState>,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        self.store.set_fuel(INSTANTIATE_FUEL).map_err(CallError::Trap)?;
        let guest = self.lifecycle.agentos_core_lifecycle();
        call(guest, &mut self.store).map_err(|e| classify(e, INSTANTIATE_FUEL))
    }

    pub fn init(&mut self, config: &str) -> Result<(), CallError> {
        self.lifecycle_call(|guest, store| guest.call_init(store, config))?
            .map_err(CallError::Guest)
    }

    pub fn snapshot(&mut self) -> Result<Vec<u8>, CallError> {
        self.lifecycle_call(|guest, store| guest.call_snapshot(store))
    }

    pub fn restore(&mut self, state: &[u8]) -> Result<(), CallError> {
        self.lifecycle_call(|guest, store| guest.call_restore(store, state))?
            .map_err(CallError::Guest)
    }

    /// Deliver one event with `fuel` to spend; returns the fuel used alongside the outcome.
    pub fn handle(&mut self, event: Val, fuel: u64) -> (u64, Result<(), CallError>) {
        if let Err(e) = self.store.set_fuel(fuel) {
            return (0, Err(CallError::Trap(e)));
        }
        let mut results = [Val::Bool(false)];
        let outcome = self.handle.call(&mut self.store, &[event], &mut results);
        let used = fuel.saturating_sub(self.store.get_fuel().unwrap_or(0));
        let outcome = match outcome {
            Err(e) => Err(classify(e, fuel)),
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
        };
        (used, outcome)
    }
}
