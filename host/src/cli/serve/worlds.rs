//! The worlds a server holds and what each is doing: `GET /v1/worlds`, `GET /v1/worlds/{world}`,
//! `GET /v1/worlds/{world}/agents`.

use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use super::state::{AppState, Hosted};
use agentos_runtime::service::views;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

/// A world as the list of worlds shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorldSummary {
    /// Its name on this server (the name of its directory).
    pub name: String,
    /// The world's id, hex (from its genesis entry).
    pub world_id: String,
    /// The host public key of genesis, hex: what `verify --public-key` anchors to.
    pub genesis_public_key: String,
    /// Entries durable in its journal.
    pub entries: u64,
}

/// A world and what its stepper is doing now.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorldStatus {
    #[serde(flatten)]
    pub summary: WorldSummary,
    /// Inputs journaled and not yet processed (queued or in flight).
    pub pending: usize,
    /// Its agents' names.
    pub agents: Vec<String>,
    /// Its plans' names.
    pub plans: Vec<String>,
}

/// One agent of a world.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentInfo {
    pub name: String,
    pub module: String,
    /// Names of the capabilities it holds.
    pub grants: Vec<String>,
    /// sha256 of its last committed state, hex.
    pub state_digest: String,
    /// A step of it is running now.
    pub busy: bool,
    /// Inputs queued for it, not yet started.
    pub queued: usize,
    pub budgets: Vec<BudgetInfo>,
}

/// A budgeted grant: its limits and what was used in its window.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetInfo {
    pub grant: String,
    /// Sliding window of logical time; the world's whole life when absent.
    pub window_ms: Option<u64>,
    pub calls: UseInfo,
    pub bytes: UseInfo,
    pub tokens: UseInfo,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UseInfo {
    pub used: u64,
    /// No limit when absent.
    pub limit: Option<u64>,
}

fn summary(world: &Hosted) -> WorldSummary {
    WorldSummary {
        name: world.name.clone(),
        world_id: hex::encode(world.world_id),
        genesis_public_key: hex::encode(world.genesis_key),
        entries: *world.committed.borrow(),
    }
}

/// The worlds this server holds.
#[utoipa::path(get, path = "/v1/worlds", tag = "worlds",
    responses((status = 200, body = Vec<WorldSummary>), (status = 401, body = ErrorBody)))]
pub async fn list_worlds(State(state): State<AppState>) -> Json<Vec<WorldSummary>> {
    Json(state.0.worlds.values().map(|world| summary(world)).collect())
}

/// A world's status.
#[utoipa::path(get, path = "/v1/worlds/{world}", tag = "worlds",
    params(("world" = String, Path, description = "The world's name on this server")),
    responses((status = 200, body = WorldStatus), (status = 404, body = ErrorBody)))]
pub async fn world_status(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<WorldStatus>, ApiError> {
    let world = state.world(&name)?;
    let sender = world.sender.clone();
    let (pending, agents, plans) = super::state::blocking(move || {
        Ok(sender.query(|kernel| {
            (
                kernel.pending(),
                kernel.agents().keys().cloned().collect(),
                kernel.plans().keys().cloned().collect(),
            )
        })?)
    })
    .await?;
    Ok(Json(WorldStatus {
        summary: summary(&world),
        pending,
        agents,
        plans,
    }))
}

/// A world's agents: grants, budget use, last committed state.
#[utoipa::path(get, path = "/v1/worlds/{world}/agents", tag = "worlds",
    params(("world" = String, Path, description = "The world's name on this server")),
    responses((status = 200, body = Vec<AgentInfo>), (status = 404, body = ErrorBody)))]
pub async fn agents(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<AgentInfo>>, ApiError> {
    let world = state.world(&name)?;
    let sender = world.sender.clone();
    let agents = super::state::blocking(move || Ok(sender.query(views::agents)?)).await?;
    Ok(Json(agents.into_iter().map(agent_info).collect()))
}

fn agent_info(view: views::AgentView) -> AgentInfo {
    let use_info = |u: views::Use| UseInfo {
        used: u.used,
        limit: u.limit,
    };
    AgentInfo {
        name: view.name,
        module: view.module,
        grants: view.grants,
        state_digest: view.state_digest,
        busy: view.busy,
        queued: view.queued,
        budgets: view
            .budgets
            .into_iter()
            .map(|b| BudgetInfo {
                grant: b.grant,
                window_ms: b.window_ms,
                calls: use_info(b.calls),
                bytes: use_info(b.bytes),
                tokens: use_info(b.tokens),
            })
            .collect(),
    }
}
