//! The `mcp` effect's adapter: the world's MCP servers, reached through the official SDK
//! (`rmcp`), started lazily, one connection per server shared by the world's agents.
//!
//! A `stdio` server is a child process the host starts with exactly the environment its
//! definition gives (none of the host's), in its own process group, its stderr kept (the last
//! bytes, size-limited) to explain its failures, and what it writes during a call recorded
//! with the call (`stderr.rs`); it is killed when the world lets go of it or when it stops
//! answering. A server at a `url` is reached over streamable HTTP with the headers its
//! definition gives. Values read from the host's environment or files leave this module only
//! on the wire to the server: they are redacted from every failure text (which the agent
//! reads) and from the server's stderr.
//!
//! A server runs with the host user's rights, as any program the operator configures. What an
//! agent could write is not run: a `command` (or secret `file`) inside the world's private
//! directory or inside a directory an `fs` grant covers is refused.
//!
//! Every call has the server's time limit (a hung server fails the call and is restarted at the
//! next one) and result size limit; a server that dies mid-call, or answers with something the
//! protocol does not allow, fails the call with the reason, never the step.

mod content;
mod stderr;

use agentos_air::{McpServer, SecretValue};
use rmcp::model::{CallToolRequestParams, PaginatedRequestParams, Tool};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt as _};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use stderr::ServerStderr;

pub use content::McpContent;

/// A tool as the `mcp` interface lists it. Part of the journal format (postcard in receipts):
/// what a later version adds goes in a new outcome variant, never into this.
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

/// What a tool call returned (journal format, as [`McpToolInfo`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpResult {
    pub content: Vec<McpContent>,
    /// Its structured result, JSON text.
    pub structured: Option<String>,
    /// The tool reports failure (the content says why).
    pub is_error: bool,
    /// What the server wrote to its stderr while the call ran, in printable lines (of at most
    /// [`STDERR_CALL_BYTES`] it wrote, the first [`STDERR_CALL_LINES`] that are not blank,
    /// secrets redacted): recorded with the call's outcome, never shown to the agent, and
    /// journaled as the step's `server stderr` output lines.
    pub stderr: Vec<String>,
}

impl McpResult {
    /// Bytes of its contents the blob store holds.
    pub fn stored_bytes(&self) -> u64 {
        self.content
            .iter()
            .map(|part| match part {
                McpContent::Stored { size, .. } => *size,
                McpContent::Text(_) => 0,
            })
            .sum()
    }

    /// Bytes of its text contents.
    pub fn text_bytes(&self) -> u64 {
        self.content
            .iter()
            .map(|part| match part {
                McpContent::Text(text) => text.len() as u64,
                McpContent::Stored { .. } => 0,
            })
            .sum()
    }
}

/// Bytes of a server's stderr kept.
const STDERR_KEPT_BYTES: usize = 8 * 1024;
/// Bytes of a server's stderr journaled with one call.
pub const STDERR_CALL_BYTES: usize = 4 * 1024;
/// Lines of a server's stderr journaled with one call (blank ones are dropped).
pub const STDERR_CALL_LINES: usize = 64;
/// Tools of one server listed at most.
pub const TOOLS_MAX: usize = 1_000;
/// Most pages of one server's tool listing read.
const TOOL_PAGES_MAX: usize = 64;
/// Most bytes of names, descriptions and input schemas kept of one server's tools.
const TOOLS_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Characters of a server's error message kept.
const MESSAGE_MAX_CHARS: usize = 500;

/// The world's MCP servers and their connections.
pub struct McpClients {
    /// The world directory: relative commands and secret files are read against it.
    root: PathBuf,
    /// Directories agents can write or must not read (the world's private directory, every
    /// `fs` grant's): no command or secret file is taken from inside them.
    guarded: Vec<PathBuf>,
    servers: BTreeMap<String, McpServer>,
    connections: BTreeMap<String, Mutex<Option<Arc<Connection>>>>,
    runtime: OnceLock<std::io::Result<tokio::runtime::Runtime>>,
}

