//! `agentos-effects`: the one choke point through which every guest side effect passes.
//!
//! A guest call lands in the runtime's implementation of its WIT interface
//! (`agentos_runtime::interfaces`), which converts it into an [`EffectRequest`] and hands it to
//! [`EffectGate::call`]. The gate
//! numbers the call within its step, encodes and hashes the request, and asks its
//! [`EffectBackend`] for the outcome. There are two backends and the stepper cannot tell them
//! apart: [`live::LiveEffects`] checks the grant, journals an intent for non-idempotent calls,
//! runs the adapter and signs and journals a receipt; [`replay::ReplayEffects`] serves the
//! outcome recorded in the journal after checking that the request is the one recorded.
//! No other code path runs an adapter.

pub mod blob;
pub mod caps;
pub mod clock;
pub mod compile;
pub mod components;
pub mod cores;
pub mod decide;
pub mod emit;
pub mod fs;
pub mod governance;
pub mod http;
pub mod live;
pub mod llm;
pub mod log;
pub mod mcp;
pub mod plan_values;
pub mod replay;
pub mod sandbox;
pub mod shadow;
pub mod timer;
pub mod values;

pub use agentos_journal as journal;
pub use agentos_journal::{private, receipts, text};

use crate::journal::entry::{Digest, sha256};
use crate::receipts::ReceiptStatus;
use serde::{Deserialize, Serialize};

/// Most effect calls one step may make; the next one traps.
pub const EFFECTS_MAX_PER_STEP: u32 = 1_000;
/// Lines of MCP servers' stderr one step journals as its output (the rest are counted).
pub const SERVER_LINES_MAX_PER_STEP: usize = 256;

/// A guest's request, in the canonical form that is hashed into its receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EffectRequest {
    Log {
        level: String,
        message: String,
    },
    Http {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
    },
    FsRead {
        path: String,
    },
    FsWrite {
        path: String,
        contents: Vec<u8>,
    },
    FsListDir {
        path: String,
    },
    BlobPut {
        contents: Vec<u8>,
    },
    BlobGet {
        digest: String,
    },
    Emit {
        target: String,
        event: String,
    },
    Llm {
        provider: Option<String>,
        model: String,
        messages: Vec<(String, String)>,
        max_tokens: u32,
        temperature_milli: Option<u32>,
        stop: Vec<String>,
    },
    TimerSchedule {
        when: TimerWhen,
        event: String,
    },
    TimerCancel {
        id: u64,
    },
    Compile {
        language: String,
        files: Vec<(String, Vec<u8>)>,
    },
    /// The manifest of record in force, as JSON.
    GovernanceManifest,
    /// A proposal authored by the calling agent: a patch or a whole manifest (JSON).
    GovernancePropose {
        change: String,
        description: String,
    },
    /// An approval by the calling agent, where the policy names it an approver.
    GovernanceApprove {
        proposal: String,
        comment: String,
    },
    /// A turn of a conversation with tools (`llm.chat`, contract 0.2.0). New requests take new
    /// variants at the end: the encoding of every earlier one stays as journals hold it.
    LlmChat {
        provider: Option<String>,
        model: String,
        messages: Vec<llm::chat::ChatMessage>,
        tools: Vec<llm::chat::ToolSpec>,
        tool_choice: llm::chat::ToolChoice,
        response_format: Option<llm::chat::ResponseFormat>,
        max_tokens: u32,
        temperature_milli: Option<u32>,
        stop: Vec<String>,
    },
    /// The tools the caller's grants allow, of one server or of all (`mcp.list-tools`).
    McpListTools {
        server: Option<String>,
    },
    /// A tool call (`mcp.call-tool`); `arguments` is JSON text of an object.
    McpCall {
        server: String,
        tool: String,
        arguments: String,
    },
}

/// When a timer fires, as the guest asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerWhen {
    /// Milliseconds after the scheduling event's logical time.
    AfterMs(u64),
    /// An absolute logical time.
    AtMs(u64),
}

