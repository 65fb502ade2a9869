//! The `mcp` effect's adapter: the world's MCP servers, reached through the official SDK
//! (`rmcp`), started lazily, one connection per server shared by the world's agents.
//!
//! A `stdio` server is a child process the host starts with exactly the environment its
//! definition gives (none of the host's), in its own process group, its stderr kept (the last
//! lines, size-limited) to explain its failures; it is killed when the world lets go of it or
//! when it stops answering. A server at a `url` is reached over streamable HTTP with the
//! headers its definition gives. Values read from the host's environment or files never leave
//! this module except on the wire to the server.
//!
//! Every call has the server's time limit (a hung server fails the call and is restarted at the
//! next one) and result size limit; a server that dies mid-call, or answers with something the
//! protocol does not allow, fails the call with the reason, never the step.

mod content;

use agentos_air::{McpServer, SecretValue};
use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt as _};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use content::McpContent;

/// A tool as the `mcp` interface lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpToolInfo {
    pub server: String,
    pub name: String,
    pub description: String,
    /// JSON Schema of its input, JSON text.
    pub input_schema: String,
    /// The server declares it changes nothing (shown only where the grant trusts hints).
    pub read_only: bool,
    /// The server declares calling it twice is calling it once (likewise).
    pub idempotent: bool,
}

/// What a tool call returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpResult {
    pub content: Vec<McpContent>,
    /// Its structured result, JSON text.
    pub structured: Option<String>,
    /// The tool reports failure (the content says why).
    pub is_error: bool,
}

/// Bytes of a server's stderr kept.
const STDERR_KEPT_BYTES: usize = 8 * 1024;

/// The world's MCP servers and their connections.
pub struct McpClients {
    /// The world directory: relative commands and secret files are read against it.
    root: PathBuf,
    servers: BTreeMap<String, McpServer>,
    connections: BTreeMap<String, Mutex<Option<Arc<Connection>>>>,
    runtime: OnceLock<std::io::Result<tokio::runtime::Runtime>>,
}

struct Connection {
    service: RunningService<RoleClient, ()>,
    tools: Vec<Tool>,
    stderr: Arc<Mutex<String>>,
    /// The server process (stdio), killed with its group when the connection is dropped.
    _child: Option<ChildGroup>,
}

/// A child process and its process group, killed together on drop.
struct ChildGroup {
    child: tokio::process::Child,
}

impl Drop for ChildGroup {
    fn drop(&mut self) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|pid| rustix::process::Pid::from_raw(pid as i32))
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.start_kill();
    }
}

impl McpClients {
    pub fn new(root: &Path, servers: &BTreeMap<String, McpServer>) -> McpClients {
        McpClients {
            root: root.to_path_buf(),
            connections: servers.keys().map(|name| (name.clone(), Mutex::new(None))).collect(),
            servers: servers.clone(),
            runtime: OnceLock::new(),
        }
    }

