//! `POST /v1/worlds/{world}/events`: an event for an agent (JSON or WAVE) or a plan (WAVE),
//! checked like `send` checks it, journaled, answered once durable — or, with `wait=step`, once
//! the step that processed it is committed, with its outcome. An `Idempotency-Key` header makes
//! a retry return the first event's entry instead of journaling it again.

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::state::{AppState, blocking};
use super::tokens::Caller;
use agentos_runtime::journal::entry::EntryBody;
use agentos_runtime::service::{Event, Outgoing};
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An event to send: `event` (JSON) or `wave` (WAVE text), not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEvent {
    /// The agent's name, or a plan's as `plan:<name>`.
    pub agent: String,
    /// The event as JSON, e.g. `{"increment": 5}` or `"reset"`.
    #[serde(default)]
    pub event: Option<serde_json::Value>,
    /// The event in WAVE syntax, e.g. `increment(5)`.
    #[serde(default)]
    pub wave: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SendQuery {
    /// `durable` (the default): answer once the event is journaled and durable. `step`: once
    /// the step that processed it is committed too, with its outcome.
    #[serde(default)]
    #[param(inline)]
    pub wait: Option<WaitFor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitFor {
    Durable,
    Step,
}

/// The event's entry, and its step's outcome when asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAccepted {
    /// The event's ingress entry.
    pub entry: u64,
    /// An earlier event sent under the same `Idempotency-Key`: nothing new was journaled.
    pub duplicate: bool,
    /// With `wait=step`: the step that processed it (absent when the server stopped before
    /// running it; it runs when the world next runs).
    pub step: Option<StepOutcome>,
}

/// How a step ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepOutcome {
    /// The `step-committed` or `step-failed` entry.
    pub entry: u64,
    pub agent: String,
    /// `committed` or `failed`.
    pub outcome: String,
    /// sha256 of the agent's state after a committed step, hex.
    pub state_digest: Option<String>,
    /// Why a failed step failed (`trap`, `fuel`, `deadline`, ...).
    pub failure: Option<String>,
    pub reason: Option<String>,
    /// Effects the step called.
    pub effects: u32,
}

/// The header a sender names its retry key in.
const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Send an event.
#[utoipa::path(post, path = "/v1/worlds/{world}/events", tag = "events",
    params(
        ("world" = String, Path, description = "The world's name on this server"),
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,200}$",
            description = "A retry under the same key returns the first event's entry (kept for a day; visible ASCII, at most 200 bytes)"),
        SendQuery,
    ),
    request_body = SendEvent,
    responses(
        (status = 201, description = "Journaled", body = EventAccepted),
        (status = 200, description = "Sent before under this Idempotency-Key: nothing journaled", body = EventAccepted),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, description = "The server is stopping", body = ErrorBody),
    ))]
pub async fn send_event(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<SendQuery>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendEvent>,
) -> Result<(StatusCode, Json<EventAccepted>), ApiError> {
    let world = state.world(&name)?;
    let event = match (body.event, body.wave) {
        (Some(json), None) => Event::Json(json),
        (None, Some(wave)) => Event::Wave(wave),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_event",
                "give the event as `event` (JSON) or as `wave` (WAVE text), not both",
            ));
        }
    };
    let idempotency_key = match headers.get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    ApiError::bad_request(
                        "bad_idempotency_key",
                        "the idempotency key may hold only visible ASCII characters",
                    )
                })?
                .to_string(),
        ),
    };
    let wait_for_step = query.wait == Some(WaitFor::Step);
    let outgoing = Outgoing {
        agent: body.agent,
        event,
        source: format!("http:{}", caller.name),
        idempotency_key,
        wait_for_step,
    };
    let accepted = blocking(move || {
        let accepted = world.sender.send_outgoing(outgoing)?;
        let step = match (&accepted.step, accepted.stepped) {
            (Some((record, outcome)), _) => Some(outcome_of(record, *outcome)),
            // A duplicate, or a step a job for the whole world ran: from the journal.
            (None, true) => step_of(&world.reader(), accepted.seq)?,
            (None, false) => None,
        };
        Ok(EventAccepted {
            entry: accepted.seq,
            duplicate: accepted.duplicate,
            step,
        })
    })
    .await?;
    let status = match accepted.duplicate {
        true => StatusCode::OK,
        false => StatusCode::CREATED,
    };
    Ok((status, Json(accepted)))
}

/// A step's outcome from its record, as this server ran it.
fn outcome_of(record: &agentos_runtime::kernel::StepRecord, entry: u64) -> StepOutcome {
    use agentos_runtime::kernel::StepOutcome as Outcome;
    let (outcome, state_digest, failure, reason) = match &record.outcome {
        Outcome::Committed { state_digest } => ("committed", Some(hex::encode(state_digest)), None, None),
        Outcome::Failed { kind, reason } => ("failed", None, Some(kind.label().to_string()), Some(reason.clone())),
    };
    StepOutcome {
        entry,
        agent: record.agent.clone(),
        outcome: outcome.into(),
        state_digest,
        failure,
        reason,
        effects: record.effects,
    }
}

/// Entries read at a time while looking for a step's outcome.
const SCAN_CHUNK: u64 = 256;

/// The outcome of the step of ingress `ingress`, from the journal.
pub fn step_of(journal: &agentos_runtime::journal::Journal, ingress: u64) -> Result<Option<StepOutcome>, ApiError> {
    let end = journal.len();
    let mut start = ingress + 1;
    while start < end {
        let chunk_end = (start + SCAN_CHUNK).min(end);
        if let Some(outcome) = outcome_among(journal.entries_in(start..chunk_end)?, ingress) {
            return Ok(Some(outcome));
        }
        start = chunk_end;
    }
    Ok(None)
}

fn outcome_among(entries: Vec<agentos_runtime::journal::entry::Entry>, ingress: u64) -> Option<StepOutcome> {
    for entry in entries {
        let outcome = match entry.body {
            EntryBody::StepCommitted(s) if s.ingress == ingress => StepOutcome {
                entry: entry.seq,
                agent: s.agent,
                outcome: "committed".into(),
                state_digest: Some(hex::encode(s.state_digest)),
                failure: None,
                reason: None,
                effects: s.effects,
            },
            EntryBody::StepFailed(s) if s.ingress == ingress => StepOutcome {
                entry: entry.seq,
                agent: s.agent,
                outcome: "failed".into(),
                state_digest: None,
                failure: Some(s.kind.label().to_string()),
                reason: Some(s.reason),
                effects: s.effects,
            },
            _ => continue,
        };
        return Some(outcome);
    }
    None
}