impl EffectRequest {
    /// The effect interface this request belongs to.
    pub fn effect(&self) -> &'static str {
        match self {
            EffectRequest::Log { .. } => "log",
            EffectRequest::Http { .. } => "http",
            EffectRequest::FsRead { .. } | EffectRequest::FsWrite { .. } | EffectRequest::FsListDir { .. } => "fs",
            EffectRequest::BlobPut { .. } | EffectRequest::BlobGet { .. } => "blob",
            EffectRequest::Emit { .. } => "emit",
            EffectRequest::Llm { .. } | EffectRequest::LlmChat { .. } => "llm",
            EffectRequest::McpListTools { .. } | EffectRequest::McpCall { .. } => "mcp",
            EffectRequest::TimerSchedule { .. } | EffectRequest::TimerCancel { .. } => "timer",
            EffectRequest::Compile { .. } => "compile",
            EffectRequest::GovernanceManifest
            | EffectRequest::GovernancePropose { .. }
            | EffectRequest::GovernanceApprove { .. } => "governance",
        }
    }

    /// Whether running it twice has the same effect as once. Non-idempotent calls get a
    /// durable intent before they run, and are never retried after a crash.
    pub fn idempotent(&self) -> bool {
        match self {
            EffectRequest::Http { method, .. } => matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS"),
            EffectRequest::FsWrite { .. } => false,
            EffectRequest::Log { .. } | EffectRequest::FsRead { .. } | EffectRequest::FsListDir { .. } => true,
            // Content-addressed: storing the same bytes twice is storing them once.
            EffectRequest::BlobPut { .. } | EffectRequest::BlobGet { .. } => true,
            // Local and transactional: an emitted event is journaled only when the step commits.
            EffectRequest::Emit { .. } => true,
            // A completion changes nothing outside; retrying costs tokens but is safe.
            EffectRequest::Llm { .. } | EffectRequest::LlmChat { .. } => true,
            // Listing changes nothing. A call may change anything the server can: it gets an
            // intent first, unless the server declares the tool read-only or idempotent and
            // the grant trusts that (`live` decides: `safe_to_repeat`).
            EffectRequest::McpListTools { .. } => true,
            EffectRequest::McpCall { .. } => false,
            // Transactional like emit: timers are journaled only when the step commits.
            EffectRequest::TimerSchedule { .. } | EffectRequest::TimerCancel { .. } => true,
            // Local and side-effect free: a build only writes its scratch directory.
            EffectRequest::Compile { .. } => true,
            // Journal-local: a proposal or verdict is appended in the same commit as its receipt.
            EffectRequest::GovernanceManifest
            | EffectRequest::GovernancePropose { .. }
            | EffectRequest::GovernanceApprove { .. } => true,
        }
    }

    /// What the call addressed, as recorded in its receipt. An llm call without a provider is
    /// recorded with the provider the grant resolved it to (see `live`).
    pub fn subject(&self) -> String {
        match self {
            EffectRequest::Log { level, .. } => level.clone(),
            EffectRequest::Http { method, url, .. } => format!("{method} {url}"),
            EffectRequest::FsRead { path }
            | EffectRequest::FsWrite { path, .. }
            | EffectRequest::FsListDir { path } => path.clone(),
            EffectRequest::BlobPut { contents } => format!("{} bytes", contents.len()),
            EffectRequest::BlobGet { digest } => digest.clone(),
            EffectRequest::Emit { target, .. } => target.clone(),
            EffectRequest::Llm { provider, model, .. } | EffectRequest::LlmChat { provider, model, .. } => {
                format!("{}/{model}", provider.as_deref().unwrap_or("default"))
            }
            EffectRequest::TimerSchedule { .. } => "schedule".into(),
            EffectRequest::TimerCancel { id } => format!("cancel {id}"),
            EffectRequest::Compile { language, .. } => language.clone(),
            EffectRequest::GovernanceManifest => "manifest".into(),
            EffectRequest::GovernancePropose { .. } => "propose".into(),
            EffectRequest::GovernanceApprove { proposal, .. } => format!("approve {proposal}"),
            EffectRequest::McpListTools { server } => format!("{}/tools", server.as_deref().unwrap_or("*")),
            EffectRequest::McpCall {
                server,
                tool,
                arguments,
            } => format!(
                "{server}/{tool} arguments sha256:{}",
                hex::encode(&sha256(arguments.as_bytes())[..8])
            ),
        }
    }

    /// One line for humans (`log`, divergence reports).
    pub fn summary(&self) -> String {
        match self {
            EffectRequest::Log { level, message } => format!("log {level}: {message}"),
            EffectRequest::Http { method, url, .. } => format!("http {method} {url}"),
            EffectRequest::FsRead { path } => format!("fs read {path}"),
            EffectRequest::FsWrite { path, contents } => format!("fs write {path} ({} bytes)", contents.len()),
            EffectRequest::FsListDir { path } => format!("fs list-dir {path}"),
            EffectRequest::BlobPut { contents } => format!("blob put ({} bytes)", contents.len()),
            EffectRequest::BlobGet { digest } => format!("blob get {digest}"),
            EffectRequest::Emit { target, event } => format!("emit {target} {event}"),
            EffectRequest::TimerSchedule {
                when: TimerWhen::AfterMs(ms),
                event,
            } => format!("timer in {ms} ms: {event}"),
            EffectRequest::TimerSchedule {
                when: TimerWhen::AtMs(ms),
                event,
            } => format!("timer at t={ms} ms: {event}"),
            EffectRequest::TimerCancel { id } => format!("timer cancel {id}"),
            EffectRequest::Compile { language, files } => {
                let bytes: usize = files.iter().map(|(_, c)| c.len()).sum();
                format!("compile {language} ({} files, {bytes} bytes)", files.len())
            }
            EffectRequest::GovernanceManifest => "governance manifest".into(),
            EffectRequest::GovernancePropose { change, description } => {
                format!("governance propose {description:?} ({} bytes)", change.len())
            }
            EffectRequest::GovernanceApprove { proposal, .. } => format!("governance approve #{proposal}"),
            EffectRequest::Llm {
                provider,
                model,
                max_tokens,
                ..
            } => {
                format!(
                    "llm {}/{model} (max {max_tokens} tokens)",
                    provider.as_deref().unwrap_or("default")
                )
            }
            EffectRequest::McpListTools { server } => {
                format!(
                    "mcp list-tools {}",
                    server.as_deref().unwrap_or("(every granted server)")
                )
            }
            EffectRequest::McpCall {
                server,
                tool,
                arguments,
            } => {
                let excerpt: String = arguments.chars().take(80).collect();
                format!("mcp {server}/{tool}({excerpt})")
            }
            EffectRequest::LlmChat {
                provider,
                model,
                messages,
                tools,
                max_tokens,
                ..
            } => format!(
                "llm chat {}/{model} ({} messages, {} tools, max {max_tokens} tokens)",
                provider.as_deref().unwrap_or("default"),
                messages.len(),
                tools.len()
            ),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("effect requests always encode")
    }
}