    /// The server definitions.
    pub fn servers(&self) -> &BTreeMap<String, McpServer> {
        &self.servers
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, String> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("agentos-mcp")
                    .enable_all()
                    .build()
            })
            .as_ref()
            .map_err(|e| format!("cannot start the MCP client runtime: {e}"))
    }

    /// The connection to `name`, started if there is none.
    fn connection(&self, name: &str) -> Result<Arc<Connection>, String> {
        let (Some(server), Some(slot)) = (self.servers.get(name), self.connections.get(name)) else {
            return Err(format!("the world declares no MCP server `{name}`"));
        };
        let mut slot = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(connection) = slot.as_ref()
            && !connection.service.is_closed()
        {
            return Ok(connection.clone());
        }
        *slot = None;
        let runtime = self.runtime()?;
        let limit = Duration::from_millis(server.timeout_ms);
        let started = runtime.block_on(async {
            match tokio::time::timeout(limit, connect(name, server, &self.root)).await {
                Ok(started) => started,
                Err(_) => Err(Failure::new(format!(
                    "MCP server `{name}` did not start within {} ms",
                    server.timeout_ms
                ))),
            }
        });
        let connection = Arc::new(started.map_err(|failure| failure.text())?);
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Drop the connection to `name` (its process is killed); the next call starts it again.
    fn restart(&self, name: &str) {
        if let Some(slot) = self.connections.get(name) {
            let dropped = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let (Some(dropped), Ok(runtime)) = (dropped, self.runtime()) {
                // Inside the runtime: dropping the client closes its transport there.
                let _guard = runtime.enter();
                drop(dropped);
            }
        }
    }

    /// The tools of `server`, as the server lists them (started if needed).
    pub fn tools(&self, server: &str) -> Result<Vec<Tool>, String> {
        Ok(self.connection(server)?.tools.clone())
    }

    /// Call `tool` of `server` with `arguments` (a JSON object). Contents that are bytes
    /// (images, audio, resources) are handed to `store`, which returns their digest.
    pub fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        store: &mut dyn FnMut(&[u8]) -> String,
    ) -> Result<McpResult, CallFailure> {
        let definition = self
            .servers
            .get(server)
            .ok_or_else(|| CallFailure::Failed(format!("the world declares no MCP server `{server}`")))?;
        let connection = self.connection(server).map_err(CallFailure::Failed)?;
        let runtime = self.runtime().map_err(CallFailure::Failed)?;
        let limit = Duration::from_millis(definition.timeout_ms);
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let answered =
            runtime.block_on(async { tokio::time::timeout(limit, connection.service.call_tool(params)).await });
        let stderr = || stderr_note(&connection.stderr);
        match answered {
            Err(_) => {
                drop(connection);
                self.restart(server);
                Err(CallFailure::Timeout(format!(
                    "MCP server `{server}` did not answer `{tool}` within {} ms; it is restarted at the next call",
                    definition.timeout_ms
                )))
            }
            Ok(Err(rmcp::ServiceError::McpError(error))) => Err(CallFailure::Failed(format!(
                "MCP server `{server}` refused `{tool}`: {} (code {})",
                error.message, error.code.0
            ))),
            Ok(Err(error)) => {
                let note = stderr();
                drop(connection);
                self.restart(server);
                Err(CallFailure::Failed(format!(
                    "MCP server `{server}` failed during `{tool}`: {error}{note}; it is restarted at the next call"
                )))
            }
            Ok(Ok(result)) => {
                content::convert(server, tool, result, definition.max_result_bytes, store).map_err(CallFailure::Failed)
            }
        }
    }
}

impl Drop for McpClients {
    fn drop(&mut self) {
        // Close every connection inside the runtime (its tasks end with it), then the runtime.
        if let Some(Ok(runtime)) = self.runtime.take() {
            {
                let _guard = runtime.enter();
                for slot in self.connections.values() {
                    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                }
            }
            runtime.shutdown_timeout(Duration::from_millis(500));
        }
    }
}

/// Why a call did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    Failed(String),
    Timeout(String),
}

/// A start that failed, with the server's stderr so far.
struct Failure {
    reason: String,
    stderr: Option<Arc<Mutex<String>>>,
}

impl Failure {
    fn new(reason: String) -> Failure {
        Failure { reason, stderr: None }
    }

    fn text(self) -> String {
        match &self.stderr {
            Some(stderr) => format!("{}{}", self.reason, stderr_note(stderr)),
            None => self.reason,
        }
    }
}

fn stderr_note(stderr: &Mutex<String>) -> String {
    let kept = stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let tail = kept.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!(" (its stderr: {})", crate::text::printable(tail))
    }
}

/// A secret's value, read now.
fn resolve(value: &SecretValue, root: &Path, what: &str) -> Result<String, String> {
    match value {
        SecretValue::Text(text) => Ok(text.clone()),
        SecretValue::Env { var, prefix } => match std::env::var(var) {
            Ok(found) if !found.is_empty() => Ok(format!("{prefix}{found}")),
            _ => Err(format!("{what}: the host's environment variable `{var}` is not set")),
        },
        SecretValue::File { path, prefix } => std::fs::read_to_string(root.join(path))
            .map(|found| format!("{prefix}{}", found.trim()))
            .map_err(|e| format!("{what}: cannot read {path}: {e}")),
    }
}

/// The program `command` names: a path (with a `/`) against the world directory, or a name on
/// the host's `PATH`.
pub fn program(command: &str, root: &Path) -> Result<PathBuf, String> {
    let found = if command.contains('/') {
        let path = root.join(command);
        path.is_file().then_some(path)
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(command))
                .find(|candidate| candidate.is_file())
        })
    };
    found.ok_or_else(|| format!("its command `{command}` does not exist"))
}

