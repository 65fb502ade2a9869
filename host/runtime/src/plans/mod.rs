//! Plans at run time: the host's interpreter of AIR plans, run by the stepper like an agent.
//!
//! Everything that moves a plan is an ingress addressed to `plan:<name>`, journaled before it
//! is processed: a start (`plan run`, source `run:<who>`; a schedule firing, source
//! `schedule`), an event (an agent's reply, emitted to `plan:<name>`, or an event that triggers
//! the plan), a reply's deadline (a timer the plan set), or the run's own continuation (source
//! `continue`). Processing one is a *turn*, and a turn takes a run one step further, in
//! dependency order: an effect step calls its effect through the plan's own [`EffectGate`]
//! under the plan's grants (so every call has an intent and a receipt like an agent's, keyed by
//! the turn's ingress), retrying as its policy allows; a `send` step emits the agent's event and,
//! when it awaits a reply, waits. A step that finished journals the run's continuation, so the
//! next step is the next turn. What happened to each run is journaled as `plan` entries, step
//! outputs by digest.
//!
//! Because a turn is a step, the stepper's guarantees carry over: the stepper commits after
//! every turn that called an effect, so a run interrupted by a crash resumes at the step that
//! was in flight, with the receipts it already has (no receipted effect runs twice); replay
//! re-executes every turn from receipts and compares its entries and state digest; a shadow run
//! re-runs turns under a proposed manifest.

pub mod history;
pub use agentos_effects::plan_values as values;

pub use agentos_journal::entry::plan as record;
pub use agentos_journal::entry::plan::{address, addressed};

use crate::caps::AgentGrants;
use crate::effects::{Deferred, EffectBackend, EffectFailure, EffectGate, EffectRequest, EffectResponse};
use crate::journal::entry::{Digest, Ingress, sha256};
use agentos_air::plan::{INPUT, resolve};
use agentos_air::{Manifest, PlanDef, PlanStep, Schema, StepAction, StepInput, Trigger, TypeExpr};
use record::{PlanEvent, RunOutcome, StepResult};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use values::Typed;
use wasmtime::component::Type;

/// The error for a plan name the manifest of record does not define, listing those it does.
pub fn unknown<'a>(plan: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&String> = known.collect();
    format!(
        "no plan `{plan}` in the manifest of record; plans: {}",
        crate::text::listed(&known, ", ")
    )
}

/// The steps of plan `name` whose literal request its grants refuse (an `http` URL and method,
/// an `llm` provider, model and token count), each as `plans.<name>.steps.<step>: why`. Such a
/// plan could only fail, so the host does not load it; requests built from bindings are checked
/// when they are made (denied, with a receipt).
pub fn refused_literals(name: &str, def: &PlanDef, grants: &AgentGrants) -> Vec<String> {
    let literal = |step: &PlanStep, input: &str| match step.with.get(input) {
        Some(StepInput::Literal(json)) => serde_json::from_str::<Json>(json).ok(),
        _ => None,
    };
    let text = |value: Option<Json>| value.and_then(|v| v.as_str().map(str::to_string));
    let mut refused = Vec::new();
    for (step_name, step) in &def.steps {
        let at = format!("plans.{name}.steps.{step_name}");
        match step.action {
            StepAction::Http => {
                let Some(url) = text(literal(step, "url")) else {
                    continue;
                };
                if step.with.contains_key("method") && literal(step, "method").is_none() {
                    continue;
                }
                let method = text(literal(step, "method")).unwrap_or_else(|| "GET".into());
                if let (crate::caps::Decision::Deny { reason }, _) = grants.check_http(&method, &url, &[]) {
                    refused.push(format!(
                        "{at}: {method} {url} is refused by the plan's grants: {reason}"
                    ));
                }
            }
            StepAction::Llm => {
                let (Some(model), true) = (
                    text(literal(step, "model")),
                    ["provider", "max-tokens"]
                        .iter()
                        .all(|i| !step.with.contains_key(*i) || literal(step, i).is_some()),
                ) else {
                    continue;
                };
                let provider = text(literal(step, "provider"));
                let max_tokens = literal(step, "max-tokens")
                    .and_then(|v| v.as_u64())
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(DEFAULT_MAX_TOKENS);
                if let Err(reason) = grants.check_llm(provider.as_deref(), &model, max_tokens) {
                    refused.push(format!(
                        "{at}: model `{model}` is refused by the plan's grants: {reason}"
                    ));
                }
            }
            _ => {}
        }
    }
    refused
}

