//! Typed wrappers over the effect interfaces of `agentos:core`.
//!
//! Each function is one effect call: the host checks it against the agent's grants, journals it
//! and signs a receipt before the result comes back. A call outside the grants returns
//! `Err(EffectError::Denied(..))`; nothing here retries or caches.

use crate::__bindings::agentos::core as wit;

/// Journaled log lines (always granted).
pub mod log {
    use super::wit::log as raw;
    pub use raw::Level;

    /// Write one line at `level`. Lines longer than the host's limit trap the step.
    ///
    /// ```no_run
    /// agentos_sdk::log::write(agentos_sdk::log::Level::Warn, "disk almost full").ok();
    /// ```
    pub fn write(level: Level, message: impl AsRef<str>) -> Result<(), crate::EffectError> {
        raw::write(level, message.as_ref())
    }

    /// Write an `info` line. Logging is always granted, so the result is not returned.
    ///
    /// ```no_run
    /// agentos_sdk::log::info(format!("processed {} items", 3));
    /// ```
    pub fn info(message: impl AsRef<str>) {
        let _ = write(Level::Info, message);
    }

    /// Write a `warn` line.
    pub fn warn(message: impl AsRef<str>) {
        let _ = write(Level::Warn, message);
    }

    /// Write an `error` line.
    pub fn error(message: impl AsRef<str>) {
        let _ = write(Level::Error, message);
    }

    /// Write a `debug` line.
    pub fn debug(message: impl AsRef<str>) {
        let _ = write(Level::Debug, message);
    }
}

/// Outbound HTTP, within the URL patterns, methods and limits of the agent's http grant.
pub mod http {
    use super::wit::http as raw;
    pub use raw::{Request, Response};

    /// `GET url`.
    ///
    /// ```no_run
    /// let response = agentos_sdk::http::get("https://example.com/status")?;
    /// let text = String::from_utf8_lossy(&response.body);
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn get(url: impl Into<String>) -> Result<Response, crate::EffectError> {
        send(&Request {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        })
    }

    /// Send any request.
    ///
    /// ```no_run
    /// use agentos_sdk::{http, Field};
    /// let response = http::send(&http::Request {
    ///     method: "POST".into(),
    ///     url: "https://example.com/api".into(),
    ///     headers: vec![Field { name: "content-type".into(), value: "application/json".into() }],
    ///     body: Some(br#"{"ok":true}"#.to_vec()),
    /// })?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn send(request: &Request) -> Result<Response, crate::EffectError> {
        raw::send(request)
    }
}

/// Files under the agent's fs grants. Paths are `<grant mount>/<relative path>`.
pub mod fs {
    use super::wit::fs as raw;

    /// Read a whole file.
    ///
    /// ```no_run
    /// let bytes = agentos_sdk::fs::read("data/greeting.txt")?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn read(path: impl AsRef<str>) -> Result<Vec<u8>, crate::EffectError> {
        raw::read(path.as_ref())
    }

    /// Read a whole file as UTF-8 (invalid sequences replaced).
    pub fn read_to_string(path: impl AsRef<str>) -> Result<String, crate::EffectError> {
        read(path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Create or replace a file (needs a read-write grant).
    ///
    /// ```no_run
    /// agentos_sdk::fs::write("out/report.txt", b"done")?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn write(path: impl AsRef<str>, contents: &[u8]) -> Result<(), crate::EffectError> {
        raw::write(path.as_ref(), contents)
    }

    /// Names of the entries of a directory, sorted.
    pub fn list_dir(path: impl AsRef<str>) -> Result<Vec<String>, crate::EffectError> {
        raw::list_dir(path.as_ref())
    }
}

/// Language-model completions under the agent's llm grant.
pub mod llm {
    use super::wit::llm as raw;
    pub use raw::{
        AssistantTurn, ChatCompletion, ChatMessage, ChatRequest, Completion, CompletionRequest, Message,
        ResponseFormat, Role, Tool, ToolCall, ToolChoice, ToolResult, Usage,
    };

    /// One turn of a conversation that may call tools: the reply's text and the tool calls the
    /// model asked for (run them, add [`ChatMessage::Assistant`] with the calls and a
    /// [`ChatMessage::Tool`] per result, and call again; [`crate::tools::ToolLoop`] does it).
    ///
    /// ```no_run
    /// use agentos_sdk::llm::{chat, ChatMessage, ChatRequest, Tool, ToolChoice};
    /// let turn = chat(&ChatRequest {
    ///     provider: None,
    ///     model: "gpt-4o-mini".into(),
    ///     messages: vec![ChatMessage::User("What is 2 + 3?".into())],
    ///     tools: vec![Tool {
    ///         name: "add".into(),
    ///         description: "Add two numbers".into(),
    ///         parameters: r#"{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}"#.into(),
    ///     }],
    ///     tool_choice: ToolChoice::Auto,
    ///     response_format: None,
    ///     max_tokens: 200,
    ///     temperature_milli: Some(0),
    ///     stop: vec![],
    /// })?;
    /// for call in &turn.tool_calls {
    ///     agentos_sdk::log::info(format!("the model asks for {}({})", call.name, call.arguments));
    /// }
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn chat(request: &ChatRequest) -> Result<ChatCompletion, crate::EffectError> {
        raw::chat(request)
    }

