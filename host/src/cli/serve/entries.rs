//! The journal read over HTTP: `GET /v1/worlds/{world}/entries` (paged, filtered by agent, kind
//! and range, each entry decoded as `log` shows it), `GET .../receipts` (each with its signed
//! bytes, signature and key), `GET .../dead-letters` (inputs set aside unprocessed), and `GET
//! .../stream`, the entries as Server-Sent Events as they become durable, resumable from
//! `Last-Event-ID`.

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, entry_number};
use super::state::{AppState, Hosted, LIVE_STREAMS_MAX, blocking};
use agentos_runtime::journal::Journal;
use agentos_runtime::journal::entry::{Entry, EntryBody};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Most entries one page holds.
pub const PAGE_MAX: u32 = 1000;
const PAGE_DEFAULT: u32 = 100;
/// Most entries one page request looks at (a filter that matches little pages through the
/// journal with `next_after`).
const SCAN_MAX: u64 = 20_000;
const SCAN_CHUNK: u64 = 512;

/// One journal entry, decoded.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub seq: u64,
    /// `ingress`, `step-committed`, `effect-receipt`, ... (see `kinds` in the docs).
    pub kind: String,
    /// The agent (or `plan:<name>`) it concerns, if any.
    pub agent: Option<String>,
    /// The ingress entry of the step it belongs to, if any.
    pub step: Option<u64>,
    /// One line as `agentos-host log` prints it.
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntriesPage {
    pub entries: Vec<EntryView>,
    /// Ask again with `after` set to this for more; absent at the journal's durable end.
    pub next_after: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// Entries after this entry number (from the first when absent).
    pub after: Option<u64>,
    /// Entries before this entry number.
    pub before: Option<u64>,
    /// At most this many (100 by default, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only entries of this agent (or `plan:<name>`).
    pub agent: Option<String>,
    /// Only entries of this kind (`ingress`, `step-committed`, `effect-receipt`, ...).
    #[param(schema_with = entry_kind_schema)]
    pub kind: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptsPage {
    /// Each receipt as `agentos-host receipts --json` prints it: the receipt's fields, its
    /// `signed_bytes`, `signature` and the genesis `public_key`, hex.
    #[schema(value_type = Vec<Object>)]
    pub receipts: Vec<serde_json::Value>,
    pub next_after: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Receipts after this entry number.
    pub after: Option<u64>,
    /// At most this many (100 by default, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The schema of an entry kind: one of [`EntryBody::KINDS`].
fn entry_kind_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(EntryBody::KINDS))
        .build()
}

/// What a page keeps of the entries it looks at.
struct Filter {
    agent: Option<String>,
    kind: Option<String>,
}

impl Filter {
    fn keeps(&self, journal: &Journal, entry: &Entry) -> bool {
        if self.kind.as_deref().is_some_and(|kind| kind != entry.body.kind()) {
            return false;
        }
        match &self.agent {
            None => true,
            Some(agent) => crate::cli::show::describe(journal, entry).0.as_deref() == Some(agent.as_str()),
        }
    }
}

fn limit_of(limit: Option<u32>) -> Result<u64, ApiError> {
    match limit.unwrap_or(PAGE_DEFAULT) {
        0 => Err(ApiError::bad_request("bad_query", "`limit` must be at least 1")),
        n if n > PAGE_MAX => Err(ApiError::bad_request(
            "bad_query",
            format!("`limit` is at most {PAGE_MAX}"),
        )),
        n => Ok(u64::from(n)),
    }
}

/// The entries after `after` (and before `before`) that `keep` keeps, at most `limit`, from
/// the durable journal of `durable` entries. Returns them and where to go on from.
fn page(
    journal: &Journal,
    durable: u64,
    after: Option<u64>,
    before: Option<u64>,
    limit: u64,
    mut keep: impl FnMut(&Entry) -> bool,
) -> Result<(Vec<Entry>, Option<u64>), ApiError> {
    let end = before.map_or(durable, |before| before.min(durable));
    let mut start = after.map_or(0, |after| after.saturating_add(1));
    let scan_end = end.min(start.saturating_add(SCAN_MAX));
    let mut kept = Vec::new();
    while start < scan_end {
        let chunk_end = (start + SCAN_CHUNK).min(scan_end);
        for entry in journal.entries_in(start..chunk_end)? {
            let seq = entry.seq;
            if keep(&entry) {
                kept.push(entry);
                if kept.len() as u64 == limit {
                    return Ok((kept, (seq + 1 < end).then_some(seq)));
                }
            }
        }
        start = chunk_end;
    }
    Ok((kept, (scan_end < end).then(|| scan_end - 1)))
}

