//! The `agentos-host` command line: argument parsing and output formatting only; every
//! decision is made by `world`, `kernel` and `verify`.

#[macro_use]
mod output;

mod air;
mod bench;
mod bench_concurrency;
mod bench_mcp;
mod bench_serve;
mod bench_verifiability;
mod demo;
pub(crate) mod govern;
mod init;
mod keys;
pub(crate) mod plan;
mod proofs;
mod remote;
mod replay;
mod serve;
mod show;
mod stand_in;

use agentos_runtime::bundle::ReadTarget;
use agentos_runtime::journal::entry::EntryBody;
use agentos_runtime::kernel::{StepOutcome, StepRecord};
use agentos_runtime::rounds::{Next, Rounds, Wake};
use agentos_runtime::world::{EventInput, OpenMode, World, WorldError, WorldPaths, genesis, open_existing_journal};
use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

/// AgentOS host: run deterministic, journaled worlds of WebAssembly agents.
///
/// A world is a directory with a `world.toml` manifest. Every input, step and effect is
/// appended to `<world>/.agentos/journal.redb`; every effect carries an ed25519-signed receipt.
/// Worlds can be replayed from their journal and verified without running any code.
///
/// Exit status: 0 success; 1 `replay` diverged or `verify` found a bad entry; 2 any other error
/// (the message names the file, agent or entry concerned).
#[derive(Debug, Parser)]
#[command(name = "agentos-host", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new world directory from a template (builds the template's component if needed).
    Init {
        /// Directory to create the world in (must not hold a world yet).
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "counter")]
        template: init::Template,
    },
    /// Journal one event for an agent, process the inbox until idle, print what happened.
    Send {
        /// A world directory (with --server: the world's name on the server).
        dir: PathBuf,
        /// Agent name from world.toml.
        agent: String,
        /// The event in WAVE syntax, e.g. `increment(5)` or `greet("ada")`; JSON with --json.
        event: String,
        /// The event is JSON: `{"increment": 5}`, `"reset"`.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: remote::RemoteArgs,
    },
    /// Recover the world, journal the events of --events, process everything (firing due
    /// timers), exit when idle.
    ///
    /// It also journals the events `send` left in the world's inbox directory while another
    /// process held the world. With --follow it stays up: it fires timers when they are due and
    /// takes inbox events as they arrive.
    Run {
        dir: PathBuf,
        /// A file of events, one per line: `<agent> <event in WAVE>`; `#` starts a comment.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Keep running until every pending timer has fired, sleeping until each is due.
        #[arg(long)]
        wait_timers: bool,
        /// Keep running: fire timers when due, take events from the inbox. Stop with Ctrl-C.
        #[arg(long, conflicts_with = "wait_timers")]
        follow: bool,
        /// Most steps of different agents that run at once (each agent's steps run one at a
        /// time, in order, whatever this is).
        #[arg(long, value_name = "N", default_value_t = agentos_runtime::kernel::STEPS_IN_FLIGHT_DEFAULT,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        steps_in_flight: usize,
        /// Print a JSON summary instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the journal as a timeline of inputs, steps, effects, receipts and failures.
    Log {
        /// A world directory, or an audit bundle file written by `export` (with --server: the
        /// world's name on the server).
        dir: PathBuf,
        /// One JSON object per entry (JSON lines).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: remote::RemoteArgs,
    },
    /// List effect receipts; with --json, each with its signed bytes, signature and public key.
    Receipts {
        /// A world directory, or an audit bundle file written by `export` (with --server: the
        /// world's name on the server).
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: remote::RemoteArgs,
    },
    /// Re-execute steps, serving effects from receipts, and compare with the journal.
    ///
    /// By default (and with --all) from genesis: every step, and every snapshot is checked
    /// against the re-executed states. With --from, from a snapshot: only the steps after it.
    /// Exits 1 at the first divergence, naming the step, the agent and what differed.
    Replay {
        /// A world directory, or an audit bundle file written by `export`.
        dir: PathBuf,
        /// From genesis (the default).
        #[arg(long, conflicts_with = "from")]
        all: bool,
        /// From the latest snapshot at or before entry SEQ, or `latest`.
        #[arg(long, value_name = "SEQ|latest")]
        from: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check the journal without running any wasm: the hash chain, that a signed checkpoint
    /// covers every entry, every receipt, checkpoint and governance signature, snapshots against
    /// the history before them, manifest changes against their proposals and policy, every blob.
    ///
    /// A journal proves itself only relative to a key you trust: give the world's host public
    /// key (--public-key, from its operator, not from the journal) or a checkpoint you kept
    /// (--checkpoint). Without either, the verdict says the world is self-consistent but not
    /// anchored. Exits 1 naming the first bad entry.
    Verify {
        /// A world directory, or an audit bundle file written by `export`.
        dir: PathBuf,
        /// A checkpoint kept from earlier (a JSON file from `agentos-host checkpoint`): the
        /// journal must extend it, signed by the same key or one it handed over to; a journal cut
        /// back or rewritten since fails.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        #[command(flatten)]
        trust: proofs::TrustArgs,
        #[arg(long)]
        json: bool,
    },
    /// Write an audit bundle: the world's whole journal in one file (entries, receipts,
    /// checkpoints, snapshots, blobs and components, manifest of record, public key).
    ///
    /// `verify`, `replay`, `log`, `receipts`, `checkpoint` and `prove` accept the bundle in place
    /// of the world directory.
    Export {
        dir: PathBuf,
        /// The bundle file to create (must not exist).
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Replace the world's host key: journal a rotation signed by the key in force and by the
    /// new key, then install the new key file. Later receipts and checkpoints are signed by the
    /// new key; `verify` and `verify-proof` follow the chain from the genesis key.
    RotateKey {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print the world's latest signed checkpoint (JSON): keep it to check the world against later
    /// with `verify --checkpoint`.
    Checkpoint {
        /// A world directory, or an audit bundle file written by `export`.
        dir: PathBuf,
    },
    /// Print a proof (JSON) that an entry is in the world's journal log, or with --consistency
    /// that an older checkpoint's receipt log is a prefix of a newer one's.
    ///
    /// ENTRY is a journal entry number (as `log` shows it). For a receipt, the proof shows it in
    /// the receipt log; for any other entry, its stored bytes in the journal log (format 5). The
    /// proof is checked offline by `verify-proof` or any RFC 6962 implementation.
    Prove {
        /// A world directory, or an audit bundle file written by `export`.
        dir: PathBuf,
        #[arg(required_unless_present = "consistency", value_name = "ENTRY")]
        entry: Option<String>,
        /// Two checkpoint sizes (numbers of receipts), older first.
        #[arg(long, num_args = 2, value_names = ["OLD_SIZE", "NEW_SIZE"], conflicts_with = "entry")]
        consistency: Option<Vec<u64>>,
        /// Write the proof to FILE instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check a proof file offline against a key you trust: no world directory needed.
    ///
    /// Exits 1 if the proof does not check, naming what is wrong.
    VerifyProof {
        file: PathBuf,
        #[command(flatten)]
        trust: proofs::TrustArgs,
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Govern(govern::GovernCommand),
    /// The world's plans (automations in AIR) and their runs: list, show, run, runs.
    Plan {
        #[command(subcommand)]
        command: plan::PlanCommand,
    },
    /// Keys for people who approve governed changes: new, list, show.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Work with AIR, the world's configuration as data: check, show, hash, diff, wit.
    Air {
        #[command(subcommand)]
        command: air::AirCommand,
    },
    /// Hold worlds open and serve them over HTTP: events in, entries out (paged and live), receipts,
    /// proofs, bundles (see docs/server.md).
    ///
    /// Each world runs as with `run --follow`: timers and schedules fire when due, events come
    /// from the API. Listens on 127.0.0.1:8470 by default; any other address needs --tokens.
    /// SIGTERM or Ctrl-C finishes the steps in flight, commits and exits.
    Serve(serve::ServeArgs),
    /// Bearer tokens for `serve`: new, list, revoke.
    Token {
        #[command(subcommand)]
        command: serve::tokens::TokenCommand,
    },
    /// Run the demo worlds end to end in DIR (a fresh temporary directory by default).
    ///
    /// `basics`: a counter and a hello agent. `pipeline`: a summarizer reading a file, asking a
    /// language model (a local stand-in on 127.0.0.1, so no network or key is needed), storing
    /// the summary as a blob, telling a notifier agent and setting itself a reminder timer.
    /// `self-upgrade`: an agent asked to greet differently rewrites its own source, builds it with
    /// the `compile` effect and proposes the new component; the shadow run shows the change on
    /// recorded history, a person approves, it applies with the agent's state, then is reverted.
    /// `plans`: a plan scheduled every 400 ms fetches a page (served on 127.0.0.1), has the model
    /// summarize it, the editor agent review it (awaiting its reply), stores the headline and
    /// tells the notifier agent; it runs twice.
    Demo { dir: Option<PathBuf> },
    /// Measure stepper throughput against raw wasmtime calls and raw redb commits, effects, recovery,
    /// verify, agents side by side, and events through `serve` against raw HTTP requests.
    Bench {
        /// Steps per measurement.
        #[arg(long, default_value_t = 20_000)]
        steps: u64,
        /// Steps of the world reopened from its snapshot and replayed from genesis.
        #[arg(long, default_value_t = 100_000)]
        recovery_steps: u64,
        /// Agent counts of the side-by-side measurement (each agent calls a slow endpoint).
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        agents: Vec<usize>,
        /// Calls each agent makes in the side-by-side measurement.
        #[arg(long, default_value_t = 5)]
        calls: u32,
        /// How long the slow endpoint takes to answer, in milliseconds.
        #[arg(long, default_value_t = 200)]
        latency_ms: u64,
        /// Concurrent senders of the many-senders durable measurement (and HTTP clients of the
        /// `serve` one).
        #[arg(long, default_value_t = 8)]
        senders: usize,
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) if output::is_broken_pipe(&error) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", agentos_runtime::text::printable(&format!("{error:#}")));
            if let Some(url) = held_by_server(&error) {
                let url = agentos_runtime::text::printable(&url);
                eprintln!(
                    "note: the world is held by `agentos-host serve` at {url}: give `--server {url}` \
                     (send, log, receipts, propose, shadow, approve, reject, apply, revert, plan run) or use its API"
                );
            }
            std::process::ExitCode::from(2)
        }
    }
}

/// The server holding the world whose journal `error` found locked, if a server holds it.
fn held_by_server(error: &anyhow::Error) -> Option<String> {
    // `<world>/.agentos/journal.redb`
    serve::served_by(locked_journal(error)?.parent()?.parent()?)
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match cli.command {
        Command::Init { dir, template } => {
            init::init(&dir, template)?;
            outln!("created world {} from template {template:?}", dir.display())?;
            outln!(
                "next: agentos-host send {} <agent> <event>   (agents are listed in world.toml)",
                dir.display()
            )?;
        }
        Command::Send {
            dir,
            agent,
            event,
            json,
            remote,
        } => {
            if let Some(remote) = remote::Remote::of(&remote, &dir) {
                remote.send(&agent, &event, json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut world = match open_to_run(&dir) {
                Ok(world) => world,
                Err(error) if is_locked(&error) => {
                    if let Some(url) = serve::served_by(&dir) {
                        bail!(
                            "{} is held by `agentos-host serve` at {url}: send the event through its API \
                             (POST {url}/v1/worlds/<world>/events, see docs/server.md)",
                            dir.display()
                        );
                    }
                    let event = agentos_runtime::inbox::InboxEvent { agent, event, json };
                    let file = agentos_runtime::inbox::drop_event(&WorldPaths::new(&dir).state(), &event)?;
                    outln!(
                        "{} is held by another process (`run --follow`); the event waits in its inbox: {}",
                        dir.display(),
                        file.display()
                    )?;
                    return Ok(ExitCode::SUCCESS);
                }
                Err(error) => return Err(error),
            };
            let parsed: serde_json::Value;
            let input = if json {
                parsed = serde_json::from_str(&event).context("--json: the event is not valid JSON")?;
                EventInput::Json(&parsed)
            } else {
                EventInput::Wave(&event)
            };
            let first = world.ingest(&agent, input, "cli")?;
            world.run(|_| {})?;
            print_entries_from(&world, first)?;
        }
        Command::Run {
            dir,
            events,
            json,
            wait_timers,
            follow,
            steps_in_flight,
        } => {
            let mut world = open_to_run(&dir)?;
            for warning in world.kernel.mcp_grant_warnings(&world.configuration.manifest) {
                eprintln!("warning: {warning}");
            }
            world.kernel.set_steps_in_flight(steps_in_flight);
            let recovered = world.recovery.clone();
            let mut queued = 0;
            if let Some(file) = &events {
                queued = ingest_file(&mut world, file)?;
            }
            if follow {
                outln!(
                    "following {}: recovered {} steps; firing timers when due and taking inbox events (Ctrl-C stops)",
                    dir.display(),
                    recovered.steps_replayed
                )?;
                std::io::Write::flush(&mut std::io::stdout())?;
            }
            let wake = match follow {
                true => Wake {
                    schedules: true,
                    at_most_ms: INBOX_POLL_MS,
                    poll_when_idle: true,
                },
                false => Wake::TIMERS,
            };
            let mut report = RunReport {
                follow,
                keep_going: follow || wait_timers,
                queued,
                ..RunReport::default()
            };
            let steps = world.run_rounds(wake, &mut report)?;
            let RunReport {
                queued,
                committed,
                failed,
                ..
            } = report;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "replayed": recovered.steps_replayed, "queued": queued, "steps": steps,
                        "committed": committed, "failed": failed
                    })
                )?;
            } else {
                outln!(
                    "recovered {} steps; journaled {queued} events; processed {steps} steps ({committed} committed, {failed} failed); idle",
                    recovered.steps_replayed
                )?;
            }
        }
        Command::Log { dir, json, remote } => {
            if let Some(remote) = remote::Remote::of(&remote, &dir) {
                remote.log(json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let target = ReadTarget::resolve(&dir)?;
            let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
            for entry in journal.entries()? {
                if json {
                    outln!("{}", show::entry_json(&journal, &entry))?;
                } else {
                    outln!("{}", show::entry_line(&journal, &entry))?;
                }
            }
        }
        Command::Receipts { dir, json, remote } => {
            if let Some(remote) = remote::Remote::of(&remote, &dir) {
                remote.receipts(json)?;
                return Ok(ExitCode::SUCCESS);
            }
            let target = ReadTarget::resolve(&dir)?;
            let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
            let public_key = genesis(&journal)?.host_public_key;
            let mut all = Vec::new();
            for entry in journal.entries()? {
                if let EntryBody::EffectReceipt(r) = &entry.body {
                    if json {
                        all.push(show::receipt_json(&journal, entry.seq, r, &public_key));
                    } else {
                        outln!("{}", show::entry_line(&journal, &entry))?;
                    }
                }
            }
            if json {
                outln!("{}", serde_json::to_string_pretty(&all)?)?;
            }
        }
        Command::Replay {
            dir,
            all: _,
            from,
            json,
        } => return replay::run(&dir, from.as_deref(), json),
        Command::Verify {
            dir,
            checkpoint,
            trust,
            json,
        } => return proofs::verify(&dir, checkpoint.as_deref(), &trust, json),
        Command::Checkpoint { dir } => proofs::checkpoint(&dir)?,
        Command::RotateKey { dir, json } => {
            let (old, new) = agentos_runtime::world::rotate_key(&dir)?;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({ "old_public_key": hex::encode(old), "new_public_key": hex::encode(new) })
                )?;
            } else {
                outln!(
                    "host key rotated: {} → {} (journaled, signed by both)",
                    hex::encode(old),
                    hex::encode(new)
                )?;
            }
        }
        Command::Export { dir, file, json } => {
            let summary = agentos_runtime::bundle::export(&dir, &file)?;
            if json {
                outln!("{}", serde_json::to_string(&summary)?)?;
            } else {
                outln!(
                    "exported {} entries and {} blobs ({} bytes) to {}",
                    summary.entries,
                    summary.blobs,
                    summary.bytes,
                    file.display()
                )?;
            }
        }
        Command::Prove {
            dir,
            entry,
            consistency,
            output,
        } => proofs::prove(&dir, entry.as_deref(), consistency.as_deref(), output.as_deref())?,
        Command::VerifyProof { file, trust, json } => return proofs::verify_proof(&file, &trust, json),
        Command::Air { command } => return air::run(command),
        Command::Plan { command } => plan::run(command)?,
        Command::Keys { command } => keys::run(command)?,
        Command::Govern(command) => govern::run(command)?,
        Command::Demo { dir } => demo::run(dir)?,
        Command::Serve(args) => serve::run(args)?,
        Command::Token { command } => serve::tokens::run(command)?,
        Command::Bench {
            steps,
            recovery_steps,
            agents,
            calls,
            latency_ms,
            senders,
            json,
        } => {
            let side_by_side = bench::SideBySideRuns {
                agents,
                calls,
                latency_ms,
                senders,
            };
            bench::run(steps, recovery_steps, &side_by_side, json)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Open a world to run it, telling the user what they should know about it.
fn open_to_run(dir: &Path) -> Result<World> {
    let world = World::open(dir, OpenMode::Run).map_err(anyhow::Error::from);
    let world = match world {
        Err(error) if is_locked(&error) => match serve::served_by(dir) {
            Some(url) => bail!(
                "{} is held by `agentos-host serve` at {url}: use its API (see docs/server.md), or stop the server",
                dir.display()
            ),
            None => return Err(error),
        },
        world => world?,
    };
    for notice in &world.notices {
        eprintln!("note: {notice}");
    }
    Ok(world)
}

fn is_locked(error: &anyhow::Error) -> bool {
    locked_journal(error).is_some()
}

/// The journal file `error` (or one of its causes) found open in another process.
fn locked_journal(error: &anyhow::Error) -> Option<&Path> {
    use agentos_runtime::governance::GovernanceError;
    use agentos_runtime::journal::JournalError;
    error.chain().find_map(|cause| {
        let journal = cause
            .downcast_ref::<JournalError>()
            .or_else(|| cause.downcast_ref::<WorldError>().and_then(WorldError::journal))
            .or_else(|| {
                cause
                    .downcast_ref::<GovernanceError>()
                    .and_then(GovernanceError::journal)
            });
        match journal {
            Some(JournalError::Locked { path }) => Some(path.as_path()),
            _ => None,
        }
    })
}

/// What `run` counts and, with `--follow`, prints, round by round.
#[derive(Default)]
struct RunReport {
    follow: bool,
    /// Wait for timers (and with `--follow`, for ever) rather than stop after the first round.
    keep_going: bool,
    queued: usize,
    committed: u64,
    failed: u64,
    /// Lines of this round's steps, printed once the round has committed them.
    done: Vec<String>,
}

impl Rounds<anyhow::Error> for &mut RunReport {
    fn before(&mut self, world: &mut World) -> Result<()> {
        let (taken, rejected) = world.ingest_inbox()?;
        self.queued += taken;
        for (file, reason) in rejected {
            eprintln!("rejected inbox event {}: {reason}", file.display());
        }
        Ok(())
    }

    fn on_step(&mut self, record: &StepRecord) {
        match record.outcome {
            StepOutcome::Committed { .. } => self.committed += 1,
            StepOutcome::Failed { .. } => self.failed += 1,
        }
        if self.follow {
            self.done.push(describe_step(record));
        }
    }

    fn after(&mut self, _world: &mut World) -> Result<Next> {
        // The round has committed: what is printed now is durable.
        for line in self.done.drain(..) {
            outln!("{line}")?;
        }
        std::io::Write::flush(&mut std::io::stdout())?;
        Ok(if self.keep_going { Next::Continue } else { Next::Stop })
    }
}

/// How often `run --follow` looks into the inbox directory.
const INBOX_POLL_MS: u64 = 100;

fn describe_step(record: &agentos_runtime::kernel::StepRecord) -> String {
    agentos_runtime::text::printable(&describe_outcome_of(record)).into_owned()
}

fn describe_outcome_of(record: &agentos_runtime::kernel::StepRecord) -> String {
    match &record.outcome {
        agentos_runtime::kernel::StepOutcome::Committed { state_digest } => format!(
            "step #{} committed: {} state sha256:{} effects {}",
            record.ingress,
            record.agent,
            hex::encode(&state_digest[..6]),
            record.effects
        ),
        agentos_runtime::kernel::StepOutcome::Failed { kind, reason } => {
            format!(
                "step #{} FAILED ({}): {} — {reason}",
                record.ingress,
                kind.label(),
                record.agent
            )
        }
    }
}

pub(crate) fn print_entries_from(world: &World, first: u64) -> Result<()> {
    let journal = world.kernel.journal();
    for entry in journal.entries()?.into_iter().filter(|e| e.seq >= first) {
        outln!("{}", show::entry_line(&journal, &entry))?;
    }
    Ok(())
}

/// Journal every event of an events file; errors name the file and line.
/// The events of an events file: `<agent> <event in WAVE>` per line, `#` comments, with the
/// line number of each.
fn read_events_file(file: &Path) -> Result<Vec<(usize, String, String)>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read events file {}", file.display()))?;
    let mut events = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((agent, event)) = line.split_once(char::is_whitespace) else {
            bail!(
                "{}:{}: expected `<agent> <event>`, got `{line}`",
                file.display(),
                number + 1
            );
        };
        events.push((number + 1, agent.to_string(), event.trim().to_string()));
    }
    Ok(events)
}

fn ingest_file(world: &mut World, file: &Path) -> Result<usize> {
    let events = read_events_file(file)?;
    for (line, agent, event) in &events {
        world
            .ingest(agent, EventInput::Wave(event), "events-file")
            .with_context(|| format!("{}:{line}", file.display()))?;
    }
    Ok(events.len())
}
