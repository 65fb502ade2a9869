//! The one grant decision: what a caller's grants allow of an effect request. The backends that
//! judge requests decide through [`decide`] alone — live before it runs an adapter, shadow before
//! it serves a recorded outcome — so neither can skip a check the other makes, or make it on other
//! facts. (Replay judges nothing: it serves the outcomes decided when the calls were made.)
//!
//! What a decision needs beyond the request and the grants is passed in as [`Facts`]: the size
//! of the blob a `blob.get` names (the size limit applies to the stored bytes) and the timers
//! the caller has pending. Budgets are not part of the decision: they are admitted afterwards,
//! from the receipts of the live world, and only the live backend has those.

use super::{EffectFailure, EffectRequest, timer};
use crate::caps::{AgentGrants, Decision, LlmRoute};
use agentos_air::{CompileCap, HttpCap};
use std::path::PathBuf;

/// Facts of the world at the call that a decision depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// The size of the stored blob a `blob.get` names (`None`: none is stored under it).
    pub blob_size: Option<u64>,
    /// Timers the caller has pending, those set earlier in this step included.
    pub pending_timers: u32,
}

/// What an allowed request's adapter takes from its decision.
pub enum Permit<'g> {
    /// Nothing beyond the request.
    Plain,
    /// The capability, and the URL to send: the one the grant was checked against.
    Http {
        cap: &'g HttpCap,
        url: url::Url,
    },
    /// The granted directory and the path inside it.
    Fs {
        dir: PathBuf,
        relative: PathBuf,
    },
    Llm {
        route: LlmRoute<'g>,
    },
    /// The timer's due time.
    Timer {
        due_ms: u64,
    },
    Compile {
        cap: &'g CompileCap,
    },
}

/// How a request was decided.
pub enum Verdict<'g> {
    /// Allowed by `grant`.
    Allow { grant: String, permit: Permit<'g> },
    /// Refused by the grants.
    Deny { reason: String },
    /// Neither: the request cannot be carried out as asked (a blob that is not stored, a
    /// timer in the past), under `grant` if one covers the effect.
    Fail {
        grant: Option<String>,
        failure: EffectFailure,
    },
}

impl Verdict<'_> {
    fn of(decision: Decision, permit: Permit<'_>) -> Verdict<'_> {
        match decision {
            Decision::Allow { grant } => Verdict::Allow { grant, permit },
            Decision::Deny { reason } => Verdict::Deny { reason },
        }
    }
}

/// Decide `request`, made at logical time `at_ms`, against `grants`.
pub fn decide<'g>(grants: &'g AgentGrants, request: &EffectRequest, at_ms: u64, facts: Facts) -> Verdict<'g> {
    let denied = |reason: String| Verdict::Deny { reason };
    match request {
        EffectRequest::Log { .. } => Verdict::Allow {
            grant: "log".into(),
            permit: Permit::Plain,
        },
        EffectRequest::Http {
            method, url, headers, ..
        } => with_permit(grants.check_http(method, url, headers), |(cap, url)| Permit::Http {
            cap,
            url,
        }),
        EffectRequest::FsRead { path } | EffectRequest::FsListDir { path } | EffectRequest::FsWrite { path, .. } => {
            let write = matches!(request, EffectRequest::FsWrite { .. });
            with_permit(grants.check_fs(path, write), |(dir, relative)| Permit::Fs {
                dir,
                relative,
            })
        }
        EffectRequest::BlobPut { contents } => Verdict::of(grants.check_blob(contents.len() as u64), Permit::Plain),
        EffectRequest::BlobGet { digest } => match facts.blob_size {
            Some(size) => Verdict::of(grants.check_blob(size), Permit::Plain),
            None => Verdict::Fail {
                grant: None,
                failure: EffectFailure::Failed(format!("blob {digest} not found")),
            },
        },
        EffectRequest::Llm {
            provider,
            model,
            max_tokens,
            ..
        }
        | EffectRequest::LlmChat {
            provider,
            model,
            max_tokens,
            ..
        } => match grants.check_llm(provider.as_deref(), model, *max_tokens) {
            Ok((grant, route)) => Verdict::Allow {
                grant,
                permit: Permit::Llm { route },
            },
            Err(denial) => denied(denial.to_string()),
        },
        EffectRequest::TimerSchedule { when, .. } => match timer::due(*when, at_ms) {
            Ok((due_ms, delay_ms)) => Verdict::of(
                grants.check_timer(delay_ms, facts.pending_timers),
                Permit::Timer { due_ms },
            ),
            Err(failure) => Verdict::Fail {
                grant: grants.timer_grant().map(str::to_string),
                failure,
            },
        },
        EffectRequest::TimerCancel { .. } => match grants.timer_grant() {
            Some(grant) => Verdict::Allow {
                grant: grant.to_string(),
                permit: Permit::Plain,
            },
            None => denied("no timer grant".into()),
        },
        EffectRequest::Compile { language, .. } => {
            with_permit(grants.check_compile(language), |cap| Permit::Compile { cap })
        }
        EffectRequest::Emit { target, .. } => Verdict::of(grants.check_emit(target), Permit::Plain),
        EffectRequest::GovernanceManifest | EffectRequest::GovernanceApprove { .. } => {
            Verdict::of(grants.check_governance(false), Permit::Plain)
        }
        EffectRequest::GovernancePropose { .. } => Verdict::of(grants.check_governance(true), Permit::Plain),
        EffectRequest::McpListTools { server } => match grants.first_mcp_grant() {
            None => denied(format!("agent `{}` holds no mcp grant", grants.agent)),
            Some(_) if server.as_deref().is_some_and(|s| !grants.mcp_servers().contains(&s)) => denied(format!(
                "no mcp grant of agent `{}` names server `{}`",
                grants.agent,
                server.as_deref().unwrap_or_default()
            )),
            Some(grant) => Verdict::Allow {
                grant: grant.to_string(),
                permit: Permit::Plain,
            },
        },
        EffectRequest::McpCall { server, tool, .. } => match grants.check_mcp(server, tool) {
            Ok((grant, _)) => Verdict::Allow {
                grant: grant.to_string(),
                permit: Permit::Plain,
            },
            Err(reason) => denied(reason),
        },
    }
}