/// A successful effect result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EffectResponse {
    Unit,
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Bytes(Vec<u8>),
    Names(Vec<String>),
    Digest(String),
    /// The event as journaled for the target (canonical WAVE); the guest sees unit.
    Emitted {
        target: String,
        event: String,
    },
    Completion {
        text: String,
        finish_reason: String,
        input_tokens: u32,
        output_tokens: u32,
    },
    TimerScheduled {
        id: u64,
        due_ms: u64,
        event: String,
    },
    TimerCancelled {
        id: u64,
    },
    Artifact {
        digest: String,
        size: u64,
        toolchain: String,
    },
    /// The manifest of record, JSON.
    Manifest(String),
    /// A proposal journaled at entry `proposal`, with its hash (hex).
    Proposed {
        proposal: u64,
        hash: String,
    },
    /// A conversation's next turn: text and the tool calls the model asked for.
    Chat {
        text: String,
        tool_calls: Vec<llm::chat::ToolCall>,
        finish_reason: String,
        input_tokens: u32,
        output_tokens: u32,
    },
    /// The tools of `mcp.list-tools`.
    McpTools(Vec<mcp::McpToolInfo>),
    /// A tool's result.
    McpResult(mcp::McpResult),
}

/// What a step asked for that takes effect only if the step commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferred {
    Emit {
        target: String,
        event: String,
    },
    TimerScheduled {
        id: u64,
        due_ms: u64,
        event: String,
    },
    TimerCancelled {
        id: u64,
    },
    /// A plan run goes on with its next step at the plan's next turn.
    Continue {
        run: u64,
    },
}

