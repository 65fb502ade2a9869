//! `agentos-host serve`: worlds held open in one process and reached over HTTP. Each world runs
//! on its own stepper thread (`agentos_runtime::service`), firing its timers and schedules
//! when due and taking events from the API; handlers read journals, stream entries as they become
//! durable and hand events to the stepper. SIGTERM or SIGINT stops taking requests, ends live
//! streams, lets every world finish the steps in flight and commit, and exits; kill -9 is as safe
//! as for `run`. While a world is served, `<world>/.agentos/served.json` names the server, so a
//! local command that finds the world locked can say where to send it instead.

mod api;
mod auth;
mod console;
mod entries;
mod error;
mod events;
mod extract;
mod governance;
mod plans;
mod proofs;
mod shadow;
mod state;
pub mod tokens;
mod worlds;

use agentos_runtime::service::WorldService;
use agentos_runtime::world::{OpenMode, World, WorldPaths};
use anyhow::{Context as _, Result, bail};
use state::{AppState, Hosted, Shared};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long open connections (live streams) get to close once the server stops.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// World directories, or directories whose subdirectories are worlds (each with a
    /// `world.toml`). A world's name on the server is its directory's name.
    #[arg(required = true, value_name = "DIR")]
    pub worlds: Vec<PathBuf>,
    /// Address to listen on. Anything but a loopback address needs --tokens.
    #[arg(long, default_value = "127.0.0.1:8470", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Token file (`agentos-host token new`): every request then needs a bearer token whose
    /// scopes cover it.
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Most steps of different agents that run at once in each world.
    #[arg(long, value_name = "N", default_value_t = agentos_runtime::kernel::STEPS_IN_FLIGHT_DEFAULT,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub steps_in_flight: usize,
    /// Print the listening line as JSON (`{"listening": URL, "worlds": [...]}`).
    #[arg(long)]
    pub json: bool,
}

/// Where a served world's marker file is.
pub fn marker_path(root: &Path) -> PathBuf {
    WorldPaths::new(root).state().join("served.json")
}

/// The URL of the server holding the world at `root`, if its marker says one does.
pub fn served_by(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(marker_path(root)).ok()?;
    let marker: serde_json::Value = serde_json::from_str(&text).ok()?;
    marker.get("url")?.as_str().map(str::to_string)
}

/// The worlds named by `paths`, by name.
fn discover(paths: &[PathBuf]) -> Result<BTreeMap<String, PathBuf>> {
    let mut worlds = BTreeMap::new();
    let mut add = |root: PathBuf| -> Result<()> {
        let name = root
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", root.display()))?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || !name.chars().all(allowed) {
            bail!(
                "world {}: its directory name `{name}` cannot name it on the server (use letters, digits, `-`, `_`, `.`)",
                root.display()
            );
        }
        if let Some(other) = worlds.insert(name.clone(), root.clone()) {
            bail!(
                "two worlds are named `{name}`: {} and {}",
                other.display(),
                root.display()
            );
        }
        Ok(())
    };
    for path in paths {
        if WorldPaths::new(path).manifest().is_file() {
            add(path.clone())?;
            continue;
        }
        let listing = std::fs::read_dir(path).with_context(|| {
            format!(
                "{} is neither a world (no world.toml) nor a readable directory",
                path.display()
            )
        })?;
        let mut found: Vec<PathBuf> = listing
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|dir| WorldPaths::new(dir).manifest().is_file())
            .collect();
        if found.is_empty() {
            bail!(
                "{} holds no world: no world.toml in it or in its subdirectories",
                path.display()
            );
        }
        found.sort();
        for dir in found {
            add(dir)?;
        }
    }
    Ok(worlds)
}

/// Run the server until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> Result<()> {
    let tokens = match &args.tokens {
        Some(path) => {
            let tokens = tokens::Tokens::load(path)?;
            if tokens.is_empty() {
                bail!(
                    "token file {} holds no tokens; make one with `agentos-host token new {} --name NAME --scope read`",
                    path.display(),
                    path.display()
                );
            }
            Some(Arc::new(tokens))
        }
        None => None,
    };
    if tokens.is_none() && !args.listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {} without --tokens: anyone who reaches it could send events and read every world \
             (listen on 127.0.0.1, or give a token file)",
            args.listen
        );
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let worlds = discover(&args.worlds)?;
    let listener =
        std::net::TcpListener::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{address}");

    let mut held = Held::default();
    let opening = worlds
        .iter()
        .try_for_each(|(name, root)| held.open(name, root, &url, args.steps_in_flight));
    let served = opening.and_then(|()| {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let app = api::router(held.state(stopping), tokens);
        if args.json {
            outln!(
                "{}",
                serde_json::json!({ "listening": url, "worlds": worlds.keys().collect::<Vec<_>>() })
            )?;
        } else {
            outln!(
                "serving {} world(s) at {url}: {} — console at /, API under /v1 (OpenAPI at /v1/openapi.json); Ctrl-C stops",
                worlds.len(),
                worlds.keys().cloned().collect::<Vec<_>>().join(", ")
            )?;
        }
        std::io::Write::flush(&mut std::io::stdout())?;
        let runtime = runtime()?;
        let served = runtime.block_on(serve_until_signalled(listener, app, &args, stop));
        // Requests still waiting for a step are not waited for: their events are journaled,
        // and the worlds stop next.
        runtime.shutdown_background();
        served
    });
    // Every world opened so far finishes its steps in flight and commits, however serving ended.
    let stopped = held.stop();
    served?;
    for (name, entries) in stopped {
        eprintln!("stopped world `{name}`: {entries} entries, all committed");
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("agentos-serve")
        .build()
        .context("cannot start the server's runtime")
}

