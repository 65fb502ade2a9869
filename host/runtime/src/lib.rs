//! `agentos-runtime`: runs a world of wasm component agents deterministically. The wasmtime
//! engine and deterministic WASI (`engine`), the stepper that turns journaled inputs into
//! committed steps (`kernel`), world directories (`world`), events in (`ingest`), a world on a
//! thread of its own for many senders (`service`), plans, governance's shadow run and apply, the
//! inbox and bundles.
//!
//! Arrows point one way: `world` → `kernel` → `engine` / `plans` → `agentos-effects` →
//! `agentos-journal`; `governance` is used by `world` only through the ledger in
//! `agentos-journal`. See ARCHITECTURE.md for the invariants each one keeps.

pub mod bindings;
pub mod bundle;
pub mod conformance;
pub mod engine;
pub mod error;
pub mod governance;
pub mod inbox;
pub mod ingest;
pub mod interfaces;
pub mod kernel;
pub mod plans;
pub mod rounds;
pub mod service;
pub mod world;

pub use agentos_effects as effects;
pub use agentos_effects::{caps, components, values};
pub use agentos_journal as journal;
pub use agentos_journal::{private, proofs, receipts, rotation, text, transparency, verify};
