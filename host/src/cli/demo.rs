//! `agentos-host demo`: three small worlds run end to end — init, events, effects with receipts,
//! timers, a governed self-upgrade, replay, verify — with no network: the pipeline's language
//! model is a local stand-in on 127.0.0.1 that speaks the OpenAI chat-completions protocol and
//! answers with the first sentence of the text it is given.

use super::init;
use super::print_entries_from;
use crate::world::{EventInput, OpenMode, ReplayFrom, World, WorldPaths, open_existing_journal};
use anyhow::{Result, bail};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("agentos-demo-{}", std::process::id())),
    };
    basics(&dir.join("basics"))?;
    pipeline(&dir.join("pipeline"))?;
    self_upgrade(&dir.join("self-upgrade"))?;
    println!(
        "\nexplore them: agentos-host log {0}/pipeline | agentos-host receipts {0}/basics --json | \
         agentos-host history {0}/self-upgrade",
        dir.display()
    );
    Ok(())
}

fn basics(dir: &Path) -> Result<()> {
    println!("== basics: a counter and a hello agent in {}", dir.display());
    init::init(dir, init::Template::Demo)?;
    {
        let mut world = World::open(dir, OpenMode::Run)?;
        let first = world.ingest("counter", EventInput::Wave("increment(5)"), "demo")?;
        world.ingest("counter", EventInput::Wave("increment(37)"), "demo")?;
        world.ingest("hello", EventInput::Wave(r#"greet("ada")"#), "demo")?;
        world.ingest("hello", EventInput::Wave(r#"read-file("data/greeting.txt")"#), "demo")?;
        // Outside the agent's http grant: denied, with a signed receipt, without any network.
        world.ingest("hello", EventInput::Wave(r#"fetch("https://example.com/")"#), "demo")?;
        world.run(|_| {})?;
        print_entries_from(&world, first)?;
    }
    replay_and_verify(dir)
}

const REPORT: &str = "AgentOS journals every input, step and effect of a world. \
    Each effect carries a signed receipt, so an auditor can check it offline. \
    Replay re-executes the world from its journal.";

fn pipeline(dir: &Path) -> Result<()> {
    println!(
        "\n== pipeline: summarizer → llm → blob → notifier, and a reminder timer, in {}",
        dir.display()
    );
    let (base_url, _provider) = local_provider()?;
    std::fs::create_dir_all(dir.join("modules"))?;
    std::fs::create_dir_all(dir.join("docs"))?;
    for component in ["summarizer", "notifier"] {
        std::fs::copy(
            crate::components::ensure_built(component)?,
            dir.join(format!("modules/{component}.wasm")),
        )?;
    }
    std::fs::write(dir.join("docs/report.txt"), REPORT)?;
    let manifest = format!(
        r#"# The demo pipeline. `local` is a stand-in provider the demo runs on 127.0.0.1.
[world]
name = "pipeline"

[modules.summarizer]
component = "modules/summarizer.wasm"
[modules.notifier]
component = "modules/notifier.wasm"

[providers.local]
api = "openai-chat"
base_url = "{base_url}"

[caps.docs]
effect = "fs"
dir = "docs"
[caps.model]
effect = "llm"
providers = ["local"]
models = ["demo-summarizer"]
budget = {{ tokens = 10000 }}
[caps.notes]
effect = "blob"
[caps.tell-archive]
effect = "emit"
targets = ["archive"]
[caps.reminders]
effect = "timer"
max_pending = 10
[caps.reply]
effect = "emit"
targets = ["summarizer"]

[agents.summarizer]
module = "summarizer"
grants = ["docs", "model", "notes", "tell-archive", "reminders"]
config = {{ model = "demo-summarizer", notify = "archive", remind_after_ms = 300 }}

[agents.archive]
module = "notifier"
grants = ["notes", "reply"]
"#
    );
    std::fs::write(dir.join("world.toml"), manifest)?;
    {
        let mut world = World::open(dir, OpenMode::Run)?;
        let first = world.ingest(
            "summarizer",
            EventInput::Wave(r#"summarize("docs/report.txt")"#),
            "demo",
        )?;
        world.run(|_| {})?;
        // Wait for the reminder the summarizer set itself, then let it fire.
        while let Some(due) = world.kernel.next_timer_due_ms() {
            std::thread::sleep(std::time::Duration::from_millis(
                due.saturating_sub(crate::effects::live::now_ms()),
            ));
            world.run(|_| {})?;
        }
        print_entries_from(&world, first)?;
    }
    replay_and_verify(dir)
}

/// Send `event` to the greeter and run the world until idle, printing what it journaled.
fn greeter_step(dir: &Path, event: &str) -> Result<()> {
    let mut world = World::open(dir, OpenMode::Run)?;
    let first = world.ingest("greeter", EventInput::Wave(event), "demo")?;
    world.run(|_| {})?;
    print_entries_from(&world, first)
}

fn self_upgrade(dir: &Path) -> Result<()> {
    use crate::governance::{apply, propose, record, shadow, verdict};
    println!(
        "\n== self-upgrade: an agent rebuilds itself and proposes the upgrade; a person approves, in {}",
        dir.display()
    );
    std::fs::create_dir_all(dir.join("modules"))?;
    std::fs::copy(
        crate::components::ensure_built("greeter")?,
        dir.join("modules/greeter.wasm"),
    )?;
    // The person who approves: a key of their own (kept in the demo directory).
    let ada = crate::receipts::HostKey::load_or_create(&dir.join("ada.key"))?;
    let manifest = format!(
        r#"# The self-upgrade demo: the greeter may build components and propose changes; ada approves.
[world]
name = "self-upgrade"

[modules.greeter]
component = "modules/greeter.wasm"

[caps.toolchain]
effect = "compile"
languages = ["rust"]
time_limit_ms = 600000
[caps.self-governance]
effect = "governance"
may_propose = true

[agents.greeter]
module = "greeter"
grants = ["toolchain", "self-governance"]

[policy]
approvers = {{ ada = "{}" }}
"#,
        hex::encode(ada.public().as_bytes())
    );
    std::fs::write(dir.join("world.toml"), manifest)?;
    greeter_step(dir, r#"greet("ada")"#)?;
    println!(
        "-- asked to greet with \"Howdy\", the agent rewrites its source, builds it (compile effect) and proposes it"
    );
    greeter_step(dir, r#"learn("Howdy")"#)?;
    let ledger = crate::governance::ledger::Ledger::read(&open_existing_journal(&WorldPaths::new(dir))?)?;
    let Some(proposal) = ledger.proposals.keys().next_back().copied() else {
        bail!(
            "the greeter made no proposal; `agentos-host log {}` shows why",
            dir.display()
        );
    };
    println!("-- its proposal #{proposal}, shadow-run on the recorded history:");
    let (_, report) = shadow::shadow(dir, proposal, &shadow::Workload::Window(shadow::DEFAULT_WINDOW))?;
    for step in &report.steps {
        if !step.differences.is_empty() {
            println!(
                "   {} {} {}: {}",
                step.label,
                step.agent,
                step.event,
                step.differences.join("; ")
            );
        }
    }
    println!("   {}", report.summary);
    let judged = verdict::judge(dir, proposal, "ada", &ada, record::Verdict::Approve, "greets better")?;
    println!("-- approved by {} (entry #{})", judged.approver, judged.seq);
    let applied = apply::apply(dir, proposal)?;
    println!(
        "-- applied at entry #{}: manifest sha256:{} → sha256:{}",
        applied.seq,
        hex::encode(&applied.previous[..8]),
        hex::encode(&applied.manifest[..8])
    );
    greeter_step(dir, r#"greet("bob")"#)?;
    println!("-- ada reverts to the previous configuration");
    let author = record::Author::Person {
        name: "ada".into(),
        public_key: ada.public().to_bytes(),
    };
    let revert = propose::propose(dir, propose::Source::Revert(None), "back to Hello", author, &ada)?;
    verdict::judge(dir, revert.seq, "ada", &ada, record::Verdict::Approve, "")?;
    let reverted = apply::apply(dir, revert.seq)?;
    println!("-- proposal #{} applied at entry #{}", revert.seq, reverted.seq);
    greeter_step(dir, r#"greet("cy")"#)?;
    replay_and_verify(dir)
}

fn replay_and_verify(dir: &Path) -> Result<()> {
    let replayed = World::open(dir, OpenMode::Replay(ReplayFrom::Genesis))?;
    if let Some(divergence) = &replayed.recovery.divergence {
        bail!("demo replay diverged at {divergence}");
    }
    println!(
        "replay OK: {} steps re-executed, {} effects served from receipts",
        replayed.recovery.steps_replayed, replayed.recovery.effects_served
    );
    drop(replayed);
    let report = crate::verify::verify(&open_existing_journal(&WorldPaths::new(dir))?)?;
    println!(
        "verify OK: {} entries hash-chained, {} signed receipts",
        report.entries, report.receipts
    );
    Ok(())
}

/// A stand-in for an OpenAI-compatible provider on 127.0.0.1: it answers each chat completion
/// with the first sentence of the last message. It serves at most 16 requests within 30 s, on
/// a thread that ends with them or with the process.
fn local_provider() -> Result<(String, std::thread::JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base_url = format!("http://{}/v1", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let handle = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut served = 0;
        while served < 16 && std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    served += 1;
                    let _ = answer(stream);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    Ok((base_url, handle))
}

fn answer(mut stream: std::net::TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0usize;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let summary = text.split_inclusive('.').next().unwrap_or(text).trim().to_string();
    let reply = serde_json::json!({
        "choices": [{ "message": { "role": "assistant", "content": summary }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": text.split_whitespace().count(), "completion_tokens": summary.split_whitespace().count() },
    })
    .to_string();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    stream.flush()
}
