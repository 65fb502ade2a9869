//! What lets a reader check a served world without trusting the server: the latest signed
//! checkpoint, an entry's inclusion proof, a consistency proof between two checkpoints, and the
//! whole journal as an audit bundle (`GET /v1/worlds/{world}/checkpoint`, `.../proofs/entries/{seq}`,
//! `.../proofs/consistency`, `.../bundle`). Each is what the CLI's `checkpoint`, `prove` and
//! `export` write, so `verify-proof` and `verify` check them offline.

use super::error::{ApiError, ErrorBody, chain};
use super::extract::{ApiPath, ApiQuery, entry_number};
use super::state::{AppState, blocking};
use agentos_runtime::proofs::{ProveError, checkpoint_file};
use agentos_runtime::world::WorldPaths;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

/// Bundles written or sent at once on one server (each is a copy of a whole journal).
pub const BUNDLES_MAX: usize = 2;

impl From<ProveError> for ApiError {
    fn from(error: ProveError) -> ApiError {
        let message = chain(&error);
        match error {
            ProveError::Journal(journal) => journal.into(),
            ProveError::NoSuchEntry(_) => ApiError::not_found("no_such_entry", message),
            // No proof of that exists (yet): not found, like a missing entry.
            ProveError::NotCheckpointed(_)
            | ProveError::OnlyReceiptsSigned(_)
            | ProveError::NoCheckpointOfSize { .. }
            | ProveError::Proof(_) => ApiError::not_found("no_such_proof", message),
        }
    }
}

/// The world's latest signed checkpoint, as `agentos-host checkpoint` prints it.
#[utoipa::path(get, path = "/v1/worlds/{world}/checkpoint", tag = "proofs",
    params(("world" = String, Path, description = "The world's name on this server")),
    responses((status = 200, description = "A checkpoint file (keep it for `verify --checkpoint`)", body = Object),
              (status = 404, body = ErrorBody)))]
pub async fn checkpoint(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let world = state.world(&name)?;
    blocking(move || {
        let (_, log) = world.proof_log_view()?;
        let Some((_, latest)) = log.latest() else {
            return Err(ApiError::not_found("no_checkpoint", "the world has no checkpoint yet"));
        };
        Ok(Json(checkpoint_file(latest)).into_response())
    })
    .await
}

/// A proof that entry `seq` is in the world's log, as `agentos-host prove` writes it.
#[utoipa::path(get, path = "/v1/worlds/{world}/proofs/entries/{seq}", tag = "proofs",
    params(("world" = String, Path, description = "The world's name on this server"),
           ("seq" = u64, Path, description = "The entry number")),
    responses((status = 200, description = "A proof file for `verify-proof`", body = Object),
              (status = 404, body = ErrorBody)))]
pub async fn prove_entry(
    State(state): State<AppState>,
    ApiPath((name, seq)): ApiPath<(String, u64)>,
) -> Result<Response, ApiError> {
    let world = state.world(&name)?;
    entry_number("seq", Some(seq))?;
    blocking(move || {
        let (journal, log) = world.proof_log_view()?;
        Ok(Json(log.prove(&journal, seq)?).into_response())
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older checkpoint's size (number of receipts).
    pub old: u64,
    /// The newer checkpoint's size.
    pub new: u64,
}

/// A proof that an older checkpoint's receipt log is a prefix of a newer one's.
#[utoipa::path(get, path = "/v1/worlds/{world}/proofs/consistency", tag = "proofs",
    params(("world" = String, Path, description = "The world's name on this server"), ConsistencyQuery),
    responses((status = 200, description = "A consistency proof file for `verify-proof`", body = Object),
              (status = 404, body = ErrorBody)))]
pub async fn prove_consistency(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> Result<Response, ApiError> {
    let world = state.world(&name)?;
    let (old, new) = (query.old, query.new);
    entry_number("old", Some(old))?;
    entry_number("new", Some(new))?;
    blocking(move || {
        let (_, log) = world.proof_log_view()?;
        Ok(Json(log.prove_consistency(old, new)?).into_response())
    })
    .await
}

/// The world's whole journal as an audit bundle file (what `agentos-host export` writes):
/// `verify`, `replay`, `log` take it in place of the world directory. Written to a scratch file
/// beside the journal and streamed from it, at most [`BUNDLES_MAX`] at a time.
#[utoipa::path(get, path = "/v1/worlds/{world}/bundle", tag = "proofs",
    params(("world" = String, Path, description = "The world's name on this server")),
    responses((status = 200, description = "The bundle (a redb file)", content_type = "application/octet-stream", body = Vec<u8>),
              (status = 404, body = ErrorBody),
              (status = 503, description = "Too many bundles under way", body = ErrorBody)))]
pub async fn bundle(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let world = state.world(&name)?;
    let sending = state.0.bundles.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{BUNDLES_MAX} bundles are being written or sent; try again later"),
        )
        .retry_after(5)
    })?;
    blocking(move || {
        // Beside the journal (on its disk, not in a memory-backed temporary directory).
        let scratch = tempfile::tempdir_in(WorldPaths::new(&world.root).state()).map_err(ApiError::internal)?;
        let file = scratch.path().join("bundle.redb");
        {
            let journal = world.reader();
            agentos_runtime::bundle::export_journal(&journal, &world.root, &file)
                .map_err(|error| ApiError::internal(chain(&error)))?;
        }
        // Sent from the open file, which outlives its (removed) scratch directory.
        let opened = std::fs::File::open(&file).map_err(ApiError::internal)?;
        let length = opened.metadata().map_err(ApiError::internal)?.len();
        drop(scratch);
        let chunks = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(opened));
        // The permit goes when the body is sent or the client goes.
        let body = axum::body::Body::from_stream(tokio_stream::StreamExt::map(chunks, move |chunk| {
            let _sending = &sending;
            chunk
        }));
        let disposition = format!("attachment; filename=\"{}.agentos-bundle\"", world.name);
        Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
                (header::CONTENT_LENGTH, length.to_string()),
            ],
            body,
        )
            .into_response())
    })
    .await
}