/// What a page asks for, checked: entries after `after`, before `before`, at most `limit`.
struct PageRequest {
    after: Option<u64>,
    before: Option<u64>,
    limit: u64,
}

impl PageRequest {
    fn of(after: Option<u64>, before: Option<u64>, limit: Option<u32>) -> Result<PageRequest, ApiError> {
        Ok(PageRequest {
            limit: limit_of(limit)?,
            after: entry_number("after", after)?,
            before: entry_number("before", before)?,
        })
    }
}

/// Answer a page request: the durable entries `keep` keeps, read off a view of the world's
/// journal, made into the answer by `answer` (with where the next page starts).
async fn answer_page<T: Send + 'static>(
    world: Arc<Hosted>,
    request: PageRequest,
    keep: impl Fn(&Journal, &Entry) -> bool + Send + 'static,
    answer: impl FnOnce(&Journal, &Hosted, Vec<Entry>, Option<u64>) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(move || {
        let journal = world.reader();
        // What the view holds is durable: an answer already sent for an entry is never ahead of
        // it (the announcement of a commit may be).
        let durable = journal.len();
        let (kept, next_after) = page(
            &journal,
            durable,
            request.after,
            request.before,
            request.limit,
            |entry| keep(&journal, entry),
        )?;
        answer(&journal, &world, kept, next_after)
    })
    .await
}

pub fn entry_view(journal: &Journal, entry: &Entry) -> EntryView {
    let (agent, step, text) = crate::cli::show::describe(journal, entry);
    EntryView {
        seq: entry.seq,
        kind: entry.body.kind().to_string(),
        agent,
        step,
        text,
    }
}

/// A page of the world's journal.
#[utoipa::path(get, path = "/v1/worlds/{world}/entries", tag = "journal",
    params(("world" = String, Path, description = "The world's name on this server"), EntriesQuery),
    responses((status = 200, body = EntriesPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn entries(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<EntriesQuery>,
) -> Result<Json<EntriesPage>, ApiError> {
    let world = state.world(&name)?;
    let request = PageRequest::of(query.after, query.before, query.limit)?;
    if let Some(kind) = &query.kind
        && !EntryBody::KINDS.contains(&kind.as_str())
    {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("no entry kind `{kind}`; kinds: {}", EntryBody::KINDS.join(", ")),
        ));
    }
    let filter = Filter {
        agent: query.agent,
        kind: query.kind,
    };
    answer_page(
        world,
        request,
        move |journal, entry| filter.keeps(journal, entry),
        |journal, _, kept, next_after| {
            let entries = kept.iter().map(|entry| entry_view(journal, entry)).collect();
            Ok(Json(EntriesPage { entries, next_after }))
        },
    )
    .await
}

