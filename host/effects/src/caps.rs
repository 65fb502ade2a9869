//! Grant matching: does one of an agent's capabilities allow this effect call?
//!
//! Pure functions over the manifest's capabilities: URL patterns and methods for http, mounts
//! and modes for fs. No IO happens here; adapters run only after a [`Decision::Allow`].

use crate::private::STATE_DIR;
use agentos_air::{
    BlobCap, Budget, Cap, CompileCap, EffectKind, EmitCap, FsCap, FsMode, GovernanceCap, HttpCap, LlmCap, LlmProvider,
    Manifest, TimerCap,
};
pub use agentos_journal::stepper::{BudgetLedger, BudgetUse, OverBudget};
use std::path::{Component, Path, PathBuf};

/// Why a manifest's capabilities cannot be used by this host.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error("capability `{cap}`: URL pattern `{pattern}` is malformed: {reason}")]
    BadPattern {
        cap: String,
        pattern: String,
        reason: PatternError,
    },
    #[error(
        "capability `{cap}`: directory {dir} holds or lies inside {private}, which the host keeps to itself \
         (journals, keys, compiled code); grant a directory beside it"
    )]
    PrivateDir { cap: String, dir: String, private: String },
}

/// A parsed http URL pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    scheme: String,
    /// Exact host, or `*.suffix` (any subdomain of suffix), or `*` (any host).
    host: String,
    /// `None` = any port; otherwise the exact port (the scheme's default when omitted).
    port: Option<u16>,
    /// Path segments; `*` matches one segment, a final `**` any rest.
    path: Vec<String>,
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// Why a URL pattern of an `http` grant does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("expected scheme://host/path")]
    NoScheme,
    #[error("scheme `{0}` is not http or https")]
    Scheme(String),
    #[error("port `{0}` is not a number or *")]
    Port(String),
    #[error("empty host")]
    EmptyHost,
    #[error("host `{0}`: `*` may only be the whole host or a leading `*.`")]
    Wildcard(String),
    #[error("`**` may only be the last path segment")]
    DoubleStar,
}

/// No `llm` grant allows a call: why each one does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no llm grant of agent `{agent}` allows this call: {}", reasons.join("; "))]
pub struct LlmDenied {
    pub agent: String,
    /// One per grant: `<grant>: <why not>`.
    pub reasons: Vec<String>,
}

impl UrlPattern {
    pub fn parse(pattern: &str) -> Result<UrlPattern, PatternError> {
        let (scheme, rest) = pattern.split_once("://").ok_or(PatternError::NoScheme)?;
        if scheme != "http" && scheme != "https" {
            return Err(PatternError::Scheme(scheme.to_string()));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, "**"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, "*")) => (host, None),
            Some((host, port)) => (
                host,
                Some(port.parse::<u16>().map_err(|_| PatternError::Port(port.to_string()))?),
            ),
            None => (authority, Some(default_port(scheme))),
        };
        if host.is_empty() {
            return Err(PatternError::EmptyHost);
        }
        if host.contains('*') && !(host == "*" || (host.starts_with("*.") && !host[2..].contains('*'))) {
            return Err(PatternError::Wildcard(host.to_string()));
        }
        let path: Vec<String> = path.split('/').map(str::to_string).collect();
        if let Some(i) = path.iter().position(|s| s == "**")
            && i + 1 != path.len()
        {
            return Err(PatternError::DoubleStar);
        }
        Ok(UrlPattern {
            scheme: scheme.to_string(),
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    pub fn matches(&self, url: &url::Url) -> bool {
        if url.scheme() != self.scheme {
            return false;
        }
        let Some(host) = url.host_str() else { return false };
        let host = host.to_ascii_lowercase();
        let host_ok = match self.host.strip_prefix("*.") {
            _ if self.host == "*" => true,
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == self.host,
        };
        let port = url.port_or_known_default().unwrap_or(0);
        if !host_ok || self.port.is_some_and(|p| p != port) {
            return false;
        }
        let segments: Vec<&str> = url.path().trim_start_matches('/').split('/').collect();
        let mut i = 0;
        for pattern in &self.path {
            if pattern == "**" {
                return true;
            }
            match segments.get(i) {
                Some(segment) if pattern == "*" || pattern == segment => i += 1,
                _ => return false,
            }
        }
        i == segments.len()
    }
}

/// Headers the host sets itself (the target and the framing of the request, which a guest could
/// otherwise point at another virtual host or desynchronise), and hop-by-hop headers.
const HOST_SET_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "expect",
];

