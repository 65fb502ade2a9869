//! The AIR model of a world: schemas, modules, capabilities, agents, plans, providers and policy,
//! plus parsing and canonical form.
//!
//! Maps are `BTreeMap`s so the canonical encoding does not depend on authoring order. Fields
//! with defaults are filled in at parse time, so two texts that mean the same world encode to
//! the same bytes.

use crate::{AirError, ValidationError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// A whole world: what it runs and what each agent may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub world: WorldMeta,
    /// Named types for agents' events (see [`crate::schema`]).
    #[serde(default)]
    pub schemas: BTreeMap<String, crate::Schema>,
    #[serde(default)]
    pub modules: BTreeMap<String, ModuleDef>,
    #[serde(default)]
    pub caps: BTreeMap<String, Cap>,
    #[serde(default)]
    pub agents: BTreeMap<String, AgentDef>,
    /// Automations: finite graphs of effect and agent steps (see [`crate::plan`]).
    #[serde(default)]
    pub plans: BTreeMap<String, crate::PlanDef>,
    /// Language-model endpoints that `llm` capabilities may use.
    #[serde(default)]
    pub providers: BTreeMap<String, LlmProvider>,
    /// Who may approve changes to this world (see [`crate::policy`]).
    #[serde(default)]
    pub policy: Option<crate::Policy>,
    /// MCP servers whose tools `mcp` capabilities may grant (see [`crate::mcp`]).
    #[serde(default)]
    pub mcp: BTreeMap<String, crate::McpServer>,
}

/// A language-model endpoint. Its API key never enters the manifest: it is read from the named
/// environment variable or file when a call is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmProvider {
    pub api: LlmApi,
    /// e.g. `https://api.openai.com/v1`, `http://127.0.0.1:8080/v1`, `https://api.anthropic.com/v1`.
    pub base_url: String,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub api_key_file: Option<String>,
}

/// Wire protocols the host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LlmApi {
    /// `POST {base_url}/chat/completions` (OpenAI, vLLM, llama.cpp server, Ollama).
    OpenaiChat,
    /// `POST {base_url}/messages` (Anthropic).
    AnthropicMessages,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldMeta {
    pub name: String,
}

/// A component artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleDef {
    /// Path of the `.wasm` component, relative to the world directory.
    pub component: String,
    /// The component's sha256 (hex): when given, the host refuses any other bytes.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Path of the crate that builds the component (documentation for people and tools).
    #[serde(default, rename = "crate")]
    pub crate_path: Option<String>,
}

/// One agent: which module runs it, what it may do, how much it may use per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDef {
    pub module: String,
    /// The variant schema of the events the agent handles; its WIT world is generated from it
    /// (`agentos-host air wit`). Without it the component's own event type is used.
    #[serde(default)]
    pub event: Option<String>,
    /// Names of `caps` entries this agent holds.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Configuration handed to `lifecycle.init`, as JSON text (`null` when absent).
    #[serde(
        default = "null_config",
        deserialize_with = "config_as_json",
        serialize_with = "config_as_value"
    )]
    pub config: String,
    /// Wasm fuel per step (roughly, instructions), shared by the step's `handle` and the
    /// `restore` / `snapshot` calls around it.
    #[serde(default = "default_fuel")]
    pub fuel_per_step: u64,
    /// Memory cap of an instance: all its linear memories together (and its tables, at 8 bytes
    /// an element).
    #[serde(default = "default_memory")]
    pub memory_max_bytes: u64,
    /// Wall-clock time a step may take before it fails as `deadline-exceeded` (the backstop
    /// behind fuel: time the guest spends in the host does not burn fuel).
    #[serde(default = "default_step_deadline")]
    pub step_deadline_ms: u64,
    /// Bytes of effect requests and outcomes one step may produce (what the journal holds for it
    /// until its commit); the call that crosses it traps the step.
    #[serde(default = "default_step_payload")]
    pub step_payload_max_bytes: u64,
    /// Events one step may emit to other agents.
    #[serde(default = "default_step_emits")]
    pub step_emits_max: u32,
    /// Snapshot the agent's state (`lifecycle.snapshot()`) into the journal's blob store at
    /// least every this many of its committed steps, so a reopened world replays only what came
    /// after; 0: only when the world snapshots for another agent.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
}

fn default_snapshot_every() -> u64 {
    AgentDef::DEFAULT_SNAPSHOT_EVERY
}

fn null_config() -> String {
    "null".to_string()
}

fn default_fuel() -> u64 {
    AgentDef::DEFAULT_FUEL_PER_STEP
}

fn default_memory() -> u64 {
    AgentDef::DEFAULT_MEMORY_MAX_BYTES
}

fn default_step_deadline() -> u64 {
    AgentDef::DEFAULT_STEP_DEADLINE_MS
}

