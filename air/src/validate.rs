//! Manifest validation: every inconsistency at once, each naming the file and the definition.

use crate::{Cap, Manifest};
use std::fmt;

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the definition, e.g. `agents.hello.grants`.
    pub definition: String,
    pub message: String,
    /// 1-based (line, column) of the definition's key in the TOML source, when known.
    pub at: Option<(usize, usize)>,
}

/// Every problem found in one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(f, "{}: {count} problem{}", self.file, if count == 1 { "" } else { "s" })?;
        for problem in &self.problems {
            match problem.at {
                Some((line, column)) => write!(
                    f,
                    "\n  {}:{line}:{column}: {}: {}",
                    self.file, problem.definition, problem.message
                )?,
                None => write!(f, "\n  {}: {}", problem.definition, problem.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

impl ValidationError {
    /// Attach to each problem the line and column of its definition in the TOML `text`.
    pub fn located_in(mut self, text: &str) -> ValidationError {
        if let Ok(document) = toml::de::DeTable::parse(text) {
            for problem in &mut self.problems {
                problem.at = locate(document.get_ref(), &problem.definition).map(|offset| line_column(text, offset));
            }
        }
        self
    }
}

/// Keys a JSON object repeats (serde keeps the last silently), as problems with their position.
pub(crate) fn duplicate_json_keys(text: &str) -> Vec<Problem> {
    let mut keys = KeyPaths::default();
    json_value(text.as_bytes(), 0, "", &mut keys);
    if keys.overflowed {
        return vec![Problem {
            definition: String::new(),
            message: format!(
                "is too large to check for repeated keys (its key paths pass {PATH_BYTES_MAX} bytes); split it up"
            ),
            at: None,
        }];
    }
    let mut duplicates: Vec<Problem> = keys
        .paths
        .iter()
        .filter_map(|(path, offset)| {
            let path = path.strip_prefix('\u{0}')?;
            Some(Problem {
                definition: path.to_string(),
                message: "is defined twice; one definition per name".into(),
                at: Some(line_column(text, *offset)),
            })
        })
        .collect();
    duplicates.sort_by_key(|p| p.at);
    duplicates
}

impl ValidationError {
    /// Attach to each problem the line and column of its definition in the JSON `text`.
    pub fn located_in_json(mut self, text: &str) -> ValidationError {
        let mut keys = KeyPaths::default();
        json_value(text.as_bytes(), 0, "", &mut keys);
        let keys = keys.paths;
        for problem in &mut self.problems {
            let mut path = problem.definition.as_str();
            problem.at = loop {
                if let Some(offset) = keys.get(path) {
                    break Some(line_column(text, *offset));
                }
                match path.rfind('.') {
                    Some(dot) => path = &path[..dot],
                    None => break None,
                }
            };
        }
        self
    }
}

/// Walk one JSON value at byte `i` (the text is valid JSON: serde_json parsed it), recording the
/// offset of each object key by dotted path (first occurrence). Returns the offset after it.
/// Most bytes of key paths recorded for one document: what a document of repeated long keys
/// nested deep could otherwise make quadratic in its size.
const PATH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Each key's (and array element's) path in a JSON document, with the offset of its value.
#[derive(Default)]
struct KeyPaths {
    paths: std::collections::HashMap<String, usize>,
    bytes: usize,
    /// More than [`PATH_BYTES_MAX`] would have been recorded: the walk stopped.
    overflowed: bool,
}

impl KeyPaths {
    fn contains_key(&self, path: &str) -> bool {
        self.paths.contains_key(path)
    }

    /// Record `path` at `offset` unless it is there; false once the budget is spent.
    fn record(&mut self, path: String, offset: usize) -> bool {
        self.bytes += path.len();
        if self.bytes > PATH_BYTES_MAX {
            self.overflowed = true;
            return false;
        }
        self.paths.entry(path).or_insert(offset);
        true
    }
}

fn json_value(b: &[u8], mut i: usize, path: &str, keys: &mut KeyPaths) -> usize {
    let skip_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let string_end = |mut i: usize| {
        i += 1;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    };
    i = skip_space(i);
    match b.get(i) {
        Some(b'{') => {
            i += 1;
            loop {
                i = skip_space(i);
                match b.get(i) {
                    Some(b'"') => {
                        let end = string_end(i);
                        let key = String::from_utf8_lossy(&b[i + 1..end.saturating_sub(1).max(i + 1)]);
                        let key_path = if path.is_empty() {
                            key.into_owned()
                        } else {
                            format!("{path}.{key}")
                        };
                        // A repeated key is recorded under a marked path for `duplicate_json_keys`,
                        // and its value walked under another mark, so its members are not repeats.
                        let inner_path = if keys.contains_key(&key_path) {
                            if !keys.record(format!("\u{0}{key_path}"), i) {
                                return b.len();
                            }
                            format!("\u{1}{key_path}")
                        } else {
                            if !keys.record(key_path.clone(), i) {
                                return b.len();
                            }
                            key_path
                        };
                        i = skip_space(end);
                        i = json_value(b, i + 1, &inner_path, keys); // past the `:`
                    }
                    Some(b',') => i += 1,
                    Some(b'}') => return i + 1,
                    _ => return b.len(),
                }
            }
        }
        Some(b'[') => {
            i += 1;
            let mut element = 0;
            loop {
                i = skip_space(i);
                match b.get(i) {
                    Some(b']') => return i + 1,
                    Some(b',') => i += 1,
                    Some(_) => {
                        // Elements are numbered from 1, as problems name them (`policy.rules[2]`).
                        element += 1;
                        let element_path = format!("{path}[{element}]");
                        if !keys.record(element_path.clone(), i) {
                            return b.len();
                        }
                        i = json_value(b, i, &element_path, keys);
                    }
                    None => return b.len(),
                }
            }
        }
        Some(b'"') => string_end(i),
        Some(_) => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']') && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        }
        None => b.len(),
    }
}