/// Headers that servers and proxies commonly take as another method, path or host than the
/// request line's (with them a GET grant would reach what the grant names no verb or URL for),
/// or as the client's address (which servers trust to let "local" callers in).
const REROUTING_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-forwarded-host",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-host",
    "x-envoy-original-path",
    "x-forwarded-for",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "destination",
    "forwarded",
];

/// Why an agent may not send these headers, if it may not.
fn refused_header(headers: &[(String, String)]) -> Option<String> {
    headers.iter().find_map(|(name, value)| {
        let lower = name.to_ascii_lowercase();
        if HOST_SET_HEADERS.contains(&lower.as_str()) {
            Some(format!("header `{name}` is set by the host, not by an agent"))
        } else if REROUTING_HEADERS.contains(&lower.as_str()) {
            Some(format!(
                "header `{name}` asks servers for another method, path or host than the one granted, or vouches \
                 for the client's address"
            ))
        } else if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            Some(format!("header name {name:?} is not a valid HTTP token"))
        } else if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            Some(format!("header `{name}` has a line break or NUL in its value"))
        } else {
            None
        }
    })
}

/// Why a (normalised) URL path may be read by a server as another path than the grant
/// matched, if it may: an encoded `/`, `\` or `.` in a segment (servers that decode before
/// routing see `..` or more segments), a `\`, or a `;` parameter (`..;` is `..` to some).
fn ambiguous_path(url: &url::Url) -> Option<String> {
    let segments = url.path_segments()?;
    for segment in segments {
        let lower = segment.to_ascii_lowercase();
        for (encoded, what) in [
            ("%2f", "an encoded `/`"),
            ("%5c", "an encoded `\\`"),
            ("%2e", "an encoded `.`"),
            ("%3b", "an encoded `;`"),
            ("%25", "an encoded `%` (a second round of decoding)"),
        ] {
            if lower.contains(encoded) {
                return Some(format!("path segment `{segment}` holds {what}"));
            }
        }
        let before_parameter = segment.split(';').next().unwrap_or_default();
        if segment.contains('\\') || (segment.contains(';') && matches!(before_parameter, "." | "..")) {
            return Some(format!("path segment `{segment}` is a dot-segment in disguise"));
        }
    }
    None
}

/// The outcome of a grant check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the named capability.
    Allow { grant: String },
    /// No capability allows it; the reason names what was asked and what is granted.
    Deny { reason: String },
}

/// An agent's capabilities, parsed for matching (the default grants nothing).
#[derive(Debug, Clone, Default)]
pub struct AgentGrants {
    pub agent: String,
    http: Vec<(String, HttpCap, Vec<UrlPattern>)>,
    fs: Vec<(String, FsCap, PathBuf)>,
    blob: Vec<(String, BlobCap)>,
    emit: Vec<(String, EmitCap)>,
    llm: Vec<(String, LlmCap)>,
    timer: Vec<(String, TimerCap)>,
    compile: Vec<(String, CompileCap)>,
    governance: Vec<(String, GovernanceCap)>,
    mcp: Vec<(String, agentos_air::McpCap)>,
    /// The world's providers, with a key file resolved against the world directory.
    providers: std::collections::BTreeMap<String, LlmProvider>,
    budgets: std::collections::BTreeMap<String, Budget>,
}

/// An allowed llm call: which provider to reach, under which capability's limits.
#[derive(Debug, Clone)]
pub struct LlmRoute<'a> {
    pub provider_name: &'a str,
    pub provider: &'a LlmProvider,
    pub cap: &'a LlmCap,
}

impl AgentGrants {
    /// Parse the grants of `agent` from the manifest; `world_dir` anchors relative fs dirs.
    pub fn from_manifest(manifest: &Manifest, agent: &str, world_dir: &Path) -> Result<AgentGrants, CapError> {
        AgentGrants::of(manifest, agent, &manifest.agents[agent].grants, world_dir)
    }