fn default_step_payload() -> u64 {
    AgentDef::DEFAULT_STEP_PAYLOAD_MAX_BYTES
}

fn default_step_emits() -> u32 {
    AgentDef::DEFAULT_STEP_EMITS_MAX
}

impl AgentDef {
    pub const DEFAULT_FUEL_PER_STEP: u64 = 100_000_000;
    pub const DEFAULT_MEMORY_MAX_BYTES: u64 = 64 * 1024 * 1024;
    pub const DEFAULT_SNAPSHOT_EVERY: u64 = 1000;
    pub const DEFAULT_STEP_DEADLINE_MS: u64 = 30_000;
    pub const DEFAULT_STEP_PAYLOAD_MAX_BYTES: u64 = 64 * 1024 * 1024;
    pub const DEFAULT_STEP_EMITS_MAX: u32 = 100;
}

/// Accepts any TOML/JSON value and keeps it as compact JSON text, so the model stays encodable
/// (the canonical binary form holds the text itself).
fn config_as_json<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    if de.is_human_readable() {
        Ok(serde_json::Value::deserialize(de)?.to_string())
    } else {
        String::deserialize(de)
    }
}

/// The inverse of [`config_as_json`] for human-readable formats (JSON and TOML get the value
/// back, so a manifest round-trips); the canonical binary encoding keeps the text.
fn config_as_value<S: serde::Serializer>(config: &str, ser: S) -> Result<S::Ok, S::Error> {
    if ser.is_human_readable() {
        let value: serde_json::Value = serde_json::from_str(config).map_err(serde::ser::Error::custom)?;
        value.serialize(ser)
    } else {
        ser.serialize_str(config)
    }
}

/// The effect interfaces of `agentos:core`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EffectKind {
    Log,
    Http,
    Llm,
    Fs,
    Blob,
    Timer,
    Compile,
    Emit,
    Governance,
    Mcp,
}

impl EffectKind {
    pub const ALL: [EffectKind; 10] = [
        EffectKind::Log,
        EffectKind::Http,
        EffectKind::Llm,
        EffectKind::Fs,
        EffectKind::Blob,
        EffectKind::Timer,
        EffectKind::Compile,
        EffectKind::Emit,
        EffectKind::Governance,
        EffectKind::Mcp,
    ];

