//! Shadow runs over HTTP (`POST .../proposals/{n}/shadow`): the proposal is run against a fork
//! of the world taken from the server's own view of its journal, off the world's thread, so the
//! world keeps stepping meanwhile; only the report is journaled, between two steps (reading only
//! the entries journaled since the run's view). One shadow run per world, and
//! [`SHADOW_RUNS_MAX`] per server, at a time: each forks a world and compiles its components.

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::state::{AppState, blocking};
use agentos_runtime::governance::shadow::{self, Workload};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Recorded steps re-run at most (a window is re-executed in full).
pub const WINDOW_MAX: usize = 10_000;
/// Given events run at most.
pub const EVENTS_MAX: usize = 1_000;
/// Shadow runs under way at once on one server (each also one per world).
pub const SHADOW_RUNS_MAX: usize = 2;

/// What to re-run: the last `window` recorded steps (`{}`: the last 100), or the given
/// `events` after the present state.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged, try_from = "WorkloadFields")]
pub enum ShadowRequest {
    Window(WindowRequest),
    Events(EventsRequest),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowRequest {
    #[schema(minimum = 1, maximum = 10000)]
    pub window: Option<usize>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<ShadowEvent>,
}

/// The body as sent, checked into a [`ShadowRequest`] with errors that name the field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFields {
    /// A number, since JSON Schema counts `216.0` an integer too.
    window: Option<serde_json::Number>,
    events: Option<Vec<ShadowEvent>>,
}

/// `number` as a count of steps, if it is a whole one in range.
fn steps(number: &serde_json::Number) -> Option<usize> {
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(f))
            .map(|f| f as u64)
    })?;
    usize::try_from(whole).ok().filter(|n| (1..=WINDOW_MAX).contains(n))
}

impl TryFrom<WorkloadFields> for ShadowRequest {
    type Error = String;
    fn try_from(fields: WorkloadFields) -> Result<ShadowRequest, String> {
        match (fields.window, fields.events) {
            (Some(_), Some(_)) => Err("give `window` or `events`, not both".into()),
            (_, Some(events)) if events.is_empty() || events.len() > EVENTS_MAX => {
                Err(format!("`events` holds 1 to {EVENTS_MAX} events, not {}", events.len()))
            }
            (_, Some(events)) => Ok(ShadowRequest::Events(EventsRequest { events })),
            (Some(window), None) => match steps(&window) {
                Some(window) => Ok(ShadowRequest::Window(WindowRequest { window: Some(window) })),
                None => Err(format!("`window` is 1 to {WINDOW_MAX} steps, not {window}")),
            },
            (None, None) => Ok(ShadowRequest::Window(WindowRequest { window: None })),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowEvent {
    pub agent: String,
    /// The event in WAVE, of the agent's event type.
    pub event: String,
}

/// A journaled shadow report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShadowView {
    /// The `shadow-report` entry.
    pub entry: u64,
    /// The report, as `agentos-host shadow --json` prints it.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// Shadow-run a proposal and journal the report.
#[utoipa::path(post, path = "/v1/worlds/{world}/proposals/{proposal}/shadow", tag = "governance",
    params(("world" = String, Path, description = "The world's name on this server"),
           ("proposal" = u64, Path, description = "The proposal's entry number")),
    request_body = ShadowRequest,
    responses((status = 201, body = ShadowView),
              (status = 409, description = "The proposal is closed, there is nothing to re-run, or a shadow run of this world is under way", body = ErrorBody),
              (status = 422, description = "An event that is not of its agent's type", body = ErrorBody)))]
pub async fn shadow_run(
    State(state): State<AppState>,
    ApiPath((name, proposal)): ApiPath<(String, u64)>,
    ApiJson(request): ApiJson<ShadowRequest>,
) -> Result<(StatusCode, Json<ShadowView>), ApiError> {
    let world = state.world(&name)?;
    let workload = request.workload();
    let busy = |what: String| ApiError::new(StatusCode::CONFLICT, "busy", format!("{what}; try again when it ends"));
    let this_world = world
        .shadow_runs
        .clone()
        .try_acquire_owned()
        .map_err(|_| busy(format!("a shadow run of world `{name}` is under way")))?;
    let this_server = state
        .0
        .shadow_runs
        .clone()
        .try_acquire_owned()
        .map_err(|_| busy(format!("{SHADOW_RUNS_MAX} shadow runs are under way on this server")))?;
    blocking(move || {
        // The run goes on (and is journaled) if the client goes away: the permits go with it.
        let _running = (this_world, this_server);
        let (journal, ledger) = world.ledger_view()?;
        let shadowed = shadow::run(&world.root, journal, Arc::unwrap_or_clone(ledger), proposal, &workload)?;
        let (entry, report) = world
            .sender
            .with_world(move |world| shadow::record(&mut world.kernel.journal(), shadowed))??;
        let report = serde_json::to_value(&report).expect("shadow reports always encode");
        Ok((StatusCode::CREATED, Json(ShadowView { entry, report })))
    })
    .await
}

impl ShadowRequest {
    fn workload(self) -> Workload {
        match self {
            ShadowRequest::Window(WindowRequest { window }) => {
                Workload::Window(window.unwrap_or(shadow::DEFAULT_WINDOW))
            }
            ShadowRequest::Events(EventsRequest { events }) => {
                Workload::Events(events.into_iter().map(|e| (e.agent, e.event)).collect())
            }
        }
    }
}
