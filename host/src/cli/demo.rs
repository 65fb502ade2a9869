//! `agentos-host demo`: five small worlds run end to end — init, events, effects with receipts,
//! timers, a governed self-upgrade, a scheduled plan, an assistant using the tools of an MCP
//! server, replay, verify — with no network: the language model is a local stand-in on
//! 127.0.0.1 (`stand_in`), the plan's news page is served from 127.0.0.1 too, and the MCP server
//! is the repository's own, started over stdio.

use super::init;
use super::print_entries_from;
use super::stand_in;
use agentos_runtime::rounds::{Next, Wake};
use agentos_runtime::world::{EventInput, OpenMode, ReplayFrom, World, WorldPaths, open_existing_journal};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("agentos-demo-{}", std::process::id())),
    };
    basics(&dir.join("basics"))?;
    pipeline(&dir.join("pipeline"))?;
    self_upgrade(&dir.join("self-upgrade"))?;
    // The self-upgrade's build directory (in the user's cache) is of no use once the demo is over.
    let upgraded = open_existing_journal(&WorldPaths::new(&dir.join("self-upgrade")))?;
    agentos_runtime::effects::compile::forget_builds(agentos_runtime::world::genesis(&upgraded)?.world_id);
    drop(upgraded);
    plans(&dir.join("plans"))?;
    tools(&dir.join("tools"))?;
    outln!(
        "\nexplore them (with `cargo run -p agentos-host --` in place of `agentos-host` in a checkout):\n  \
         agentos-host log {0}/pipeline\n  agentos-host receipts {0}/basics --json\n  \
         agentos-host history {0}/self-upgrade\n  agentos-host plan runs {0}/plans\n  \
         agentos-host receipts {0}/tools",
        dir.display()
    )?;
    Ok(())
}

/// The `tools` world's configuration: the assistant, the model stand-in, and the repository's
/// MCP server over the world's `data` directory.
fn tools_manifest(model: &str) -> String {
    format!(
        r#"# The tools demo: an assistant answers with the tools of an MCP server its grants allow.
[world]
name = "tools"

[modules.assistant]
component = "modules/assistant.wasm"

[providers.local]
api = "openai-chat"
base_url = "{model}"

# Started by the host over stdio, with no environment of the host's.
[mcp.files]
command = "bin/mcp-files"
args = ["--root", "data"]

[caps.model]
effect = "llm"
providers = ["local"]
models = ["demo-assistant"]

# Reading and arithmetic only: `append_line` is not granted.
[caps.files]
effect = "mcp"
tools = ["files/read_file", "files/list_files", "files/add", "files/multiply"]

[agents.assistant]
module = "assistant"
grants = ["model", "files"]
config = {{ model = "demo-assistant", max_turns = 4 }}
"#
    )
}