/// The worlds a server holds: each one's handle for the handlers, and its service.
#[derive(Default)]
struct Held {
    hosted: BTreeMap<String, Arc<Hosted>>,
    services: Vec<(String, PathBuf, WorldService)>,
}

impl Held {
    /// Open the world at `root` as `name` and start its service.
    fn open(&mut self, name: &str, root: &Path, url: &str, steps_in_flight: usize) -> Result<()> {
        let mut world = World::open(root, OpenMode::Run).with_context(|| format!("world `{name}`"))?;
        for notice in &world.notices {
            eprintln!("note: world `{name}`: {notice}");
        }
        world.kernel.set_steps_in_flight(steps_in_flight);
        let (world_id, genesis_key) = (world.genesis.world_id, world.genesis.host_public_key);
        let service = WorldService::start(world).with_context(|| format!("world `{name}`"))?;
        write_marker(root, url)?;
        self.hosted.insert(
            name.to_string(),
            Arc::new(Hosted {
                name: name.to_string(),
                root: root.to_path_buf(),
                world_id,
                genesis_key,
                sender: service.sender(),
                journal: service.journal(),
                committed: service.committed(),
                shadow_runs: Arc::new(tokio::sync::Semaphore::new(1)),
                ledger: Default::default(),
                proof_log: Default::default(),
            }),
        );
        self.services.push((name.to_string(), root.to_path_buf(), service));
        Ok(())
    }

    fn state(&self, stopping: tokio::sync::watch::Receiver<bool>) -> AppState {
        AppState(Arc::new(Shared {
            worlds: self.hosted.clone(),
            stopping,
            live_streams: Arc::new(tokio::sync::Semaphore::new(state::LIVE_STREAMS_MAX)),
            shadow_runs: Arc::new(tokio::sync::Semaphore::new(shadow::SHADOW_RUNS_MAX)),
            bundles: Arc::new(tokio::sync::Semaphore::new(proofs::BUNDLES_MAX)),
        }))
    }

    /// Let every world finish its steps in flight and commit; returns each world's entries.
    fn stop(self) -> Vec<(String, u64)> {
        let mut stopped = Vec::new();
        for (name, root, service) in self.services {
            let result = service.stop();
            let _ = std::fs::remove_file(marker_path(&root));
            match result {
                Ok(world) => stopped.push((name, world.kernel.journal().len())),
                Err(error) => eprintln!("error: world `{name}` did not stop cleanly: {error}"),
            }
        }
        stopped
    }
}

/// A server in this process on a loopback port, without tokens or TLS (for `bench`).
pub struct InProcess {
    pub url: String,
    held: Held,
    handle: axum_server::Handle<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl InProcess {
    pub fn start(worlds: &BTreeMap<String, PathBuf>) -> Result<InProcess> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut held = Held::default();
        for (name, root) in worlds {
            held.open(name, root, &url, agentos_runtime::kernel::STEPS_IN_FLIGHT_DEFAULT)?;
        }
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let app = api::router(held.state(stopping), None);
        let handle = axum_server::Handle::new();
        let serving = handle.clone();
        let thread = std::thread::spawn(move || {
            runtime()?.block_on(async move {
                axum_server::from_tcp(listener)?
                    .handle(serving)
                    .serve(app.into_make_service())
                    .await
            })?;
            Ok(())
        });
        Ok(InProcess {
            url,
            held,
            handle,
            stop,
            thread,
        })
    }

    /// A sender straight to the world `name`'s service, bypassing HTTP.
    pub fn sender(&self, name: &str) -> Option<agentos_runtime::service::Sender> {
        self.held.hosted.get(name).map(|world| world.sender.clone())
    }

    pub fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.handle.graceful_shutdown(Some(GRACE));
        self.thread.join().expect("the server's thread")?;
        self.held.stop();
        Ok(())
    }
}

async fn serve_until_signalled(
    listener: std::net::TcpListener,
    app: axum::Router,
    args: &ServeArgs,
    stop: tokio::sync::watch::Sender<bool>,
) -> Result<()> {
    let handle = axum_server::Handle::new();
    let signalled = {
        let handle = handle.clone();
        async move {
            shutdown_signal().await;
            eprintln!("stopping: finishing requests and the steps in flight");
            let _ = stop.send(true);
            handle.graceful_shutdown(Some(GRACE));
        }
    };
    tokio::spawn(signalled);
    let service = app.into_make_service();
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("TLS certificate {} or key {}", cert.display(), key.display()))?;
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(service)
                .await?;
        }
        _ => {
            axum_server::from_tcp(listener)?.handle(handle).serve(service).await?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

fn write_marker(root: &Path, url: &str) -> Result<()> {
    let marker = serde_json::json!({ "url": url, "pid": std::process::id() });
    let path = marker_path(root);
    std::fs::write(&path, marker.to_string()).with_context(|| format!("cannot write {}", path.display()))
}