/// The world's effect receipts, each with what checks it.
#[utoipa::path(get, path = "/v1/worlds/{world}/receipts", tag = "journal",
    params(("world" = String, Path, description = "The world's name on this server"), PageQuery),
    responses((status = 200, body = ReceiptsPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn receipts(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ReceiptsPage>, ApiError> {
    let world = state.world(&name)?;
    answer_page(
        world,
        PageRequest::of(query.after, None, query.limit)?,
        |_, entry| matches!(entry.body, EntryBody::EffectReceipt(_)),
        |journal, world, kept, next_after| {
            let receipts = kept
                .iter()
                .filter_map(|entry| match &entry.body {
                    EntryBody::EffectReceipt(r) => Some(crate::cli::show::receipt_json(
                        journal,
                        entry.seq,
                        r,
                        &world.genesis_key,
                    )),
                    _ => None,
                })
                .collect();
            Ok(Json(ReceiptsPage { receipts, next_after }))
        },
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this entry number (`Last-Event-ID` takes precedence; from the first entry
    /// when neither is given).
    pub after: Option<u64>,
}

/// The journal as Server-Sent Events: each entry once durable, event type its kind, id its
/// number, data an [`EntryView`].
#[utoipa::path(get, path = "/v1/worlds/{world}/stream", tag = "journal",
    params(
        ("world" = String, Path, description = "The world's name on this server"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this entry"),
        StreamQuery,
    ),
    responses(
        (status = 200, description = "A stream of entries", content_type = "text/event-stream", body = String),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, description = "Too many live streams open on this server", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let world = state.world(&name)?;
    let after =
        match headers.get("last-event-id") {
            None => query.after,
            Some(value) => Some(value.to_str().ok().and_then(|v| v.trim().parse().ok()).ok_or_else(|| {
                ApiError::bad_request("bad_last_event_id", "`Last-Event-ID` must be an entry number")
            })?),
        };
    let after = entry_number("after", after)?;
    let open = state.0.live_streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!("this server has {LIVE_STREAMS_MAX} live streams open; try again later"),
        )
        .retry_after(5)
    })?;
    let (events, received) = tokio::sync::mpsc::channel(64);
    let stopping = state.0.stopping.clone();
    tokio::spawn(async move {
        let _open = open;
        feed(world, after, events, stopping).await;
    });
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(received)).keep_alive(KeepAlive::default()))
}

/// Send the entries after `after` as they become durable, until the client goes or the server
/// stops.
async fn feed(
    world: Arc<Hosted>,
    mut after: Option<u64>,
    events: tokio::sync::mpsc::Sender<Result<Event, Infallible>>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let mut committed = world.committed.clone();
    loop {
        let durable = *committed.borrow_and_update();
        let next = after.map_or(0, |after| after + 1);
        if next < durable {
            let reader = world.clone();
            let end = durable.min(next + SCAN_CHUNK);
            let read = tokio::task::spawn_blocking(move || {
                let journal = reader.reader();
                journal
                    .entries_in(next..end)
                    .map(|entries| entries.iter().map(|e| entry_view(&journal, e)).collect::<Vec<_>>())
            })
            .await;
            let Ok(Ok(views)) = read else {
                return;
            };
            for view in views {
                let seq = view.seq;
                let event = Event::default()
                    .id(seq.to_string())
                    .event(view.kind.clone())
                    .json_data(&view)
                    .expect("an entry view encodes");
                if events.send(Ok(event)).await.is_err() {
                    return;
                }
                after = Some(seq);
            }
            continue;
        }
        tokio::select! {
            changed = committed.changed() => if changed.is_err() { return },
            _ = stopping.wait_for(|stopping| *stopping) => return,
            _ = events.closed() => return,
        }
    }
}

/// An input the world could not process and set aside: its agent is gone (`undeliverable`), or
/// its step stopped the host at every attempt (`abandoned`).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    /// The input's ingress entry.
    pub ingress: u64,
    /// The `step-failed` entry that set it aside.
    pub entry: u64,
    pub agent: String,
    /// The event, in canonical WAVE text.
    pub event: String,
    pub source: String,
    /// `undeliverable` or `abandoned`.
    pub failure: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLettersPage {
    pub dead_letters: Vec<DeadLetter>,
    pub next_after: Option<u64>,
}

/// The inputs the world set aside without processing them.
#[utoipa::path(get, path = "/v1/worlds/{world}/dead-letters", tag = "journal",
    params(("world" = String, Path, description = "The world's name on this server"), PageQuery),
    responses((status = 200, body = DeadLettersPage)))]
pub async fn dead_letters(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<DeadLettersPage>, ApiError> {
    use agentos_runtime::journal::entry::FailureKind;
    let world = state.world(&name)?;
    answer_page(
        world,
        PageRequest::of(query.after, None, query.limit)?,
        |_, entry| {
            matches!(&entry.body, EntryBody::StepFailed(failed)
                if matches!(failed.kind, FailureKind::Undeliverable | FailureKind::Abandoned))
        },
        |journal, _, kept, next_after| {
            let mut dead_letters = Vec::new();
            for entry in kept {
                let EntryBody::StepFailed(failed) = entry.body else {
                    continue;
                };
                let (event, source) = match journal.entry(failed.ingress)?.map(|e| e.body) {
                    Some(EntryBody::Ingress(ingress)) => (ingress.event, ingress.source),
                    _ => (String::new(), String::new()),
                };
                dead_letters.push(DeadLetter {
                    ingress: failed.ingress,
                    entry: entry.seq,
                    agent: failed.agent,
                    event,
                    source,
                    failure: failed.kind.label().to_string(),
                    reason: failed.reason,
                });
            }
            Ok(Json(DeadLettersPage {
                dead_letters,
                next_after,
            }))
        },
    )
    .await
}
