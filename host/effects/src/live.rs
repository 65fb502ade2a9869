//! The live backend: grant check → intent → adapter → signed receipt → result.
//!
//! The receipt is signed on the world's signer thread while the step goes on; it is journaled
//! (and the step committed) only once signed.
//!
//! It also serves recovery: when a step that never committed is re-executed, calls whose
//! receipts are already journaled get those outcomes back (no effect runs twice), and a
//! non-idempotent call whose intent is journaled without a receipt gets `in-doubt`.

use super::EffectResponse;
use super::decide::{Facts, Permit, Verdict, decide};
use super::timer::TimerTable;
use super::{
    EffectBackend, EffectCall, EffectFailure, EffectOutcome, EffectRequest, blob, compile, emit, encode_outcome, fs,
    governance, http, llm, log, mcp, outcome_status, timer,
};
use crate::caps::{AgentGrants, BudgetLedger, OverBudget};
use crate::clock::Clock;
use crate::cores::Cores;
use crate::journal::SharedJournal;
use crate::journal::entry::{Digest, EffectIntent, EntryBody, ReceiptEntry, sha256};
use crate::receipts::{ReceiptBody, ReceiptSigner, Usage};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the journal already holds for a call of a step that never committed.
#[derive(Debug, Clone)]
pub enum RecoveredCall {
    Receipt {
        request_digest: Digest,
        outcome: EffectOutcome,
    },
    Intent {
        request_digest: Digest,
    },
}

pub struct LiveEffects {
    journal: SharedJournal,
    signer: Arc<ReceiptSigner>,
    world_id: [u8; 16],
    grants: Arc<AgentGrants>,
    event_types: Arc<super::emit::EventTypes>,
    budgets: Arc<Mutex<BudgetLedger>>,
    timers: Arc<Mutex<TimerTable>>,
    dirs: WorldDirs,
    key: Arc<crate::receipts::HostKey>,
    desk: Arc<dyn governance::GovernanceDesk>,
    clock: Arc<dyn Clock>,
    cores: Arc<Cores>,
    mcp: Arc<mcp::McpClients>,
    /// Timers scheduled by this step so far (not yet in the table: they commit with the step).
    scheduled: RefCell<Vec<u64>>,
    recovered: HashMap<(u64, u32), RecoveredCall>,
}

/// What a live backend needs to know about its world.
#[derive(Clone)]
pub struct LiveContext {
    pub journal: SharedJournal,
    pub signer: Arc<ReceiptSigner>,
    pub world_id: [u8; 16],
    /// What every agent and plan accepts, for checking emitted events.
    pub event_types: Arc<super::emit::EventTypes>,
    /// Use of budgeted grants, from every receipt so far.
    pub budgets: Arc<Mutex<BudgetLedger>>,
    /// The world's pending timers.
    pub timers: Arc<Mutex<TimerTable>>,
    pub dirs: WorldDirs,
    /// The host key in force, which signs proposals agents make.
    pub key: Arc<crate::receipts::HostKey>,
    /// Drafts and judges agents' governance calls against the world.
    pub desk: Arc<dyn governance::GovernanceDesk>,
    /// Times the receipts of live effects.
    pub clock: Arc<dyn Clock>,
    /// The cores steps run guest code on; an adapter's call gives its step's core back.
    pub cores: Arc<Cores>,
    /// The world's MCP servers.
    pub mcp: Arc<mcp::McpClients>,
}

/// Directories effects work in.
#[derive(Debug, Clone)]
pub struct WorldDirs {
    /// The world directory (module files of agents' proposals are read against it).
    pub root: std::path::PathBuf,
    /// Names the target directory the world's `compile` builds share, in the user's cache.
    pub world_id: [u8; 16],
}

impl LiveEffects {
    pub fn new(
        context: &LiveContext,
        grants: Arc<AgentGrants>,
        recovered: HashMap<(u64, u32), RecoveredCall>,
    ) -> LiveEffects {
        LiveEffects {
            journal: context.journal.clone(),
            signer: context.signer.clone(),
            world_id: context.world_id,
            grants,
            event_types: context.event_types.clone(),
            budgets: context.budgets.clone(),
            timers: context.timers.clone(),
            dirs: context.dirs.clone(),
            key: context.key.clone(),
            desk: context.desk.clone(),
            clock: context.clock.clone(),
            cores: context.cores.clone(),
            mcp: context.mcp.clone(),
            scheduled: RefCell::default(),
            recovered,
        }
    }

