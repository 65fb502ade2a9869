//! The routes of `/v1` and the OpenAPI document generated from them (`GET /v1/openapi.json`,
//! OpenAPI 3.1): each handler's path, parameters and responses are declared beside it, and the
//! router is built from the same declarations, so the document cannot drift from what is served.
//! Every route needs one token scope (see `auth`).

use super::auth;
use super::error::ApiError;
use super::state::AppState;
use super::tokens::{Scope, Tokens};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body accepted.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AgentOS",
        description = "Worlds held by `agentos-host serve`: events in, journal entries out, receipts, proofs, bundles."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "worlds", description = "The worlds a server holds, their status and agents"),
        (name = "events", description = "Events for agents and plans"),
        (name = "journal", description = "Entries, receipts and the live stream"),
        (name = "proofs", description = "Checkpoints, inclusion and consistency proofs, audit bundles"),
        (name = "plans", description = "Plans, their runs, manual runs"),
        (name = "governance", description = "Proposals, the policy, verdicts signed by approvers, apply"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The routes that need `scope`, behind the check of it.
fn scoped(tokens: &Option<Arc<Tokens>>, scope: Scope, routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    let tokens = tokens.clone();
    routes.route_layer(axum::middleware::from_fn(move |request, next| {
        auth::require(tokens.clone(), scope, request, next)
    }))
}

/// The `/v1` router and its OpenAPI document.
pub fn router(state: AppState, tokens: Option<Arc<Tokens>>) -> Router {
    use super::{entries, events, governance, plans, proofs, shadow, worlds};
    let tokens_required = tokens.is_some();
    let read = OpenApiRouter::new()
        .routes(routes!(worlds::list_worlds))
        .routes(routes!(worlds::world_status))
        .routes(routes!(worlds::agents))
        .routes(routes!(entries::entries))
        .routes(routes!(entries::receipts))
        .routes(routes!(entries::dead_letters))
        .routes(routes!(entries::stream))
        .routes(routes!(proofs::checkpoint))
        .routes(routes!(proofs::prove_entry))
        .routes(routes!(proofs::prove_consistency))
        .routes(routes!(proofs::bundle))
        .routes(routes!(governance::policy))
        .routes(routes!(governance::proposals))
        .routes(routes!(governance::proposal))
        .routes(routes!(plans::plans))
        .routes(routes!(plans::runs));
    let send = OpenApiRouter::new().routes(routes!(events::send_event));
    let operate = OpenApiRouter::new()
        .routes(routes!(governance::verdict))
        .routes(routes!(governance::draft))
        .routes(routes!(governance::submit))
        .routes(routes!(governance::apply))
        .routes(routes!(shadow::shadow_run))
        .routes(routes!(plans::start_run));
    let (routes, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(scoped(&tokens, Scope::Read, read))
        .merge(scoped(&tokens, Scope::Send, send))
        .merge(scoped(&tokens, Scope::Operate, operate))
        .split_for_parts();
    let mut document = document;
    document_errors(&mut document);
    let document = Arc::new(document);
    routes
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .merge(super::console::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn(move |request, next| {
            auth::same_origin(tokens_required, request, next)
        }))
        .with_state(state)
}

/// Every operation can answer with the errors every route can give: a request that does not
/// parse (400), no or an unknown token (401), a token without the scope (403), no such world
/// or entry (404). Each is an [`ErrorBody`](super::error::ErrorBody).
fn document_errors(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let common = [
        ("400", "The request does not parse: path, query, headers or body"),
        ("401", "No bearer token, or one the server does not know"),
        ("403", "The token lacks the scope this needs"),
        ("404", "No such world, agent, entry or proof"),
    ];
    let with_body = [
        ("413", "The body is larger than 1 MiB"),
        ("415", "The body is not `application/json`"),
    ];
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete];
        for operation in operations.into_iter().flatten() {
            let body = operation.request_body.is_some();
            for (status, description) in common.into_iter().chain(with_body.into_iter().filter(|_| body)) {
                operation
                    .responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description).into());
            }
        }
    }
}

async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::not_found("not_found", format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}
