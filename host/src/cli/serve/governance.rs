//! The governance loop over HTTP: proposals with their changes, shadow runs, verdicts so far and
//! what still stands in the way (`GET .../proposals`, `.../proposals/{n}`), the policy, verdicts
//! signed by the approver's own key on their machine or in their browser (`POST
//! .../proposals/{n}/verdicts`: the server checks and journals them, it never holds a private
//! key), and `apply`. Verdicts and applies run on the world's thread between steps.

use super::error::{ApiError, ErrorBody, chain};
use super::extract::{ApiJson, ApiPath};
use super::state::{AppState, Hosted, blocking};
use agentos_runtime::governance::GovernanceError;
use agentos_runtime::governance::ledger::{Ledger, LedgerError, ProposalState};
use agentos_runtime::governance::propose::Source;
use agentos_runtime::governance::record::{Author, Proposal, ProposalBody, SignedVerdict, Verdict, VerdictBody};
use agentos_runtime::world::WorldPaths;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

impl From<GovernanceError> for ApiError {
    fn from(error: GovernanceError) -> ApiError {
        let message = chain(&error);
        match error {
            GovernanceError::Ledger(LedgerError::NotAProposal { .. }) => {
                ApiError::not_found("no_such_proposal", message)
            }
            GovernanceError::NotAnApprover { .. } => ApiError::new(StatusCode::FORBIDDEN, "not_an_approver", message),
            GovernanceError::CannotJudge { .. }
            | GovernanceError::OwnProposal { .. }
            | GovernanceError::AlreadyJudged { .. }
            | GovernanceError::NotReady { .. }
            | GovernanceError::NotApplied { .. }
            | GovernanceError::NotAsDrafted { .. }
            | GovernanceError::CannotShadow { .. }
            | GovernanceError::NoWorkload
            | GovernanceError::ChangesNothing { .. }
            | GovernanceError::PolicyDenies { .. } => ApiError::new(StatusCode::CONFLICT, "refused", message),
            GovernanceError::Manifest(_)
            | GovernanceError::Patch(_)
            | GovernanceError::DoesNotApply { .. }
            | GovernanceError::NotJson(_)
            | GovernanceError::RevertTarget(_)
            | GovernanceError::UnreadableComponent { .. }
            | GovernanceError::PinMismatch { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_proposal", message)
            }
            GovernanceError::UnknownAgent { .. } | GovernanceError::BadEvent { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_event", message)
            }
            _ => ApiError::internal(message),
        }
    }
}

/// Who may approve, how many approvals a change needs, and whether it needs a clean shadow run.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    pub approvers: Vec<ApproverView>,
    pub quorum: u32,
    pub require_clean_shadow: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApproverView {
    /// The name verdicts carry.
    pub name: String,
    /// A person's ed25519 public key (hex), or `agent:<name>`.
    pub key: String,
}

/// The policy in force.
#[utoipa::path(get, path = "/v1/worlds/{world}/policy", tag = "governance",
    params(("world" = String, Path, description = "The world's name on this server")),
    responses((status = 200, body = PolicyView)))]
pub async fn policy(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<PolicyView>, ApiError> {
    let world = state.world(&name)?;
    blocking(move || {
        let (_, ledger) = world.ledger_view()?;
        let policy = ledger.in_force().manifest.policy.clone().unwrap_or_default();
        Ok(Json(PolicyView {
            approvers: policy
                .approvers
                .iter()
                .map(|(name, key)| ApproverView {
                    name: name.clone(),
                    key: key.clone(),
                })
                .collect(),
            quorum: policy.quorum,
            require_clean_shadow: policy.require_clean_shadow,
        }))
    })
    .await
}

/// Every proposal, as `agentos-host history --json` lists it, and the manifests the world ran.
#[utoipa::path(get, path = "/v1/worlds/{world}/proposals", tag = "governance",
    params(("world" = String, Path, description = "The world's name on this server")),
    responses((status = 200, description = "`{manifests, proposals}` as `history --json` prints them", body = Object)))]
pub async fn proposals(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let world = state.world(&name)?;
    blocking(move || {
        let (_, ledger) = world.ledger_view()?;
        let manifests: Vec<_> = ledger
            .configurations
            .iter()
            .map(|c| serde_json::json!({ "since": c.since, "at_ms": c.at_ms, "manifest": hex::encode(c.digest), "proposal": c.proposal }))
            .collect();
        let proposals: Vec<_> = ledger
            .proposals
            .values()
            .map(|p| crate::cli::govern::proposal_json(&ledger, p))
            .collect();
        Ok(Json(serde_json::json!({ "manifests": manifests, "proposals": proposals })))
    })
    .await
}