    /// Decide the call against the grants and the grant's budget and, if both allow it, run
    /// the adapter.
    fn execute(&self, call: &EffectCall<'_>) -> (Option<String>, EffectOutcome, Usage) {
        let (request, at_ms) = (call.request, call.at_ms);
        // What the decision depends on: the stored blob's size, the caller's pending timers.
        let mut stored = None;
        let mut facts = Facts::default();
        match request {
            EffectRequest::BlobGet { digest } => match blob::lookup(&self.journal(), digest) {
                Ok(bytes) => {
                    facts.blob_size = Some(bytes.len() as u64);
                    stored = Some(bytes);
                }
                Err(failure) => return (None, Err(failure), Usage::default()),
            },
            EffectRequest::TimerSchedule { .. } => {
                facts.pending_timers = self.timers.lock().expect("timer lock").pending_of(call.agent)
                    + self.scheduled.borrow().len() as u32;
            }
            _ => {}
        }
        let (grant, permit) = match decide(&self.grants, request, at_ms, facts) {
            Verdict::Allow { grant, permit } => (grant, permit),
            Verdict::Deny { reason } => return (None, Err(EffectFailure::Denied(reason)), Usage::default()),
            Verdict::Fail { grant, failure } => return (grant, Err(failure), Usage::default()),
        };
        if let Err(over) = self.admit(&grant, at_ms) {
            return (
                Some(grant),
                Err(EffectFailure::BudgetExceeded(over.to_string())),
                Usage::default(),
            );
        }
        // The step's core is free for others while the adapter waits on the world.
        self.cores.give();
        let (outcome, usage) = self.run(call, permit, stored);
        self.cores.take();
        (Some(grant), outcome, usage)
    }

    /// Run the adapter of an allowed call.
    fn run(&self, call: &EffectCall<'_>, permit: Permit<'_>, stored: Option<Vec<u8>>) -> (EffectOutcome, Usage) {
        let plain = |outcome: EffectOutcome| (outcome, Usage::default());
        match (call.request, permit) {
            (EffectRequest::Log { .. }, _) => plain(log::execute()),
            (
                EffectRequest::Http {
                    method, headers, body, ..
                },
                Permit::Http { cap, url },
            ) => http::execute(cap, method, &url, headers, body.as_deref()),
            (
                request @ (EffectRequest::FsRead { .. }
                | EffectRequest::FsListDir { .. }
                | EffectRequest::FsWrite { .. }),
                Permit::Fs { dir, relative },
            ) => fs::execute(request, &dir, &relative),
            (EffectRequest::BlobPut { contents }, _) => blob::put(&mut self.journal(), contents),
            (EffectRequest::BlobGet { .. }, _) => match stored {
                Some(bytes) => blob::got(bytes),
                None => plain(Err(EffectFailure::Failed("the blob was not looked up".into()))),
            },
            (
                EffectRequest::Llm {
                    model,
                    messages,
                    max_tokens,
                    temperature_milli,
                    stop,
                    ..
                },
                Permit::Llm { route },
            ) => llm::complete(
                &route,
                &llm::chat::Conversation {
                    model,
                    messages: llm::plain_messages(messages).into(),
                    tools: &[],
                    tool_choice: &llm::chat::ToolChoice::Auto,
                    response_format: None,
                    max_tokens: *max_tokens,
                    temperature_milli: *temperature_milli,
                    stop,
                },
            ),
            (
                EffectRequest::LlmChat {
                    model,
                    messages,
                    tools,
                    tool_choice,
                    response_format,
                    max_tokens,
                    temperature_milli,
                    stop,
                    ..
                },
                Permit::Llm { route },
            ) => llm::chat(
                &route,
                &llm::chat::Conversation {
                    model,
                    messages: messages.as_slice().into(),
                    tools,
                    tool_choice,
                    response_format: response_format.as_ref(),
                    max_tokens: *max_tokens,
                    temperature_milli: *temperature_milli,
                    stop,
                },
            ),
            (EffectRequest::TimerSchedule { event, .. }, Permit::Timer { due_ms }) => {
                let id = timer::timer_id(call.ingress, call.index);
                let outcome = timer::schedule(self.event_types.agents.get(call.agent), id, due_ms, event);
                if outcome.is_ok() {
                    self.scheduled.borrow_mut().push(id);
                }
                plain(outcome)
            }
            (EffectRequest::TimerCancel { id }, _) => {
                let owned = self.scheduled.borrow().contains(id)
                    || self
                        .timers
                        .lock()
                        .expect("timer lock")
                        .pending
                        .get(id)
                        .is_some_and(|t| t.agent == call.agent);
                plain(if owned {
                    Ok(EffectResponse::TimerCancelled { id: *id })
                } else {
                    Err(EffectFailure::Failed(format!(
                        "agent `{}` has no pending timer {id}",
                        call.agent
                    )))
                })
            }
            (EffectRequest::Compile { language, files }, Permit::Compile { cap }) => {
                compile::execute(cap, language, files, &self.journal, self.dirs.world_id)
            }
            (EffectRequest::GovernanceManifest, _) => plain(governance::manifest(&self.journal())),
            (EffectRequest::GovernancePropose { change, description }, _) => {
                let mut journal = self.journal();
                plain(self.desk.propose(
                    &mut journal,
                    &self.dirs.root,
                    &self.key,
                    call.agent,
                    change,
                    description,
                ))
            }
            (EffectRequest::GovernanceApprove { proposal, comment }, _) => {
                let mut journal = self.journal();
                plain(
                    self.desk
                        .approve(&mut journal, &self.key, call.agent, proposal, comment),
                )
            }
            (EffectRequest::Emit { target, event }, _) => plain(emit::execute(&self.event_types, target, event)),
            (EffectRequest::McpListTools { server }, _) => plain(self.list_tools(server.as_deref())),
            (
                EffectRequest::McpCall {
                    server,
                    tool,
                    arguments,
                },
                _,
            ) => self.call_tool(call, server, tool, arguments),
            (request, _) => plain(Err(EffectFailure::Failed(format!(
                "the decision on a {} call carried no permit for it",
                request.effect()
            )))),
        }
    }