impl Deferred {
    fn of(response: &EffectResponse) -> Option<Deferred> {
        match response {
            EffectResponse::Emitted { target, event } => Some(Deferred::Emit {
                target: target.clone(),
                event: event.clone(),
            }),
            EffectResponse::TimerScheduled { id, due_ms, event } => Some(Deferred::TimerScheduled {
                id: *id,
                due_ms: *due_ms,
                event: event.clone(),
            }),
            EffectResponse::TimerCancelled { id } => Some(Deferred::TimerCancelled { id: *id }),
            _ => None,
        }
    }
}

/// An effect's failure as the guest sees it (`effect-error` in WIT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EffectFailure {
    Denied(String),
    Failed(String),
    BudgetExceeded(String),
    InDoubt(String),
    Timeout(String),
}

/// What an effect call produced; its encoding is hashed into the receipt.
pub type EffectOutcome = Result<EffectResponse, EffectFailure>;

pub fn encode_outcome(outcome: &EffectOutcome) -> Vec<u8> {
    postcard::to_allocvec(outcome).expect("effect outcomes always encode")
}

pub fn outcome_status(outcome: &EffectOutcome) -> ReceiptStatus {
    match outcome {
        Ok(_) => ReceiptStatus::Ok,
        Err(EffectFailure::Denied(_)) => ReceiptStatus::Denied,
        Err(EffectFailure::Failed(_)) => ReceiptStatus::Failed,
        Err(EffectFailure::BudgetExceeded(_)) => ReceiptStatus::BudgetExceeded,
        Err(EffectFailure::InDoubt(_)) => ReceiptStatus::InDoubt,
        Err(EffectFailure::Timeout(_)) => ReceiptStatus::Timeout,
    }
}

/// One call arriving at the backend.
#[derive(Debug)]
pub struct EffectCall<'a> {
    pub agent: &'a str,
    pub ingress: u64,
    /// Logical time of the step.
    pub at_ms: u64,
    pub index: u32,
    pub request: &'a EffectRequest,
    pub request_bytes: &'a [u8],
    pub request_digest: Digest,
}

/// Where outcomes come from: live adapters, or the journal. See the module docs.
pub trait EffectBackend: Send {
    /// Produce the outcome of one call. `Err` traps the guest (a divergence, a journal fault).
    fn perform(&mut self, call: &EffectCall<'_>) -> wasmtime::Result<EffectOutcome>;

    /// Whether outcomes come from running adapters now (so waiting between retries is real).
    fn live(&self) -> bool {
        false
    }
}

/// What one step may ask of the gate besides its calls (from the agent's AIR; plans take the
/// defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateLimits {
    /// Bytes of requests and outcomes (what the journal holds for the step until it commits).
    pub payload_max_bytes: u64,
    /// Events emitted to other agents.
    pub emits_max: u32,
}