struct Connection {
    service: RunningService<RoleClient, ()>,
    tools: Vec<Tool>,
    stderr: Arc<ServerStderr>,
    /// The values read for it from the host's environment or files.
    secrets: Vec<String>,
    /// The server process (stdio), killed with its group when the connection is dropped.
    child: Option<ChildGroup>,
}

/// A child process and its process group, killed together on drop.
struct ChildGroup {
    child: tokio::process::Child,
}

impl ChildGroup {
    fn kill(&mut self) {
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

impl Drop for ChildGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

impl McpClients {
    /// The clients of `servers` for the world at `root`; `guarded` are the directories no
    /// command or secret file may come from (see the module docs).
    pub fn new(root: &Path, servers: &BTreeMap<String, McpServer>, guarded: Vec<PathBuf>) -> McpClients {
        McpClients {
            root: root.to_path_buf(),
            guarded: guarded
                .into_iter()
                .map(|dir| dir.canonicalize().unwrap_or(dir))
                .collect(),
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

    /// The connection to `name`, started if there is none. Callers of one server wait for one
    /// start (at most its time limit); other servers are not held up.
    fn connection(&self, name: &str) -> Result<Arc<Connection>, String> {
        let (Some(server), Some(slot)) = (self.servers.get(name), self.connections.get(name)) else {
            return Err(format!("the world declares no MCP server `{name}`"));
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(connection) = slot.as_ref()
            && !connection.service.is_closed()
        {
            return Ok(connection.clone());
        }
        *slot = None;
        let runtime = self.runtime()?;
        let limit = Duration::from_millis(server.timeout_ms);
        let started = runtime.block_on(async {
            match tokio::time::timeout(limit, connect(name, server, &self.root, &self.guarded)).await {
                Ok(started) => started,
                Err(_) => Err(Failure::new(format!(
                    "MCP server `{name}` did not start within {} ms",
                    server.timeout_ms
                ))),
            }
        });
        let connection = Arc::new(started.map_err(Failure::text)?);
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Drop `failed`, the connection to `name`, if it is still the one in use (its process is
    /// killed); the next call starts the server again.
    fn restart(&self, name: &str, failed: &Arc<Connection>) {
        if let Some(slot) = self.connections.get(name) {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.as_ref().is_some_and(|current| Arc::ptr_eq(current, failed)) {
                *slot = None;
            }
        }
    }

    /// The tools of `server`, as the server lists them (started if needed).
    pub fn tools(&self, server: &str) -> Result<Vec<Tool>, String> {
        Ok(self.connection(server)?.tools.clone())
    }

    /// The tools of `server` if a connection to it is open (nothing is started).
    pub fn open_tools(&self, server: &str) -> Option<Vec<Tool>> {
        let slot = self
            .connections
            .get(server)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .filter(|connection| !connection.service.is_closed())
            .map(|connection| connection.tools.clone())
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
        connection.stderr.begin_call();
        let answered =
            runtime.block_on(async { tokio::time::timeout(limit, connection.service.call_tool(params)).await });
        let redacted = |text: String| redact(text, &connection.secrets);
        match answered {
            Err(_) => {
                self.restart(server, &connection);
                Err(CallFailure::Timeout(format!(
                    "MCP server `{server}` did not answer `{tool}` within {} ms (it may have run); it is \
                     restarted at the next call",
                    definition.timeout_ms
                )))
            }
            Ok(Err(rmcp::ServiceError::McpError(error))) => {
                let message: String = error.message.chars().take(MESSAGE_MAX_CHARS).collect();
                Err(CallFailure::Failed(redacted(format!(
                    "MCP server `{server}` refused `{tool}`: {message} (code {})",
                    error.code.0
                ))))
            }
            Ok(Err(error)) => {
                // A server that died has its last words still on their way: wait briefly.
                runtime.block_on(async {
                    for _ in 0..50 {
                        if connection.stderr.drain() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
                let note = stderr_note(&connection.stderr);
                self.restart(server, &connection);
                Err(CallFailure::Failed(redacted(format!(
                    "MCP server `{server}` failed during `{tool}` (it may have run): {error}{note}; it is restarted \
                     at the next call"
                ))))
            }
            Ok(Ok(result)) => {
                let mut result = content::convert(server, tool, result, definition.max_result_bytes, store)
                    .map_err(|reason| CallFailure::Failed(redacted(reason)))?;
                // What the server wrote before it answered is in the pipe by now.
                result.stderr = connection
                    .stderr
                    .call_text()
                    .lines()
                    .filter(|line| !line.trim().is_empty())
                    .take(STDERR_CALL_LINES)
                    .map(|line| crate::text::printable(line).into_owned())
                    .collect();
                Ok(result)
            }
        }
    }
}

impl Drop for McpClients {
    fn drop(&mut self) {
        // Kill every server and reap it inside the runtime (no zombie stays), then stop the
        // runtime; inside another runtime nothing may be waited for, so there it only stops.
        let Some(Ok(runtime)) = self.runtime.take() else {
            return;
        };
        let inside_async = tokio::runtime::Handle::try_current().is_ok();
        let connections: Vec<Arc<Connection>> = self
            .connections
            .values()
            .filter_map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take())
            .collect();
        for connection in connections {
            let Ok(mut connection) = Arc::try_unwrap(connection) else {
                continue;
            };
            if let Some(mut child) = connection.child.take() {
                child.kill();
                if !inside_async {
                    runtime.block_on(async {
                        let _ = tokio::time::timeout(Duration::from_millis(500), child.child.wait()).await;
                    });
                }
            }
            let _guard = runtime.enter();
            drop(connection);
        }
        if inside_async {
            runtime.shutdown_background();
        } else {
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

/// A start that failed, with the server's stderr so far and the secrets read for it.
struct Failure {
    reason: String,
    stderr: Option<Arc<ServerStderr>>,
    secrets: Vec<String>,
}

impl Failure {
    fn new(reason: String) -> Failure {
        Failure {
            reason,
            stderr: None,
            secrets: Vec::new(),
        }
    }

    fn text(self) -> String {
        let text = match &self.stderr {
            Some(stderr) => format!("{}{}", self.reason, stderr_note(stderr)),
            None => self.reason,
        };
        redact(text, &self.secrets)
    }
}

/// `text` with every value of `secrets` (of four characters or more) replaced.
fn redact(text: String, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| secret.len() >= 4)
        .fold(text, |text, secret| text.replace(secret.as_str(), "[redacted]"))
}

fn stderr_note(stderr: &ServerStderr) -> String {
    let tail = stderr.tail_text();
    let tail = tail.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!(" (its stderr: {})", crate::text::printable(tail))
    }
}

/// A value, read now; what was read from the host's environment or a file is added to
/// `secrets`.
fn resolve(
    value: &SecretValue,
    root: &Path,
    guarded: &[PathBuf],
    what: &str,
    secrets: &mut Vec<String>,
) -> Result<String, String> {
    let (prefix, found) = match value {
        SecretValue::Text(text) => return Ok(text.clone()),
        SecretValue::Env { var, prefix } => match std::env::var(var) {
            Ok(found) if !found.is_empty() => (prefix, found),
            _ => return Err(format!("{what}: the host's environment variable `{var}` is not set")),
        },
        SecretValue::File { path, prefix } => {
            let file = outside_guarded(&root.join(path), guarded).map_err(|why| format!("{what}: {path} {why}"))?;
            let found = std::fs::read_to_string(&file).map_err(|e| format!("{what}: cannot read {path}: {e}"))?;
            (prefix, found.trim().to_string())
        }
    };
    secrets.push(found.clone());
    Ok(format!("{prefix}{found}"))
}

/// `path`, resolved, unless it lies inside a guarded directory.
fn outside_guarded(path: &Path, guarded: &[PathBuf]) -> Result<PathBuf, String> {
    let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    match guarded.iter().find(|dir| real.starts_with(dir)) {
        Some(dir) => Err(format!(
            "is inside {}, which agents can write or must not read",
            dir.display()
        )),
        None => Ok(real),
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
async fn connect(name: &str, server: &McpServer, root: &Path, guarded: &[PathBuf]) -> Result<Connection, Failure> {
    let mut secrets = Vec::new();
    let at = |reason: String| Failure::new(format!("MCP server `{name}` did not start: {reason}"));
    // Lines of the stdio protocol may hold a whole result, base64 making bytes a third larger.
    let line_max = (server.max_result_bytes as usize)
        .saturating_mul(2)
        .saturating_add(1 << 20);
    if let Some(url) = &server.url {
        let mut headers = std::collections::HashMap::new();
        for (header, value) in &server.headers {
            let value = resolve(value, root, guarded, &format!("header `{header}`"), &mut secrets).map_err(at)?;
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
                .max_json_response_size(line_max)
                .max_sse_event_size(line_max);
        let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
        let failed = |reason: String| Failure {
            reason: format!("MCP server `{name}` did not start: {reason}"),
            stderr: None,
            secrets: secrets.clone(),
        };
        let service = ().serve(transport).await.map_err(|e| failed(e.to_string()))?;
        let tools = usable_tools(&service)
            .await
            .map_err(|e| failed(format!("cannot list its tools: {e}")))?;
        return Ok(Connection {
            service,
            tools,
            stderr: Arc::default(),
            secrets,
            child: None,
        });
    }
    let command = server.command.as_deref().unwrap_or_default();
    let program = program(command, root).map_err(at)?;
    let program = outside_guarded(&program, guarded).map_err(|why| at(format!("its command `{command}` {why}")))?;
    let mut env = Vec::new();
    for (var, value) in &server.env {
        let value = resolve(value, root, guarded, &format!("env `{var}`"), &mut secrets).map_err(at)?;
        env.push((var.clone(), value));
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
    let kept = ServerStderr::follow(stderr, &secrets).map_err(|e| at(format!("cannot read its stderr: {e}")))?;
    let child = ChildGroup { child };
    let failed = |reason: String| Failure {
        reason: format!("MCP server `{name}` did not start: {reason}"),
        stderr: Some(kept.clone()),
        secrets: secrets.clone(),
    };
    let transport =
        rmcp::transport::async_rw::AsyncRwTransport::new_client(stdout, stdin).with_max_line_length(line_max);
    let service = ().serve(transport).await.map_err(|e| failed(e.to_string()))?;
    let tools = usable_tools(&service)
        .await
        .map_err(|e| failed(format!("cannot list its tools: {e}")))?;
    Ok(Connection {
        service,
        tools,
        stderr: kept,
        secrets,
        child: Some(child),
    })
}

/// The tools of `service`'s listing an agent can name: each name 1 to 128 of the characters
/// MCP allows, listed once, the first [`TOOLS_MAX`] of them within [`TOOLS_MAX_BYTES`]. The
/// listing is read page by page and ends after [`TOOL_PAGES_MAX`] pages, so a server that pages
/// without end holds neither memory nor the connection's start.
async fn usable_tools(service: &RunningService<RoleClient, ()>) -> Result<Vec<Tool>, rmcp::ServiceError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut tools = Vec::new();
    let mut bytes = 0;
    let mut cursor = None;
    for _ in 0..TOOL_PAGES_MAX {
        let page = service
            .list_tools(Some(PaginatedRequestParams::default().with_cursor(cursor)))
            .await?;
        for tool in page.tools {
            let name = tool.name.as_ref();
            let fit = (1..=128).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !fit || tools.len() == TOOLS_MAX || seen.contains(name) {
                continue;
            }
            let size = name.len()
                + tool.description.as_deref().map_or(0, str::len)
                + serde_json::to_string(&*tool.input_schema).map_or(0, |schema| schema.len());
            if bytes + size <= TOOLS_MAX_BYTES {
                bytes += size;
                seen.insert(name.to_string());
                tools.push(tool);
            }
        }
        cursor = page.next_cursor;
        if cursor.is_none() || tools.len() == TOOLS_MAX {
            break;
        }
    }
    Ok(tools)
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
