//! The live backend: grant check → intent → adapter → signed receipt → result.
//!
//! The receipt is signed on the world's signer thread while the step goes on; it is journaled
//! (and the step committed) only once signed.
//!
//! It also serves recovery: when a step that never committed is re-executed, calls whose
//! receipts are already journaled get those outcomes back (no effect runs twice), and a
//! non-idempotent call whose intent is journaled without a receipt gets `in-doubt`.

use super::EffectResponse;
use super::timer::TimerTable;
use super::{
    EffectBackend, EffectCall, EffectFailure, EffectOutcome, EffectRequest, blob, compile, emit, encode_outcome, fs,
    governance, http, llm, log, outcome_status, timer,
};
use crate::caps::{AgentGrants, BudgetLedger, Decision};
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
            scheduled: RefCell::default(),
            recovered,
        }
    }

    /// Check the grant and the grant's budget and, if both allow it, run the adapter.
    fn execute(&self, call: &EffectCall<'_>) -> (Option<String>, EffectOutcome, Usage) {
        let (request, at_ms) = (call.request, call.at_ms);
        type Run<'a> = Box<dyn FnOnce() -> (EffectOutcome, Usage) + 'a>;
        let (decision, run): (Decision, Option<Run<'_>>) = match request {
            EffectRequest::Log { .. } => (
                Decision::Allow { grant: "log".into() },
                Some(Box::new(|| (log::execute(), Usage::default()))),
            ),
            EffectRequest::Http {
                method,
                url,
                headers,
                body,
            } => {
                let (decision, checked) = self.grants.check_http(method, url, headers);
                (
                    decision,
                    checked.map(|(cap, url)| {
                        Box::new(move || http::execute(cap, method, &url, headers, body.as_deref())) as Run<'_>
                    }),
                )
            }
            EffectRequest::FsRead { path }
            | EffectRequest::FsListDir { path }
            | EffectRequest::FsWrite { path, .. } => {
                let write = matches!(request, EffectRequest::FsWrite { .. });
                let (decision, target) = self.grants.check_fs(path, write);
                (
                    decision,
                    target.map(|(dir, relative)| Box::new(move || fs::execute(request, &dir, &relative)) as Run<'_>),
                )
            }
            EffectRequest::BlobPut { contents } => (
                self.grants.check_blob(contents.len() as u64),
                Some(Box::new(|| blob::put(&mut self.journal(), contents))),
            ),
            EffectRequest::BlobGet { digest } => {
                // The size limit applies to the stored bytes, so the decision follows the lookup;
                // reading has no side effect, so the budget may be checked after it.
                let (grant, outcome, usage) = blob::get(&self.journal(), digest, |size| self.grants.check_blob(size));
                if let Some(grant) = &grant
                    && let Err(reason) = self.admit(grant, at_ms)
                {
                    return (
                        Some(grant.clone()),
                        Err(EffectFailure::BudgetExceeded(reason)),
                        Usage::default(),
                    );
                }
                return (grant, outcome, usage);
            }
            EffectRequest::Llm {
                provider,
                model,
                messages,
                max_tokens,
                temperature_milli,
                stop,
            } => match self.grants.check_llm(provider.as_deref(), model, *max_tokens) {
                Ok((grant, route)) => {
                    let run = move || {
                        let prompt = llm::Prompt {
                            model,
                            messages,
                            max_tokens: *max_tokens,
                            temperature_milli: *temperature_milli,
                            stop,
                        };
                        llm::execute(&route, &prompt)
                    };
                    (Decision::Allow { grant }, Some(Box::new(run)))
                }
                Err(reason) => (Decision::Deny { reason }, None),
            },
            EffectRequest::TimerSchedule { when, event } => {
                let (due_ms, delay_ms) = match timer::due(*when, at_ms) {
                    Ok(due) => due,
                    Err(failure) => {
                        return (
                            self.grants.timer_grant().map(str::to_string),
                            Err(failure),
                            Usage::default(),
                        );
                    }
                };
                let pending = self.timers.lock().expect("timer lock").pending_of(call.agent)
                    + self.scheduled.borrow().len() as u32;
                let id = timer::timer_id(call.ingress, call.index);
                let run = move || {
                    let outcome = timer::schedule(self.event_types.agents.get(call.agent), id, due_ms, event);
                    if outcome.is_ok() {
                        self.scheduled.borrow_mut().push(id);
                    }
                    (outcome, Usage::default())
                };
                (self.grants.check_timer(delay_ms, pending), Some(Box::new(run)))
            }
            EffectRequest::TimerCancel { id } => {
                let Some(grant) = self.grants.timer_grant() else {
                    return (
                        None,
                        Err(EffectFailure::Denied("no timer grant".into())),
                        Usage::default(),
                    );
                };
                let run = move || {
                    let owned = self.scheduled.borrow().contains(id)
                        || self
                            .timers
                            .lock()
                            .expect("timer lock")
                            .pending
                            .get(id)
                            .is_some_and(|t| t.agent == call.agent);
                    let outcome = if owned {
                        Ok(EffectResponse::TimerCancelled { id: *id })
                    } else {
                        Err(EffectFailure::Failed(format!(
                            "agent `{}` has no pending timer {id}",
                            call.agent
                        )))
                    };
                    (outcome, Usage::default())
                };
                (
                    Decision::Allow {
                        grant: grant.to_string(),
                    },
                    Some(Box::new(run)),
                )
            }
            EffectRequest::Compile { language, files } => {
                let (decision, cap) = self.grants.check_compile(language);
                let run = cap.map(|cap| {
                    Box::new(move || compile::execute(cap, language, files, &self.journal, self.dirs.world_id))
                        as Run<'_>
                });
                (decision, run)
            }
            EffectRequest::GovernanceManifest => (
                self.grants.check_governance(false),
                Some(Box::new(|| (governance::manifest(&self.journal()), Usage::default()))),
            ),
            EffectRequest::GovernancePropose { change, description } => (
                self.grants.check_governance(true),
                Some(Box::new(|| {
                    let mut journal = self.journal();
                    let outcome = governance::propose(
                        &mut journal,
                        &self.dirs.root,
                        &self.key,
                        call.agent,
                        change,
                        description,
                    );
                    (outcome, Usage::default())
                })),
            ),
            EffectRequest::GovernanceApprove { proposal, comment } => (
                self.grants.check_governance(false),
                Some(Box::new(|| {
                    let mut journal = self.journal();
                    let outcome = governance::approve(&mut journal, &self.key, call.agent, proposal, comment);
                    (outcome, Usage::default())
                })),
            ),
            EffectRequest::Emit { target, event } => (
                self.grants.check_emit(target),
                Some(Box::new(|| {
                    (emit::execute(&self.event_types, target, event), Usage::default())
                })),
            ),
        };
        match (decision, run) {
            (Decision::Allow { grant }, Some(run)) => {
                if let Err(reason) = self.admit(&grant, at_ms) {
                    return (
                        Some(grant),
                        Err(EffectFailure::BudgetExceeded(reason)),
                        Usage::default(),
                    );
                }
                let (outcome, usage) = run();
                (Some(grant), outcome, usage)
            }
            (Decision::Deny { reason }, _) => (None, Err(EffectFailure::Denied(reason)), Usage::default()),
            (Decision::Allow { .. }, None) => unreachable!("an allowed call always has an adapter to run"),
        }
    }

    /// Whether the grant's budget, if any, admits one more call at logical time `at_ms`.
    fn admit(&self, grant: &str, at_ms: u64) -> Result<(), String> {
        match self.grants.budget(grant) {
            Some(budget) => self
                .budgets
                .lock()
                .expect("budget lock")
                .admit(&self.grants.agent, grant, budget, at_ms),
            None => Ok(()),
        }
    }

    /// The receipt's subject; an llm call names the provider its grant resolved.
    fn subject(&self, request: &EffectRequest) -> String {
        match request {
            EffectRequest::Llm {
                provider: None,
                model,
                max_tokens,
                ..
            } => match self.grants.check_llm(None, model, *max_tokens) {
                Ok((_, route)) => format!("{}/{model}", route.provider_name),
                Err(_) => request.subject(),
            },
            _ => request.subject(),
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
            subject: self.subject(call.request),
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

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
                let now = now_ms();
                let outcome = Err(EffectFailure::InDoubt(format!(
                    "{} started before the host stopped and its outcome is unknown; it is not retried",
                    call.request.summary()
                )));
                self.journal_receipt(call, None, &outcome, (now, now), Usage::default())?;
                return Ok(outcome);
            }
            _ => {}
        }
        if !call.request.idempotent() {
            let mut journal = self
                .journal
                .lock()
                .map_err(|_| wasmtime::format_err!("journal lock poisoned"))?;
            journal.append(EntryBody::EffectIntent(EffectIntent {
                ingress: call.ingress,
                effect_index: call.index,
                effect: call.request.effect().to_string(),
                request_digest: call.request_digest,
            }));
            journal.commit()?;
        }
        let started = now_ms();
        let (grant, outcome, usage) = self.execute(call);
        self.journal_receipt(call, grant, &outcome, (started, now_ms()), usage)?;
        Ok(outcome)
    }
}