impl GateLimits {
    pub fn of(def: &agentos_air::AgentDef) -> GateLimits {
        GateLimits {
            payload_max_bytes: def.step_payload_max_bytes,
            emits_max: def.step_emits_max,
        }
    }
}

impl Default for GateLimits {
    fn default() -> GateLimits {
        GateLimits {
            payload_max_bytes: agentos_air::AgentDef::DEFAULT_STEP_PAYLOAD_MAX_BYTES,
            emits_max: agentos_air::AgentDef::DEFAULT_STEP_EMITS_MAX,
        }
    }
}

/// What the current step has used of its [`GateLimits`], and of host time.
#[derive(Debug, Default)]
struct StepUse {
    calls: u32,
    payload_bytes: u64,
    emits: u32,
    in_effects: std::time::Duration,
}

/// The choke point, one per instance, living in the store.
pub struct EffectGate {
    agent: String,
    backend: Option<Box<dyn EffectBackend>>,
    /// The step's ingress, while one is under way.
    step: Option<u64>,
    at_ms: u64,
    limits: GateLimits,
    used: StepUse,
    deferred: Vec<Deferred>,
    /// What MCP servers wrote to their stderr during the step's calls, `[server] line`
    /// (the first [`SERVER_LINES_MAX_PER_STEP`]), and how many more there were.
    server_lines: Vec<String>,
    server_lines_dropped: usize,
}

impl EffectGate {
    pub fn new(agent: &str) -> EffectGate {
        EffectGate {
            agent: agent.to_string(),
            backend: None,
            step: None,
            at_ms: 0,
            limits: GateLimits::default(),
            used: StepUse::default(),
            deferred: Vec::new(),
            server_lines: Vec::new(),
            server_lines_dropped: 0,
        }
    }

    /// Host time the current step's effect calls took (not the guest's: its deadline ignores it).
    pub fn effect_time(&self) -> std::time::Duration {
        self.used.in_effects
    }

    /// Install the backend that serves the following steps.
    pub fn set_backend(&mut self, backend: Box<dyn EffectBackend>) {
        self.backend = Some(backend);
    }

    /// Start numbering calls for the step of ingress entry `ingress` at logical time `at_ms`,
    /// under `limits`.
    pub fn begin_step(&mut self, ingress: u64, at_ms: u64, limits: GateLimits) {
        self.step = Some(ingress);
        self.at_ms = at_ms;
        self.limits = limits;
        self.used = StepUse::default();
        self.deferred.clear();
        self.server_lines.clear();
        self.server_lines_dropped = 0;
    }

    /// Stop accepting calls; returns how many the step made and what it deferred (events to
    /// send, timers to set or cancel), which the stepper journals if the step commits.
    pub fn end_step(&mut self) -> (u32, Vec<Deferred>) {
        self.step = None;
        (self.used.calls, std::mem::take(&mut self.deferred))
    }

    /// What MCP servers wrote to their stderr during the step's calls, as `[server] line`
    /// (from the calls' outcomes, live or recorded): the step's output lines of
    /// `Stream::ServerStderr`.
    pub fn take_server_lines(&mut self) -> Vec<String> {
        let mut lines = std::mem::take(&mut self.server_lines);
        match std::mem::take(&mut self.server_lines_dropped) {
            0 => {}
            dropped => lines.push(format!("… {dropped} more lines (in the calls' outcomes)")),
        }
        lines
    }

