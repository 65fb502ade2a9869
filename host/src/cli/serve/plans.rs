//! Plans over HTTP: the plans of the manifest in force with their triggers and runs (`GET
//! .../plans`), every run step by step (`GET .../plans/runs`), and a manual run started now
//! (`POST .../plans/{plan}/runs`), which the world's stepper then processes like any other.

use super::error::{ApiError, ErrorBody, chain};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::state::{AppState, blocking};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The plans of the manifest in force, as `agentos-host plan list --json` lists them.
#[utoipa::path(get, path = "/v1/worlds/{world}/plans", tag = "plans",
    params(("world" = String, Path, description = "The world's name on this server")),
    responses((status = 200, body = Vec<Object>)))]
pub async fn plans(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let world = state.world(&name)?;
    blocking(move || {
        let journal = world.reader();
        crate::cli::plan::plan_rows(&journal)
            .map(Json)
            .map_err(|error| ApiError::internal(format!("{error:#}")))
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Only the runs of this plan.
    pub plan: Option<String>,
}

/// Every plan run in the journal, each step with its status, attempts and output (as `plan
/// runs --json` prints them).
#[utoipa::path(get, path = "/v1/worlds/{world}/plans/runs", tag = "plans",
    params(("world" = String, Path, description = "The world's name on this server"), RunsQuery),
    responses((status = 200, body = Vec<Object>)))]
pub async fn runs(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let world = state.world(&name)?;
    blocking(move || {
        let journal = world.reader();
        let runs =
            agentos_runtime::plans::history::runs(&journal).map_err(|error| ApiError::internal(chain(&error)))?;
        Ok(Json(
            runs.into_iter()
                .filter(|run| query.plan.as_ref().is_none_or(|plan| *plan == run.plan))
                .map(|run| serde_json::to_value(run).expect("a run view encodes"))
                .collect(),
        ))
    })
    .await
}

/// A manual run's input.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The run's input (for a plan that declares an `input` schema), `null` when it takes none.
    #[serde(default)]
    pub input: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunStarted {
    /// The run's id: the entry number of its ingress.
    pub run: u64,
}

/// Start a run of a plan now.
#[utoipa::path(post, path = "/v1/worlds/{world}/plans/{plan}/runs", tag = "plans",
    params(("world" = String, Path, description = "The world's name on this server"),
           ("plan" = String, Path, description = "The plan's name")),
    request_body = StartRun,
    responses((status = 201, body = RunStarted), (status = 422, description = "The input does not match the plan's schema", body = ErrorBody)))]
pub async fn start_run(
    State(state): State<AppState>,
    ApiPath((name, plan)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<StartRun>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    let world = state.world(&name)?;
    let sender = world.sender.clone();
    let input = request.input.to_string();
    let run = blocking(move || {
        // Committed before the caller is answered: a run acknowledged is a run journaled.
        let started = sender.with_world(move |world| {
            let run = world.start_plan(&plan, &input).map_err(Box::new)?;
            world.commit().map_err(Box::new)?;
            Ok::<u64, Box<agentos_runtime::world::WorldError>>(run)
        })?;
        started.map_err(|error| {
            let message = chain(&*error);
            match *error {
                agentos_runtime::world::WorldError::UnknownPlan(_) => ApiError::not_found("unknown_plan", message),
                agentos_runtime::world::WorldError::PlanInput { .. } => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_input", message)
                }
                _ => ApiError::internal(message),
            }
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(RunStarted { run })))
}
