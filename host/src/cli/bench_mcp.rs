//! `bench`'s figure for MCP tool calls: the repository's server (`mcp-files`, over stdio) called
//! through the choke point — grant check, receipt signing, journaling, with and without the
//! intent a call gets when its grant does not trust the server's hints — against raw calls of the
//! same tool over the official SDK (`rmcp`) in the same run. Raw and gated blocks alternate;
//! medians.

use agentos_runtime::effects::{EFFECTS_MAX_PER_STEP, EffectGate, EffectRequest, GateLimits};
use agentos_runtime::world::{OpenMode, World};
use anyhow::{Context as _, Result};
use rmcp::ServiceExt as _;
use std::path::Path;
use std::time::Instant;

/// Microseconds per call.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolCallCosts {
    pub calls: u64,
    pub raw_rmcp_us: f64,
    /// Through the choke point, the grant trusting the tool's read-only hint (no intent).
    pub choke_point_us: f64,
    /// Through the choke point with an intent committed (fsynced) before each call.
    pub choke_point_with_intent_us: f64,
}

pub fn tool_call_overhead(scratch: &Path, calls: u64) -> Result<ToolCallCosts> {
    let dir = scratch.join("mcp-world");
    for sub in ["modules", "bin", "data"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::copy(
        agentos_runtime::components::ensure_built("assistant")?,
        dir.join("modules/assistant.wasm"),
    )?;
    let server = agentos_runtime::components::ensure_tool_built("mcp-files")?;
    std::fs::copy(&server, dir.join("bin/mcp-files"))?;
    std::fs::write(
        dir.join("world.toml"),
        r#"
[world]
name = "mcp-bench"
[modules.assistant]
component = "modules/assistant.wasm"
[mcp.calc]
command = "bin/mcp-files"
args = ["--root", "data"]
# The assistant imports `llm`; the bench calls no model.
[providers.none]
api = "openai-chat"
base_url = "http://127.0.0.1:9/v1"
[caps.model]
effect = "llm"
providers = ["none"]
models = ["none"]
[caps.trusted]
effect = "mcp"
tools = ["calc/add"]
trust_hints = true
[caps.plain]
effect = "mcp"
tools = ["calc/add"]
[agents.trusted]
module = "assistant"
grants = ["model", "trusted"]
config = { model = "none" }
[agents.plain]
module = "assistant"
grants = ["model", "plain"]
config = { model = "none" }
"#,
    )?;
    let world = World::open(&dir, OpenMode::Run)?;
    let journal = world.kernel.shared_journal().clone();
    let request = || EffectRequest::McpCall {
        server: "calc".into(),
        tool: "add".into(),
        arguments: r#"{"numbers":[1,2]}"#.into(),
    };
    let gate_of = |agent: &str| -> Result<EffectGate> {
        let mut gate = EffectGate::new(agent);
        let backend = world
            .kernel
            .live_backend(agent)
            .with_context(|| format!("no agent `{agent}`"))?;
        gate.set_backend(Box::new(backend));
        Ok(gate)
    };
    let (mut trusted, mut plain) = (gate_of("trusted")?, gate_of("plain")?);
    let mut step = 1_000_000;
    let mut gated = |gate: &mut EffectGate, count: u64| -> Result<f64> {
        let started = Instant::now();
        for i in 0..count {
            if i % u64::from(EFFECTS_MAX_PER_STEP) == 0 {
                journal.lock().expect("journal lock").seal();
                step += 1;
                gate.begin_step(step, 0, GateLimits::default());
            }
            gate.call(request())
                .map_err(|e| anyhow::anyhow!("{e:#}"))?
                .map_err(|e| anyhow::anyhow!("gated tool call failed: {e:?}"))?;
        }
        journal.lock().expect("journal lock").seal();
        let elapsed = started.elapsed().as_secs_f64() * 1e6 / count as f64;
        journal.lock().expect("journal lock").commit()?;
        Ok(elapsed)
    };

    // The floor: the same server, the same tool, over rmcp alone.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let data = dir.join("data");
    let client = runtime.block_on(async {
        let mut child = tokio::process::Command::new(&server)
            .args(["--root"])
            .arg(&data)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let (stdout, stdin) = (
            child.stdout.take().context("stdout")?,
            child.stdin.take().context("stdin")?,
        );
        let transport = rmcp::transport::async_rw::AsyncRwTransport::new_client(stdout, stdin);
        let client = ().serve(transport).await?;
        anyhow::Ok((client, child))
    })?;
    let arguments: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"numbers":[1,2]}"#).expect("an object");
    let raw = |count: u64| -> Result<f64> {
        let started = Instant::now();
        for _ in 0..count {
            let params = rmcp::model::CallToolRequestParams::new("add").with_arguments(arguments.clone());
            runtime.block_on(async { client.0.call_tool(params).await })?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / count as f64)
    };

    const ROUNDS: u64 = 5;
    let per_round = (calls / ROUNDS).max(1);
    // The intent's fsync makes those calls slower; fewer of them keep the run short.
    let intent_round = (per_round / 10).max(5);
    let (mut raw_us, mut trusted_us, mut plain_us) = (vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        raw_us.push(raw(per_round)?);
        trusted_us.push(gated(&mut trusted, per_round)?);
        plain_us.push(gated(&mut plain, intent_round)?);
    }
    drop(client);
    Ok(ToolCallCosts {
        calls: per_round * ROUNDS,
        raw_rmcp_us: super::bench::median(&mut raw_us),
        choke_point_us: super::bench::median(&mut trusted_us),
        choke_point_with_intent_us: super::bench::median(&mut plain_us),
    })
}
