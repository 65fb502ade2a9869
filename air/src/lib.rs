//! AIR: the typed description of an AgentOS world, authored as `world.toml`.
//!
//! This crate is pure: it parses TOML or JSON text into the [`Manifest`] model, validates it
//! (reporting every problem at once, each naming the file and the definition), and gives the
//! model a canonical encoding (postcard of the normalised model) and an identity (sha256), for
//! the manifest and for each definition in it. Changes are data too: a [`Patch`] adds, replaces
//! or removes definitions against a base manifest hash ([`diff`], [`apply`]).
//! It knows nothing of wasmtime, redb or the file system beyond the text it is handed.
//!
//! ```
//! let text = r#"
//!     [world]
//!     name = "demo"
//!
//!     [modules.counter]
//!     component = "modules/counter.wasm"
//!
//!     [agents.counter]
//!     module = "counter"
//! "#;
//! let manifest = agentos_air::Manifest::parse_toml(text, "world.toml").unwrap();
//! assert_eq!(manifest.agents["counter"].module, "counter");
//! let digest = manifest.digest();
//! assert_eq!(digest.len(), 32);
//! ```

mod manifest;
pub mod mcp;
mod patch;
pub mod plan;
pub mod policy;
pub mod schema;
mod validate;
pub mod wit;

pub use manifest::{
    AgentDef, BlobCap, Budget, Cap, CompileCap, CompileSandbox, EffectKind, EmitCap, FsCap, FsMode, GovernanceCap,
    HttpCap, LlmApi, LlmCap, LlmProvider, Manifest, ModuleDef, TimerCap, WorldMeta,
};
pub use mcp::{McpCap, McpServer, SecretValue};
pub use patch::{Action, Change, DefKind, Definition, Patch, PatchError, apply, apply_recorded, diff};
pub use plan::{PlanDef, PlanStep, Retry, StepAction, StepInput, Trigger};
pub use policy::{Approver, Decision, Holder, Judgement, Policy, Rule, Widening, judge};
pub use schema::{Schema, TypeExpr};
pub use validate::{Problem, ValidationError};

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AirError {
    /// The text is not valid TOML / JSON for the model; the message carries line and column.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    /// The text parsed but describes an inconsistent world.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}
