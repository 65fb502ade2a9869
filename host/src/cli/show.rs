//! Human and JSON renderings of journal entries and receipts (for `log`, `send`, `receipts`).

use agentos_runtime::effects::{EffectFailure, EffectRequest, EffectResponse};
use agentos_runtime::journal::Journal;
use agentos_runtime::journal::entry::{Entry, EntryBody};
use agentos_runtime::kernel::decode_outcome;
use agentos_runtime::world::stream_label;
use serde_json::json;

fn short(digest: &[u8]) -> String {
    hex::encode(&digest[..6.min(digest.len())])
}

fn request_of(journal: &Journal, entry: &agentos_runtime::journal::entry::ReceiptEntry) -> Option<EffectRequest> {
    let bytes = journal.payload_bytes(&entry.request).ok()??;
    postcard::from_bytes(&bytes).ok()
}

fn outcome_text(journal: &Journal, entry: &agentos_runtime::journal::entry::ReceiptEntry) -> String {
    let Some(outcome) = journal
        .payload_bytes(&entry.outcome)
        .ok()
        .flatten()
        .and_then(|b| decode_outcome(&b))
    else {
        return "(outcome unreadable)".into();
    };
    match outcome {
        Ok(EffectResponse::Unit) => "ok".into(),
        Ok(EffectResponse::Http { status, body, .. }) => format!("HTTP {status}, {} bytes", body.len()),
        Ok(EffectResponse::Bytes(bytes)) => format!("{} bytes", bytes.len()),
        Ok(EffectResponse::Names(names)) => format!("{} names", names.len()),
        Ok(EffectResponse::Digest(digest)) => digest,
        Ok(EffectResponse::Artifact {
            digest,
            size,
            toolchain,
        }) => format!("component {digest} ({size} bytes, {toolchain})"),
        Ok(EffectResponse::TimerScheduled { id, due_ms, .. }) => format!("timer {id} due at t={due_ms} ms"),
        Ok(EffectResponse::TimerCancelled { id }) => format!("timer {id} cancelled"),
        Ok(EffectResponse::Completion {
            text,
            finish_reason,
            input_tokens,
            output_tokens,
        }) => {
            let excerpt: String = text.chars().take(60).collect();
            format!("{excerpt:?} ({finish_reason}, {input_tokens}+{output_tokens} tokens)")
        }
        Ok(EffectResponse::Chat {
            text,
            tool_calls,
            finish_reason,
            input_tokens,
            output_tokens,
        }) => {
            let excerpt: String = text.chars().take(60).collect();
            let calls: Vec<String> = tool_calls
                .iter()
                .map(|call| {
                    let arguments: String = call.arguments.chars().take(60).collect();
                    format!("{}({arguments})", call.name)
                })
                .collect();
            match calls.is_empty() {
                true => format!("{excerpt:?} ({finish_reason}, {input_tokens}+{output_tokens} tokens)"),
                false => format!(
                    "{excerpt:?} and tool calls {} ({finish_reason}, {input_tokens}+{output_tokens} tokens)",
                    calls.join(", ")
                ),
            }
        }
        Ok(EffectResponse::McpTools(tools)) => {
            let names: Vec<String> = tools.iter().map(|t| format!("{}/{}", t.server, t.name)).collect();
            format!("{} tools: {}", tools.len(), names.join(", "))
        }
        Ok(EffectResponse::McpResult(result)) => {
            let parts: Vec<String> = result
                .content
                .iter()
                .map(|part| match part {
                    agentos_runtime::effects::mcp::McpContent::Text(text) => {
                        let excerpt: String = text.chars().take(60).collect();
                        format!("{excerpt:?}")
                    }
                    agentos_runtime::effects::mcp::McpContent::Stored { kind, digest, size, .. } => {
                        format!("{kind} {digest} ({size} bytes)")
                    }
                })
                .collect();
            let verdict = if result.is_error { "tool error: " } else { "" };
            // The server's stderr follows as the step's `server stderr` output lines.
            format!("{verdict}{}", parts.join(", "))
        }
        Ok(EffectResponse::Emitted { target, event }) => format!("queued for {target}: {event}"),
        Ok(EffectResponse::Manifest(json)) => format!("manifest ({} bytes of JSON)", json.len()),
        Ok(EffectResponse::Proposed { proposal, hash }) => {
            format!("proposal #{proposal} (sha256:{})", &hash[..16.min(hash.len())])
        }
        Err(EffectFailure::Denied(r)) => format!("DENIED: {r}"),
        Err(EffectFailure::Failed(r)) => format!("failed: {r}"),
        Err(EffectFailure::BudgetExceeded(r)) => format!("budget exceeded: {r}"),
        Err(EffectFailure::InDoubt(r)) => format!("in doubt: {r}"),
        Err(EffectFailure::Timeout(r)) => format!("timeout: {r}"),
    }
}

