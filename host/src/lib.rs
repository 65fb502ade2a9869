//! The AgentOS host: runs a world of wasm component agents deterministically, journals every
//! input, step and effect in a hash-chained redb journal with ed25519-signed receipts, and
//! replays and verifies worlds from that journal.
//!
//! Modules point one way: `cli` → `world` → `kernel` / `effects` / `runtime` → `caps`, and
//! all of them → the `agentos-journal` crate (the journal, entries, receipts, checkpoints,
//! proofs, private files), re-exported here under its module names. See ARCHITECTURE.md for the
//! invariants each one keeps.

pub mod bundle;
pub mod caps;
pub mod cli;
pub mod components;
pub mod conformance;
pub mod effects;
pub mod governance;
pub mod inbox;
pub mod kernel;
pub mod plans;
pub mod runtime;
pub mod values;
pub mod world;

pub use agentos_journal as journal;
pub use agentos_journal::{private, proofs, receipts, rotation, text, transparency, verify};
