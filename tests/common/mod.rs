//! Helpers shared by the end-to-end tests: drive the real `agentos-host` binary on real world
//! directories, and finish every test with replay + verify.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// The binary, with its cache (compiled components, build directories) and state (its record
/// of what it signed) under the workspace's `target/`, not the user's home: tests make hundreds
/// of worlds.
pub fn host() -> Command {
    Command::from_std(host_process())
}

/// [`host`] as a plain process, for tests that drive it while it runs.
pub fn host_process() -> std::process::Command {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("agentos-host"));
    command.env("XDG_CACHE_HOME", test_cache());
    command.env("XDG_STATE_HOME", repo().join("target/test-state"));
    command
}

/// The binary running `args` in the background with its output discarded (to be killed).
pub fn spawn_quiet(args: &[&str]) -> std::process::Child {
    host_process()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Where the binary run by tests keeps its cache.
pub fn test_cache() -> PathBuf {
    repo().join("target/test-cache")
}

/// Run the binary, expect success, return stdout.
pub fn ok(args: &[&str]) -> String {
    ok_with(host(), args)
}

/// Run `command` (the binary, with extra environment say), expect success, return stdout.
pub fn ok_with(mut command: Command, args: &[&str]) -> String {
    let output = command.args(args).output().expect("run agentos-host");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "agentos-host {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// Run the binary, expect failure with `code`, return stderr.
pub fn fails(args: &[&str], code: i32) -> String {
    let output = host().args(args).output().expect("run agentos-host");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "agentos-host {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

/// `verify` of the world at `dir` fails (exit 1) saying `expected`; returns what it said.
pub fn verify_fails_with(dir: &Path, expected: &str) -> String {
    let error = fails(&["verify", s(dir)], 1);
    assert!(error.contains(expected), "verify should say {expected:?}: {error}");
    error
}

/// The first entry number (`#N`) printed in `out`, e.g. a proposal's.
pub fn number(out: &str) -> String {
    let start = out.find('#').expect("an entry number") + 1;
    out[start..].chars().take_while(char::is_ascii_digit).collect()
}

pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A new world from a template, in its own temporary directory.
pub fn init(template: &str) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    ok(&["init", s(&dir), "--template", template]);
    (scratch, dir)
}

/// Append `lines` to a world's `world.toml` before its first run (they land in its last
/// section, an agent's in every template).
pub fn append_to_manifest(dir: &Path, lines: &str) {
    let manifest = dir.join("world.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text + lines).unwrap();
}

/// A world directory with the given component copied in and `world.toml` text.
pub fn custom_world(component: &str, manifest: &str) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    let built = agentos_effects::components::ensure_built(component).expect("component builds");
    std::fs::copy(built, dir.join("modules").join(format!("{component}.wasm"))).unwrap();
    std::fs::write(dir.join("world.toml"), manifest).unwrap();
    (scratch, dir)
}

/// A world of `agents`, each a `hello` granted the `data` directory and GET and POST to
/// 127.0.0.1, with `extra` in each agent's table.
pub fn hello_agents(agents: &[&str], extra: &str) -> (tempfile::TempDir, PathBuf) {
    let mut manifest = String::from(
        r#"
        [world]
        name = "hello-agents"
        [modules.hello]
        component = "modules/hello.wasm"
        [caps.data]
        effect = "fs"
        dir = "data"
        [caps.api]
        effect = "http"
        urls = ["http://127.0.0.1:*/**"]
        methods = ["GET", "POST"]
        timeout_ms = 20000
    "#,
    );
    for agent in agents {
        manifest.push_str(&format!(
            "[agents.{agent}]\nmodule = \"hello\"\ngrants = [\"data\", \"api\"]\n{extra}\n"
        ));
    }
    custom_world("hello", &manifest)
}

/// The oracle every end-to-end test ends with.
pub fn replay_and_verify(dir: &Path) {
    let replay = ok(&["replay", s(dir)]);
    assert!(replay.starts_with("replay OK"), "{replay}");
    let verify = ok(&["verify", s(dir)]);
    assert!(verify.starts_with("verify OK"), "{verify}");
}

/// Remove the build directory world `dir`'s `compile` effects filled in the test cache
/// (shared by that world's builds alone, and some hundred megabytes).
pub fn forget_builds(dir: &Path) {
    let verified: serde_json::Value = serde_json::from_str(&ok(&["verify", s(dir), "--json"])).unwrap();
    let world_id = verified["world_id"].as_str().expect("verify names the world");
    let _ = std::fs::remove_dir_all(test_cache().join("agentos/compile").join(world_id));
}

/// The journal as JSON lines.
pub fn log_json(dir: &Path) -> Vec<serde_json::Value> {
    ok(&["log", s(dir), "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn count_kind(log: &[serde_json::Value], kind: &str) -> usize {
    log.iter().filter(|e| e["kind"] == kind).count()
}

/// Build a variant of example component `component` whose `src/lib.rs` is `edit`ed, as crate
/// `name` (plain `cargo build --target wasm32-wasip2`, outside the workspace); returns the
/// component's path.
pub fn build_variant(component: &str, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let repo = repo();
    let crate_dir = repo.join("target/variants").join(name);
    let source = std::fs::read_to_string(repo.join("components").join(component).join("src/lib.rs")).unwrap();
    let edited = edit(source.clone());
    assert_ne!(edited, source, "the variant must differ from {component}");
    // The component's own dependencies besides the workspace's (the SDK and serde).
    let manifest = std::fs::read_to_string(repo.join("components").join(component).join("Cargo.toml")).unwrap();
    let own: String = manifest
        .split("[dependencies]\n")
        .nth(1)
        .unwrap_or("")
        .lines()
        .take_while(|line| !line.starts_with('['))
        .filter(|line| !line.trim().is_empty() && !line.contains("workspace = true"))
        .map(|line| format!("{line}\n"))
        .collect();
    guest_crate(&crate_dir, name, &edited, &own);
    let world = std::fs::read_to_string(repo.join("components").join(component).join("wit/world.wit")).unwrap();
    write_if_changed(&crate_dir.join("wit/world.wit"), &world);
    build_guest_crate(&crate_dir, &repo.join("target/variants/target"), name)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A guest crate `name` in `crate_dir` with `lib_source` as `src/lib.rs`, depending on the
/// checkout's guest SDK, serde and `extra_dependencies` (Cargo.toml lines), with `agentos:core`
/// under `wit/deps` (its own world is the caller's).
pub fn guest_crate(crate_dir: &Path, name: &str, lib_source: &str, extra_dependencies: &str) {
    let repo = repo();
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    std::fs::create_dir_all(crate_dir.join("wit/deps/agentos-core")).unwrap();
    write_if_changed(&crate_dir.join("src/lib.rs"), lib_source);
    write_if_changed(
        &crate_dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nagentos-sdk = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n{extra_dependencies}\n\
             [profile.release]\nopt-level = \"s\"\nstrip = \"debuginfo\"\n\n[workspace]\n",
            repo.join("guest-sdk").display().to_string()
        ),
    );
    write_if_changed(
        &crate_dir.join("Cargo.lock"),
        &std::fs::read_to_string(repo.join("Cargo.lock")).unwrap(),
    );
    write_if_changed(
        &crate_dir.join("wit/deps/agentos-core/agentos.wit"),
        &std::fs::read_to_string(repo.join("wit/agentos.wit")).unwrap(),
    );
}

/// `cargo build --release --target wasm32-wasip2` of a guest crate into `target`; returns the
/// component's path.
pub fn build_guest_crate(crate_dir: &Path, target: &Path, name: &str) -> PathBuf {
    agentos_effects::components::ensure_guest_target(crate_dir).expect("the wasm32-wasip2 target is installed");
    let status = agentos_effects::components::guest_build(crate_dir, target)
        .args(["--offline", "--quiet"])
        .status()
        .unwrap();
    assert!(status.success(), "building {} failed", crate_dir.display());
    target.join("wasm32-wasip2/release").join(format!("{name}.wasm"))
}

/// Write `text` unless the file already holds it (keeps cargo's freshness checks cheap).
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

const JOURNAL_TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("journal");
const META_TABLE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

/// Every entry of a world's journal, read straight from the redb file.
pub fn read_entries(dir: &Path) -> Vec<agentos_journal::entry::Entry> {
    use redb::{ReadableDatabase as _, ReadableTable as _};
    let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(JOURNAL_TABLE).unwrap();
    table
        .iter()
        .unwrap()
        .map(|row| agentos_journal::entry::Entry::decode(row.unwrap().1.value()).unwrap())
        .collect()
}

/// Replace the journal with `entries`, renumbered, re-chained and with the head re-pointed: all
/// that someone holding the file but not the host key can do.
pub fn forge_journal(dir: &Path, entries: Vec<agentos_journal::entry::Entry>) {
    write_forged(dir, entries, None);
}

/// Replace the journal with `entries` as someone holding `key` would: renumbered, re-chained,
/// the head re-pointed, and every checkpoint recomputed over the rewritten entries and signed
/// with `key` (the world's own key, stolen; or the forger's, after [`rekey`]).
pub fn forge_journal_with_key(
    dir: &Path,
    entries: Vec<agentos_journal::entry::Entry>,
    key: &agentos_journal::receipts::HostKey,
) {
    write_forged(dir, entries, Some(key));
}

/// Make `entries` a world of `key`'s: genesis names it, and every receipt and host-signed
/// proposal or verdict is re-signed by it (then [`forge_journal_with_key`] re-signs the
/// checkpoints). What a forger does to pass off a rewritten world as self-consistent.
pub fn rekey(entries: &mut [agentos_journal::entry::Entry], key: &agentos_journal::receipts::HostKey) {
    use agentos_journal::entry::EntryBody;
    let old = match &entries[0].body {
        EntryBody::Genesis(genesis) => genesis.host_public_key,
        _ => panic!("entry #0 is not genesis"),
    };
    for entry in entries.iter_mut() {
        match &mut entry.body {
            EntryBody::Genesis(genesis) => genesis.host_public_key = key.public().to_bytes(),
            EntryBody::EffectReceipt(r) => {
                r.receipt.body.key_id = key.key_id();
                r.receipt = key.sign(r.receipt.body.clone());
            }
            EntryBody::Proposal(p) if p.signer == old => {
                p.signer = key.public().to_bytes();
                p.signature = key.signature(&p.body.signing_bytes());
            }
            EntryBody::Verdict(v) if v.public_key == old => {
                v.public_key = key.public().to_bytes();
                v.signature = key.signature(&v.body.signing_bytes());
            }
            EntryBody::KeyRotation(_) => panic!("rekey handles worlds without rotations"),
            _ => {}
        }
    }
}

fn write_forged(
    dir: &Path,
    mut entries: Vec<agentos_journal::entry::Entry>,
    key: Option<&agentos_journal::receipts::HostKey>,
) {
    use agentos_journal::entry::{EntryBody, entry_hash};
    use agentos_journal::transparency::{Frontier, JournalState, SignedCheckpoint, receipt_leaf};
    let world_id = match &entries[0].body {
        EntryBody::Genesis(genesis) => genesis.world_id,
        _ => [0; 16],
    };
    let db = redb::Database::create(dir.join(".agentos/journal.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(JOURNAL_TABLE).unwrap();
        table.retain(|_, _| false).unwrap();
        let mut prev_hash = [0u8; 32];
        let (mut entry_log, mut receipt_log) = (Frontier::default(), Frontier::default());
        let (mut genesis, mut configuration) = ([0u8; 32], None);
        for (seq, entry) in entries.iter_mut().enumerate() {
            entry.seq = seq as u64;
            entry.prev_hash = prev_hash;
            match (key, &mut entry.body) {
                (Some(key), EntryBody::Checkpoint(checkpoint)) => {
                    let (configuration, configuration_hash) = configuration.unwrap_or((0, genesis));
                    let state = JournalState {
                        entries: &entry_log,
                        receipts: &receipt_log,
                        genesis,
                        configuration,
                        configuration_hash,
                    };
                    *checkpoint = SignedCheckpoint::sign(key, world_id, state);
                }
                (_, EntryBody::EffectReceipt(r)) => receipt_log.push(&receipt_leaf(&r.receipt)),
                _ => {}
            }
            let bytes = entry.encode();
            prev_hash = entry_hash(&bytes);
            if matches!(entry.body, EntryBody::ManifestApplied(_)) {
                configuration = Some((seq as u64, prev_hash));
            }
            if seq == 0 {
                genesis = prev_hash;
            }
            entry_log.push(&prev_hash);
            table.insert(seq as u64, bytes.as_slice()).unwrap();
        }
        let mut head = (entries.len() as u64 - 1).to_le_bytes().to_vec();
        head.extend_from_slice(&prev_hash);
        let mut meta = txn.open_table(META_TABLE).unwrap();
        meta.insert("head", head.as_slice()).unwrap();
        // What a writer checks the journal through: the manifest changes (a cache of theirs).
        let changes: Vec<u64> = entries
            .iter()
            .filter(|e| matches!(e.body, EntryBody::ManifestApplied(_)))
            .map(|e| e.seq)
            .collect();
        meta.insert("manifest_changes", postcard::to_allocvec(&changes).unwrap().as_slice())
            .unwrap();
    }
    txn.commit().unwrap();
}

/// Requests a [`serve`]d test server received, per path.
pub type Hits = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>;

/// The total of [`Hits`] over every path.
pub fn total(hits: &Hits) -> u32 {
    hits.lock().unwrap().values().sum()
}

/// A real HTTP server on 127.0.0.1, on an ephemeral port: `answer` gets each request with the
/// number of requests its path has had (this one included) and responds to it (on another
/// thread if it wants to take its time). Returns the base URL and the requests counted per
/// path. It stops after 60 s without a request.
pub fn serve(answer: impl Fn(tiny_http::Request, u32) + Send + 'static) -> (String, Hits) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", server.server_addr().to_ip().unwrap().port());
    let hits = Hits::default();
    let seen = hits.clone();
    std::thread::spawn(move || {
        while let Ok(Some(request)) = server.recv_timeout(std::time::Duration::from_secs(60)) {
            let count = {
                let mut seen = seen.lock().unwrap();
                let count = seen.entry(request.url().to_string()).or_insert(0);
                *count += 1;
                *count
            };
            answer(request, count);
        }
    });
    (base, hits)
}

/// [`serve`], answering every request with `body`.
pub fn serve_text(body: &'static str) -> (String, Hits) {
    serve(move |request, _| {
        let _ = request.respond(tiny_http::Response::from_string(body));
    })
}

/// The repository's MCP server (`tools/mcp-files`), built if it is missing or stale.
pub fn mcp_files() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            agentos_effects::components::ensure_tool_built("mcp-files")
                .expect("mcp-files builds")
                .canonicalize()
                .unwrap()
        })
        .clone()
}