/// One proposal: its entry as listed, the patch itself, who approved so far, and each shadow
/// run's whole report.
#[utoipa::path(get, path = "/v1/worlds/{world}/proposals/{proposal}", tag = "governance",
    params(("world" = String, Path, description = "The world's name on this server"),
           ("proposal" = u64, Path, description = "The proposal's entry number")),
    responses((status = 200, body = Object)))]
pub async fn proposal(
    State(state): State<AppState>,
    ApiPath((name, proposal)): ApiPath<(String, u64)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let world = state.world(&name)?;
    blocking(move || {
        let (journal, ledger) = world.ledger_view()?;
        let state = ledger.proposal(proposal).map_err(GovernanceError::from)?;
        let mut view = crate::cli::govern::proposal_json(&ledger, state);
        view["patch"] = serde_json::from_str(&state.proposal.body.patch_json).unwrap_or(serde_json::Value::Null);
        view["diff"] = manifest_diff(&ledger, state).into();
        view["approved_by"] = serde_json::json!(ledger.readiness(proposal).approved_by);
        view["world_id"] = hex::encode(ledger.world_id).into();
        // Names are the author's to choose; the key is what identifies them.
        view["author_key"] = match &state.proposal.body.author {
            Author::Person { public_key, .. } => hex::encode(public_key).into(),
            Author::Agent { .. } => serde_json::Value::Null,
        };
        let reports: Vec<serde_json::Value> = state
            .shadows
            .iter()
            .map(|(_, shadow)| {
                journal
                    .blob(&shadow.report)
                    .ok()
                    .flatten()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .unwrap_or(serde_json::Value::Null)
            })
            .collect();
        view["shadow_reports"] = reports.into();
        Ok(Json(view))
    })
    .await
}

/// Bytes of manifest text past which a proposal's diff is not computed.
const DIFF_TEXT_MAX: usize = 1024 * 1024;

/// The manifest the proposal was written against and the one it makes (as recorded when it was
/// applied), as `world.toml` text (JSON when either is not expressible as TOML), line by line:
/// unified-diff hunks (`@@ …`, then lines starting with ` `, `-` or `+`). `None` when it cannot
/// be shown: the patch does not apply, or the texts are too large.
fn manifest_diff(ledger: &Ledger, state: &ProposalState) -> Option<Vec<String>> {
    let before = &ledger.at(state.seq).manifest;
    let after = match state.applied {
        Some(at) => ledger.at(at).manifest.clone(),
        None => agentos_air::apply(&state.patch().ok()?, before).ok()?,
    };
    let (before, after) = match (before.to_toml(), after.to_toml()) {
        (Ok(before), Ok(after)) => (before, after),
        _ => {
            let json = |m: &agentos_air::Manifest| serde_json::to_string_pretty(m).expect("a manifest encodes");
            (json(before), json(&after))
        }
    };
    if before.len() + after.len() > DIFF_TEXT_MAX {
        return None;
    }
    let diff = similar::TextDiff::configure()
        .timeout(std::time::Duration::from_millis(200))
        .diff_lines(&before, &after);
    let mut lines = Vec::new();
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        lines.push(hunk.header().to_string());
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Equal => ' ',
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
            };
            lines.push(format!("{sign}{}", change.value().trim_end_matches('\n')));
        }
    }
    Some(lines)
}

/// A verdict signed by the approver: the fields of the documented `VerdictBody` the server
/// cannot fill in itself, the approver's public key and the signature over
/// `"agentos.verdict.v1\0" ‖ postcard(VerdictBody)` (docs/journal.md).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedVerdictRequest {
    /// `approve` or `reject`.
    pub verdict: VerdictWord,
    /// The approver's name in the policy in force.
    pub approver: String,
    #[serde(default)]
    pub comment: String,
    /// The world's id (hex), as signed.
    #[schema(pattern = "^[0-9a-fA-F]{32}$")]
    pub world_id: String,
    /// The proposal's hash (hex), as signed.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub proposal_hash: String,
    /// The approver's ed25519 public key, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub public_key: String,
    /// The ed25519 signature, hex.
    #[schema(pattern = "^[0-9a-fA-F]{128}$")]
    pub signature: String,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerdictWord {
    Approve,
    Reject,
}

/// A verdict journaled and where the proposal stands after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictAccepted {
    pub entry: u64,
    pub approver: String,
    /// Approvers whose approvals count.
    pub approved_by: Vec<String>,
    /// What still stands in the way of applying it (empty: it may be applied).
    pub blockers: Vec<String>,
}

