//! `agentos-host init`: lay out a new world directory from a template.

use agentos_runtime::components::ensure_built;
use agentos_runtime::world::{MANIFEST_FILE, STATE_DIR};
use anyhow::{Context as _, Result, bail};
use std::path::Path;

/// The world templates `init` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// One `counter` agent: state, no effects.
    Counter,
    /// One `hello` agent: log, clock, random, a read-only data directory, HTTP GET to 127.0.0.1.
    Hello,
    /// Both agents in one world (what `demo` runs).
    Demo,
    /// An `assistant` agent: a model (an OpenAI-compatible endpoint on 127.0.0.1:8080, e.g.
    /// llama.cpp's server) using the tools of an MCP server (the repository's `mcp-files`, over
    /// the world's `data` directory). Pointing it at other servers is configuration only.
    Assistant,
}

const COUNTER_TOML: &str = r#"
[modules.counter]
component = "modules/counter.wasm"

[agents.counter]
module = "counter"
"#;

const HELLO_TOML: &str = r#"
[modules.hello]
component = "modules/hello.wasm"

# A directory the agent may read, mounted under the capability's name: `data/<path>`.
[caps.data]
effect = "fs"
dir = "data"
mode = "read-only"

# Outbound HTTP: GET to any port of 127.0.0.1, bodies up to 64 KiB, 5 s timeout.
[caps.local-web]
effect = "http"
urls = ["http://127.0.0.1:*/**"]
methods = ["GET"]
max_body_bytes = 65536
timeout_ms = 5000

[agents.hello]
module = "hello"
grants = ["data", "local-web"]
"#;

const ASSISTANT_TOML: &str = r#"
[modules.assistant]
component = "modules/assistant.wasm"

# An OpenAI-compatible endpoint (llama.cpp server, vLLM, Ollama); for a hosted one set base_url
# and api_key_env = "OPENAI_API_KEY", or use api = "anthropic-messages".
[providers.local]
api = "openai-chat"
base_url = "http://127.0.0.1:8080/v1"

# MCP servers: a program the host starts over stdio (with only the env given here), or
# url = "https://..." with headers = { Authorization = { env = "TOKEN", prefix = "Bearer " } }.
[mcp.files]
command = "bin/mcp-files"
args = ["--root", "data"]

[caps.model]
effect = "llm"
providers = ["local"]
models = ["*"]

# The tools the assistant may call, by `server/tool` pattern.
[caps.tools]
effect = "mcp"
tools = ["files/*"]

[agents.assistant]
module = "assistant"
grants = ["model", "tools"]
config = { model = "local-model", max_turns = 6 }
"#;

/// Create the world at `dir`; refuses to touch an existing world.
pub fn init(dir: &Path, template: Template) -> Result<()> {
    if dir.join(MANIFEST_FILE).exists() || dir.join(STATE_DIR).exists() {
        bail!("{} already holds a world; choose a new directory", dir.display());
    }
    let modules = dir.join("modules");
    std::fs::create_dir_all(&modules).with_context(|| format!("cannot create {}", modules.display()))?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("world");
    let mut manifest = format!("# An AgentOS world. See README.md for the format.\n[world]\nname = \"{name}\"\n");
    let mut add = |component: &str, toml: &str| -> Result<()> {
        let built = ensure_built(component)?;
        let target = modules.join(format!("{component}.wasm"));
        std::fs::copy(&built, &target)
            .with_context(|| format!("cannot copy {} to {}", built.display(), target.display()))?;
        manifest.push_str(toml);
        Ok(())
    };
    if matches!(template, Template::Counter | Template::Demo) {
        add("counter", COUNTER_TOML)?;
    }
    if matches!(template, Template::Hello | Template::Demo) {
        add("hello", HELLO_TOML)?;
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        std::fs::write(data.join("greeting.txt"), "Hello from a granted directory\n")?;
    }
    if template == Template::Assistant {
        add("assistant", ASSISTANT_TOML)?;
        let (bin, data) = (dir.join("bin"), dir.join("data"));
        std::fs::create_dir_all(&bin)?;
        std::fs::create_dir_all(&data)?;
        let server = agentos_runtime::components::ensure_tool_built("mcp-files")?;
        std::fs::copy(&server, bin.join("mcp-files"))
            .with_context(|| format!("cannot copy {} to {}", server.display(), bin.display()))?;
        std::fs::write(data.join("numbers.txt"), "12\n30\n")?;
    }
    std::fs::write(dir.join(MANIFEST_FILE), manifest).context("cannot write world.toml")?;
    Ok(())
}
