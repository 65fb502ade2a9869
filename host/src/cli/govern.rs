//! `agentos-host propose | shadow | approve | reject | apply | revert | history`: the governance loop
//! from the command line. Decisions are made in `governance`; this module parses and prints.

use agentos_runtime::effects::shadow::ShadowServed;
use agentos_runtime::governance::ledger::{Ledger, ProposalState, Readiness};
use agentos_runtime::governance::propose::{Journaled, Source};
use agentos_runtime::governance::record::{Author, Verdict};
use agentos_runtime::governance::shadow::{ShadowReport, Workload};
use agentos_runtime::world::{WorldPaths, open_existing_journal};
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum GovernCommand {
    /// Journal a signed proposal to change the world's manifest, and print what it changes.
    ///
    /// The change is a patch file (from `agentos-host air diff`, TOML or .json) or, with --from,
    /// a whole manifest (e.g. the world's world.toml, edited). Every module's component is read
    /// now and pinned by digest. Nothing is journaled if the patch does not apply to the manifest
    /// in force, changes nothing, or grants an effect the policy denies.
    Propose {
        dir: PathBuf,
        /// A patch file.
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        patch: Option<PathBuf>,
        /// A whole manifest file; the proposal is its difference from the manifest in force.
        #[arg(long, value_name = "MANIFEST")]
        from: Option<PathBuf>,
        /// The author's key (`agentos-host keys new NAME`).
        #[arg(long, value_name = "NAME")]
        key: String,
        /// Why: shown in `log` and `history`.
        #[arg(short, long, default_value = "")]
        description: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: super::remote::RemoteArgs,
    },
    /// Re-run recorded history under a proposal's manifest, in memory, and journal the report.
    ///
    /// The world is forked just before the last N steps under the manifest in force, migrated as
    /// `apply` would, and those steps' events re-run: effects whose requests match the recorded
    /// ones are served from their receipts, new or changed ones are not executed ("would call"),
    /// calls the new grants refuse are listed as denials. The report compares every step
    /// (outcome, state, outputs, effects, fuel). The live world does not change; only the report
    /// is journaled. Clean: the new manifest starts, nothing is denied, no step newly fails.
    Shadow {
        dir: PathBuf,
        proposal: String,
        /// How many recorded steps to re-run.
        #[arg(long, default_value_t = agentos_runtime::governance::shadow::DEFAULT_WINDOW, conflicts_with = "events")]
        window: usize,
        /// Run these events (an events file: `<agent> <event>` per line) after the present state,
        /// under the manifest in force and under the proposal, instead of recorded history.
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: super::remote::RemoteArgs,
    },
    /// Approve a proposal with your key; only keys the policy in force names count.
    Approve(VerdictArgs),
    /// Reject a proposal with your key: it can no longer be applied.
    Reject(VerdictArgs),
    /// Switch the world to an approved proposal's manifest; each agent's new module receives
    /// its old state through `restore`.
    ///
    /// Refuses (saying what is missing) without the approvals the policy requires, after a
    /// rejection, for a proposal already applied or written against an older manifest. If a new
    /// component does not match its world or a `restore` rejects the old state, nothing changes
    /// and the reason is journaled.
    Apply {
        dir: PathBuf,
        proposal: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: super::remote::RemoteArgs,
    },
    /// Return to an earlier manifest: journal a proposal to revert, approve it with your key,
    /// and apply it if that meets the policy (otherwise print what is still missing).
    Revert {
        dir: PathBuf,
        /// The configuration to return to: the entry number it came into force at, or its
        /// manifest digest (from `history`); default: the last one that differs from the current.
        #[arg(long, value_name = "ENTRY|DIGEST")]
        to: Option<String>,
        #[arg(long, value_name = "NAME")]
        key: String,
        #[arg(short, long, default_value = "")]
        description: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: super::remote::RemoteArgs,
    },
    /// Every manifest the world has run and every proposal: who proposed, what shadow runs
    /// found, who approved or rejected, when it applied.
    History {
        /// A world directory, or an audit bundle file written by `export`.
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct VerdictArgs {
    dir: PathBuf,
    /// The proposal's entry number (as `propose` and `history` print it).
    proposal: String,
    #[arg(long, value_name = "NAME")]
    key: String,
    #[arg(long, default_value = "")]
    comment: String,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: super::remote::RemoteArgs,
}

fn proposal_number(text: &str) -> Result<u64> {
    text.trim_start_matches('#')
        .parse()
        .with_context(|| format!("`{text}` is not a proposal number (the entry number `propose` printed)"))
}

fn person(name: &str) -> Result<(Author, agentos_runtime::receipts::HostKey)> {
    let key = super::keys::load(name)?;
    let author = Author::Person {
        name: name.to_string(),
        public_key: key.public().to_bytes(),
    };
    Ok((author, key))
}

pub fn run(command: GovernCommand) -> Result<()> {
    match command {
        GovernCommand::Propose {
            dir,
            patch,
            from,
            key,
            description,
            json,
            remote,
        } => {
            if let Some(remote) = super::remote::Remote::of(&remote, &dir) {
                let change = match (&patch, &from) {
                    (Some(patch), _) => super::remote::Change::Patch(patch_as_json(patch)?),
                    (_, Some(manifest)) => super::remote::Change::Manifest(manifest_as_json(manifest)?),
                    _ => bail!("give a patch file or --from MANIFEST"),
                };
                remote.propose(change, &description, &key, json)?;
                return Ok(());
            }
            let source = match (&patch, &from) {
                (Some(patch), _) => Source::Patch(patch),
                (_, Some(manifest)) => Source::Manifest(manifest),
                _ => bail!("give a patch file or --from MANIFEST"),
            };
            let (author, key) = person(&key)?;
            let journaled = agentos_runtime::governance::propose::propose(&dir, source, &description, author, &key)?;
            print_proposed(&dir, &journaled, json)?;
        }
        GovernCommand::Shadow {
            dir,
            proposal,
            window,
            events,
            json,
            remote,
        } => {
            let workload = match events {
                Some(file) => Workload::Events(
                    super::read_events_file(&file)?
                        .into_iter()
                        .map(|(_, agent, event)| (agent, event))
                        .collect(),
                ),
                None => Workload::Window(window),
            };
            let proposal = proposal_number(&proposal)?;
            let (seq, report) = match super::remote::Remote::of(&remote, &dir) {
                Some(remote) => remote.shadow(proposal, &workload)?,
                None => agentos_runtime::governance::shadow::shadow(&dir, proposal, &workload)?,
            };
            print_shadow(seq, &report, json)?;
        }
        GovernCommand::Approve(args) => judge(&args, Verdict::Approve)?,
        GovernCommand::Reject(args) => judge(&args, Verdict::Reject)?,
        GovernCommand::Apply {
            dir,
            proposal,
            json,
            remote,
        } => match super::remote::Remote::of(&remote, &dir) {
            Some(remote) => remote.apply(proposal_number(&proposal)?, json)?,
            None => apply(&dir, proposal_number(&proposal)?, json)?,
        },
        GovernCommand::Revert {
            dir,
            to,
            key: key_name,
            description,
            json,
            remote,
        } => {
            let description = if description.is_empty() {
                "revert".to_string()
            } else {
                description
            };
            if let Some(remote) = super::remote::Remote::of(&remote, &dir) {
                let proposal = remote.propose(super::remote::Change::Revert(to), &description, &key_name, json)?;
                if remote.judge(proposal, &key_name, Verdict::Approve, "", json)? {
                    remote.apply(proposal, json)?;
                }
                return Ok(());
            }
            let (author, key) = person(&key_name)?;
            let journaled = agentos_runtime::governance::propose::propose(
                &dir,
                Source::Revert(to.as_deref()),
                &description,
                author,
                &key,
            )?;
            print_proposed(&dir, &journaled, json)?;
            let judged = agentos_runtime::governance::verdict::judge(
                &dir,
                journaled.seq,
                &key_name,
                &key,
                Verdict::Approve,
                "",
            )?;
            print_judged(journaled.seq, Verdict::Approve, &judged, json)?;
            if judged.readiness.blockers.is_empty() {
                apply(&dir, journaled.seq, json)?;
            }
        }
        GovernCommand::History { dir, json } => history(&dir, json)?,
    }
    Ok(())
}

fn print_proposed(dir: &Path, journaled: &Journaled, json: bool) -> std::io::Result<()> {
    let widenings: Vec<String> = journaled.judgement.widenings.iter().map(ToString::to_string).collect();
    if json {
        outln!(
            "{}",
            json!({
                "proposal": journaled.seq,
                "hash": hex::encode(journaled.hash),
                "changes": journaled.changes,
                "new_capabilities": widenings,
                "approvals_needed": journaled.judgement.approvals_needed,
            })
        )?;
        return Ok(());
    }
    outln!(
        "proposal #{} journaled (sha256:{})",
        journaled.seq,
        hex::encode(&journaled.hash[..8])
    )?;
    for line in &journaled.changes {
        outln!("  {line}")?;
    }
    for line in &widenings {
        outln!("  new capability: {line}")?;
    }
    outln!("  approvals needed: {}", journaled.judgement.approvals_needed)?;
    outln!(
        "next: `agentos-host shadow {dir} {n}`, `agentos-host approve {dir} {n} --key NAME`, `agentos-host apply {dir} {n}`",
        dir = dir.display(),
        n = journaled.seq
    )?;
    Ok(())
}

fn print_shadow(seq: u64, report: &ShadowReport, json: bool) -> Result<()> {
    if json {
        let mut value = serde_json::to_value(report)?;
        value["entry"] = seq.into();
        outln!("{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    // Agent-written text (events, outputs) and, with `--server`, the server's, printed inert.
    let mut lines = Vec::new();
    lines.push(format!(
        "shadow run of proposal #{} ({}): {} — report journaled as entry #{seq}",
        report.proposal,
        report.workload,
        if report.clean { "clean" } else { "NOT CLEAN" }
    ));
    if let Some(error) = &report.migration_error {
        lines.push(format!("  the proposed manifest does not start: {error}"));
    }
    for line in &report.new_capabilities {
        lines.push(format!("  new capability: {line}"));
    }
    for step in &report.steps {
        let differences = if step.differences.is_empty() {
            "same".to_string()
        } else {
            step.differences.join("; ")
        };
        lines.push(format!("  {} {} {}: {differences}", step.label, step.agent, step.event));
    }
    for call in &report.would_call {
        lines.push(format!(
            "  would call (not executed): step #{} call #{}: {}",
            call.step, call.index, call.request
        ));
    }
    for call in &report.denials {
        if let ShadowServed::Denied { reason } = &call.served {
            lines.push(format!(
                "  denied: step #{} call #{}: {} — {reason}",
                call.step, call.index, call.request
            ));
        }
    }
    if report.migration_error.is_none() {
        lines.push(format!("  {}", report.summary));
    }
    for line in lines {
        outln!("{}", agentos_runtime::text::printable(&line))?;
    }
    Ok(())
}

/// A patch file (TOML, or JSON by extension) as the API takes it.
fn patch_as_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let patch = match path.extension().is_some_and(|e| e == "json") {
        true => agentos_air::Patch::parse_json(&text, &name)?,
        false => agentos_air::Patch::parse_toml(&text, &name)?,
    };
    Ok(serde_json::from_str(&patch.to_json())?)
}

/// A manifest file (TOML, or JSON by extension) as the API takes it.
fn manifest_as_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let manifest = match path.extension().is_some_and(|e| e == "json") {
        true => agentos_air::Manifest::parse_json(&text, &name)?,
        false => agentos_air::Manifest::parse_toml(&text, &name)?,
    };
    Ok(serde_json::to_value(&manifest)?)
}

fn judge(args: &VerdictArgs, verdict: Verdict) -> Result<()> {
    let proposal = proposal_number(&args.proposal)?;
    if let Some(remote) = super::remote::Remote::of(&args.remote, &args.dir) {
        remote.judge(proposal, &args.key, verdict, &args.comment, args.json)?;
        return Ok(());
    }
    let key = super::keys::load(&args.key)?;
    let judged =
        agentos_runtime::governance::verdict::judge(&args.dir, proposal, &args.key, &key, verdict, &args.comment)?;
    print_judged(proposal, verdict, &judged, args.json)?;
    Ok(())
}

fn print_judged(
    proposal: u64,
    verdict: Verdict,
    judged: &agentos_runtime::governance::verdict::Judged,
    json: bool,
) -> std::io::Result<()> {
    if json {
        outln!(
            "{}",
            json!({
                "proposal": proposal,
                "verdict": verdict.label(),
                "entry": judged.seq,
                "approver": judged.approver,
                "approved_by": judged.readiness.approved_by,
                "blockers": judged.readiness.blockers,
            })
        )?;
        return Ok(());
    }
    outln!(
        "proposal #{proposal} {} by {} (entry #{})",
        verdict.label(),
        judged.approver,
        judged.seq
    )?;
    print_readiness(&judged.readiness)?;
    Ok(())
}

fn print_readiness(readiness: &Readiness) -> std::io::Result<()> {
    if readiness.blockers.is_empty() {
        outln!("  ready to apply")?;
    } else {
        outln!("  not ready to apply:")?;
        for blocker in &readiness.blockers {
            outln!("    - {blocker}")?;
        }
    }
    Ok(())
}

fn apply(dir: &Path, proposal: u64, json: bool) -> Result<()> {
    let applied = agentos_runtime::governance::apply::apply(dir, proposal)?;
    for notice in &applied.notices {
        eprintln!("note: {notice}");
    }
    if json {
        outln!(
            "{}",
            json!({
                "proposal": applied.proposal,
                "entry": applied.seq,
                "previous": hex::encode(applied.previous),
                "manifest": hex::encode(applied.manifest),
                "agents": applied.agents.iter().map(|(a, d)| json!({"agent": a, "state": d})).collect::<Vec<_>>(),
                "rewrote_world_toml": applied.rewrote_manifest_file,
            })
        )?;
        return Ok(());
    }
    let change = if applied.previous == applied.manifest {
        format!(
            "manifest sha256:{} with new components",
            hex::encode(&applied.manifest[..8])
        )
    } else {
        format!(
            "manifest sha256:{} → sha256:{}",
            hex::encode(&applied.previous[..8]),
            hex::encode(&applied.manifest[..8])
        )
    };
    outln!(
        "proposal #{} applied (entry #{}): {change}",
        applied.proposal,
        applied.seq
    )?;
    for (agent, digest) in &applied.agents {
        outln!("  {agent}: state sha256:{}", &digest[..16])?;
    }
    if applied.rewrote_manifest_file {
        outln!(
            "  {} now holds the manifest in force",
            WorldPaths::new(dir).manifest().display()
        )?;
    }
    Ok(())
}

fn history(dir: &Path, json: bool) -> Result<()> {
    let target = agentos_runtime::bundle::ReadTarget::resolve(dir)?;
    let ledger = Ledger::read(&open_existing_journal(&WorldPaths::new(target.root()))?)?;
    if json {
        let manifests: Vec<_> = ledger
            .configurations
            .iter()
            .map(|c| json!({ "since": c.since, "at_ms": c.at_ms, "manifest": hex::encode(c.digest), "proposal": c.proposal }))
            .collect();
        let proposals: Vec<_> = ledger.proposals.values().map(|p| proposal_json(&ledger, p)).collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "manifests": manifests, "proposals": proposals }))?
        )?;
        return Ok(());
    }
    outln!("manifests (the last is in force):")?;
    for c in &ledger.configurations {
        let cause = match c.proposal {
            None => "genesis".to_string(),
            Some(p) => format!("proposal #{p}"),
        };
        outln!(
            "  #{:<6} sha256:{}  {cause} (t={} ms)",
            c.since,
            hex::encode(c.digest),
            c.at_ms
        )?;
    }
    if ledger.proposals.is_empty() {
        outln!("no proposals")?;
    }
    for p in ledger.proposals.values() {
        let body = &p.proposal.body;
        outln!(
            "proposal #{} [{}] by {}: {:?}",
            p.seq,
            p.status(),
            body.author,
            body.description
        )?;
        for line in changes_of(&ledger, p) {
            outln!("    {}", agentos_runtime::text::printable(&line))?;
        }
        for (at, shadow) in &p.shadows {
            outln!(
                "    shadow run #{at}: {} — {}",
                if shadow.clean { "clean" } else { "NOT CLEAN" },
                agentos_runtime::text::printable(&shadow.summary)
            )?;
        }
        for (at, verdict) in &p.verdicts {
            outln!(
                "    {} by {} (#{at})",
                verdict.body.verdict.label(),
                verdict.body.approver
            )?;
        }
        for (at, reason) in &p.refusals {
            outln!(
                "    apply refused (#{at}): {}",
                agentos_runtime::text::printable(reason)
            )?;
        }
        if let Some(at) = p.applied {
            let when = ledger.at(at).at_ms;
            outln!("    applied at #{at} (t={when} ms)")?;
        }
    }
    Ok(())
}