fn hex_bytes<const N: usize>(field: &str, text: &str) -> Result<[u8; N], ApiError> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_verdict",
                format!("`{field}` is not {N} bytes of hex"),
            )
        })
}

/// Journal a verdict the approver signed.
#[utoipa::path(post, path = "/v1/worlds/{world}/proposals/{proposal}/verdicts", tag = "governance",
    params(("world" = String, Path, description = "The world's name on this server"),
           ("proposal" = u64, Path, description = "The proposal's entry number")),
    request_body = SignedVerdictRequest,
    responses((status = 201, body = VerdictAccepted),
              (status = 403, description = "The key is not an approver in the policy", body = ErrorBody),
              (status = 409, description = "Closed, already judged, or for another proposal or world", body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn verdict(
    State(state): State<AppState>,
    ApiPath((name, proposal)): ApiPath<(String, u64)>,
    ApiJson(request): ApiJson<SignedVerdictRequest>,
) -> Result<(StatusCode, Json<VerdictAccepted>), ApiError> {
    let world = state.world(&name)?;
    let signed = SignedVerdict {
        body: VerdictBody {
            version: 1,
            world_id: hex_bytes("world_id", &request.world_id)?,
            proposal,
            proposal_hash: hex_bytes("proposal_hash", &request.proposal_hash)?,
            verdict: match request.verdict {
                VerdictWord::Approve => Verdict::Approve,
                VerdictWord::Reject => Verdict::Reject,
            },
            approver: request.approver,
            by_agent: None,
            comment: request.comment,
        },
        public_key: hex_bytes("public_key", &request.public_key)?,
        signature: hex::decode(&request.signature).map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_verdict",
                "`signature` is not hex",
            )
        })?,
    };
    let judged = on_world(&world, move |world| {
        agentos_runtime::governance::verdict::judge_signed(&mut world.kernel.journal(), signed)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(VerdictAccepted {
            entry: judged.seq,
            approver: judged.approver,
            approved_by: judged.readiness.approved_by,
            blockers: judged.readiness.blockers,
        }),
    ))
}

/// A proposal applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppliedView {
    pub proposal: u64,
    /// The `manifest-applied` entry.
    pub entry: u64,
    /// The manifest digests before and after, hex.
    pub previous: String,
    pub manifest: String,
    pub notices: Vec<String>,
}

/// Switch the world to an approved proposal's manifest (between steps).
#[utoipa::path(post, path = "/v1/worlds/{world}/proposals/{proposal}/apply", tag = "governance",
    params(("world" = String, Path, description = "The world's name on this server"),
           ("proposal" = u64, Path, description = "The proposal's entry number")),
    responses((status = 200, body = AppliedView),
              (status = 409, description = "Not ready (what is missing is listed), or refused by the new components", body = ErrorBody)))]
pub async fn apply(
    State(state): State<AppState>,
    ApiPath((name, proposal)): ApiPath<(String, u64)>,
) -> Result<Json<AppliedView>, ApiError> {
    let world = state.world(&name)?;
    let applied = on_world(&world, move |world| {
        agentos_runtime::governance::apply::apply_to(world, proposal)
    })
    .await?;
    Ok(Json(AppliedView {
        proposal: applied.proposal,
        entry: applied.seq,
        previous: hex::encode(applied.previous),
        manifest: hex::encode(applied.manifest),
        notices: applied.notices,
    }))
}

/// Run `job` on the world's thread with the whole world, once its steps in flight are back.
async fn on_world<R: Send + 'static>(
    world: &Arc<Hosted>,
    job: impl FnOnce(&mut agentos_runtime::world::World) -> Result<R, GovernanceError> + Send + 'static,
) -> Result<R, ApiError> {
    let sender = world.sender.clone();
    blocking(move || Ok(sender.with_world(job)??)).await
}

/// What to propose, and who proposes it: exactly one of `patch`, `manifest` or `revert`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    /// An AIR patch (JSON form, as `agentos-host air diff --json` writes; `base` and
    /// `pre_image` may be left out).
    #[schema(value_type = Option<Object>)]
    pub patch: Option<serde_json::Value>,
    /// A whole manifest (JSON form): the proposal is its difference from the manifest in force.
    /// Component files it names are read from the world's directory on the server.
    #[schema(value_type = Option<Object>)]
    pub manifest: Option<serde_json::Value>,
    /// Return to an earlier configuration: the entry number it came into force at or its
    /// manifest digest; `""` for the last one that differs from the one in force.
    pub revert: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The author's name (as their key file is named).
    pub author: String,
    /// The author's ed25519 public key, hex: the key that will sign.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub public_key: String,
}