fn tools(dir: &Path) -> Result<()> {
    outln!(
        "\n== tools: an assistant answers with a model that calls the tools of an MCP server, in {}",
        dir.display()
    )?;
    let (model, _provider) = stand_in::model()?;
    for sub in ["modules", "bin", "data"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::copy(
        agentos_runtime::components::ensure_built("assistant")?,
        dir.join("modules/assistant.wasm"),
    )?;
    std::fs::copy(
        agentos_runtime::components::ensure_tool_built("mcp-files")?,
        dir.join("bin/mcp-files"),
    )?;
    std::fs::write(dir.join("data/numbers.txt"), "12\n30\n")?;
    std::fs::write(dir.join("world.toml"), tools_manifest(&model))?;
    {
        let mut world = World::open(dir, OpenMode::Run)?;
        let first = world.ingest(
            "assistant",
            EventInput::Wave(r#"ask("What do the numbers in numbers.txt add up to?")"#),
            "demo",
        )?;
        world.run(|_| {})?;
        print_entries_from(&world, first)?;
    }
    replay_and_verify(dir)
}

fn basics(dir: &Path) -> Result<()> {
    outln!("== basics: a counter and a hello agent in {}", dir.display())?;
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
    outln!(
        "\n== pipeline: summarizer → llm → blob → notifier, and a reminder timer, in {}",
        dir.display()
    )?;
    let (base_url, _provider) = stand_in::model()?;
    std::fs::create_dir_all(dir.join("modules"))?;
    std::fs::create_dir_all(dir.join("docs"))?;
    for component in ["summarizer", "notifier"] {
        std::fs::copy(
            agentos_runtime::components::ensure_built(component)?,
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
        // Until the reminder the summarizer set itself has fired.
        world.run_rounds(Wake::TIMERS, |_: &mut World| anyhow::Ok(Next::Continue))?;
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
    use agentos_runtime::governance::{apply, propose, record, shadow, verdict};
    outln!(
        "\n== self-upgrade: an agent rebuilds itself and proposes the upgrade; a person approves, in {}",
        dir.display()
    )?;
    std::fs::create_dir_all(dir.join("modules"))?;
    std::fs::copy(
        agentos_runtime::components::ensure_built("greeter")?,
        dir.join("modules/greeter.wasm"),
    )?;
    // The person who approves: a key of their own (kept in the demo directory).
    let ada = agentos_runtime::receipts::HostKey::load_or_create(&dir.join("ada.key"))?;
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
    outln!(
        "-- asked to greet with \"Howdy\", the agent rewrites its source, builds it (compile effect) and proposes it"
    )?;
    greeter_step(dir, r#"learn("Howdy")"#)?;
    let ledger = agentos_runtime::governance::ledger::Ledger::read(&open_existing_journal(&WorldPaths::new(dir))?)?;
    let Some(proposal) = ledger.proposals.keys().next_back().copied() else {
        bail!(
            "the greeter made no proposal; `agentos-host log {}` shows why",
            dir.display()
        );
    };
    outln!("-- its proposal #{proposal}, shadow-run on the recorded history:")?;
    let (_, report) = shadow::shadow(dir, proposal, &shadow::Workload::Window(shadow::DEFAULT_WINDOW))?;
    for step in &report.steps {
        if !step.differences.is_empty() {
            outln!(
                "   {} {} {}: {}",
                step.label,
                step.agent,
                step.event,
                step.differences.join("; ")
            )?;
        }
    }
    outln!("   {}", report.summary)?;
    let judged = verdict::judge(dir, proposal, "ada", &ada, record::Verdict::Approve, "greets better")?;
    outln!("-- approved by {} (entry #{})", judged.approver, judged.seq)?;
    let applied = apply::apply(dir, proposal)?;
    outln!(
        "-- applied at entry #{}: manifest sha256:{} → sha256:{}",
        applied.seq,
        hex::encode(&applied.previous[..8]),
        hex::encode(&applied.manifest[..8])
    )?;
    greeter_step(dir, r#"greet("bob")"#)?;
    outln!("-- ada reverts to the previous configuration")?;
    let author = record::Author::Person {
        name: "ada".into(),
        public_key: ada.public().to_bytes(),
    };
    let revert = propose::propose(dir, propose::Source::Revert(None), "back to Hello", author, &ada)?;
    verdict::judge(dir, revert.seq, "ada", &ada, record::Verdict::Approve, "")?;
    let reverted = apply::apply(dir, revert.seq)?;
    outln!("-- proposal #{} applied at entry #{}", revert.seq, reverted.seq)?;
    greeter_step(dir, r#"greet("cy")"#)?;
    replay_and_verify(dir)
}

const NEWS: &str = "Plans ship in AgentOS today! They wire effects and agents together as data. \
    Every run is journaled step by step.";

/// The morning-digest plan, scheduled every 400 ms for the demo (a cron expression such as
/// `0 30 7 * * *` reads the same way).
fn plans(dir: &Path) -> Result<()> {
    outln!(
        "\n== plans: a scheduled plan fetches a page, has a model summarize it, the editor agent review it, \
         stores the headline and tells the notifier agent, in {}",
        dir.display()
    )?;
    let (news, _news_server) = stand_in::server(|_, _| ("text/plain", NEWS.to_string()))?;
    let (model, _provider) = stand_in::model()?;
    std::fs::create_dir_all(dir.join("modules"))?;
    for component in ["editor", "notifier"] {
        std::fs::copy(
            agentos_runtime::components::ensure_built(component)?,
            dir.join(format!("modules/{component}.wasm")),
        )?;
    }
    let manifest = format!(
        r#"# The plans demo: `morning-digest` drives the editor and the notifier agents.
[world]
name = "plans"

[schemas.review-event]
variant = ["review(string)"]
[schemas.verdict]
record = ["headline: string", "words: u32"]
[schemas.note-event]
variant = ["notify(string)", "recall(string)", "relay(tuple<string, string>)", "relay-then-fail(tuple<string, string>)"]

[modules.editor]
component = "modules/editor.wasm"
[modules.notifier]
component = "modules/notifier.wasm"

[providers.local]
api = "openai-chat"
base_url = "{model}"

[caps.news]
effect = "http"
urls = ["{news}/news"]
[caps.model]
effect = "llm"
providers = ["local"]
models = ["demo-summarizer"]
[caps.store]
effect = "blob"
[caps.to-agents]
effect = "emit"
targets = ["editor", "notifier"]
[caps.reply]
effect = "emit"
targets = ["plan:morning-digest"]

[agents.editor]
module = "editor"
event = "review-event"
grants = ["reply"]
config = {{ reply_to = "plan:morning-digest" }}

[agents.notifier]
module = "notifier"
event = "note-event"
grants = ["store", "reply"]

[plans.morning-digest]
trigger = {{ every_ms = 400 }}
grants = ["news", "model", "store", "to-agents"]

[plans.morning-digest.steps.fetch]
do = "http"
with = {{ url = "{news}/news" }}
retry = {{ attempts = 3, backoff_ms = 100 }}

[plans.morning-digest.steps.summarize]
do = "llm"
with = {{ model = "demo-summarizer", system = "Summarize in one sentence.", prompt = {{ from = "fetch.body" }} }}

[plans.morning-digest.steps.review]
do = "send"
agent = "editor"
case = "review"
with = {{ value = {{ from = "summarize.text" }} }}
reply = "verdict"
timeout_ms = 5000

[plans.morning-digest.steps.keep]
do = "blob-put"
with = {{ contents = {{ from = "review.headline" }} }}

[plans.morning-digest.steps.tell]
do = "send"
agent = "notifier"
case = "notify"
with = {{ value = {{ from = "keep.digest" }} }}
"#
    );
    std::fs::write(dir.join("world.toml"), manifest)?;
    {
        let mut world = World::open(dir, OpenMode::Run)?;
        // Let the schedule fire twice, processing each run as it goes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut runs = Vec::new();
        let wake = Wake {
            schedules: true,
            at_most_ms: 500,
            poll_when_idle: true,
        };
        world.run_rounds(wake, |world: &mut World| -> Result<Next> {
            runs = agentos_runtime::plans::history::runs(&world.kernel.journal())?;
            if runs.iter().filter(|r| r.status == "completed").count() >= 2 {
                return Ok(Next::Stop);
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "the scheduled plan did not complete two runs in 20 s; `agentos-host plan runs {}` shows why",
                    dir.display()
                );
            }
            Ok(Next::Continue)
        })?;
        for run in runs.iter().take(2) {
            outln!("plan {} run #{} ({}): {}", run.plan, run.run, run.trigger, run.status)?;
            for step in &run.steps {
                let output = step.output.as_ref().map(|o| format!(" {o}")).unwrap_or_default();
                outln!("  {} {}{output}", step.step, step.status)?;
            }
        }
    }
    replay_and_verify(dir)
}

fn replay_and_verify(dir: &Path) -> Result<()> {
    let replayed = World::open(dir, OpenMode::Replay(ReplayFrom::Genesis))?;
    if let Some(divergence) = &replayed.recovery.divergence {
        bail!("demo replay diverged at {divergence}");
    }
    outln!(
        "replay OK: {} steps re-executed, {} effects served from receipts",
        replayed.recovery.steps_replayed,
        replayed.recovery.effects_served
    )?;
    drop(replayed);
    // The demo runs the world, so it knows the host key to anchor to: the key file it holds.
    let paths = WorldPaths::new(dir);
    let journal = open_existing_journal(&paths)?;
    let key = agentos_runtime::receipts::HostKey::load_or_create(&paths.key())?
        .public()
        .to_bytes();
    let trust = agentos_runtime::verify::Trust {
        keys: vec![key],
        kept: None,
    };
    let report = agentos_runtime::verify::verify(&journal, &trust)?;
    outln!(
        "verify OK: {} entries ({}), {} signed receipts; anchored to the host key {}",
        report.entries,
        report.coverage.describe(),
        report.receipts,
        hex::encode(&key[..8])
    )?;
    Ok(())
}