/// A plan's state or input that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the plan's state does not decode: {0}")]
    State(String),
    #[error("the input is not JSON: {0}")]
    InputNotJson(String),
    #[error("the input does not match schema `{schema}`: {reason}")]
    InputMismatch { schema: String, reason: String },
    #[error("the plan takes no input")]
    TakesNoInput,
}

/// The source of an ingress that starts a manual run.
pub const MANUAL_SOURCE: &str = "run:cli";
/// The source of an ingress that starts a scheduled run.
pub const SCHEDULE_SOURCE: &str = "schedule";
/// The source of the ingress that takes a run to its next step (its event is the run's id).
pub const CONTINUE_SOURCE: &str = "continue";

/// The effect index a turn's reply deadline uses for its timer id (above any call's index).
const DEADLINE_TIMER_INDEX: u32 = 1023;

/// A plan as the stepper holds it.
pub struct PlanSlot {
    pub def: PlanDef,
    pub grants: Arc<AgentGrants>,
    manifest: Arc<Manifest>,
    /// The events the plan accepts: its `send` steps' replies and its trigger event.
    pub accepts: Vec<Typed>,
    pub state: PlanState,
    pub state_digest: Digest,
    gate: EffectGate,
}

/// A plan's state: what its snapshot holds and its state digest covers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanState {
    /// World time of the last scheduled run, or when the plan came into force.
    pub last_scheduled_ms: u64,
    /// Runs in progress, by id (the entry number of the ingress that started each).
    pub runs: BTreeMap<u64, Run>,
}

/// A run in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The input, JSON text (`null` when the plan takes none).
    pub input: String,
    /// Each finished step's output, JSON text (`null` for a send without a reply).
    pub outputs: BTreeMap<String, String>,
    pub waiting: Option<Waiting>,
}

/// A `send` step waiting for its agent's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiting {
    pub step: String,
    pub agent: String,
    /// The timer that ends the wait.
    pub timer: u64,
}

/// What one turn did.
#[derive(Debug, Default)]
pub struct TurnRecord {
    /// Why the ingress could not be taken (nothing changed), if so.
    pub refused: Option<String>,
    /// (run, event), in order.
    pub events: Vec<(u64, PlanEvent)>,
    /// Step outputs to store in the blob table (their digests are in `events`).
    pub blobs: Vec<Vec<u8>>,
    pub effects: u32,
    pub deferred: Vec<Deferred>,
    /// Set in replay when an effect call did not match the journal.
    pub divergence: Option<String>,
}

/// A turn's working record.
struct Turn {
    seq: u64,
    at_ms: u64,
    live: bool,
    record: TurnRecord,
}

impl PlanSlot {
    /// A plan coming into force at world time `since_ms`, with the state it had (if any).
    pub fn new(
        name: &str,
        manifest: Arc<Manifest>,
        grants: AgentGrants,
        since_ms: u64,
        state: Option<PlanState>,
    ) -> PlanSlot {
        let def = manifest.plans[name].clone();
        let replies = def.steps.values().filter_map(|s| s.reply.as_deref());
        let trigger = match &def.trigger {
            Trigger::Event(schema) => Some(schema.as_str()),
            _ => None,
        };
        let mut accepts: Vec<Typed> = Vec::new();
        for schema in replies.chain(trigger) {
            if !accepts.iter().any(|t| t.schema == schema) {
                accepts.push(Typed::of_schema(&manifest, schema));
            }
        }
        let state = state.unwrap_or(PlanState {
            last_scheduled_ms: since_ms,
            runs: BTreeMap::new(),
        });
        let mut slot = PlanSlot {
            def,
            grants: Arc::new(grants),
            manifest,
            accepts,
            state_digest: [0; 32],
            state,
            gate: EffectGate::new(&address(name)),
        };
        slot.state_digest = sha256(&slot.state_bytes());
        slot
    }