    /// Whether `request` gets its intent before anything else. A tool call's is decided once
    /// the call is allowed and its server's listing is at hand (see [`LiveEffects::call_tool`]).
    fn intent_first(request: &EffectRequest) -> bool {
        !request.idempotent() && !matches!(request, EffectRequest::McpCall { .. })
    }

    /// Journal and commit the intent of `call`, before its effect runs.
    fn journal_intent(&self, call: &EffectCall<'_>) -> Result<(), crate::journal::JournalError> {
        let mut journal = self.journal();
        journal.append(EntryBody::EffectIntent(EffectIntent {
            ingress: call.ingress,
            effect_index: call.index,
            effect: call.request.effect().to_string(),
            request_digest: call.request_digest,
        }));
        journal.commit()
    }

    /// Whether calling `tool` twice is calling it once: the server declares it read-only or
    /// idempotent and the grant trusts that.
    fn trusted_to_repeat(&self, server: &str, tool: &str) -> bool {
        matches!(self.grants.check_mcp(server, tool), Ok((_, true)))
            && self.mcp.tools(server).is_ok_and(|tools| {
                tools
                    .iter()
                    .find(|t| t.name == tool)
                    .is_some_and(|t| mcp::tool_info(server, t, true).idempotent)
            })
    }

    /// The granted tools of `server` (of every granted server when `None`).
    fn list_tools(&self, server: Option<&str>) -> EffectOutcome {
        let servers = match server {
            Some(server) => vec![server],
            None => self.grants.mcp_servers(),
        };
        let mut listed = Vec::new();
        for server in servers {
            let tools = self.mcp.tools(server).map_err(EffectFailure::Failed)?;
            for tool in &tools {
                if let Ok((_, trust)) = self.grants.check_mcp(server, &tool.name) {
                    listed.push(mcp::tool_info(server, tool, trust));
                }
            }
        }
        Ok(EffectResponse::McpTools(listed))
    }

    /// Call a granted tool, its intent journaled first unless it is trusted to repeat; bytes it
    /// returns go to the blob store.
    fn call_tool(&self, call: &EffectCall<'_>, server: &str, tool: &str, arguments: &str) -> (EffectOutcome, Usage) {
        let failed = |reason: String| (Err(EffectFailure::Failed(reason)), Usage::default());
        let Some(arguments) = llm::chat::json_object(arguments) else {
            return failed(format!("the arguments of `{server}/{tool}` are not a JSON object"));
        };
        if !self.trusted_to_repeat(server, tool)
            && let Err(error) = self.journal_intent(call)
        {
            return failed(format!(
                "the call's intent could not be journaled, so it was not made: {error}"
            ));
        }
        let sent = serde_json::to_string(&arguments).map_or(0, |text| text.len() as u64);
        let mut store = |bytes: &[u8]| format!("sha256:{}", hex::encode(self.journal().put_blob(bytes)));
        let (outcome, received) = match self.mcp.call(server, tool, arguments, &mut store) {
            Ok(result) => {
                let received = result.text_bytes() + result.stored_bytes();
                (Ok(EffectResponse::McpResult(result)), received)
            }
            Err(mcp::CallFailure::Failed(reason)) => (Err(EffectFailure::Failed(reason)), 0),
            Err(mcp::CallFailure::Timeout(reason)) => (Err(EffectFailure::Timeout(reason)), 0),
        };
        (
            outcome,
            Usage {
                bytes_sent: sent,
                bytes_received: received,
                ..Usage::default()
            },
        )
    }