/// Start (stdio) or reach (HTTP) `server`, run the handshake and list its tools.
async fn connect(name: &str, server: &McpServer, root: &Path) -> Result<Connection, Failure> {
    let at = |reason: String| Failure::new(format!("MCP server `{name}` did not start: {reason}"));
    // Lines of the stdio protocol may hold a whole result, base64 making bytes a third larger.
    let line_max = (server.max_result_bytes as usize)
        .saturating_mul(2)
        .saturating_add(1 << 20);
    if let Some(url) = &server.url {
        let mut headers = std::collections::HashMap::new();
        for (header, value) in &server.headers {
            let value = resolve(value, root, &format!("header `{header}`")).map_err(at)?;
            let header_name =
                http::HeaderName::try_from(header.as_str()).map_err(|e| at(format!("header `{header}`: {e}")))?;
            let header_value =
                http::HeaderValue::try_from(value).map_err(|_| at(format!("header `{header}`: not a header value")))?;
            headers.insert(header_name, header_value);
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.clone())
                .custom_headers(headers)
                .max_json_response_size(line_max);
        let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
        let service = ().serve(transport).await.map_err(|e| at(e.to_string()))?;
        let tools = service
            .list_all_tools()
            .await
            .map_err(|e| at(format!("cannot list its tools: {e}")))?;
        return Ok(Connection {
            service,
            tools,
            stderr: Arc::default(),
            _child: None,
        });
    }
    let command = server.command.as_deref().unwrap_or_default();
    let program = program(command, root).map_err(at)?;
    let mut env = Vec::new();
    for (var, value) in &server.env {
        env.push((var.clone(), resolve(value, root, &format!("env `{var}`")).map_err(at)?));
    }
    let mut child = tokio::process::Command::new(&program)
        .args(&server.args)
        .env_clear()
        .envs(env)
        .current_dir(root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| at(format!("cannot run {}: {e}", program.display())))?;
    let (Some(stdout), Some(stdin), Some(stderr)) = (child.stdout.take(), child.stdin.take(), child.stderr.take())
    else {
        return Err(at("its standard streams were not opened".into()));
    };
    let kept = Arc::new(Mutex::new(String::new()));
    tokio::spawn(keep_stderr(stderr, kept.clone()));
    let child = ChildGroup { child };
    let failed = |reason: String| Failure {
        reason: format!("MCP server `{name}` did not start: {reason}"),
        stderr: Some(kept.clone()),
    };
    let transport =
        rmcp::transport::async_rw::AsyncRwTransport::new_client(stdout, stdin).with_max_line_length(line_max);
    let service = ().serve(transport).await.map_err(|e| failed(e.to_string()))?;
    let tools = service
        .list_all_tools()
        .await
        .map_err(|e| failed(format!("cannot list its tools: {e}")))?;
    Ok(Connection {
        service,
        tools,
        stderr: kept,
        _child: Some(child),
    })
}

/// Keep the last [`STDERR_KEPT_BYTES`] of a server's stderr.
async fn keep_stderr(stderr: tokio::process::ChildStderr, kept: Arc<Mutex<String>>) {
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.push_str(&line);
        kept.push('\n');
        if kept.len() > STDERR_KEPT_BYTES {
            let mut cut = kept.len() - STDERR_KEPT_BYTES;
            while !kept.is_char_boundary(cut) {
                cut += 1;
            }
            kept.drain(..cut);
        }
    }
}

/// A listed tool as the interface shows it to a holder whose grant does (`trust`) or does not
/// trust the server's hints.
pub fn tool_info(server: &str, tool: &Tool, trust: bool) -> McpToolInfo {
    let annotations = tool.annotations.as_ref();
    McpToolInfo {
        server: server.to_string(),
        name: tool.name.to_string(),
        description: tool.description.as_deref().unwrap_or_default().to_string(),
        input_schema: serde_json::Value::Object((*tool.input_schema).clone()).to_string(),
        read_only: trust && annotations.and_then(|a| a.read_only_hint).unwrap_or(false),
        idempotent: trust && annotations.is_some_and(|a| a.is_idempotent() || a.read_only_hint == Some(true)),
    }
}