    /// The state's bytes (snapshots store them; the digest is over them).
    pub fn state_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.state).expect("plan state always encodes")
    }

    /// Take the state from a snapshot.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), PlanError> {
        self.state = postcard::from_bytes(bytes).map_err(|e| PlanError::State(e.to_string()))?;
        self.state_digest = sha256(bytes);
        Ok(())
    }

    /// The type of an event schema the plan accepts (a reply or its trigger event).
    pub fn accepted(&self, schema: &str) -> Option<&Typed> {
        self.accepts.iter().find(|t| t.schema == schema)
    }

    /// When the plan's schedule next fires, if it has one.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.def.trigger.next_due_ms(self.state.last_scheduled_ms)
    }

    /// Process one ingress addressed to the plan. `agents` are the agents' event types (for
    /// the events `send` steps build).
    pub fn turn(
        &mut self,
        seq: u64,
        ingress: &Ingress,
        backend: Box<dyn EffectBackend>,
        agents: &HashMap<String, Type>,
    ) -> TurnRecord {
        let live = backend.live();
        self.gate.set_backend(backend);
        self.gate
            .begin_step(seq, ingress.at_ms, crate::effects::GateLimits::default());
        let mut turn = Turn {
            seq,
            at_ms: ingress.at_ms,
            live,
            record: TurnRecord::default(),
        };
        let before = self.state.clone();
        if let Err(error) = self.dispatch(&mut turn, ingress, agents) {
            // A divergence or a journal fault: the turn is void.
            turn.record.divergence = Some(
                error
                    .downcast_ref::<crate::effects::replay::Divergence>()
                    .map_or_else(|| format!("{error:#}"), |d| d.detail.clone()),
            );
            turn.record.refused = Some(format!("{error:#}"));
        }
        let (effects, deferred) = self.gate.end_step();
        turn.record.effects = effects;
        if turn.record.refused.is_some() {
            self.state = before;
            turn.record.events.clear();
            turn.record.blobs.clear();
            turn.record.deferred.clear();
        } else {
            turn.record.deferred.splice(0..0, deferred);
            self.state_digest = sha256(&self.state_bytes());
        }
        turn.record
    }

    fn dispatch(&mut self, turn: &mut Turn, ingress: &Ingress, agents: &HashMap<String, Type>) -> wasmtime::Result<()> {
        let source = ingress.source.as_str();
        if source == SCHEDULE_SOURCE || source.starts_with("run:") {
            let trigger = if source == SCHEDULE_SOURCE {
                self.state.last_scheduled_ms = ingress.at_ms;
                "schedule"
            } else {
                "manual"
            };
            if let Err(reason) = self.check_input(&ingress.event) {
                turn.record.refused = Some(reason.to_string());
                return Ok(());
            }
            self.start(turn, trigger, ingress.event.clone());
            return Ok(());
        }
        if source.starts_with("timer:") {
            self.deadline(turn, &ingress.event);
            return Ok(());
        }
        if source == CONTINUE_SOURCE {
            let Ok(run) = ingress.event.parse::<u64>() else {
                turn.record.refused = Some(format!("`{}` is not a run of the plan", ingress.event));
                return Ok(());
            };
            return self.advance(turn, run, agents);
        }
        // An event: a reply the plan awaits from its sender, or one that triggers a run.
        let sender = source.strip_prefix("emit:");
        let waiting = self.state.runs.iter().find_map(|(run, r)| {
            let waiting = r.waiting.as_ref()?;
            (Some(waiting.agent.as_str()) == sender).then(|| (*run, waiting.clone()))
        });
        if let Some((run, waiting)) = waiting {
            let reply = self.def.steps[&waiting.step].reply.clone().unwrap_or_default();
            if let Some(typed) = self.accepted(&reply)
                && let Ok((json, _)) = typed.parse(&ingress.event)
            {
                turn.record
                    .deferred
                    .push(Deferred::TimerCancelled { id: waiting.timer });
                let state = self.state.runs.get_mut(&run).expect("found above");
                state.waiting = None;
                self.finish_step(turn, run, &waiting.step, 1, Ok(json));
                return Ok(());
            }
        }
        if let Trigger::Event(schema) = &self.def.trigger
            && let Some(typed) = self.accepted(schema)
            && let Ok((json, _)) = typed.parse(&ingress.event)
        {
            self.start(turn, "event", json.to_string());
            return Ok(());
        }
        turn.record.refused = Some(match sender {
            Some(agent) => format!(
                "`{}` is neither a reply the plan awaits from `{agent}` nor an event that triggers it",
                ingress.event
            ),
            None => format!("`{}` is not an event that triggers the plan", ingress.event),
        });
        Ok(())
    }

    /// Whether `input` (JSON text) is what the plan's runs take.
    pub fn check_input(&self, input: &str) -> Result<(), PlanError> {
        let value: Json = serde_json::from_str(input).map_err(|e| PlanError::InputNotJson(e.to_string()))?;
        match self.def.input_schema() {
            Some(schema) => agentos_air::plan::check_literal(&self.manifest, &value, &TypeExpr::Named(schema.into()))
                .map_err(|e| PlanError::InputMismatch {
                    schema: schema.to_string(),
                    reason: e.to_string(),
                }),
            None if value.is_null() => Ok(()),
            None => Err(PlanError::TakesNoInput),
        }
    }

    fn start(&mut self, turn: &mut Turn, trigger: &str, input: String) {
        let run = turn.seq;
        turn.record.events.push((
            run,
            PlanEvent::Started {
                trigger: trigger.to_string(),
                input: input.clone(),
            },
        ));
        self.state.runs.insert(
            run,
            Run {
                input,
                outputs: BTreeMap::new(),
                waiting: None,
            },
        );
        turn.record.deferred.push(Deferred::Continue { run });
    }

    /// A reply deadline passed: the run fails unless the reply came first.
    fn deadline(&mut self, turn: &mut Turn, event: &str) {
        let mut parts = event.splitn(3, ':').skip(1);
        let (Some(run), Some(step)) = (parts.next().and_then(|r| r.parse::<u64>().ok()), parts.next()) else {
            turn.record.refused = Some(format!("`{event}` is not a reply deadline"));
            return;
        };
        let Some(waiting) = self.state.runs.get(&run).and_then(|r| r.waiting.clone()) else {
            return;
        };
        if waiting.step != step {
            return;
        }
        let timeout = self.def.steps.get(step).map_or(0, PlanStep::timeout_ms);
        let reason = format!("`{}` did not reply within {timeout} ms", waiting.agent);
        self.finish_step(turn, run, step, 1, Err(reason));
    }

    /// Take `run` one step further: its first step not done, in order; or end it.
    fn advance(&mut self, turn: &mut Turn, run: u64, agents: &HashMap<String, Type>) -> wasmtime::Result<()> {
        let Some(state) = self.state.runs.get(&run) else {
            return Ok(()); // the run already ended
        };
        if state.waiting.is_some() {
            return Ok(()); // it waits for a reply, which continues it
        }
        let order = self.def.order().expect("validated plans are acyclic");
        let Some(name) = order.into_iter().find(|step| !state.outputs.contains_key(*step)) else {
            self.state.runs.remove(&run);
            let outcome = RunOutcome::Completed;
            turn.record.events.push((run, PlanEvent::Finished { outcome }));
            return Ok(());
        };
        let name = name.to_string();
        let step = self.def.steps[&name].clone();
        let inputs = match inputs_of(state, &step) {
            Ok(inputs) => inputs,
            Err(reason) => {
                self.finish_step(turn, run, &name, 0, Err(reason));
                return Ok(());
            }
        };
        if step.action != StepAction::Send {
            let (attempts, result) = self.call_effect(turn, &step, &inputs)?;
            self.finish_step(turn, run, &name, attempts, result);
            return Ok(());
        }
        let agent = step.agent.clone().unwrap_or_default();
        let event = match self.agent_event(&step, &inputs, agents.get(&agent)) {
            Ok(event) => event,
            Err(reason) => {
                self.finish_step(turn, run, &name, 1, Err(reason));
                return Ok(());
            }
        };
        let sent = self.gate.call(EffectRequest::Emit {
            target: agent.clone(),
            event,
        })?;
        match sent {
            Err(failure) => self.finish_step(turn, run, &name, 1, Err(describe_failure(&failure))),
            Ok(_) if step.reply.is_none() => self.finish_step(turn, run, &name, 1, Ok(Json::Null)),
            Ok(_) => {
                let timer = crate::effects::timer::timer_id(turn.seq, DEADLINE_TIMER_INDEX);
                let deadline_ms = turn.at_ms.saturating_add(step.timeout_ms());
                turn.record.deferred.push(Deferred::TimerScheduled {
                    id: timer,
                    due_ms: deadline_ms,
                    event: format!("deadline:{run}:{name}"),
                });
                turn.record.events.push((
                    run,
                    PlanEvent::Awaiting {
                        step: name.clone(),
                        agent: agent.clone(),
                        deadline_ms,
                    },
                ));
                let state = self.state.runs.get_mut(&run).expect("checked above");
                state.waiting = Some(Waiting {
                    step: name,
                    agent,
                    timer,
                });
            }
        }
        Ok(())
    }

    /// Record a step's end: a success continues the run at its next turn, a failure ends it.
    fn finish_step(&mut self, turn: &mut Turn, run: u64, step: &str, attempts: u32, result: Result<Json, String>) {
        let event = |result| PlanEvent::StepFinished {
            step: step.to_string(),
            attempts,
            result,
        };
        match result {
            Ok(output) => {
                let text = output.to_string();
                let digest = (!output.is_null()).then(|| {
                    turn.record.blobs.push(text.clone().into_bytes());
                    sha256(text.as_bytes())
                });
                turn.record
                    .events
                    .push((run, event(StepResult::Done { output: digest })));
                if let Some(state) = self.state.runs.get_mut(&run) {
                    state.outputs.insert(step.to_string(), text);
                }
                turn.record.deferred.push(Deferred::Continue { run });
            }
            Err(reason) => {
                turn.record
                    .events
                    .push((run, event(StepResult::Failed { reason: reason.clone() })));
                turn.record.events.push((
                    run,
                    PlanEvent::Finished {
                        outcome: RunOutcome::Failed {
                            step: step.to_string(),
                            reason,
                        },
                    },
                ));
                self.state.runs.remove(&run);
            }
        }
    }

    /// The event a `send` step delivers, in canonical WAVE for the agent's event type.
    fn agent_event(
        &self,
        step: &PlanStep,
        inputs: &BTreeMap<String, Json>,
        ty: Option<&Type>,
    ) -> Result<String, String> {
        let agent = step.agent.as_deref().unwrap_or_default();
        let case = step.case.clone().unwrap_or_default();
        let Some(ty) = ty else {
            return Err(format!("the world has no agent `{agent}`"));
        };
        let payload = self.manifest.agents[agent]
            .event
            .as_ref()
            .and_then(|event| match self.manifest.schemas.get(event) {
                Some(Schema::Variant(cases)) => cases.iter().find(|(c, _)| *c == case).map(|(_, p)| p.clone()),
                _ => None,
            })
            .flatten();
        let event = match payload.map(|p| resolve(&self.manifest, &p)) {
            None => Json::String(case.clone()),
            Some(TypeExpr::Named(name)) if matches!(self.manifest.schemas.get(&name), Some(Schema::Record(_))) => {
                let fields = inputs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                Json::Object([(case.clone(), Json::Object(fields))].into_iter().collect())
            }
            Some(_) => Json::Object(
                [(case.clone(), inputs.get("value").cloned().unwrap_or(Json::Null))]
                    .into_iter()
                    .collect(),
            ),
        };
        let value =
            crate::values::parse_json(ty, &event).map_err(|e| format!("agent `{agent}` does not take {event}: {e}"))?;
        Ok(crate::values::to_wave(&value))
    }

    /// Call an effect step's effect, retrying failures as its retry policy allows.
    fn call_effect(
        &mut self,
        turn: &Turn,
        step: &PlanStep,
        inputs: &BTreeMap<String, Json>,
    ) -> wasmtime::Result<(u32, Result<Json, String>)> {
        let request = match effect_request(step.action, inputs) {
            Ok(request) => request,
            Err(reason) => return Ok((0, Err(reason))),
        };
        let attempts = step.retry.as_ref().map_or(1, |r| r.attempts.max(1));
        let mut backoff_ms = step.retry.as_ref().map_or(0, |r| r.backoff_ms);
        let mut attempt = 1;
        loop {
            let reason = match self.gate.call(request.clone())? {
                Ok(response) => match step_output(step.action, response) {
                    Ok(output) => return Ok((attempt, Ok(output))),
                    Err((reason, retryable)) if retryable => reason,
                    Err((reason, _)) => return Ok((attempt, Err(reason))),
                },
                Err(failure @ (EffectFailure::Failed(_) | EffectFailure::Timeout(_))) => describe_failure(&failure),
                Err(failure) => return Ok((attempt, Err(describe_failure(&failure)))),
            };
            if attempt >= attempts {
                return Ok((attempt, Err(reason)));
            }
            if turn.live && backoff_ms > 0 {
                std::thread::sleep(std::time::Duration::from_millis(backoff_ms));
            }
            backoff_ms = backoff_ms.saturating_mul(2);
            attempt += 1;
        }
    }
}

