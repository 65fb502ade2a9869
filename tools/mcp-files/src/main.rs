//! `mcp-files`: an MCP server over the files of one directory, with arithmetic — what the
//! `tools` demo world gives its assistant, and what the tests reach over stdio and streamable
//! HTTP.
//!
//! ```text
//! mcp-files --root DIR                       # stdio (a host starts it)
//! mcp-files --root DIR --http 127.0.0.1:0    # streamable HTTP at /mcp; prints `listening <url>`
//!           [--token T]                      # ... and wants `Authorization: Bearer T`
//!           [--hostile]                      # also offers tools that misbehave (for tests)
//!           [--endless-listing]              # pages its tool list without end (for tests)
//! ```
//!
//! Paths are relative to the root; one that leaves it (`..`, an absolute path, a link out) is
//! refused. `read_file`, `list_files`, `add` and `multiply` are declared read-only;
//! `append_line` writes and is not.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _, tool, tool_handler, tool_router};
use std::path::{Path, PathBuf};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct PathArgs {
    /// A path relative to the served directory.
    path: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Numbers {
    /// The numbers.
    numbers: Vec<f64>,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AppendArgs {
    /// A path relative to the served directory.
    path: String,
    /// The line to append.
    text: String,
    /// Wait this long first, with `<path>.pending` written (hostile mode only).
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct HugeArgs {
    /// Bytes of text to answer with.
    bytes: usize,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct FloodArgs {
    /// How long to flood stderr before answering, in milliseconds.
    ms: u64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct ChatterArgs {
    /// Lines to write to stderr, every other one blank.
    lines: u32,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct Nothing {}

#[derive(Clone)]
struct Files {
    root: PathBuf,
    hostile: bool,
    endless_listing: bool,
    tool_router: ToolRouter<Files>,
}

fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl Files {
    /// `path` inside the root, or why not.
    fn inside(&self, path: &str) -> Result<PathBuf, String> {
        let relative = Path::new(path);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!("`{path}` is not a path inside the served directory"));
        }
        let full = self.root.join(relative);
        // A link that leads out of the root is refused too: the path's own, or its directory's
        // for a file yet to be created.
        let real = full
            .canonicalize()
            .or_else(|_| full.parent().map_or(Ok(self.root.clone()), Path::canonicalize));
        match real {
            Ok(real) if real.starts_with(&self.root) => Ok(full),
            Ok(_) => Err(format!("`{path}` leads out of the served directory")),
            Err(e) => Err(format!("`{path}`: {e}")),
        }
    }

    fn hostile_only(&self) -> Result<(), String> {
        if self.hostile {
            Ok(())
        } else {
            Err("this tool is offered with --hostile only".into())
        }
    }
}

#[tool_router]
impl Files {
    /// Read a text file of the served directory.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true))]
    fn read_file(&self, Parameters(PathArgs { path }): Parameters<PathArgs>) -> Result<String, String> {
        std::fs::read_to_string(self.inside(&path)?).map_err(|e| format!("cannot read `{path}`: {e}"))
    }

    /// List the files of the served directory.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true))]
    fn list_files(&self, Parameters(Nothing {}): Parameters<Nothing>) -> Result<String, String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .map_err(|e| format!("cannot list the served directory: {e}"))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names.join("\n"))
    }

    /// Add numbers.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true))]
    fn add(&self, Parameters(Numbers { numbers }): Parameters<Numbers>) -> String {
        number_text(numbers.iter().sum())
    }

    /// Multiply numbers.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true))]
    fn multiply(&self, Parameters(Numbers { numbers }): Parameters<Numbers>) -> String {
        number_text(numbers.iter().product())
    }

    /// Append a line to a file of the served directory (created if missing).
    #[tool(annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false))]
    async fn append_line(&self, Parameters(args): Parameters<AppendArgs>) -> Result<String, String> {
        use std::io::Write as _;
        let path = self.inside(&args.path)?;
        if args.delay_ms > 0 {
            // `<path>.pending` says the call arrived and waits.
            self.hostile_only()?;
            let _ = std::fs::write(path.with_extension("pending"), b"");
            tokio::time::sleep(std::time::Duration::from_millis(args.delay_ms)).await;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open `{}`: {e}", args.path))?;
        writeln!(file, "{}", args.text).map_err(|e| format!("cannot write `{}`: {e}", args.path))?;
        eprintln!("mcp-files: appended a line to {}", args.path);
        Ok(format!("appended to {}", args.path))
    }

    /// Never answer (hostile mode).
    #[tool]
    async fn hang(&self, Parameters(Nothing {}): Parameters<Nothing>) -> Result<String, String> {
        self.hostile_only()?;
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        Ok(String::new())
    }

    /// Answer with this many bytes of text (hostile mode).
    #[tool]
    fn huge(&self, Parameters(HugeArgs { bytes }): Parameters<HugeArgs>) -> Result<String, String> {
        self.hostile_only()?;
        Ok("x".repeat(bytes.min(256 * 1024 * 1024)))
    }

    /// Write many lines to stderr, then answer (hostile mode).
    #[tool]
    fn chatter(&self, Parameters(ChatterArgs { lines }): Parameters<ChatterArgs>) -> Result<String, String> {
        self.hostile_only()?;
        for line in 0..lines.min(100_000) {
            match line % 2 {
                0 => eprintln!(),
                _ => eprintln!("chatter {line}"),
            }
        }
        Ok(format!("wrote {lines} lines"))
    }

    /// Write to stderr without pause from now on, and answer after `ms` (hostile mode).
    #[tool]
    async fn flood(&self, Parameters(FloodArgs { ms }): Parameters<FloodArgs>) -> Result<String, String> {
        self.hostile_only()?;
        std::thread::spawn(|| {
            use std::io::Write as _;
            let chunk = "flood ".repeat(10_000) + "\n";
            while std::io::stderr().write_all(chunk.as_bytes()).is_ok() {}
        });
        tokio::time::sleep(std::time::Duration::from_millis(ms.min(60_000))).await;
        Ok("flooded".into())
    }

    /// Exit the server mid-call (hostile mode).
    #[tool]
    fn crash(&self, Parameters(Nothing {}): Parameters<Nothing>) -> Result<String, String> {
        self.hostile_only()?;
        // A careless server logs its secrets.
        eprintln!(
            "mcp-files: crashing as asked (TOKEN={})",
            std::env::var("TOKEN").unwrap_or_default()
        );
        std::process::exit(3)
    }

    /// The names of the server's environment variables (hostile mode: what a server could
    /// learn of its host).
    #[tool]
    fn environment(&self, Parameters(Nothing {}): Parameters<Nothing>) -> Result<String, String> {
        self.hostile_only()?;
        let mut names: Vec<String> = std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names.join(","))
    }

    /// Write a line that is not JSON-RPC where the answer should be, and never answer
    /// (hostile mode).
    #[tool]
    async fn garble(&self, Parameters(Nothing {}): Parameters<Nothing>) -> Result<String, String> {
        self.hostile_only()?;
        use std::io::Write as _;
        let mut out = std::io::stdout();
        let _ = out.write_all(b"{this is not json-rpc\n");
        let _ = out.flush();
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        Ok(String::new())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Files {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut listing = ListToolsResult::with_all_items(self.tool_router.list_all());
        if self.endless_listing {
            // Every page lists the tools again and points at one more page.
            let page: u64 = request
                .and_then(|request| request.cursor)
                .and_then(|cursor| cursor.parse().ok())
                .unwrap_or(0);
            listing.next_cursor = Some((page + 1).to_string());
        }
        Ok(listing)
    }
}

struct Args {
    root: PathBuf,
    http: Option<String>,
    token: Option<String>,
    hostile: bool,
    endless_listing: bool,
}

fn args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut root, mut http, mut token, mut hostile, mut endless_listing) = (None, None, None, false, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = args.next(),
            "--http" => http = args.next(),
            "--token" => token = args.next(),
            "--hostile" => hostile = true,
            "--endless-listing" => endless_listing = true,
            "--help" | "-h" => {
                return Err(
                    "usage: mcp-files --root DIR [--http ADDR [--token T]] [--hostile] [--endless-listing]".into(),
                );
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    let root = root.ok_or("give --root DIR: the directory whose files are served")?;
    let root = Path::new(&root)
        .canonicalize()
        .map_err(|e| format!("--root {root}: {e}"))?;
    Ok(Args {
        root,
        http,
        token,
        hostile,
        endless_listing,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("mcp-files: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let files = Files {
        root: args.root,
        hostile: args.hostile,
        endless_listing: args.endless_listing,
        tool_router: Files::tool_router(),
    };
    let served = match args.http {
        None => serve_stdio(files).await,
        Some(address) => serve_http(files, &address, args.token).await,
    };
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mcp-files: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve_stdio(files: Files) -> Result<(), String> {
    let running = files
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("cannot start over stdio: {e}"))?;
    running.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}

async fn serve_http(files: Files, address: &str, token: Option<String>) -> Result<(), String> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    let service: StreamableHttpService<Files, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(files.clone()),
        Default::default(),
        StreamableHttpServerConfig::default(),
    );
    let expected = token.map(|token| format!("Bearer {token}"));
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let expected = expected.clone();
                async move {
                    let given = request
                        .headers()
                        .get("authorization")
                        .and_then(|value| value.to_str().ok());
                    match expected {
                        Some(expected) if given != Some(expected.as_str()) => {
                            axum::response::IntoResponse::into_response(axum::http::StatusCode::UNAUTHORIZED)
                        }
                        _ => next.run(request).await,
                    }
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening http://{bound}/mcp");
    axum::serve(listener, router).await.map_err(|e| e.to_string())
}