/// A proposal ready to sign.
#[derive(Debug, Serialize, ToSchema)]
pub struct DraftView {
    /// The `ProposalBody` (serde JSON form): post it back with the signature.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// What to sign: `"agentos.proposal.v1\0"` ‖ postcard(body), hex.
    pub signing_bytes: String,
    /// sha256 of the signing bytes: the proposal's hash, which verdicts sign.
    pub hash: String,
    pub changes: Vec<String>,
    pub new_capabilities: Vec<String>,
    pub approvals_needed: u32,
}

/// Draft a proposal against the manifest in force, for its author to sign.
#[utoipa::path(post, path = "/v1/worlds/{world}/proposals/drafts", tag = "governance",
    params(("world" = String, Path, description = "The world's name on this server")),
    request_body = DraftRequest,
    responses((status = 200, body = DraftView),
              (status = 409, description = "Changes nothing, or the policy denies it", body = ErrorBody),
              (status = 422, description = "Does not parse or apply", body = ErrorBody)))]
pub async fn draft(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<DraftRequest>,
) -> Result<Json<DraftView>, ApiError> {
    let world = state.world(&name)?;
    let public_key: [u8; 32] = hex_bytes("public_key", &request.public_key)?;
    let author = Author::Person {
        name: request.author,
        public_key,
    };
    let text = match (&request.patch, &request.manifest, &request.revert) {
        (Some(value), None, None) | (None, Some(value), None) => Some(value.to_string()),
        (None, None, Some(_)) => None,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_proposal",
                "give exactly one of `patch`, `manifest` or `revert`",
            ));
        }
    };
    if request.manifest.as_ref().is_some_and(|m| m.get("world").is_none()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_proposal",
            "`manifest` must be a whole manifest (an object with `world`)",
        ));
    }
    blocking(move || {
        let (journal, ledger) = world.ledger_view()?;
        let revert = request.revert.as_deref().filter(|to| !to.is_empty());
        let source = match &text {
            Some(text) => Source::Json(text),
            None => Source::Revert(revert),
        };
        let paths = WorldPaths::new(&world.root);
        let drafted = agentos_runtime::governance::propose::draft(&paths, &journal, &ledger, source)?;
        let prepared = agentos_runtime::governance::propose::prepare(&ledger, drafted, &request.description, author)?;
        Ok(Json(DraftView {
            body: serde_json::to_value(&prepared.body).expect("a proposal body encodes"),
            signing_bytes: hex::encode(prepared.body.signing_bytes()),
            hash: hex::encode(prepared.body.hash()),
            changes: prepared.changes,
            new_capabilities: prepared.judgement.widenings.iter().map(ToString::to_string).collect(),
            approvals_needed: prepared.judgement.approvals_needed,
        }))
    })
    .await
}

/// A drafted body and its author's signature over its signing bytes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedProposalRequest {
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// ed25519 signature by the author's key, hex.
    #[schema(pattern = "^[0-9a-fA-F]{128}$")]
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalAccepted {
    /// The proposal's entry number.
    pub proposal: u64,
    pub hash: String,
    pub changes: Vec<String>,
    pub approvals_needed: u32,
}

/// Journal a proposal its author signed (the body as drafted, unchanged).
#[utoipa::path(post, path = "/v1/worlds/{world}/proposals", tag = "governance",
    params(("world" = String, Path, description = "The world's name on this server")),
    request_body = SignedProposalRequest,
    responses((status = 201, body = ProposalAccepted),
              (status = 409, description = "Not the body the server drafts now, or its signature does not check", body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<SignedProposalRequest>,
) -> Result<(StatusCode, Json<ProposalAccepted>), ApiError> {
    let world = state.world(&name)?;
    let body: ProposalBody = serde_json::from_value(request.body).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_proposal",
            format!("`body` is not a proposal body as drafted: {error}"),
        )
    })?;
    let Author::Person { public_key, .. } = &body.author else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_proposal",
            "a proposal over the API is a person's",
        ));
    };
    let proposal = Proposal {
        signer: *public_key,
        signature: hex::decode(&request.signature).map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_proposal",
                "`signature` is not hex",
            )
        })?,
        body,
    };
    let journaled = on_world(&world, move |world| {
        let paths = world.paths.clone();
        agentos_runtime::governance::propose::submit_signed(&paths, &mut world.kernel.journal(), proposal)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ProposalAccepted {
            proposal: journaled.seq,
            hash: hex::encode(journaled.hash),
            changes: journaled.changes,
            approvals_needed: journaled.judgement.approvals_needed,
        }),
    ))
}