/// The values of a step's inputs: literals, and bindings read from the run.
fn inputs_of(run: &Run, step: &PlanStep) -> Result<BTreeMap<String, Json>, String> {
    step.with
        .iter()
        .map(|(name, input)| {
            let value = match input {
                StepInput::Literal(json) => serde_json::from_str(json).map_err(|e| format!("input `{name}`: {e}"))?,
                StepInput::From(path) => {
                    let mut fields = path.split('.');
                    let head = fields.next().unwrap_or_default();
                    let source = if head == INPUT {
                        Some(&run.input)
                    } else {
                        run.outputs.get(head)
                    };
                    let source: Json = source
                        .and_then(|text| serde_json::from_str(text).ok())
                        .ok_or_else(|| format!("input `{name}`: `{head}` has no value in this run"))?;
                    let fields: Vec<&str> = fields.collect();
                    values::at_path(&source, &fields)
                        .cloned()
                        .ok_or_else(|| format!("input `{name}`: `{path}` has no value in this run"))?
                }
            };
            Ok((name.clone(), value))
        })
        .collect()
}

/// The request an effect step makes from its inputs.
fn effect_request(action: StepAction, inputs: &BTreeMap<String, Json>) -> Result<EffectRequest, String> {
    let text = |name: &str| inputs.get(name).and_then(Json::as_str).map(str::to_string);
    let required = |name: &str| text(name).ok_or_else(|| format!("input `{name}` is missing"));
    Ok(match action {
        StepAction::Http => EffectRequest::Http {
            method: text("method").unwrap_or_else(|| "GET".into()),
            url: required("url")?,
            headers: Vec::new(),
            body: text("body").map(String::into_bytes),
        },
        StepAction::Llm => {
            let prompt = required("prompt")?;
            let system = text("system");
            if prompt.len() + system.as_ref().map_or(0, String::len) > crate::effects::llm::PROMPT_MAX_BYTES {
                return Err(format!(
                    "the prompt exceeds the limit of {} bytes",
                    crate::effects::llm::PROMPT_MAX_BYTES
                ));
            }
            let messages = system
                .map(|s| ("system".to_string(), s))
                .into_iter()
                .chain([("user".to_string(), prompt)])
                .collect();
            EffectRequest::Llm {
                provider: text("provider"),
                model: required("model")?,
                messages,
                max_tokens: inputs
                    .get("max-tokens")
                    .and_then(Json::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(DEFAULT_MAX_TOKENS),
                temperature_milli: None,
                stop: Vec::new(),
            }
        }
        StepAction::BlobPut => EffectRequest::BlobPut {
            contents: required("contents")?.into_bytes(),
        },
        StepAction::BlobGet => EffectRequest::BlobGet {
            digest: required("digest")?,
        },
        StepAction::Send => unreachable!("send steps emit"),
    })
}

/// Tokens an `llm` step asks for when it does not say.
pub const DEFAULT_MAX_TOKENS: u32 = 512;

/// An effect step's output from its response; a failure says whether a retry may help.
fn step_output(action: StepAction, response: EffectResponse) -> Result<Json, (String, bool)> {
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    match (action, response) {
        (StepAction::Http, EffectResponse::Http { status, body, .. }) if status < 400 => {
            Ok(serde_json::json!({ "status": status, "body": text(body) }))
        }
        (StepAction::Http, EffectResponse::Http { status, .. }) => {
            Err((format!("the server answered {status}"), status >= 500 || status == 429))
        }
        (
            StepAction::Llm,
            EffectResponse::Completion {
                text,
                finish_reason,
                input_tokens,
                output_tokens,
            },
        ) => Ok(serde_json::json!({
            "text": text,
            "finish-reason": finish_reason,
            "input-tokens": input_tokens,
            "output-tokens": output_tokens,
        })),
        (StepAction::BlobPut, EffectResponse::Digest(digest)) => Ok(serde_json::json!({ "digest": digest })),
        (StepAction::BlobGet, EffectResponse::Bytes(bytes)) => Ok(serde_json::json!({ "contents": text(bytes) })),
        (action, other) => Err((
            format!("a {} step got an unexpected response: {other:?}", action.name()),
            false,
        )),
    }
}

fn describe_failure(failure: &EffectFailure) -> String {
    match failure {
        EffectFailure::Denied(r) => format!("denied: {r}"),
        EffectFailure::Failed(r) => format!("failed: {r}"),
        EffectFailure::BudgetExceeded(r) => format!("budget exceeded: {r}"),
        EffectFailure::InDoubt(r) => format!("in doubt: {r}"),
        EffectFailure::Timeout(r) => format!("timed out: {r}"),
    }
}
