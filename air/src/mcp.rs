//! MCP servers a world declares (`[mcp.<name>]`) and the `mcp` capability that grants their
//! tools by pattern.
//!
//! A server is either `stdio` — a `command` the host starts with `args` and exactly the `env`
//! given (nothing of the host's own environment) — or streamable HTTP at a `url` with `headers`.
//! Values of `env` and `headers` are literal text or read by the host when it connects: from
//! one of its environment variables (`{ env = "SEARCH_TOKEN", prefix = "Bearer " }`) or a file
//! (`{ file = "secrets/search.token" }`). They never reach an agent, a request digest or a
//! receipt.

use crate::Budget;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// An MCP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    /// stdio: the program to start — a path relative to the world directory (with a `/`), or a
    /// name looked up on the host's `PATH`.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// The server process's whole environment.
    #[serde(default)]
    pub env: BTreeMap<String, SecretValue>,
    /// Streamable HTTP: the server's endpoint.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, SecretValue>,
    /// Longest a call (or the connection's start) may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Largest result a call may return (its text and resources together).
    #[serde(default = "default_max_result_bytes")]
    pub max_result_bytes: u64,
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_max_result_bytes() -> u64 {
    1024 * 1024
}

/// Results past this are refused whatever a server's `max_result_bytes` says.
pub const MCP_RESULT_BYTES_MAX: u64 = 64 * 1024 * 1024;

impl McpServer {
    /// `stdio` or `http`.
    pub fn transport(&self) -> &'static str {
        if self.url.is_some() { "http" } else { "stdio" }
    }
}

/// A value the host reads when it connects to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    Text(String),
    /// `prefix` followed by the host's environment variable `var`.
    Env {
        var: String,
        prefix: String,
    },
    /// `prefix` followed by the contents of `path` (relative to the world directory), trimmed.
    File {
        path: String,
        prefix: String,
    },
}

/// The authored form: a string, or `{ env = "VAR" }` / `{ file = "path" }` with an optional
/// `prefix`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum AuthoredSecret {
    Text(String),
    Source(SecretSource),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    prefix: String,
}

/// The canonical (binary) form: an ordinary enum, which postcard can decode.
#[derive(Serialize, Deserialize)]
enum CanonicalSecret {
    Text(String),
    Env { var: String, prefix: String },
    File { path: String, prefix: String },
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        if ser.is_human_readable() {
            match self.clone() {
                SecretValue::Text(text) => AuthoredSecret::Text(text),
                SecretValue::Env { var, prefix } => AuthoredSecret::Source(SecretSource {
                    env: Some(var),
                    file: None,
                    prefix,
                }),
                SecretValue::File { path, prefix } => AuthoredSecret::Source(SecretSource {
                    env: None,
                    file: Some(path),
                    prefix,
                }),
            }
            .serialize(ser)
        } else {
            match self.clone() {
                SecretValue::Text(text) => CanonicalSecret::Text(text),
                SecretValue::Env { var, prefix } => CanonicalSecret::Env { var, prefix },
                SecretValue::File { path, prefix } => CanonicalSecret::File { path, prefix },
            }
            .serialize(ser)
        }
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<SecretValue, D::Error> {
        if de.is_human_readable() {
            match AuthoredSecret::deserialize(de)? {
                AuthoredSecret::Text(text) => Ok(SecretValue::Text(text)),
                AuthoredSecret::Source(SecretSource {
                    env: Some(var),
                    file: None,
                    prefix,
                }) => Ok(SecretValue::Env { var, prefix }),
                AuthoredSecret::Source(SecretSource {
                    env: None,
                    file: Some(path),
                    prefix,
                }) => Ok(SecretValue::File { path, prefix }),
                AuthoredSecret::Source(_) => Err(serde::de::Error::custom(
                    "a value is text, { env = \"VAR\" } or { file = \"path\" } (each with an optional prefix)",
                )),
            }
        } else {
            Ok(match CanonicalSecret::deserialize(de)? {
                CanonicalSecret::Text(text) => SecretValue::Text(text),
                CanonicalSecret::Env { var, prefix } => SecretValue::Env { var, prefix },
                CanonicalSecret::File { path, prefix } => SecretValue::File { path, prefix },
            })
        }
    }
}

/// Tools of MCP servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpCap {
    /// `server/tool` patterns: the server's name in `[mcp]`, and a tool name in which `*`
    /// matches any run of characters (`files/read_*`, `calc/*`).
    pub tools: Vec<String>,
    /// Take a server's word that a tool is read-only or idempotent: such calls are then tried
    /// again after a crash instead of being left in doubt. Off unless given.
    #[serde(default)]
    pub trust_hints: bool,
    /// Use allowed per window of logical time; none when absent.
    #[serde(default)]
    pub budget: Option<Budget>,
}

impl McpCap {
    /// Whether a pattern of this cap covers `tool` of `server`.
    pub fn covers(&self, server: &str, tool: &str) -> bool {
        self.tools.iter().any(|pattern| match pattern.split_once('/') {
            Some((s, t)) => s == server && glob(t, tool),
            None => false,
        })
    }

    /// The servers its patterns name.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.tools
            .iter()
            .filter_map(|p| p.split_once('/').map(|(server, _)| server))
    }
}

/// `pattern` with `*` for any run of characters, matched against all of `text`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// A name both model protocols take for a tool or a response format: 1 to 64 letters, digits,
/// `_` or `-`. Server names are held to it too (a server's name prefixes its tools' where they
/// clash).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `name` can name an environment variable.
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names() {
        assert!(glob("read_*", "read_file"));
        assert!(glob("*", "anything"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("read_*", "write_file"));
        assert!(!glob("read", "read_file"));
        assert!(glob("*_file", "read_file"));
        assert!(!glob("*_file", "read_files"));
        let cap = McpCap {
            tools: vec!["files/read_*".into(), "calc/*".into()],
            trust_hints: false,
            budget: None,
        };
        assert!(cap.covers("files", "read_file"));
        assert!(!cap.covers("files", "write_file"));
        assert!(cap.covers("calc", "add"));
        assert!(!cap.covers("other", "add"));
    }
}