/// Byte offset of the deepest key of the dotted `path` present in `table`.
fn locate(mut table: &toml::de::DeTable<'_>, path: &str) -> Option<usize> {
    let mut found = None;
    for segment in path.split('.') {
        let Some((key, value)) = table.iter().find(|(key, _)| key.get_ref().as_ref() == segment) else {
            break;
        };
        found = Some(key.span().start);
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    found
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}

impl Manifest {
    /// Schema names, members, references and cycles.
    fn validate_schemas(&self, problem: &mut impl FnMut(String, String)) {
        use crate::Schema;
        for (name, schema) in &self.schemas {
            let at = format!("schemas.{name}");
            if !crate::schema::is_identifier(name) {
                problem(
                    at.clone(),
                    "schema names are WIT identifiers: lowercase words of letters and digits joined by `-`".into(),
                );
            }
            let members = schema.member_names();
            if members.is_empty() && !matches!(schema, Schema::Alias(_)) {
                problem(at.clone(), "needs at least one field, case or flag".into());
            }
            let mut seen = std::collections::BTreeSet::new();
            for member in members {
                if !seen.insert(member) {
                    problem(at.clone(), format!("`{member}` appears twice"));
                }
            }
            for referenced in schema.names() {
                if !self.schemas.contains_key(referenced) {
                    problem(at.clone(), format!("`{referenced}` names no schema in [schemas]"));
                }
            }
        }
        // Cycles: depth-first, reporting each schema found on a cycle once.
        let mut done = std::collections::BTreeSet::new();
        for start in self.schemas.keys() {
            let mut path = Vec::new();
            self.find_cycle(start, &mut path, &mut done, problem);
        }
    }

    fn find_cycle<'a>(
        &'a self,
        name: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
        problem: &mut impl FnMut(String, String),
    ) {
        if let Some(position) = path.iter().position(|n| *n == name) {
            let cycle: Vec<&str> = path[position..].iter().copied().chain([name]).collect();
            problem(
                format!("schemas.{name}"),
                format!(
                    "refers to itself through {} (schemas cannot be recursive)",
                    cycle.join(" → ")
                ),
            );
            return;
        }
        if done.contains(name) {
            return;
        }
        let Some(schema) = self.schemas.get(name) else { return };
        path.push(name);
        for next in schema.names() {
            self.find_cycle(next, path, done, problem);
        }
        path.pop();
        done.insert(name);
    }

    /// Check references, names and constraints; `file` names the source in the report.
    pub fn validate(&self, file: &str) -> Result<(), ValidationError> {
        let mut problems = Vec::new();
        let mut problem = |definition: String, message: String| {
            problems.push(Problem {
                definition,
                message,
                at: None,
            })
        };

        for (kind, names) in [
            ("modules", self.modules.keys().collect::<Vec<_>>()),
            ("caps", self.caps.keys().collect()),
            ("agents", self.agents.keys().collect()),
            ("plans", self.plans.keys().collect()),
        ] {
            for name in names {
                if !is_name(name) {
                    problem(
                        format!("{kind}.{name}"),
                        "names are 1-64 characters of a-z, 0-9, `-`, `_`, starting with a letter".into(),
                    );
                }
            }
        }
        self.validate_schemas(&mut problem);
        for (definition, message) in self.plan_problems() {
            problem(definition, message);
        }
        for (definition, message) in self.policy.iter().flat_map(crate::Policy::problems) {
            problem(definition, message);
        }
        for (name, entry) in self.policy.iter().flat_map(|p| &p.approvers) {
            if let Some(crate::Approver::Agent(agent)) = crate::Approver::parse(entry)
                && !self.agents.contains_key(agent)
            {
                problem(
                    format!("policy.approvers.{name}"),
                    format!("`{agent}` names no agent in [agents]"),
                );
            }
        }
        for (name, agent) in &self.agents {
            let Some(event) = &agent.event else { continue };
            match self.schemas.get(event) {
                None => problem(
                    format!("agents.{name}.event"),
                    format!("`{event}` names no schema in [schemas]"),
                ),
                Some(crate::Schema::Variant(_)) => {}
                Some(_) => problem(
                    format!("agents.{name}.event"),
                    format!("schema `{event}` is not a variant; an agent handles a variant of events"),
                ),
            }
        }
        for (name, module) in &self.modules {
            if let Some(digest) = &module.sha256
                && (digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
            {
                problem(
                    format!("modules.{name}.sha256"),
                    format!("`{digest}` is not a sha256 (64 lowercase hex digits)"),
                );
            }
            if !module.component.ends_with(".wasm") {
                problem(
                    format!("modules.{name}.component"),
                    format!("`{}` is not a .wasm file", module.component),
                );
            }
            let component = std::path::Path::new(&module.component);
            if component.is_absolute()
                || component
                    .components()
                    .any(|part| !matches!(part, std::path::Component::Normal(_) | std::path::Component::CurDir))
            {
                problem(
                    format!("modules.{name}.component"),
                    format!(
                        "`{}` is not a path inside the world directory (relative, without `..`)",
                        module.component
                    ),
                );
            }
        }
        for (name, cap) in &self.caps {
            if let Some(budget) = cap.budget() {
                if budget.calls.is_none() && budget.bytes.is_none() && budget.tokens.is_none() {
                    problem(
                        format!("caps.{name}.budget"),
                        "a budget needs calls, bytes or tokens".into(),
                    );
                }
                if budget.window_ms == Some(0) {
                    problem(
                        format!("caps.{name}.budget.window_ms"),
                        "a zero window counts nothing".into(),
                    );
                }
            }
            match cap {
                Cap::Http(http) => {
                    if http.urls.is_empty() {
                        problem(
                            format!("caps.{name}.urls"),
                            "an http capability needs at least one URL pattern".into(),
                        );
                    }
                    for url in &http.urls {
                        if !(url.starts_with("http://") || url.starts_with("https://")) {
                            problem(
                                format!("caps.{name}.urls"),
                                format!("`{url}` cannot match any request: patterns start with http:// or https://"),
                            );
                        }
                    }
                    if http.methods.is_empty() {
                        problem(
                            format!("caps.{name}.methods"),
                            "no method listed, so no request can match".into(),
                        );
                    }
                    for method in &http.methods {
                        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
                            problem(
                                format!("caps.{name}.methods"),
                                format!("`{method}` is not an upper-case HTTP method"),
                            );
                        }
                    }
                    if http.timeout_ms == 0 {
                        problem(
                            format!("caps.{name}.timeout_ms"),
                            "a zero timeout lets no request finish".into(),
                        );
                    }
                }
                Cap::Mcp(mcp) => {
                    if mcp.tools.is_empty() {
                        problem(
                            format!("caps.{name}.tools"),
                            "no tool pattern listed, so no tool can be called".into(),
                        );
                    }
                    for pattern in &mcp.tools {
                        match pattern.split_once('/') {
                            Some((server, tool)) if !tool.is_empty() => {
                                if !self.mcp.contains_key(server) {
                                    problem(
                                        format!("caps.{name}.tools"),
                                        format!("`{pattern}` names no server in [mcp]"),
                                    );
                                }
                            }
                            _ => problem(
                                format!("caps.{name}.tools"),
                                format!("`{pattern}` is not `server/tool` (the tool part may use `*`)"),
                            ),
                        }
                    }
                }
                Cap::Emit(emit) => {
                    if emit.targets.is_empty() {
                        problem(
                            format!("caps.{name}.targets"),
                            "no target listed, so no event can be sent".into(),
                        );
                    }
                    for target in &emit.targets {
                        match target.strip_prefix("plan:") {
                            Some(plan) if !self.plans.contains_key(plan) => problem(
                                format!("caps.{name}.targets"),
                                format!("`{target}` names no plan in [plans]"),
                            ),
                            None if !self.agents.contains_key(target) => problem(
                                format!("caps.{name}.targets"),
                                format!("`{target}` names no agent in [agents] (or plan, as `plan:<name>`)"),
                            ),
                            _ => {}
                        }
                    }
                }
                Cap::Llm(llm) => {
                    if llm.providers.is_empty() {
                        problem(
                            format!("caps.{name}.providers"),
                            "no provider listed, so no call can be made".into(),
                        );
                    }
                    for provider in &llm.providers {
                        if !self.providers.contains_key(provider) {
                            problem(
                                format!("caps.{name}.providers"),
                                format!("`{provider}` names no provider in [providers]"),
                            );
                        }
                    }
                    if llm.models.is_empty() {
                        problem(
                            format!("caps.{name}.models"),
                            "no model listed (use \"*\" for any)".into(),
                        );
                    }
                    if llm.max_tokens_per_call == 0 || llm.timeout_ms == 0 {
                        problem(
                            format!("caps.{name}"),
                            "max_tokens_per_call and timeout_ms must be positive".into(),
                        );
                    }
                }
                Cap::Compile(compile) => {
                    for language in &compile.languages {
                        if language != "rust" && language != "wat" {
                            problem(
                                format!("caps.{name}.languages"),
                                format!("`{language}` is not rust or wat"),
                            );
                        }
                    }
                    if compile.languages.is_empty() || compile.time_limit_ms == 0 {
                        problem(
                            format!("caps.{name}"),
                            "needs at least one language and a positive time_limit_ms".into(),
                        );
                    }
                }
                Cap::Blob(blob) if blob.max_bytes == 0 => {
                    problem(
                        format!("caps.{name}.max_bytes"),
                        "a zero size limit lets no blob through".into(),
                    );
                }
                Cap::Fs(fs) if fs.dir.is_empty() => {
                    problem(format!("caps.{name}.dir"), "empty directory".into());
                }
                Cap::Fs(fs) if !fs.dir.starts_with('/') && holds_private_dir(&fs.dir) => {
                    problem(
                        format!("caps.{name}.dir"),
                        format!(
                            "`{}` is or holds the world's private directory .agentos (its journal and host key); \
                             grant a directory beside it, such as `data`",
                            fs.dir
                        ),
                    );
                }
                _ => {}
            }
        }
        for (name, server) in &self.mcp {
            let at = |field: &str| format!("mcp.{name}{field}");
            if !crate::mcp::valid_name(name) {
                problem(at(""), "a server's name is 1 to 64 letters, digits, `_` or `-`".into());
            }
            match (&server.command, &server.url) {
                (Some(_), Some(_)) | (None, None) => problem(
                    at(""),
                    "give `command` (a server the host starts, over stdio) or `url` (streamable HTTP), not both".into(),
                ),
                (Some(command), None) => {
                    if command.trim().is_empty() {
                        problem(at(".command"), "is empty".into());
                    }
                    if !server.headers.is_empty() {
                        problem(at(".headers"), "headers are for a server at a `url`".into());
                    }
                }
                (None, Some(url)) => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        problem(at(".url"), format!("`{url}` is not an http(s) URL"));
                    }
                    if !server.args.is_empty() || !server.env.is_empty() {
                        problem(
                            at(""),
                            "`args` and `env` are for a server the host starts (`command`)".into(),
                        );
                    }
                }
            }
            for var in server.env.keys() {
                if !crate::mcp::valid_env_name(var) {
                    problem(at(".env"), format!("`{var}` cannot name an environment variable"));
                }
            }
            for header in server.headers.keys() {
                if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    problem(at(".headers"), format!("`{header}` is not a header name"));
                }
            }
            for value in server.env.values().chain(server.headers.values()) {
                if let crate::SecretValue::Env { var, .. } = value
                    && !crate::mcp::valid_env_name(var)
                {
                    problem(at(""), format!("`{var}` cannot name an environment variable"));
                }
            }
            if server.timeout_ms == 0 {
                problem(at(".timeout_ms"), "a zero timeout lets no call finish".into());
            }
            if server.max_result_bytes == 0 || server.max_result_bytes > crate::mcp::MCP_RESULT_BYTES_MAX {
                problem(
                    at(".max_result_bytes"),
                    format!("is 1 to {} bytes", crate::mcp::MCP_RESULT_BYTES_MAX),
                );
            }
        }
        for (name, provider) in &self.providers {
            if !(provider.base_url.starts_with("http://") || provider.base_url.starts_with("https://")) {
                problem(
                    format!("providers.{name}.base_url"),
                    format!("`{}` is not an http(s) URL", provider.base_url),
                );
            }
            if provider.api_key_env.is_some() && provider.api_key_file.is_some() {
                problem(
                    format!("providers.{name}"),
                    "give api_key_env or api_key_file, not both".into(),
                );
            }
        }
        for (name, agent) in &self.agents {
            if !self.modules.contains_key(&agent.module) {
                problem(
                    format!("agents.{name}.module"),
                    format!("`{}` names no module in [modules]", agent.module),
                );
            }
            for grant in &agent.grants {
                if !self.caps.contains_key(grant) {
                    problem(
                        format!("agents.{name}.grants"),
                        format!("`{grant}` names no capability in [caps]"),
                    );
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            for grant in &agent.grants {
                if !seen.insert(grant) {
                    problem(format!("agents.{name}.grants"), format!("`{grant}` is granted twice"));
                }
            }
            if agent.fuel_per_step == 0 {
                problem(
                    format!("agents.{name}.fuel_per_step"),
                    "zero fuel lets no step run".into(),
                );
            }
            if agent.memory_max_bytes < 1024 * 1024 {
                problem(
                    format!("agents.{name}.memory_max_bytes"),
                    "below 1 MiB no component can start".into(),
                );
            }
            if agent.step_deadline_ms == 0 {
                problem(
                    format!("agents.{name}.step_deadline_ms"),
                    "a zero deadline lets no step run".into(),
                );
            }
            if agent.step_payload_max_bytes < 64 * 1024 {
                problem(
                    format!("agents.{name}.step_payload_max_bytes"),
                    "below 64 KiB a step cannot log a line and read a file".into(),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                file: file.to_string(),
                problems,
            })
        }
    }
}