/// The verdict of a check that also names what an allowed call acts on.
fn with_permit<'g, T>(checked: (Decision, Option<T>), permit: impl FnOnce(T) -> Permit<'g>) -> Verdict<'g> {
    match checked {
        (Decision::Allow { grant }, Some(target)) => Verdict::Allow {
            grant,
            permit: permit(target),
        },
        (Decision::Deny { reason }, _) => Verdict::Deny { reason },
        // A check that allows without naming what to act on: refuse rather than act on nothing.
        (Decision::Allow { grant }, None) => Verdict::Deny {
            reason: format!("grant `{grant}` allowed the call but named nothing to act on"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TimerWhen;
    use agentos_air::Manifest;
    use std::path::Path;

    fn grants() -> AgentGrants {
        let text = r#"
            [world]
            name = "w"
            [schemas.e]
            variant = ["go"]
            [modules.m]
            component = "m.wasm"
            [caps.store]
            effect = "blob"
            max_bytes = 100
            [caps.later]
            effect = "timer"
            max_pending = 2
            [agents.a]
            module = "m"
            event = "e"
            grants = ["store", "later"]
        "#;
        let manifest = Manifest::parse_toml(text, "world.toml").unwrap();
        AgentGrants::from_manifest(&manifest, "a", Path::new("/w")).unwrap()
    }

    fn outcome(verdict: Verdict<'_>) -> Result<String, String> {
        match verdict {
            Verdict::Allow { grant, .. } => Ok(grant),
            Verdict::Deny { reason } => Err(format!("denied: {reason}")),
            Verdict::Fail { failure, .. } => Err(format!("failed: {failure:?}")),
        }
    }

    /// The facts a decision depends on decide it, whichever backend supplies them: a stored
    /// blob over the grant's size and a timer past the pending limit are refused.
    #[test]
    fn blob_sizes_and_pending_timers_decide_as_the_facts_say() {
        let grants = grants();
        let get = EffectRequest::BlobGet {
            digest: format!("sha256:{}", "0".repeat(64)),
        };
        let at = |blob_size, pending_timers| Facts {
            blob_size,
            pending_timers,
        };
        assert_eq!(outcome(decide(&grants, &get, 0, at(Some(100), 0))), Ok("store".into()));
        let refused = outcome(decide(&grants, &get, 0, at(Some(101), 0))).unwrap_err();
        assert!(refused.starts_with("denied"), "{refused}");
        let missing = outcome(decide(&grants, &get, 0, at(None, 0))).unwrap_err();
        assert!(missing.contains("not found"), "{missing}");

        let schedule = EffectRequest::TimerSchedule {
            when: TimerWhen::AfterMs(10),
            event: "go".into(),
        };
        assert_eq!(outcome(decide(&grants, &schedule, 0, at(None, 1))), Ok("later".into()));
        let refused = outcome(decide(&grants, &schedule, 0, at(None, 2))).unwrap_err();
        assert!(refused.starts_with("denied"), "{refused}");
        let past = EffectRequest::TimerSchedule {
            when: TimerWhen::AtMs(5),
            event: "go".into(),
        };
        let failed = outcome(decide(&grants, &past, 10, at(None, 0))).unwrap_err();
        assert!(failed.contains("in the past"), "{failed}");
    }
}