/// A line per change of a proposal, components included (against the configuration in force when
/// it was proposed).
pub fn changes_of(ledger: &Ledger, p: &ProposalState) -> Vec<String> {
    let Ok(patch) = p.patch() else {
        return vec!["(the patch does not decode)".into()];
    };
    let base = ledger.at(p.seq);
    if base.digest == p.proposal.body.base {
        agentos_runtime::governance::propose::change_lines(base, &patch, &p.proposal.body.modules)
    } else {
        patch.summary()
    }
}

pub fn proposal_json(ledger: &Ledger, p: &ProposalState) -> serde_json::Value {
    let body = &p.proposal.body;
    let (author, agent_authored) = match &body.author {
        Author::Person { name, .. } => (name.clone(), false),
        Author::Agent { name } => (name.clone(), true),
    };
    let readiness = (p.status() == "open").then(|| ledger.readiness(p.seq).blockers);
    json!({
        "proposal": p.seq,
        "hash": hex::encode(p.hash),
        "status": p.status(),
        "author": author,
        "agent_authored": agent_authored,
        "description": body.description,
        "base": hex::encode(body.base),
        "reverts_to": body.reverts_to.map(hex::encode),
        "changes": changes_of(ledger, p),
        "shadow_runs": p.shadows.iter().map(|(at, s)| json!({"entry": at, "clean": s.clean, "summary": s.summary, "report": hex::encode(s.report)})).collect::<Vec<_>>(),
        "verdicts": p.verdicts.iter().map(|(at, v)| json!({"entry": at, "verdict": v.body.verdict.label(), "approver": v.body.approver, "public_key": hex::encode(v.public_key), "comment": v.body.comment})).collect::<Vec<_>>(),
        "refusals": p.refusals.iter().map(|(at, r)| json!({"entry": at, "reason": r})).collect::<Vec<_>>(),
        "applied": p.applied,
        "blockers": readiness,
    })
}