    /// Parse the grants of plan `plan`; its calls are made and budgeted as `plan:<name>`.
    pub fn for_plan(manifest: &Manifest, plan: &str, world_dir: &Path) -> Result<AgentGrants, CapError> {
        let holder = crate::journal::entry::plan::address(plan);
        AgentGrants::of(manifest, &holder, &manifest.plans[plan].grants, world_dir)
    }

    fn of(manifest: &Manifest, holder: &str, names: &[String], world_dir: &Path) -> Result<AgentGrants, CapError> {
        let mut grants = AgentGrants {
            agent: holder.to_string(),
            http: Vec::new(),
            fs: Vec::new(),
            blob: Vec::new(),
            emit: Vec::new(),
            llm: Vec::new(),
            timer: Vec::new(),
            compile: Vec::new(),
            governance: Vec::new(),
            mcp: Vec::new(),
            budgets: manifest
                .caps_named(names)
                .filter_map(|(n, c)| Some((n.to_string(), c.budget()?.clone())))
                .collect(),
            providers: manifest
                .providers
                .iter()
                .map(|(name, provider)| {
                    let mut provider = provider.clone();
                    provider.api_key_file = provider.api_key_file.map(|f| world_dir.join(f).display().to_string());
                    (name.clone(), provider)
                })
                .collect(),
        };
        for (name, cap) in manifest.caps_named(names) {
            match cap {
                Cap::Http(http) => {
                    let patterns = http
                        .urls
                        .iter()
                        .map(|p| {
                            UrlPattern::parse(p).map_err(|reason| CapError::BadPattern {
                                cap: name.to_string(),
                                pattern: p.clone(),
                                reason,
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    grants.http.push((name.to_string(), http.clone(), patterns));
                }
                Cap::Fs(fs) => {
                    let dir = world_dir.join(&fs.dir);
                    refuse_private(name, &dir, world_dir)?;
                    grants.fs.push((name.to_string(), fs.clone(), dir));
                }
                Cap::Blob(blob) => grants.blob.push((name.to_string(), blob.clone())),
                Cap::Emit(emit) => grants.emit.push((name.to_string(), emit.clone())),
                Cap::Llm(llm) => grants.llm.push((name.to_string(), llm.clone())),
                Cap::Timer(timer) => grants.timer.push((name.to_string(), timer.clone())),
                Cap::Compile(compile) => grants.compile.push((name.to_string(), compile.clone())),
                Cap::Governance(governance) => grants.governance.push((name.to_string(), governance.clone())),
                Cap::Mcp(mcp) => grants.mcp.push((name.to_string(), mcp.clone())),
            }
        }
        Ok(grants)
    }

    /// Whether the agent may import the interface of `effect` at all.
    pub fn holds(&self, effect: EffectKind) -> bool {
        match effect {
            EffectKind::Log => true,
            EffectKind::Http => !self.http.is_empty(),
            EffectKind::Mcp => !self.mcp.is_empty(),
            EffectKind::Fs => !self.fs.is_empty(),
            EffectKind::Blob => !self.blob.is_empty(),
            EffectKind::Emit => !self.emit.is_empty(),
            EffectKind::Llm => !self.llm.is_empty(),
            EffectKind::Timer => !self.timer.is_empty(),
            EffectKind::Compile => !self.compile.is_empty(),
            EffectKind::Governance => !self.governance.is_empty(),
        }
    }

    /// Check an http request; on success also returns the matching capability.
    /// Check an http request. On success: the grant, and the URL to send — exactly the one the
    /// grant was checked against (normalised), never the guest's own spelling of it.
    pub fn check_http(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
    ) -> (Decision, Option<(&HttpCap, url::Url)>) {
        let deny = |reason: String| (Decision::Deny { reason }, None);
        let parsed = match url::Url::parse(url) {
            Ok(parsed) => parsed,
            Err(e) => return deny(format!("`{url}` is not a valid URL: {e}")),
        };
        if let Some(reason) = refused_header(headers) {
            return deny(reason);
        }
        if let Some(reason) = ambiguous_path(&parsed) {
            return deny(format!("`{url}`: {reason}"));
        }
        for (name, cap, patterns) in &self.http {
            if cap.methods.iter().any(|m| m == method) && patterns.iter().any(|p| p.matches(&parsed)) {
                return (Decision::Allow { grant: name.clone() }, Some((cap, parsed)));
            }
        }
        let granted: Vec<String> = self
            .http
            .iter()
            .map(|(name, cap, _)| format!("{name} ({} {})", cap.methods.join("|"), cap.urls.join(", ")))
            .collect();
        let reason = format!(
            "no http grant of agent `{}` allows {method} {url}; granted: {}",
            self.agent,
            crate::text::listed(&granted, "; ")
        );
        (Decision::Deny { reason }, None)
    }

    /// Check an fs path (`<mount>/<relative>`); on success returns the host directory and the
    /// relative path inside it.
    pub fn check_fs(&self, path: &str, write: bool) -> (Decision, Option<(PathBuf, PathBuf)>) {
        let deny = |reason: String| (Decision::Deny { reason }, None);
        let (mount, rest) = path.split_once('/').unwrap_or((path, ""));
        let Some((name, cap, dir)) = self.fs.iter().find(|(name, _, _)| name == mount) else {
            let mounts: Vec<&str> = self.fs.iter().map(|(name, _, _)| name.as_str()).collect();
            return deny(format!(
                "`{path}` is not under an fs grant of agent `{}`; paths start with a granted mount: {}",
                self.agent,
                crate::text::listed(&mounts, ", ")
            ));
        };
        let relative = Path::new(rest);
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return deny(format!("`{path}`: `..` and absolute paths are refused"));
        }
        if relative.components().any(|c| c.as_os_str() == STATE_DIR) {
            return deny(format!(
                "`{path}`: a world's private directory {STATE_DIR} is never reachable through fs"
            ));
        }
        if write && cap.mode != FsMode::ReadWrite {
            return deny(format!("fs grant `{name}` is read-only; `{path}` cannot be written"));
        }
        (
            Decision::Allow { grant: name.clone() },
            Some((dir.clone(), relative.to_path_buf())),
        )
    }
}

/// Refuse an fs grant of `dir` that holds or lies inside a directory the host keeps to itself:
/// the world's `.agentos`, or the host's cache and state under the user's home. Compared after
/// resolving links, where the paths exist.
fn refuse_private(cap: &str, dir: &Path, world_dir: &Path) -> Result<(), CapError> {
    let resolved = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let granted = resolved(dir);
    let private = std::iter::once(world_dir.join(STATE_DIR)).chain(crate::private::user_roots());
    for private in private {
        let private = resolved(&private);
        if private.starts_with(&granted) || granted.starts_with(&private) {
            return Err(CapError::PrivateDir {
                cap: cap.to_string(),
                dir: dir.display().to_string(),
                private: private.display().to_string(),
            });
        }
    }
    Ok(())
}

impl AgentGrants {
    /// The budget on a grant, if any.
    pub fn budget(&self, grant: &str) -> Option<&Budget> {
        self.budgets.get(grant)
    }

    /// Every budgeted grant and its budget.
    pub fn budgets(&self) -> &std::collections::BTreeMap<String, Budget> {
        &self.budgets
    }

    /// Check a blob of `size_bytes` against the blob grants' size limits.
    pub fn check_blob(&self, size_bytes: u64) -> Decision {
        match self.blob.iter().find(|(_, cap)| size_bytes <= cap.max_bytes) {
            Some((name, _)) => Decision::Allow { grant: name.clone() },
            None => Decision::Deny {
                reason: format!(
                    "a blob of {size_bytes} bytes exceeds the blob grants of agent `{}` (max_bytes: {})",
                    self.agent,
                    self.blob
                        .iter()
                        .map(|(n, c)| format!("{n} {}", c.max_bytes))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        }
    }

    /// The first `mcp` grant covering `tool` of `server`, and whether it trusts the server's
    /// hints; or why none does.
    pub fn check_mcp(&self, server: &str, tool: &str) -> Result<(&str, bool), String> {
        match self.mcp.iter().find(|(_, cap)| cap.covers(server, tool)) {
            Some((name, cap)) => Ok((name, cap.trust_hints)),
            None if self.mcp.is_empty() => Err(format!("agent `{}` holds no mcp grant", self.agent)),
            None => Err(format!(
                "no mcp grant of agent `{}` covers `{server}/{tool}` (granted: {})",
                self.agent,
                self.mcp
                    .iter()
                    .flat_map(|(name, cap)| cap.tools.iter().map(move |t| format!("{t} by {name}")))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The first `mcp` grant's name (what a tool listing is receipted under).
    pub fn first_mcp_grant(&self) -> Option<&str> {
        self.mcp.first().map(|(name, _)| name.as_str())
    }

    /// The servers some `mcp` grant names, each once.
    pub fn mcp_servers(&self) -> Vec<&str> {
        let mut servers: Vec<&str> = self.mcp.iter().flat_map(|(_, cap)| cap.servers()).collect();
        servers.sort_unstable();
        servers.dedup();
        servers
    }

    /// Check a completion request: provider (or the grant's default), model, max tokens.
    pub fn check_llm(
        &self,
        provider: Option<&str>,
        model: &str,
        max_tokens: u32,
    ) -> Result<(String, LlmRoute<'_>), LlmDenied> {
        let mut reasons = Vec::new();
        for (name, cap) in &self.llm {
            let Some(provider_name) = provider.or(cap.providers.first().map(String::as_str)) else {
                continue;
            };
            if !cap.providers.iter().any(|p| p == provider_name) {
                reasons.push(format!("{name}: provider `{provider_name}` not granted"));
            } else if !cap.models.iter().any(|m| m == "*" || m == model) {
                reasons.push(format!(
                    "{name}: model `{model}` not granted ({})",
                    cap.models.join(", ")
                ));
            } else if max_tokens > cap.max_tokens_per_call {
                reasons.push(format!(
                    "{name}: max_tokens {max_tokens} over the limit of {}",
                    cap.max_tokens_per_call
                ));
            } else if let Some((provider_name, provider)) = self.providers.get_key_value(provider_name) {
                return Ok((
                    name.clone(),
                    LlmRoute {
                        provider_name,
                        provider,
                        cap,
                    },
                ));
            } else {
                reasons.push(format!(
                    "{name}: provider `{provider_name}` is not configured in [providers]"
                ));
            }
        }
        Err(LlmDenied {
            agent: self.agent.clone(),
            reasons,
        })
    }

    /// Check a timer `delay_ms` after the scheduling event, with `pending` timers already set.
    pub fn check_timer(&self, delay_ms: u64, pending: u32) -> Decision {
        let mut reasons = Vec::new();
        for (name, cap) in &self.timer {
            if delay_ms < cap.min_interval_ms {
                reasons.push(format!(
                    "{name}: delay {delay_ms} ms is under min_interval_ms {}",
                    cap.min_interval_ms
                ));
            } else if delay_ms > cap.max_delay_ms {
                reasons.push(format!(
                    "{name}: delay {delay_ms} ms is over max_delay_ms {}",
                    cap.max_delay_ms
                ));
            } else if pending >= cap.max_pending {
                reasons.push(format!(
                    "{name}: {pending} timers already pending (max_pending {})",
                    cap.max_pending
                ));
            } else {
                return Decision::Allow { grant: name.clone() };
            }
        }
        Decision::Deny {
            reason: format!(
                "no timer grant of agent `{}` allows this timer: {}",
                self.agent,
                reasons.join("; ")
            ),
        }
    }

    /// Check a build in `language`.
    pub fn check_compile(&self, language: &str) -> (Decision, Option<&CompileCap>) {
        match self
            .compile
            .iter()
            .find(|(_, cap)| cap.languages.iter().any(|l| l == language))
        {
            Some((name, cap)) => (Decision::Allow { grant: name.clone() }, Some(cap)),
            None => {
                let granted: Vec<&str> = self
                    .compile
                    .iter()
                    .flat_map(|(_, c)| c.languages.iter().map(String::as_str))
                    .collect();
                let reason = format!(
                    "no compile grant of agent `{}` allows {language}; granted: {}",
                    self.agent,
                    granted.join(", ")
                );
                (Decision::Deny { reason }, None)
            }
        }
    }

    /// The grant under which timers are cancelled (any timer grant).
    pub fn timer_grant(&self) -> Option<&str> {
        self.timer.first().map(|(name, _)| name.as_str())
    }

    /// Check a governance call: reading needs any governance grant, proposing one with
    /// `may_propose`.
    /// Whether the holder's effects work on what the whole world shares, so its steps cannot
    /// run beside another agent's: `governance` (the configuration records) and `compile` (the
    /// world's build directory, which builds share).
    pub fn shares_world_state(&self) -> bool {
        !self.governance.is_empty() || !self.compile.is_empty()
    }

    pub fn check_governance(&self, propose: bool) -> Decision {
        match self.governance.iter().find(|(_, cap)| !propose || cap.may_propose) {
            Some((name, _)) => Decision::Allow { grant: name.clone() },
            None if propose => Decision::Deny {
                reason: format!(
                    "no governance grant of agent `{}` has may_propose = true; it may read the manifest only",
                    self.agent
                ),
            },
            None => Decision::Deny {
                reason: format!("agent `{}` holds no governance grant", self.agent),
            },
        }
    }

    /// Check an event sent to agent `target`.
    pub fn check_emit(&self, target: &str) -> Decision {
        match self
            .emit
            .iter()
            .find(|(_, cap)| cap.targets.iter().any(|t| t == target))
        {
            Some((name, _)) => Decision::Allow { grant: name.clone() },
            None => {
                let targets: Vec<&str> = self
                    .emit
                    .iter()
                    .flat_map(|(_, c)| c.targets.iter().map(String::as_str))
                    .collect();
                Decision::Deny {
                    reason: format!(
                        "no emit grant of agent `{}` allows sending to `{target}`; granted targets: {}",
                        self.agent,
                        crate::text::listed(&targets, ", ")
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, url: &str) -> bool {
        UrlPattern::parse(pattern)
            .unwrap()
            .matches(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn url_patterns() {
        assert!(matches("https://example.com/**", "https://example.com/a/b?q=1"));
        assert!(matches("https://example.com", "https://example.com/"));
        assert!(!matches("https://example.com/**", "http://example.com/"));
        assert!(!matches("https://example.com/**", "https://example.com:8443/"));
        assert!(matches("http://127.0.0.1:*/**", "http://127.0.0.1:5123/x"));
        assert!(matches("https://*.example.com/api/*", "https://a.example.com/api/v1"));
        assert!(!matches("https://*.example.com/api/*", "https://example.com/api/v1"));
        assert!(!matches(
            "https://*.example.com/api/*",
            "https://a.example.com/api/v1/x"
        ));
        assert!(!matches("https://example.com/**", "https://example.com.evil.org/"));
        assert!(UrlPattern::parse("https://ex*ample.com/").is_err());
        assert!(UrlPattern::parse("https://x/**/y").is_err());
        assert!(UrlPattern::parse("ftp://x/").is_err());
    }

    fn grants() -> AgentGrants {
        let text = r#"
            [world]
            name = "w"
            [modules.m]
            component = "m.wasm"
            [caps.web]
            effect = "http"
            urls = ["http://127.0.0.1:*/ok/**"]
            [caps.data]
            effect = "fs"
            dir = "data"
            [agents.a]
            module = "m"
            grants = ["web", "data"]
        "#;
        let manifest = Manifest::parse_toml(text, "world.toml").unwrap();
        AgentGrants::from_manifest(&manifest, "a", Path::new("/w")).unwrap()
    }

    #[test]
    fn http_decisions_name_the_grant_or_the_reason() {
        let grants = grants();
        assert_eq!(
            grants.check_http("GET", "http://127.0.0.1:9/ok/x", &[]).0,
            Decision::Allow { grant: "web".into() }
        );
        let Decision::Deny { reason } = grants.check_http("POST", "http://127.0.0.1:9/ok/x", &[]).0 else {
            panic!()
        };
        assert!(
            reason.contains("POST http://127.0.0.1:9/ok/x") && reason.contains("web (GET"),
            "{reason}"
        );
        assert!(matches!(
            grants.check_http("GET", "http://127.0.0.1:9/other", &[]).0,
            Decision::Deny { .. }
        ));
        // Paths a server may route outside the grant, and headers asking it to.
        for (url, expected) in [
            ("http://127.0.0.1:9/ok/..%2F..%2Fadmin", "encoded `/`"),
            // The URL standard reads `%2e%2e` as `..`: the grant is judged on `/admin`.
            ("http://127.0.0.1:9/ok/%2e%2e/admin", "no http grant"),
            ("http://127.0.0.1:9/ok/x%2E/admin", "encoded `.`"),
            ("http://127.0.0.1:9/ok/..%3B/admin", "encoded `;`"),
            ("http://127.0.0.1:9/ok/%252e%252e/admin", "encoded `%`"),
            ("http://127.0.0.1:9/ok/..;/..;/admin", "dot-segment in disguise"),
        ] {
            let Decision::Deny { reason } = grants.check_http("GET", url, &[]).0 else {
                panic!("{url} was allowed")
            };
            assert!(reason.contains(expected), "{url}: {reason}");
        }
        assert!(matches!(
            grants.check_http("GET", "http://127.0.0.1:9/ok/a;b", &[]).0,
            Decision::Allow { .. }
        ));
        for header in [
            "X-HTTP-Method-Override",
            "X-Original-URL",
            "X-Forwarded-Host",
            "Forwarded",
            "X-Forwarded-For",
        ] {
            let headers = [(header.to_string(), "DELETE".to_string())];
            let Decision::Deny { reason } = grants.check_http("GET", "http://127.0.0.1:9/ok/x", &headers).0 else {
                panic!("{header} was allowed")
            };
            assert!(reason.contains("another method, path or host"), "{header}: {reason}");
        }
    }

    #[test]
    fn fs_decisions() {
        let grants = grants();
        let (decision, target) = grants.check_fs("data/a/b.txt", false);
        assert_eq!(decision, Decision::Allow { grant: "data".into() });
        assert_eq!(target.unwrap(), (PathBuf::from("/w/data"), PathBuf::from("a/b.txt")));
        assert!(matches!(
            grants.check_fs("data/../secret", false).0,
            Decision::Deny { .. }
        ));
        assert!(matches!(grants.check_fs("other/x", false).0, Decision::Deny { .. }));
        let Decision::Deny { reason } = grants.check_fs("data/x", true).0 else {
            panic!()
        };
        assert!(reason.contains("read-only"), "{reason}");
        let Decision::Deny { reason } = grants.check_fs("data/world/.agentos/host.key", false).0 else {
            panic!()
        };
        assert!(reason.contains("private directory .agentos"), "{reason}");
    }

    #[test]
    fn an_fs_grant_of_a_directory_holding_the_host_s_files_is_refused() {
        let world = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(world.path().join(".agentos")).unwrap();
        std::fs::create_dir_all(world.path().join("data")).unwrap();
        // A link that makes an innocent-looking name the world directory itself.
        std::os::unix::fs::symlink(world.path(), world.path().join("data/up")).unwrap();
        for dir in ["data/up", "/"] {
            let text = format!(
                "[world]\nname = \"w\"\n[modules.m]\ncomponent = \"m.wasm\"\n[caps.files]\neffect = \"fs\"\n\
                 dir = \"{dir}\"\n[agents.a]\nmodule = \"m\"\ngrants = [\"files\"]\n"
            );
            let manifest = Manifest::parse_toml(&text, "world.toml").unwrap();
            let error = AgentGrants::from_manifest(&manifest, "a", world.path()).unwrap_err();
            assert!(
                error.to_string().contains("which the host keeps to itself"),
                "{dir}: {error}"
            );
        }
    }

    #[test]
    fn budgets_count_calls_bytes_and_tokens_in_a_sliding_window() {
        let budget = Budget {
            calls: Some(2),
            bytes: None,
            tokens: None,
            window_ms: Some(1000),
        };
        let mut ledger = BudgetLedger::default();
        assert!(ledger.admit("a", "web", &budget, 0).is_ok());
        ledger.record("a", "web", 0, 10, 0);
        ledger.record("a", "web", 500, 10, 0);
        let error = ledger.admit("a", "web", &budget, 900).unwrap_err();
        assert_eq!(
            error.to_string(),
            "grant `web` of agent `a` has used 2 of its 2 calls per 1000 ms"
        );
        // Another agent's use of a grant of the same name is its own.
        assert!(ledger.admit("b", "web", &budget, 900).is_ok());
        // The first call leaves the window at t = 1000.
        assert!(ledger.admit("a", "web", &budget, 1000).is_ok());

        let tokens = Budget {
            calls: None,
            bytes: Some(100),
            tokens: Some(50),
            window_ms: None,
        };
        ledger.record("a", "models", 0, 20, 49);
        assert!(ledger.admit("a", "models", &tokens, 10_000_000).is_ok());
        ledger.record("a", "models", 1, 20, 1);
        let error = ledger.admit("a", "models", &tokens, 10_000_000).unwrap_err();
        assert!(error.to_string().contains("has used 50 of its 50 tokens"), "{error}");
    }
}