    /// The WIT interface name, e.g. `http`.
    pub fn name(self) -> &'static str {
        match self {
            EffectKind::Log => "log",
            EffectKind::Http => "http",
            EffectKind::Llm => "llm",
            EffectKind::Fs => "fs",
            EffectKind::Blob => "blob",
            EffectKind::Timer => "timer",
            EffectKind::Compile => "compile",
            EffectKind::Emit => "emit",
            EffectKind::Governance => "governance",
            EffectKind::Mcp => "mcp",
        }
    }

    pub fn from_name(name: &str) -> Option<EffectKind> {
        EffectKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl std::fmt::Display for EffectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The two serde forms of [`Cap`], from one list of variants: authored text (TOML, JSON) tags
/// the table with `effect = "http"`; the canonical binary form is an ordinary enum, which
/// postcard can decode.
macro_rules! cap_forms {
    ($($(#[$doc:meta])* $variant:ident($ty:ty)),* $(,)?) => {
        /// A named, parameterised capability.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Cap {
            $($(#[$doc])* $variant($ty)),*
        }

        #[derive(Serialize, Deserialize)]
        #[serde(tag = "effect", rename_all = "kebab-case")]
        enum AuthoredCap {
            $($variant($ty)),*
        }

        #[derive(Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        enum CanonicalCap {
            $($variant($ty)),*
        }

        impl Serialize for Cap {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                if ser.is_human_readable() {
                    match self.clone() { $(Cap::$variant(c) => AuthoredCap::$variant(c)),* }.serialize(ser)
                } else {
                    match self.clone() { $(Cap::$variant(c) => CanonicalCap::$variant(c)),* }.serialize(ser)
                }
            }
        }

        impl<'de> Deserialize<'de> for Cap {
            fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Cap, D::Error> {
                Ok(if de.is_human_readable() {
                    match AuthoredCap::deserialize(de)? { $(AuthoredCap::$variant(c) => Cap::$variant(c)),* }
                } else {
                    match CanonicalCap::deserialize(de)? { $(CanonicalCap::$variant(c) => Cap::$variant(c)),* }
                })
            }
        }
    };
}

cap_forms! {
    Http(HttpCap),
    Fs(FsCap),
    Llm(LlmCap),
    Blob(BlobCap),
    Timer(TimerCap),
    Compile(CompileCap),
    Emit(EmitCap),
    Governance(GovernanceCap),
    Mcp(crate::McpCap),
}

impl Cap {
    /// The capability's budget, if it has one.
    pub fn budget(&self) -> Option<&Budget> {
        match self {
            Cap::Http(c) => c.budget.as_ref(),
            Cap::Fs(c) => c.budget.as_ref(),
            Cap::Llm(c) => c.budget.as_ref(),
            Cap::Blob(c) => c.budget.as_ref(),
            Cap::Emit(c) => c.budget.as_ref(),
            Cap::Timer(c) => c.budget.as_ref(),
            Cap::Compile(c) => c.budget.as_ref(),
            Cap::Mcp(c) => c.budget.as_ref(),
            _ => None,
        }
    }

    pub fn effect(&self) -> EffectKind {
        match self {
            Cap::Http(_) => EffectKind::Http,
            Cap::Fs(_) => EffectKind::Fs,
            Cap::Llm(_) => EffectKind::Llm,
            Cap::Blob(_) => EffectKind::Blob,
            Cap::Timer(_) => EffectKind::Timer,
            Cap::Compile(_) => EffectKind::Compile,
            Cap::Emit(_) => EffectKind::Emit,
            Cap::Governance(_) => EffectKind::Governance,
            Cap::Mcp(_) => EffectKind::Mcp,
        }
    }
}

/// Outbound HTTP: which URLs, which methods, how much, how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCap {
    /// `scheme://host[:port]/path` patterns: `*.` prefixes a host suffix, `:*` is any port, a
    /// path segment `*` matches one segment and a trailing `**` any rest.
    pub urls: Vec<String>,
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Refuse hosts that resolve to loopback, private, link-local or otherwise non-public
    /// addresses (checked on the addresses the request connects to).
    #[serde(default)]
    pub deny_private_addresses: bool,
    /// Use allowed per window of logical time; none when absent.
    #[serde(default)]
    pub budget: Option<Budget>,
}

fn default_methods() -> Vec<String> {
    vec!["GET".to_string()]
}

fn default_max_body() -> u64 {
    1024 * 1024
}

fn default_timeout() -> u64 {
    10_000
}

/// Limits on a capability's use, counted from the journaled receipts of the agent holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Calls that reached the adapter.
    #[serde(default)]
    pub calls: Option<u64>,
    /// Bytes sent plus received.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// LLM tokens in plus out.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Sliding window of logical (event) time; the world's whole life when absent.
    #[serde(default)]
    pub window_ms: Option<u64>,
}

/// Language-model completions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmCap {
    /// Providers (from `[providers]`) the holder may call; the first is the default.
    pub providers: Vec<String>,
    /// Models the holder may ask for; `*` allows any.
    pub models: Vec<String>,
    #[serde(default = "default_max_tokens")]
    pub max_tokens_per_call: u32,
    #[serde(default = "default_llm_timeout")]
    pub timeout_ms: u64,
    /// Use allowed per window of logical time; none when absent.
    #[serde(default)]
    pub budget: Option<Budget>,
}

fn default_max_tokens() -> u32 {
    1024
}

fn default_llm_timeout() -> u64 {
    60_000
}

/// The world's content-addressed blob store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobCap {
    /// Largest blob the agent may put or get.
    #[serde(default = "default_blob_max")]
    pub max_bytes: u64,
    /// Use allowed per window of logical time; none when absent.
    #[serde(default)]
    pub budget: Option<Budget>,
}

fn default_blob_max() -> u64 {
    1024 * 1024
}

/// Turning source into wasm components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileCap {
    /// `rust` and/or `wat`.
    pub languages: Vec<String>,
    #[serde(default = "default_compile_time")]
    pub time_limit_ms: u64,
    #[serde(default = "default_artifact_max")]
    pub max_artifact_bytes: u64,
    /// How a Rust build is confined (WAT is assembled in the host's process, reading nothing).
    #[serde(default)]
    pub sandbox: CompileSandbox,
    #[serde(default)]
    pub budget: Option<Budget>,
}

/// The confinement of a `compile` build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompileSandbox {
    /// Landlock: the toolchain reads only itself, the registry cache and the guest SDK, writes
    /// only its scratch directory, and opens no network connection; refused where the kernel
    /// cannot enforce it.
    #[default]
    Landlock,
    /// No confinement: the build runs with the host user's rights (it can read any file they
    /// can). `air check` warns about it.
    None,
}

fn default_compile_time() -> u64 {
    300_000
}

fn default_artifact_max() -> u64 {
    16 * 1024 * 1024
}

/// Timers that deliver the holder's own events later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerCap {
    /// Shortest delay from the scheduling event's time.
    #[serde(default)]
    pub min_interval_ms: u64,
    /// Most timers the holder may have pending at once.
    #[serde(default = "default_max_pending")]
    pub max_pending: u32,
    /// Longest delay from the scheduling event's time.
    #[serde(default = "default_max_delay")]
    pub max_delay_ms: u64,
    #[serde(default)]
    pub budget: Option<Budget>,
}

