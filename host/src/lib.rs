//! The AgentOS host: runs a world of wasm component agents deterministically, journals every
//! input, step and effect in a hash-chained redb journal with ed25519-signed receipts, and
//! replays and verifies worlds from that journal.
//!
//! Modules point one way: `cli` → `world` → `kernel` / `effects` / `runtime` → `journal`,
//! `receipts`, `caps`. See ARCHITECTURE.md for the invariants each one keeps.

pub mod bundle;
pub mod caps;
pub mod cli;
pub mod components;
pub mod conformance;
pub mod effects;
pub mod governance;
pub mod inbox;
pub mod journal;
pub mod kernel;
pub mod plans;
pub mod private;
pub mod proofs;
pub mod receipts;
pub mod rotation;
pub mod runtime;
pub mod text;
pub mod transparency;
pub mod values;
pub mod verify;
pub mod world;