/// Whether a relative fs directory is the world directory itself or reaches into `.agentos`.
fn holds_private_dir(dir: &str) -> bool {
    let segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    segments.is_empty() || segments.contains(&".agentos")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_component_path_outside_the_world_directory_is_refused() {
        for component in ["/etc/agent.wasm", "../elsewhere/agent.wasm", "modules/../../agent.wasm"] {
            let text = format!("[world]\nname = \"w\"\n[modules.m]\ncomponent = \"{component}\"\n");
            let error = crate::Manifest::parse_toml(&text, "world.toml")
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("not a path inside the world directory"),
                "{component}: {error}"
            );
        }
        let fine = "[world]\nname = \"w\"\n[modules.m]\ncomponent = \"./modules/m.wasm\"\n";
        assert!(crate::Manifest::parse_toml(fine, "world.toml").is_ok());
    }

    #[test]
    fn a_document_whose_key_paths_would_grow_quadratically_is_refused_early() {
        // A long key with many members under it: every member's path repeats the key.
        let key = "k".repeat(600_000);
        let members: Vec<String> = (0..60_000).map(|n| format!("\"m{n}\": 1")).collect();
        let text = format!("{{\"{key}\": {{{}}}}}", members.join(","));
        let problems = super::duplicate_json_keys(&text);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("too large to check for repeated keys"));
        assert!(
            super::duplicate_json_keys("{\"a\": 1, \"a\": 2}")[0]
                .message
                .contains("defined twice")
        );
    }

    use crate::{AirError, Manifest};

    #[test]
    fn reports_every_problem_with_its_definition() {
        let text = r#"
            [world]
            name = "w"
            [modules.m]
            component = "m.wasm"
            [caps.web]
            effect = "http"
            urls = ["ftp://x"]
            [agents.a]
            module = "nope"
            grants = ["web", "ghost"]
        "#;
        let Err(AirError::Invalid(error)) = Manifest::parse_toml(text, "world.toml") else {
            panic!("expected a validation error");
        };
        let report = error.to_string();
        assert!(report.starts_with("world.toml: 3 problems"), "{report}");
        assert!(
            report.contains("world.toml:8:13: caps.web.urls: `ftp://x` cannot match"),
            "{report}"
        );
        assert!(
            report.contains("world.toml:10:13: agents.a.module: `nope` names no module"),
            "{report}"
        );
        assert!(
            report.contains("world.toml:11:13: agents.a.grants: `ghost` names no capability"),
            "{report}"
        );
    }

    #[test]
    fn problems_in_json_carry_line_and_column_too() {
        let text = "{\n  \"world\": {\"name\": \"w\"},\n  \"caps\": {\"web\": {\"effect\": \"http\", \"urls\": [\"ftp://x\"]}},\n  \
                    \"agents\": {\n    \"a\": {\"module\": \"nope\", \"grants\": [\"web\", \"gh\\\"ost\"]}\n  }\n}\n";
        let Err(AirError::Invalid(error)) = Manifest::parse_json(text, "world.json") else {
            panic!("expected a validation error");
        };
        let report = error.to_string();
        let duplicated = "{\"world\": {\"name\": \"w\"},\n \"modules\": {\"m\": {\"component\": \"m.wasm\"}, \"m\": {\"component\": \"n.wasm\"}}}";
        let Err(AirError::Invalid(twice)) = Manifest::parse_json(duplicated, "d.json") else {
            panic!("expected the repeated key to be refused");
        };
        assert_eq!(
            twice.to_string(),
            "d.json: 1 problem\n  d.json:2:44: modules.m: is defined twice; one definition per name"
        );
        // Objects in an array are elements, not repeats of one another; problems point at them.
        let rules = "{\"world\": {\"name\": \"w\"}, \"policy\": {\"rules\": [\n\
                     {\"effect\": \"http\", \"decision\": \"deny\"},\n {\"effect\": \"ghost\", \"decision\": \"deny\"}]}}";
        let Err(AirError::Invalid(rule)) = Manifest::parse_json(rules, "r.json") else {
            panic!("expected the unknown effect to be refused");
        };
        assert_eq!(
            rule.to_string(),
            "r.json: 1 problem\n  r.json:3:2: policy.rules[2]: `ghost` is not an effect"
        );
        for expected in [
            "world.json:3:38: caps.web.urls: `ftp://x` cannot match",
            "world.json:5:11: agents.a.module: `nope` names no module",
            "world.json:5:29: agents.a.grants: `gh\"ost` names no capability",
        ] {
            assert!(report.contains(expected), "{expected}\n{report}");
        }
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let text = "[world]\nname = \"w\"\n[agents.a]\nmodule = \n";
        let error = Manifest::parse_toml(text, "world.toml").unwrap_err().to_string();
        assert!(error.contains("world.toml"), "{error}");
        assert!(error.contains("line 4"), "{error}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = "[world]\nname = \"w\"\ncolour = \"blue\"\n";
        let error = Manifest::parse_toml(text, "world.toml").unwrap_err().to_string();
        assert!(error.contains("colour"), "{error}");
    }

    #[test]
    fn canonical_form_ignores_authoring_order_and_json_is_the_same_model() {
        let a = "[world]\nname = \"w\"\n[modules.b]\ncomponent = \"b.wasm\"\n[modules.a]\ncomponent = \"a.wasm\"\n";
        let b = "[world]\nname = \"w\"\n[modules.a]\ncomponent = \"a.wasm\"\n[modules.b]\ncomponent = \"b.wasm\"\n";
        let json = r#"{"world":{"name":"w"},"modules":{"a":{"component":"a.wasm"},"b":{"component":"b.wasm"}}}"#;
        let a = Manifest::parse_toml(a, "a").unwrap();
        let b = Manifest::parse_toml(b, "b").unwrap();
        let json = Manifest::parse_json(json, "c").unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest(), json.digest());
        let with_caps = "[world]\nname = \"w\"\n[caps.web]\neffect = \"http\"\nurls = [\"https://x/**\"]\n[caps.d]\neffect = \"fs\"\ndir = \"data\"\n";
        let with_caps = Manifest::parse_toml(with_caps, "d").unwrap();
        let back = Manifest::parse_json(&with_caps.to_json(), "journal").unwrap();
        assert_eq!(back, with_caps);
        assert_eq!(back.digest(), with_caps.digest());
    }

    #[test]
    fn agents_with_config_round_trip_through_json() {
        let text = "[world]\nname = \"w\"\n[modules.m]\ncomponent = \"m.wasm\"\n\
                    [agents.plain]\nmodule = \"m\"\n\
                    [agents.configured]\nmodule = \"m\"\nconfig = { model = \"small\", limits = [1, 2] }\n";
        let manifest = Manifest::parse_toml(text, "world.toml").unwrap();
        assert_eq!(manifest.agents["plain"].config, "null");
        let back = Manifest::parse_json(&manifest.to_json(), "journal").unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.digest(), manifest.digest());
    }

    #[test]
    fn schema_problems_are_all_reported() {
        let text = r#"
            [world]
            name = "w"
            [schemas.a]
            record = ["next: b", "x: u32", "x: u8"]
            [schemas.b]
            type = "option<a>"
            [schemas.c]
            variant = ["go(ghost)"]
            [schemas.d]
            enum = []
            [modules.m]
            component = "m.wasm"
            [agents.one]
            module = "m"
            event = "a"
            [agents.two]
            module = "m"
            event = "nothing"
        "#;
        let Err(AirError::Invalid(error)) = Manifest::parse_toml(text, "world.toml") else {
            panic!("expected a validation error");
        };
        let report = error.to_string();
        for expected in [
            "world.toml:4:22: schemas.a: `x` appears twice",
            "schemas.a: refers to itself through a → b → a (schemas cannot be recursive)",
            "schemas.c: `ghost` names no schema in [schemas]",
            "schemas.d: needs at least one field, case or flag",
            "agents.one.event: schema `a` is not a variant",
            "agents.two.event: `nothing` names no schema in [schemas]",
        ] {
            assert!(report.contains(expected), "{expected}\n{report}");
        }
    }

    #[test]
    fn policy_problems_are_all_reported() {
        let key = "ab".repeat(32);
        let text = format!(
            "[world]\nname = \"w\"\n[policy]\napprovers = {{ ada = \"{key}\", bob = \"xyz\", cy = \"agent:ghost\" }}\nquorum = 4\n\
             rules = [{{ effect = \"*\", decision = \"allow\" }}, {{ effect = \"http\", decision = \"deny\" }}, \
             {{ effect = \"telepathy\", decision = \"deny\" }}]\n"
        );
        let Err(AirError::Invalid(error)) = Manifest::parse_toml(&text, "world.toml") else {
            panic!("expected a validation error");
        };
        let report = error.to_string();
        for expected in [
            "policy.approvers.bob: `xyz` is neither an ed25519 public key (64 hex digits) nor `agent:<agent name>`",
            "policy.quorum: quorum 4 cannot be met by 3 approvers",
            "policy.approvers.cy: `ghost` names no agent in [agents]",
            "policy.rules[2]: can never apply: rule 1 already decides every `http` change",
            "policy.rules[3]: `telepathy` is not an effect",
        ] {
            assert!(report.contains(expected), "{expected}\n{report}");
        }
        let fine = format!("[world]\nname = \"w\"\n[policy]\napprovers = {{ ada = \"{key}\" }}\n");
        let policy = Manifest::parse_toml(&fine, "w").unwrap().policy.unwrap();
        assert_eq!((policy.quorum, policy.require_clean_shadow), (1, false));
    }

    #[test]
    fn effect_capabilities_are_checked_against_the_world() {
        let text = r#"
            [world]
            name = "w"
            [modules.m]
            component = "m.wasm"
            [providers.local]
            api = "openai-chat"
            base_url = "localhost:8080"
            api_key_env = "A"
            api_key_file = "b"
            [caps.model]
            effect = "llm"
            providers = ["local", "cloud"]
            models = []
            [caps.tell]
            effect = "emit"
            targets = ["ghost"]
            [caps.build]
            effect = "compile"
            languages = ["cobol"]
            [caps.web]
            effect = "http"
            urls = ["https://x/**"]
            budget = { window_ms = 0 }
            [caps.everything]
            effect = "fs"
            dir = "./"
            [caps.journal]
            effect = "fs"
            dir = "data/../.agentos"
            [agents.a]
            module = "m"
            grants = ["model", "tell", "build", "web", "everything", "journal"]
        "#;
        let Err(AirError::Invalid(error)) = Manifest::parse_toml(text, "world.toml") else {
            panic!("expected a validation error");
        };
        let report = error.to_string();
        for expected in [
            "providers.local.base_url: `localhost:8080` is not an http(s) URL",
            "providers.local: give api_key_env or api_key_file, not both",
            "caps.model.providers: `cloud` names no provider in [providers]",
            "caps.model.models: no model listed",
            "caps.tell.targets: `ghost` names no agent in [agents]",
            "caps.build.languages: `cobol` is not rust or wat",
            "caps.web.budget: a budget needs calls, bytes or tokens",
            "caps.web.budget.window_ms: a zero window counts nothing",
            "caps.everything.dir: `./` is or holds the world's private directory .agentos",
            "caps.journal.dir: `data/../.agentos` is or holds",
        ] {
            assert!(report.contains(expected), "missing `{expected}` in:\n{report}");
        }
    }

    #[test]
    fn mcp_servers_and_grants_are_checked() {
        let text = r#"
            [world]
            name = "w"
            [modules.m]
            component = "m.wasm"
            [mcp.files]
            command = "mcp-files"
            env = { "BAD NAME" = "x", TOKEN = { env = "MY_TOKEN" } }
            [mcp.both]
            command = "x"
            url = "http://127.0.0.1:1/mcp"
            [mcp.web]
            url = "ftp://example.org"
            headers = { Authorization = { env = "TOKEN", prefix = "Bearer " } }
            timeout_ms = 0
            [caps.tools]
            effect = "mcp"
            tools = ["files/read_*", "nowhere/*", "bare"]
            [agents.a]
            module = "m"
            grants = ["tools"]
        "#;
        let error = Manifest::parse_toml(text, "w.toml").unwrap_err().to_string();
        for expected in [
            "w.toml:8:13: mcp.files.env: `BAD NAME` cannot name an environment variable",
            "mcp.both: give `command` (a server the host starts, over stdio) or `url` (streamable HTTP), not both",
            "mcp.web.url: `ftp://example.org` is not an http(s) URL",
            "mcp.web.timeout_ms: a zero timeout lets no call finish",
            "caps.tools.tools: `nowhere/*` names no server in [mcp]",
            "caps.tools.tools: `bare` is not `server/tool`",
        ] {
            assert!(error.contains(expected), "missing {expected:?} in:\n{error}");
        }
        // Secrets are read by the host, and round-trip in both forms.
        let ok = Manifest::parse_toml(
            r#"
            [world]
            name = "w"
            [mcp.web]
            url = "https://example.org/mcp"
            headers = { Authorization = { env = "TOKEN", prefix = "Bearer " }, X-Plain = "yes" }
            "#,
            "w.toml",
        )
        .unwrap();
        let back = Manifest::from_canonical_bytes(&ok.canonical_bytes(), "canonical").unwrap();
        assert_eq!(back, ok);
        assert_eq!(Manifest::parse_json(&ok.to_json(), "json").unwrap(), ok);
    }
}