fn default_max_pending() -> u32 {
    100
}

fn default_max_delay() -> u64 {
    366 * 24 * 3600 * 1000
}

/// Events to other agents of the same world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitCap {
    /// Agents the holder may send events to.
    pub targets: Vec<String>,
    /// Use allowed per window of logical time; none when absent.
    #[serde(default)]
    pub budget: Option<Budget>,
}

/// The world's own configuration: read the manifest of record, and (with `may_propose`) submit
/// proposals to change it, authored by the agent and signed by the host on its behalf. No grant
/// lets an agent approve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceCap {
    /// Whether the holder may propose changes (reading the manifest is always allowed).
    #[serde(default)]
    pub may_propose: bool,
}

/// A directory on the host, mounted for the agent under the capability's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsCap {
    /// Host directory, relative to the world directory (or absolute).
    pub dir: String,
    #[serde(default)]
    pub mode: FsMode,
    /// Use allowed per window of logical time; none when absent.
    #[serde(default)]
    pub budget: Option<Budget>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsMode {
    #[default]
    ReadOnly,
    ReadWrite,
}

impl Manifest {
    /// Parse and validate `world.toml` text. `file` names the source in error messages.
    pub fn parse_toml(text: &str, file: &str) -> Result<Manifest, AirError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| AirError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        manifest.validate(file).map_err(|e| e.located_in(text))?;
        Ok(manifest)
    }

    /// Parse and validate the JSON form of the same model.
    pub fn parse_json(text: &str, file: &str) -> Result<Manifest, AirError> {
        let manifest: Manifest = serde_json::from_str(text).map_err(|e| AirError::Syntax {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        let duplicates = crate::validate::duplicate_json_keys(text);
        match manifest.validate(file) {
            Ok(()) if duplicates.is_empty() => Ok(manifest),
            Ok(()) => Err(ValidationError {
                file: file.to_string(),
                problems: duplicates,
            }
            .into()),
            Err(error) => {
                let mut error = error.located_in_json(text);
                error.problems.splice(0..0, duplicates);
                Err(error.into())
            }
        }
    }

    /// The canonical bytes: postcard of the model.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("the manifest model always encodes")
    }

    /// The model back from its canonical bytes, validated; `file` names the source in errors.
    pub fn from_canonical_bytes(bytes: &[u8], file: &str) -> Result<Manifest, AirError> {
        let manifest: Manifest = postcard::from_bytes(bytes).map_err(|e| AirError::Syntax {
            file: file.to_string(),
            message: format!("not the canonical encoding of a manifest: {e}"),
        })?;
        manifest.validate(file)?;
        Ok(manifest)
    }

    /// The JSON form, which [`Manifest::parse_json`] reads back (journals store this form).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the manifest model always encodes as JSON")
    }

    /// The TOML form, as `world.toml` holds it; fails only for what TOML cannot hold (a `null`
    /// inside an agent's config).
    pub fn to_toml(&self) -> Result<String, String> {
        let value = crate::patch::without_nulls(serde_json::to_value(self).expect("the manifest model always encodes"));
        toml::to_string(&value).map_err(|e| format!("the manifest cannot be written as TOML: {e}"))
    }

    /// Settings that are valid but weaken the world's containment, one sentence each, with the
    /// definition they are in (`air check` prints them).
    pub fn warnings(&self) -> Vec<String> {
        self.caps
            .iter()
            .filter_map(|(name, cap)| match cap {
                Cap::Compile(compile) if compile.sandbox == CompileSandbox::None => Some(format!(
                    "caps.{name}.sandbox = \"none\": builds run unconfined, with the host user's rights (they can read \
                     any file the user can, such as the world's host key, and the host's environment)"
                )),
                _ => None,
            })
            .collect()
    }

    /// sha256 of the canonical bytes: the manifest's identity.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_bytes()).into()
    }

    /// The capabilities an agent holds, by name.
    pub fn grants_of<'a>(&'a self, agent: &'a AgentDef) -> impl Iterator<Item = (&'a str, &'a Cap)> + 'a {
        self.caps_named(&agent.grants)
    }

    /// The capabilities of these names (names the manifest does not define are skipped).
    pub fn caps_named<'a>(
        &'a self,
        names: impl IntoIterator<Item = &'a String> + 'a,
    ) -> impl Iterator<Item = (&'a str, &'a Cap)> + 'a {
        names
            .into_iter()
            .filter_map(|name| self.caps.get(name).map(|cap| (name.as_str(), cap)))
    }
}