    /// Whether the grant's budget, if any, admits one more call at logical time `at_ms`.
    fn admit(&self, grant: &str, at_ms: u64) -> Result<(), OverBudget> {
        match self.grants.budget(grant) {
            Some(budget) => self
                .budgets
                .lock()
                .expect("budget lock")
                .admit(&self.grants.agent, grant, budget, at_ms),
            None => Ok(()),
        }
    }

    /// The receipt's subject; an llm call names the provider its grant resolved, and a chat
    /// turn the tool calls the model asked for.
    fn subject(&self, request: &EffectRequest, outcome: &EffectOutcome) -> String {
        let subject = match request {
            EffectRequest::Llm {
                provider: None,
                model,
                max_tokens,
                ..
            }
            | EffectRequest::LlmChat {
                provider: None,
                model,
                max_tokens,
                ..
            } => match self.grants.check_llm(None, model, *max_tokens) {
                Ok((_, route)) => format!("{}/{model}", route.provider_name),
                Err(_) => request.subject(),
            },
            _ => request.subject(),
        };
        match outcome {
            Ok(EffectResponse::Chat { tool_calls, .. }) if !tool_calls.is_empty() => {
                let names: Vec<&str> = tool_calls.iter().map(|call| call.name.as_str()).collect();
                format!("{subject} → tool calls: {}", names.join(", "))
            }
            _ => subject,
        }
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, crate::journal::Journal> {
        self.journal.lock().expect("journal lock poisoned")
    }

    fn journal_receipt(
        &self,
        call: &EffectCall<'_>,
        grant: Option<String>,
        outcome: &EffectOutcome,
        (started_ms, finished_ms): (u64, u64),
        usage: Usage,
    ) -> wasmtime::Result<()> {
        let outcome_bytes = encode_outcome(outcome);
        let body = ReceiptBody {
            version: crate::receipts::RECEIPT_VERSION,
            world_id: self.world_id,
            ingress: call.ingress,
            effect_index: call.index,
            agent: call.agent.to_string(),
            effect: call.request.effect().to_string(),
            subject: self.subject(call.request, outcome),
            grant,
            request_digest: call.request_digest,
            outcome_digest: sha256(&outcome_bytes),
            status: outcome_status(outcome),
            started_ms,
            finished_ms,
            usage,
            key_id: self.signer.key_id(),
        };
        self.budgets
            .lock()
            .expect("budget lock")
            .count(|grant| self.grants.budget(grant).is_some(), &body, call.at_ms);
        let receipt = self.signer.submit(body);
        let mut journal = self
            .journal
            .lock()
            .map_err(|_| wasmtime::format_err!("journal lock poisoned"))?;
        let request = journal.payload(call.request_bytes);
        let outcome = journal.payload(&outcome_bytes);
        journal.append_deferred(move || {
            EntryBody::EffectReceipt(ReceiptEntry {
                receipt: receipt.wait(),
                request,
                outcome,
            })
        });
        Ok(())
    }
}

impl EffectBackend for LiveEffects {
    fn live(&self) -> bool {
        true
    }

    fn perform(&mut self, call: &EffectCall<'_>) -> wasmtime::Result<EffectOutcome> {
        match self.recovered.remove(&(call.ingress, call.index)) {
            Some(RecoveredCall::Receipt {
                request_digest,
                outcome,
            }) if request_digest == call.request_digest => {
                return Ok(outcome);
            }
            Some(RecoveredCall::Intent { request_digest }) if request_digest == call.request_digest => {
                let now = self.clock.now_ms();
                let outcome = Err(EffectFailure::InDoubt(format!(
                    "{} started before the host stopped and its outcome is unknown; it is not retried",
                    call.request.summary()
                )));
                self.journal_receipt(call, None, &outcome, (now, now), Usage::default())?;
                return Ok(outcome);
            }
            _ => {}
        }
        if Self::intent_first(call.request) {
            self.journal_intent(call)?;
        }
        let started = self.clock.now_ms();
        let (grant, outcome, usage) = self.execute(call);
        self.journal_receipt(call, grant, &outcome, (started, self.clock.now_ms()), usage)?;
        Ok(outcome)
    }
}