/// (agent, step, one-line description) of an entry.
pub fn describe(journal: &Journal, entry: &Entry) -> (Option<String>, Option<u64>, String) {
    match &entry.body {
        EntryBody::Genesis(g) => (
            None,
            None,
            format!(
                "world {} created; host key {}; manifest sha256:{}; modules: {}",
                hex::encode(g.world_id),
                hex::encode(g.host_public_key),
                short(&g.manifest_digest),
                g.modules
                    .iter()
                    .map(|(m, d)| format!("{m} sha256:{}", short(d)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        EntryBody::Ingress(i) => (
            Some(i.agent.clone()),
            Some(entry.seq),
            format!("→ {} {}  ({}, t={} ms)", i.agent, i.event, i.source, i.at_ms),
        ),
        EntryBody::EffectIntent(i) => (
            None,
            Some(i.ingress),
            format!(
                "intent #{}.{} {} request sha256:{}",
                i.ingress,
                i.effect_index,
                i.effect,
                short(&i.request_digest)
            ),
        ),
        EntryBody::EffectReceipt(r) => {
            let b = &r.receipt.body;
            let request = request_of(journal, r).map_or_else(|| b.effect.clone(), |r| r.summary());
            let grant = b.grant.as_deref().map(|g| format!(" [grant {g}]")).unwrap_or_default();
            (
                Some(b.agent.clone()),
                Some(b.ingress),
                format!(
                    "receipt #{}.{} {request} → {}{grant} (signed, {} ms)",
                    b.ingress,
                    b.effect_index,
                    outcome_text(journal, r),
                    b.finished_ms.saturating_sub(b.started_ms)
                ),
            )
        }
        EntryBody::Output(o) => (
            Some(o.agent.clone()),
            Some(o.ingress),
            format!("{} {}: {}", o.agent, stream_label(o.stream), o.text),
        ),
        EntryBody::StepCommitted(s) => (
            Some(s.agent.clone()),
            Some(s.ingress),
            format!(
                "step #{} committed: {} state sha256:{} fuel {} effects {}",
                s.ingress,
                s.agent,
                short(&s.state_digest),
                s.fuel_used,
                s.effects
            ),
        ),
        EntryBody::Plan(p) => (
            Some(agentos_runtime::plans::address(&p.plan)),
            Some(p.ingress),
            format!("plan {} run #{}: {}", p.plan, p.run, p.event.describe()),
        ),
        EntryBody::TimerScheduled(t) => (
            Some(t.agent.clone()),
            Some(t.ingress),
            format!(
                "timer {} set by step #{}: {} {} at t={} ms",
                t.id, t.ingress, t.agent, t.event, t.due_ms
            ),
        ),
        EntryBody::TimerCancelled(t) => (
            None,
            Some(t.ingress),
            format!("timer {} cancelled by step #{}", t.id, t.ingress),
        ),
        EntryBody::Snapshot(snapshot) => (
            None,
            Some(snapshot.after_step),
            format!(
                "snapshot after step #{}: {}",
                snapshot.after_step,
                snapshot
                    .agents
                    .iter()
                    .map(|(agent, digest)| format!("{agent} sha256:{}", short(digest)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        EntryBody::KeyRotation(r) => (
            None,
            None,
            format!(
                "host key rotated: key {} hands over to {} (signed by both)",
                hex::encode(r.body.old_key_id),
                hex::encode(r.body.new_public_key)
            ),
        ),
        EntryBody::ReceiptCheckpoint(c) => (
            None,
            None,
            format!(
                "receipt checkpoint: {} receipts, root sha256:{} (signed)",
                c.body.tree_size,
                short(&c.body.root_hash)
            ),
        ),
        EntryBody::Checkpoint(c) => (
            None,
            None,
            format!(
                "checkpoint: entries #0–#{}, root sha256:{}; {} receipts, root sha256:{} (signed)",
                c.body.entries.saturating_sub(1),
                short(&c.body.entries_root),
                c.body.receipts,
                short(&c.body.receipts_root)
            ),
        ),
        EntryBody::StepAttempt(a) => (
            None,
            Some(a.ingress),
            format!(
                "step #{} attempted again (attempt {} after the host stopped during it)",
                a.ingress, a.attempt
            ),
        ),
        EntryBody::Proposal(p) => (
            None,
            None,
            format!(
                "proposal by {}{}: {:?} against manifest sha256:{} (hash sha256:{})",
                p.body.author,
                p.body
                    .reverts_to
                    .map_or(String::new(), |to| format!(", reverting to sha256:{}", short(&to))),
                p.body.description,
                short(&p.body.base),
                short(&p.body.hash())
            ),
        ),
        EntryBody::Verdict(v) => (
            None,
            None,
            format!(
                "proposal #{} {} by {} (key {}){}",
                v.body.proposal,
                v.body.verdict.label(),
                v.body.approver,
                short(&v.public_key),
                if v.body.comment.is_empty() {
                    String::new()
                } else {
                    format!(": {:?}", v.body.comment)
                }
            ),
        ),
        EntryBody::ShadowReport(r) => (
            None,
            None,
            format!(
                "shadow run of proposal #{}: {} — {} (report sha256:{})",
                r.proposal,
                if r.clean { "clean" } else { "NOT CLEAN" },
                r.summary,
                short(&r.report)
            ),
        ),
        EntryBody::ManifestApplied(a) => (
            None,
            None,
            format!(
                "proposal #{} applied: manifest sha256:{} → sha256:{}; agents migrated: {}",
                a.proposal,
                short(&a.previous),
                short(&a.manifest_digest),
                a.agents
                    .iter()
                    .map(|(agent, digest)| format!("{agent} sha256:{}", short(digest)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        EntryBody::ApplyRefused(r) => (
            None,
            None,
            format!("proposal #{} NOT applied, nothing changed: {}", r.proposal, r.reason),
        ),
        EntryBody::StepFailed(s) => (
            Some(s.agent.clone()),
            Some(s.ingress),
            format!(
                "step #{} FAILED ({}): {} — {} (state rolled back; fuel {} effects {})",
                s.ingress,
                s.kind.label(),
                s.agent,
                s.reason,
                s.fuel_used,
                s.effects
            ),
        ),
    }
}

/// One line for a person: what agents wrote in it is made [`agentos_runtime::text::printable`].
pub fn entry_line(journal: &Journal, entry: &Entry) -> String {
    let (_, _, text) = describe(journal, entry);
    format!(
        "#{:<6} {:<15} {}",
        entry.seq,
        entry.body.kind(),
        agentos_runtime::text::printable(&text)
    )
}

pub fn entry_json(journal: &Journal, entry: &Entry) -> serde_json::Value {
    let (agent, step, text) = describe(journal, entry);
    json!({ "seq": entry.seq, "kind": entry.body.kind(), "agent": agent, "step": step, "text": text })
}

pub fn receipt_json(
    journal: &Journal,
    seq: u64,
    r: &agentos_runtime::journal::entry::ReceiptEntry,
    public_key: &[u8; 32],
) -> serde_json::Value {
    let b = &r.receipt.body;
    json!({
        "seq": seq,
        "step": b.ingress,
        "effect_index": b.effect_index,
        "agent": b.agent,
        "effect": b.effect,
        "subject": b.subject,
        "grant": b.grant,
        "status": b.status.label(),
        "request": request_of(journal, r).map(|r| r.summary()),
        "request_digest": hex::encode(b.request_digest),
        "outcome_digest": hex::encode(b.outcome_digest),
        "started_ms": b.started_ms,
        "finished_ms": b.finished_ms,
        "usage": { "bytes_sent": b.usage.bytes_sent, "bytes_received": b.usage.bytes_received, "tokens_in": b.usage.tokens_in, "tokens_out": b.usage.tokens_out },
        "key_id": hex::encode(b.key_id),
        "signed_bytes": hex::encode(b.signing_bytes()),
        "signature": hex::encode(&r.receipt.signature),
        "public_key": hex::encode(public_key),
    })
}