    /// Every effect call of every interface goes through here.
    pub fn call(&mut self, request: EffectRequest) -> wasmtime::Result<EffectOutcome> {
        let Some(ingress) = self.step else {
            wasmtime::bail!(
                "agent `{}` called `{}` outside a step (effects are not available in init or restore)",
                self.agent,
                request.effect()
            );
        };
        let used = &mut self.used;
        if used.calls >= EFFECTS_MAX_PER_STEP {
            wasmtime::bail!(
                "agent `{}` exceeded {EFFECTS_MAX_PER_STEP} effect calls in one step",
                self.agent
            );
        }
        if matches!(request, EffectRequest::Emit { .. }) {
            if used.emits >= self.limits.emits_max {
                wasmtime::bail!(
                    "agent `{}` emitted more than step_emits_max ({}) events in one step",
                    self.agent,
                    self.limits.emits_max
                );
            }
            used.emits += 1;
        }
        let index = used.calls;
        used.calls += 1;
        let request_bytes = request.encode();
        let call = EffectCall {
            agent: &self.agent,
            ingress,
            at_ms: self.at_ms,
            index,
            request: &request,
            request_digest: sha256(&request_bytes),
            request_bytes: &request_bytes,
        };
        let backend = self
            .backend
            .as_mut()
            .expect("the stepper installs a backend before the first step");
        let started = std::time::Instant::now();
        let outcome = backend.perform(&call);
        used.in_effects += started.elapsed();
        let outcome = outcome?;
        // What the journal holds for this call until the step commits: its request and outcome,
        // and the blobs a build or a tool stored.
        let artifact_bytes = match &outcome {
            Ok(EffectResponse::Artifact { size, .. }) => *size,
            Ok(EffectResponse::McpResult(result)) => result.stored_bytes(),
            _ => 0,
        };
        used.payload_bytes += (request_bytes.len() + encode_outcome(&outcome).len()) as u64 + artifact_bytes;
        if used.payload_bytes > self.limits.payload_max_bytes {
            wasmtime::bail!(
                "agent `{}`: the step's effect requests and outcomes came to {} bytes, more than its \
                 step_payload_max_bytes ({})",
                self.agent,
                used.payload_bytes,
                self.limits.payload_max_bytes
            );
        }
        if let Some(deferred) = outcome.as_ref().ok().and_then(Deferred::of) {
            self.deferred.push(deferred);
        }
        if let (EffectRequest::McpCall { server, .. }, Ok(EffectResponse::McpResult(result))) = (&request, &outcome) {
            for line in &result.stderr {
                if self.server_lines.len() < SERVER_LINES_MAX_PER_STEP {
                    self.server_lines.push(format!("[{server}] {line}"));
                } else {
                    self.server_lines_dropped += 1;
                }
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every call with a tool result whose server wrote 100 lines to its stderr.
    struct Chatty;

    impl EffectBackend for Chatty {
        fn perform(&mut self, _call: &EffectCall<'_>) -> wasmtime::Result<EffectOutcome> {
            Ok(Ok(EffectResponse::McpResult(mcp::McpResult {
                content: Vec::new(),
                structured: None,
                is_error: false,
                stderr: (0..100).map(|n| format!("line {n}")).collect(),
            })))
        }
    }

    #[test]
    fn a_step_journals_its_servers_first_lines_and_counts_the_rest() {
        let mut gate = EffectGate::new("a");
        gate.set_backend(Box::new(Chatty));
        let limits = GateLimits {
            payload_max_bytes: u64::MAX,
            emits_max: 0,
        };
        gate.begin_step(7, 0, limits);
        for _ in 0..3 {
            let request = EffectRequest::McpCall {
                server: "files".into(),
                tool: "chatter".into(),
                arguments: "{}".into(),
            };
            gate.call(request).unwrap().unwrap();
        }
        gate.end_step();
        let lines = gate.take_server_lines();
        assert_eq!(lines.len(), SERVER_LINES_MAX_PER_STEP + 1);
        assert_eq!(lines[0], "[files] line 0");
        assert_eq!(lines[SERVER_LINES_MAX_PER_STEP - 1], "[files] line 55");
        assert_eq!(
            lines[SERVER_LINES_MAX_PER_STEP],
            "… 44 more lines (in the calls' outcomes)"
        );
        // The next step starts with none.
        gate.begin_step(8, 0, limits);
        assert!(gate.take_server_lines().is_empty());
    }
}
