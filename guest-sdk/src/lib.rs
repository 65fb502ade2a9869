//! The AgentOS guest SDK: write an agent as a plain Rust struct.
//!
//! An agent is a serde-serialisable struct with an event handler. The [`export_agent!`] macro
//! turns it into a WebAssembly component that implements the `agentos:core/lifecycle` export
//! (init / snapshot / restore, postcard-encoded by this crate) and the agent's `handle` export.
//! Effects (log, http, fs, ...) are plain functions in the modules of this crate; each call is
//! capability-checked by the host and recorded as a signed receipt in the world's journal.
//!
//! This crate holds no host logic and no state of its own besides the one agent instance the
//! macro declares; the generated WIT bindings stay hidden in `__bindings`.
//!
//! ```no_run
//! // src/lib.rs of a crate with `crate-type = ["cdylib"]`, next to `wit/world.wit`:
//! //
//! //   package my-org:counter;
//! //   world counter {
//! //     include agentos:core/agent@0.2.0;
//! //     variant event { increment(u32), reset }
//! //     export handle: func(event: event) -> result<_, string>;
//! //   }
//! # mod bindings { pub enum Event { Increment(u32), Reset } }
//! use agentos_sdk::{Agent, log};
//! use bindings::Event;
//!
//! #[derive(Default, serde::Serialize, serde::Deserialize)]
//! struct Counter { value: u64 }
//!
//! impl Agent for Counter {
//!     type Event = Event;
//!     fn handle(&mut self, event: Event) -> Result<(), String> {
//!         match event {
//!             Event::Increment(n) => self.value += u64::from(n),
//!             Event::Reset => self.value = 0,
//!         }
//!         log::info(format!("value = {}", self.value));
//!         Ok(())
//!     }
//! }
//! // agentos_sdk::export_agent!(Counter, world: "counter");
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release` (or `cargo component build`).

pub use wit_bindgen;

mod effects;
pub mod tools;
pub mod wave;
pub use effects::{blob, compile, emit, fs, governance, http, llm, log, mcp, timer};

/// The error every effect can return: `denied`, `failed`, `budget-exceeded`, `in-doubt`, `timeout`.
pub use __bindings::agentos::core::types::{EffectError, Field};

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        world: "effects",
        path: "../wit",
        // Agents keep conversations (and other effect values) in their serde state.
        additional_derives: [serde::Serialize, serde::Deserialize],
        generate_all,
    });
}

/// An agent: its state is `Self` (serialised with postcard for snapshots), its behaviour is
/// [`Agent::handle`].
///
/// State must be a deterministic function of the events handled: use the effect functions of
/// this crate (or WASI clocks and randomness, which the host makes deterministic) for anything
/// from the outside world.
pub trait Agent: serde::Serialize + serde::de::DeserializeOwned + Default + 'static {
    /// The agent's event type, generated from the `event` variant of its WIT world.
    type Event;

    /// Create the agent from its configuration (JSON text from the world manifest, `null` when
    /// absent). The default ignores the configuration and starts from `Default`.
    fn init(config: &str) -> Result<Self, String> {
        let _ = config;
        Ok(Self::default())
    }

    /// Handle one event. An `Err` fails the step: the host rolls the state back to what it was
    /// before the event and records the failure; effects already performed keep their receipts.
    fn handle(&mut self, event: Self::Event) -> Result<(), String>;
}

/// Export an [`Agent`] as a component.
///
/// `export_agent!(MyAgent, world: "my-world")` reads the WIT package in the crate's `wit/`
/// directory (`path: "dir"` to use another one). That package must include
/// `agentos:core/agent@0.2.0` — place `agentos.wit` under `wit/deps/agentos-core/` — and export
/// `handle: func(event: event) -> result<_, string>`. The macro generates a `bindings` module
/// in the calling module whose `bindings::Event` is the agent's event type.
///
/// The crate must depend on this SDK under its own name, `agentos-sdk`.
#[macro_export]
macro_rules! export_agent {
    ($agent:ty, world: $world:literal $(,)?) => {
        $crate::export_agent!($agent, world: $world, path: "wit");
    };
    ($agent:ty, world: $world:literal, path: $path:literal $(,)?) => {
        #[allow(missing_docs, clippy::all)]
        pub mod bindings {
            $crate::wit_bindgen::generate!({
                world: $world,
                path: $path,
                runtime_path: "::agentos_sdk::wit_bindgen::rt",
                // Every agent world imports `log` (and so `types`); the other effect interfaces
                // only where granted, so they are bound here when present and the SDK's typed
                // wrappers (`agentos_sdk::effects`) call the same imports.
                with: {
                    "agentos:core/types@0.2.0": ::agentos_sdk::__bindings::agentos::core::types,
                    "agentos:core/log@0.2.0": ::agentos_sdk::__bindings::agentos::core::log,
                },
                generate_all,
            });
        }

        thread_local! {
            static __AGENTOS_AGENT: ::core::cell::RefCell<::core::option::Option<$agent>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }

        struct __AgentosExport;

        impl bindings::exports::agentos::core::lifecycle::Guest for __AgentosExport {
            fn init(config: ::std::string::String) -> ::core::result::Result<(), ::std::string::String> {
                __AGENTOS_AGENT.with(|cell| $crate::__rt::init::<$agent>(cell, &config))
            }
            fn snapshot() -> ::std::vec::Vec<u8> {
                __AGENTOS_AGENT.with(|cell| $crate::__rt::snapshot::<$agent>(cell))
            }
            fn restore(state: ::std::vec::Vec<u8>) -> ::core::result::Result<(), ::std::string::String> {
                __AGENTOS_AGENT.with(|cell| $crate::__rt::restore::<$agent>(cell, &state))
            }
        }

        impl bindings::Guest for __AgentosExport {
            fn handle(event: bindings::Event) -> ::core::result::Result<(), ::std::string::String> {
                __AGENTOS_AGENT.with(|cell| $crate::__rt::handle::<$agent>(cell, event))
            }
        }

        bindings::export!(__AgentosExport with_types_in bindings);
    };
    ($($other:tt)*) => {
        ::core::compile_error!(
            "usage: agentos_sdk::export_agent!(MyAgent, world: \"my-world\") or \
             agentos_sdk::export_agent!(MyAgent, world: \"my-world\", path: \"wit\")"
        );
    };
}

#[doc(hidden)]
pub mod __rt {
    //! The generic halves of the exports [`export_agent!`](crate::export_agent) generates.
    use crate::Agent;
    use std::cell::RefCell;

    pub fn init<A: Agent>(cell: &RefCell<Option<A>>, config: &str) -> Result<(), String> {
        *cell.borrow_mut() = Some(A::init(config)?);
        Ok(())
    }

    pub fn snapshot<A: Agent>(cell: &RefCell<Option<A>>) -> Vec<u8> {
        match &*cell.borrow() {
            Some(agent) => postcard::to_allocvec(agent).expect("agent state serialises with postcard"),
            None => Vec::new(),
        }
    }

    pub fn restore<A: Agent>(cell: &RefCell<Option<A>>, state: &[u8]) -> Result<(), String> {
        let agent: A =
            postcard::from_bytes(state).map_err(|e| format!("snapshot does not decode as this agent's state: {e}"))?;
        *cell.borrow_mut() = Some(agent);
        Ok(())
    }

    pub fn handle<A: Agent>(cell: &RefCell<Option<A>>, event: A::Event) -> Result<(), String> {
        match &mut *cell.borrow_mut() {
            Some(agent) => agent.handle(event),
            None => Err("agent received an event before `init`".to_string()),
        }
    }
}