    /// Run one chat completion.
    ///
    /// ```no_run
    /// use agentos_sdk::llm::{complete, CompletionRequest, Message, Role};
    /// let answer = complete(&CompletionRequest {
    ///     provider: None,
    ///     model: "gpt-4o-mini".into(),
    ///     messages: vec![Message { role: Role::User, content: "Summarise: ...".into() }],
    ///     max_tokens: 200,
    ///     temperature_milli: Some(0),
    ///     stop: vec![],
    /// })?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn complete(request: &CompletionRequest) -> Result<Completion, crate::EffectError> {
        raw::complete(request)
    }
}

/// Content-addressed bytes in the world's blob store.
pub mod blob {
    use super::wit::blob as raw;

    /// Store bytes; returns their digest (`sha256:<hex>`).
    ///
    /// ```no_run
    /// let digest = agentos_sdk::blob::put(b"summary text")?;
    /// let back = agentos_sdk::blob::get(&digest)?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn put(contents: &[u8]) -> Result<String, crate::EffectError> {
        raw::put(contents)
    }

    /// Fetch bytes by digest.
    pub fn get(digest: &str) -> Result<Vec<u8>, crate::EffectError> {
        raw::get(digest)
    }
}

/// Timers that deliver one of the agent's own events later.
pub mod timer {
    use super::wit::timer as raw;
    pub use raw::When;

    /// Deliver `event` (WAVE syntax) to this agent at `when`; returns the timer id.
    ///
    /// ```no_run
    /// use agentos_sdk::timer::{schedule, When};
    /// let id = schedule(When::AfterMs(60_000), "tick")?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn schedule(when: When, event: &str) -> Result<u64, crate::EffectError> {
        raw::schedule(when, event)
    }

    /// Cancel a pending timer.
    pub fn cancel(id: u64) -> Result<(), crate::EffectError> {
        raw::cancel(id)
    }
}

/// Source to wasm components, in a sandboxed toolchain run by the host.
pub mod compile {
    use super::wit::compile as raw;
    pub use raw::{Artifact, Language, SourceFile};

    /// Compile `files`; the component lands in the blob store.
    ///
    /// ```no_run
    /// use agentos_sdk::compile::{build, Language, SourceFile};
    /// let artifact = build(Language::Wat, &[SourceFile {
    ///     path: "main.wat".into(),
    ///     contents: b"(component)".to_vec(),
    /// }])?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn build(language: Language, files: &[SourceFile]) -> Result<Artifact, crate::EffectError> {
        raw::build(language, files)
    }
}

/// Events to other agents of the same world.
pub mod emit {
    use super::wit::emit as raw;

    /// Enqueue `event` (WAVE syntax of the target's event type) for agent `target`.
    ///
    /// ```no_run
    /// agentos_sdk::emit::send("notifier", r#"notify("build finished")"#)?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn send(target: &str, event: &str) -> Result<(), crate::EffectError> {
        raw::send(target, event)
    }
}

/// The world's own configuration.
pub mod governance {
    use super::wit::governance as raw;

    /// The manifest of record in force, as JSON.
    ///
    /// ```no_run
    /// let manifest = agentos_sdk::governance::manifest()?;
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn manifest() -> Result<String, crate::EffectError> {
        raw::manifest()
    }

    /// Propose a change — a whole manifest, or a patch whose `base` and `pre_image` hashes may be
    /// left out (JSON) — authored by this agent; returns the proposal's entry number. A person
    /// must approve it before it applies.
    pub fn propose(patch: &str, description: &str) -> Result<String, crate::EffectError> {
        raw::propose(patch, description)
    }

    /// Approve proposal `proposal` (its entry number): allowed only where the world's policy
    /// names this agent as an approver, and never for its own proposals.
    pub fn approve(proposal: &str, comment: &str) -> Result<(), crate::EffectError> {
        raw::approve(proposal, comment)
    }
}

/// Tools of the MCP servers the world declares, within the agent's `mcp` grants.
pub mod mcp {
    use super::wit::mcp as raw;
    pub use raw::{Content, StoredContent, ToolInfo, ToolOutput};

    /// The granted tools of `server`, or of every granted server.
    ///
    /// ```no_run
    /// for tool in agentos_sdk::mcp::list_tools(None)? {
    ///     agentos_sdk::log::info(format!("{}/{}: {}", tool.server, tool.name, tool.description));
    /// }
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn list_tools(server: Option<&str>) -> Result<Vec<ToolInfo>, crate::EffectError> {
        raw::list_tools(server)
    }

    /// Call `tool` of `server` with `arguments` (JSON text of an object). A tool that runs and
    /// fails returns `Ok` with `is_error` set; `Err` is a call that was denied, failed or timed
    /// out — after a failure or time-out in the server, the tool may have run.
    ///
    /// ```no_run
    /// let output = agentos_sdk::mcp::call_tool("files", "read_file", r#"{"path": "notes.txt"}"#)?;
    /// let text = agentos_sdk::mcp::text_of(&output);
    /// # Ok::<(), agentos_sdk::EffectError>(())
    /// ```
    pub fn call_tool(server: &str, tool: &str, arguments: &str) -> Result<ToolOutput, crate::EffectError> {
        raw::call_tool(server, tool, arguments)
    }

    /// The output as text: its text parts, stored parts by kind, digest and size.
    pub fn text_of(output: &ToolOutput) -> String {
        output
            .content
            .iter()
            .map(|part| match part {
                Content::Text(text) => text.clone(),
                Content::Stored(stored) => format!("[{} {} ({} bytes)]", stored.kind, stored.digest, stored.size),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
