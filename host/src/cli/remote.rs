//! The command line as a client of a running `agentos-host serve`: with `--server URL` (or
//! `AGENTOS_SERVER`), `send`, `log`, `receipts`, `propose`, `shadow`, `approve`, `reject`,
//! `apply` and `plan run` act on the server's world named by their first argument, over its `/v1` API.
//! Whatever is signed is signed here, with the person's own key: `propose` checks the body the
//! server drafted before signing it, `approve` builds the documented verdict bytes itself; the
//! server never sees a private key. Errors are the server's, in the same words as local ones.

use agentos_runtime::governance::record::{Author, ProposalBody, Verdict, VerdictBody};
use agentos_runtime::governance::shadow::{ShadowReport, Workload};
use agentos_runtime::plans::history::RunView;
use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use std::time::Duration;

/// Where the server is and how to authenticate to it.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Act on the world of this name held by a running `agentos-host serve` at URL (e.g.
    /// `http://127.0.0.1:8470`) instead of on a world directory.
    #[arg(long, env = "AGENTOS_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for the server (`agentos-host token new`).
    #[arg(long, env = "AGENTOS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A world on a server.
pub struct Remote {
    base: String,
    world: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// Most entries asked for per page.
const PAGE: u32 = 1000;

impl Remote {
    /// The world `world` on the server `args` names, if it names one.
    pub fn of(args: &RemoteArgs, world: &std::path::Path) -> Option<Remote> {
        let base = args.server.as_ref()?.trim_end_matches('/').to_string();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Some(Remote {
            base,
            world: world.to_string_lossy().into_owned(),
            token: args.token.clone(),
            agent,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/worlds/{}{path}", self.base, self.world)
    }

    fn get(&self, path: &str) -> Result<Value> {
        let mut request = self.agent.get(self.url(path));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.answer(path, request.call())
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let mut request = self.agent.post(self.url(path));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        self.answer(path, request.send_json(body))
    }

    fn answer(&self, path: &str, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
        let mut response = response.with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("{}: the answer to {path} did not arrive whole", self.base))?;
        let body: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: the answer to {path} is not JSON ({status})", self.base))?;
        if !status.is_success() {
            let message = body["error"]["message"].as_str().unwrap_or(&text);
            bail!("{} (world `{}`): {message}", self.base, self.world);
        }
        Ok(body)
    }

    /// Every entry after `after` (all with `None`) of `kind`, paging through the journal.
    fn entries(&self, after: Option<u64>, kind: Option<&str>) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut after = after;
        loop {
            let mut query = format!("?limit={PAGE}");
            if let Some(after) = after {
                query.push_str(&format!("&after={after}"));
            }
            if let Some(kind) = kind {
                query.push_str(&format!("&kind={kind}"));
            }
            let page = self.get(&format!("/entries{query}"))?;
            all.extend(page["entries"].as_array().cloned().unwrap_or_default());
            match page["next_after"].as_u64() {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// `send`: the event, waited for to its step; prints its entries as `send` does.
    pub fn send(&self, agent: &str, event: &str, json_event: bool) -> Result<()> {
        let mut body = json!({ "agent": agent });
        if json_event {
            body["event"] = serde_json::from_str(event).context("--json: the event is not valid JSON")?;
        } else {
            body["wave"] = event.into();
        }
        let accepted = self.post("/events?wait=step", &body)?;
        let first = accepted["entry"].as_u64().context("the server named no entry")?;
        let last = accepted["step"]["entry"].as_u64().unwrap_or(first);
        for entry in self.entries(first.checked_sub(1), None)? {
            if entry["seq"].as_u64().is_some_and(|seq| seq <= last) {
                outln!("{}", line(&entry))?;
            }
        }
        Ok(())
    }

    /// `log`: every entry, as lines or JSON lines.
    pub fn log(&self, json: bool) -> Result<()> {
        for entry in self.entries(None, None)? {
            if json {
                outln!("{entry}")?;
            } else {
                outln!("{}", line(&entry))?;
            }
        }
        Ok(())
    }

    /// `receipts`: every receipt, as lines or (JSON) with what checks it.
    pub fn receipts(&self, json: bool) -> Result<()> {
        if !json {
            for entry in self.entries(None, Some("effect-receipt"))? {
                outln!("{}", line(&entry))?;
            }
            return Ok(());
        }
        let mut all = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let query = after.map(|a| format!("&after={a}")).unwrap_or_default();
            let page = self.get(&format!("/receipts?limit={PAGE}{query}"))?;
            all.extend(page["receipts"].as_array().cloned().unwrap_or_default());
            match page["next_after"].as_u64() {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        outln!("{}", serde_json::to_string_pretty(&all)?)?;
        Ok(())
    }

    /// `propose`: the server drafts the body from the patch or manifest read here; it is
    /// checked to be what was asked for, then signed here with the author's key.
    /// Returns the proposal's number.
    pub fn propose(&self, change: Change, description: &str, key_name: &str, json: bool) -> Result<u64> {
        let key = super::keys::load(key_name)?;
        let public_key = key.public().to_bytes();
        let mut request = json!({
            "description": description, "author": key_name, "public_key": hex::encode(public_key),
        });
        match change {
            Change::Patch(patch) => request["patch"] = patch,
            Change::Manifest(manifest) => request["manifest"] = manifest,
            Change::Revert(to) => request["revert"] = to.unwrap_or_default().into(),
        }
        let draft = self.post("/proposals/drafts", &request)?;
        let body: ProposalBody =
            serde_json::from_value(draft["body"].clone()).context("the server's draft is not a proposal body")?;
        let expected_author = Author::Person {
            name: key_name.to_string(),
            public_key,
        };
        if body.author != expected_author || body.description != description {
            bail!("the server drafted a proposal by another author or with another description; nothing was signed");
        }
        if draft["signing_bytes"].as_str() != Some(hex::encode(body.signing_bytes()).as_str()) {
            bail!("the server's signing bytes are not those of the body it drafted; nothing was signed");
        }
        for line in draft["changes"].as_array().into_iter().flatten() {
            eprintln!("  {}", line.as_str().unwrap_or_default());
        }
        let signature = key.signature(&body.signing_bytes());
        let accepted = self.post(
            "/proposals",
            &json!({ "body": draft["body"], "signature": hex::encode(signature) }),
        )?;
        if json {
            outln!("{accepted}")?;
        } else {
            outln!(
                "proposal #{} journaled on {} (sha256:{}); approvals needed: {}",
                accepted["proposal"],
                self.base,
                prefix(&accepted["hash"]),
                accepted["approvals_needed"]
            )?;
        }
        accepted["proposal"].as_u64().context("the server named no proposal")
    }

    /// `approve` / `reject`: the verdict bytes built and signed here. Returns whether the
    /// proposal may be applied now.
    pub fn judge(&self, proposal: u64, key_name: &str, verdict: Verdict, comment: &str, json: bool) -> Result<bool> {
        let key = super::keys::load(key_name)?;
        let public_key = hex::encode(key.public().to_bytes());
        let state = self.get(&format!("/proposals/{proposal}"))?;
        let policy = self.get("/policy")?;
        // What is being judged, as the server describes it (the signature binds the proposal's
        // hash and the world's id, which the server supplies).
        eprintln!(
            "proposal #{proposal} by {} on world {}: {}",
            state["author"].as_str().unwrap_or_default(),
            state["world_id"].as_str().unwrap_or_default(),
            state["description"].as_str().unwrap_or_default()
        );
        for line in state["changes"].as_array().into_iter().flatten() {
            eprintln!("  {}", line.as_str().unwrap_or_default());
        }
        let approver = policy["approvers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"].as_str() == Some(public_key.as_str()))
            .and_then(|a| a["name"].as_str())
            .with_context(|| {
                format!("key `{key_name}` (public key {public_key}) is not an approver in the policy in force")
            })?;
        let hex_field = |field: &str| -> Result<Vec<u8>> {
            hex::decode(state[field].as_str().unwrap_or_default())
                .with_context(|| format!("the server's proposal has no hex `{field}`"))
        };
        let body = VerdictBody {
            version: 1,
            world_id: hex_field("world_id")?
                .try_into()
                .map_err(|_| anyhow::anyhow!("the server's world id is not 16 bytes"))?,
            proposal,
            proposal_hash: hex_field("hash")?
                .try_into()
                .map_err(|_| anyhow::anyhow!("the server's proposal hash is not 32 bytes"))?,
            verdict,
            approver: approver.to_string(),
            by_agent: None,
            comment: comment.to_string(),
        };
        let signature = key.signature(&body.signing_bytes());
        let word = match verdict {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        };
        let judged = self.post(
            &format!("/proposals/{proposal}/verdicts"),
            &json!({
                "verdict": word, "approver": approver, "comment": comment,
                "world_id": hex::encode(body.world_id), "proposal_hash": hex::encode(body.proposal_hash),
                "public_key": public_key, "signature": hex::encode(signature),
            }),
        )?;
        let blockers = judged["blockers"].as_array().cloned().unwrap_or_default();
        if json {
            outln!("{judged}")?;
            return Ok(blockers.is_empty());
        }
        outln!(
            "proposal #{proposal} {} by {approver} (entry #{})",
            verdict.label(),
            judged["entry"]
        )?;
        if blockers.is_empty() {
            outln!("  ready to apply")?;
        } else {
            outln!("  not ready to apply:")?;
            for blocker in &blockers {
                outln!("    - {}", blocker.as_str().unwrap_or_default())?;
            }
        }
        Ok(blockers.is_empty())
    }

    /// `apply`.
    pub fn apply(&self, proposal: u64, json: bool) -> Result<()> {
        let applied = self.post(&format!("/proposals/{proposal}/apply"), &json!({}))?;
        if json {
            outln!("{applied}")?;
        } else {
            outln!(
                "proposal #{proposal} applied (entry #{}): manifest sha256:{} → sha256:{}",
                applied["entry"],
                prefix(&applied["previous"]),
                prefix(&applied["manifest"])
            )?;
        }
        Ok(())
    }

    /// `shadow`: the server runs it and journals the report; returns its entry and the report.
    pub fn shadow(&self, proposal: u64, workload: &Workload) -> Result<(u64, ShadowReport)> {
        let request = match workload {
            Workload::Window(window) => json!({ "window": window }),
            Workload::Events(events) => json!({
                "events": events.iter().map(|(agent, event)| json!({ "agent": agent, "event": event })).collect::<Vec<_>>()
            }),
        };
        let answer = self.post(&format!("/proposals/{proposal}/shadow"), &request)?;
        let entry = answer["entry"].as_u64().context("the server named no entry")?;
        let report = serde_json::from_value(answer["report"].clone()).context("the server's report does not decode")?;
        Ok((entry, report))
    }

    /// `plan run`: start the run, wait for it to end.
    pub fn plan_run(&self, plan: &str, input: &str) -> Result<RunView> {
        let input: Value = serde_json::from_str(input).context("--input is not JSON")?;
        let started = self.post(&format!("/plans/{plan}/runs"), &json!({ "input": input }))?;
        let run = started["run"].as_u64().context("the server named no run")?;
        loop {
            let runs: Vec<RunView> = serde_json::from_value(self.get(&format!("/plans/runs?plan={plan}"))?)
                .context("the server's runs do not decode")?;
            if let Some(view) = runs.into_iter().find(|view| view.run == run)
                && (view.status == "completed" || view.status == "failed")
            {
                return Ok(view);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// What a remote `propose` proposes.
pub enum Change {
    Patch(Value),
    Manifest(Value),
    Revert(Option<String>),
}

/// The first 16 hex digits of a digest the server named (all of it if shorter).
fn prefix(value: &Value) -> String {
    value.as_str().unwrap_or_default().chars().take(16).collect()
}

/// An entry as `log` prints it locally.
fn line(entry: &Value) -> String {
    format!(
        "#{:<6} {:<15} {}",
        entry["seq"],
        entry["kind"].as_str().unwrap_or_default(),
        agentos_runtime::text::printable(entry["text"].as_str().unwrap_or_default())
    )
}
