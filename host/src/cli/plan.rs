//! `agentos-host plan list | show | run | runs`: the world's plans and their runs. Runs are made
//! by the stepper (`plans`); this module parses and prints.

use agentos_air::{Manifest, PlanDef, StepInput, Trigger};
use agentos_runtime::journal::Journal;
use agentos_runtime::plans::history::{RunView, runs};
use agentos_runtime::rounds::{Next, Wake};
use agentos_runtime::world::{OpenMode, World, WorldPaths, configuration_at, genesis, open_existing_journal};
use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// List the plans of the manifest in force: trigger, steps, grants, next scheduled run.
    List {
        /// A world directory, or an audit bundle file written by `export`.
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show one plan: its trigger, input, grants and steps in the order a run takes them.
    Show {
        dir: PathBuf,
        plan: String,
        #[arg(long)]
        json: bool,
    },
    /// Start a run of a plan now and process it; waits until it ends (a step waiting for an
    /// agent's reply waits at most its timeout).
    Run {
        dir: PathBuf,
        plan: String,
        /// The run's input, JSON (for a plan that declares an `input` schema or is triggered by
        /// an event).
        #[arg(long, value_name = "JSON", default_value = "null")]
        input: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: super::remote::RemoteArgs,
    },
    /// Every plan run in the journal, each step with its status, attempts and output.
    Runs {
        /// A world directory, or an audit bundle file written by `export`.
        dir: PathBuf,
        /// Only the runs of this plan.
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: PlanCommand) -> Result<()> {
    match command {
        PlanCommand::List { dir, json } => list(&dir, json),
        PlanCommand::Show { dir, plan, json } => show(&dir, &plan, json),
        PlanCommand::Run {
            dir,
            plan,
            input,
            json,
            remote,
        } => match super::remote::Remote::of(&remote, &dir) {
            Some(remote) => print_view(&remote.plan_run(&plan, &input)?, json),
            None => run_plan(&dir, &plan, &input, json),
        },
        PlanCommand::Runs { dir, plan, json } => {
            let (_target, journal) = read_journal(&dir)?;
            let all: Vec<RunView> = runs(&journal)?
                .into_iter()
                .filter(|r| plan.as_ref().is_none_or(|p| *p == r.plan))
                .collect();
            if json {
                outln!("{}", serde_json::to_string_pretty(&all)?)?;
            } else if all.is_empty() {
                outln!("no plan runs")?;
            }
            for view in all.iter().filter(|_| !json) {
                print_run(view)?;
            }
            Ok(())
        }
    }
}

/// The journal of a world directory or a bundle (the target keeps a bundle's private copy
/// alive while the journal is read).
fn read_journal(dir: &Path) -> Result<(agentos_runtime::bundle::ReadTarget, Journal)> {
    let target = agentos_runtime::bundle::ReadTarget::resolve(dir)?;
    let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
    Ok((target, journal))
}

/// The manifest in force.
fn manifest_in_force(journal: &Journal) -> Result<Manifest> {
    let genesis = genesis(journal)?;
    Ok(configuration_at(journal, &genesis, u64::MAX)?.manifest)
}

fn describe_trigger(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Manual => "manual".into(),
        Trigger::Every(ms) => format!("every {ms} ms"),
        Trigger::Cron(expression) => format!("cron `{expression}` (UTC)"),
        Trigger::Event(schema) => format!("each `{schema}` event sent to the plan"),
    }
}

/// One row per plan of the manifest in force, as `plan list --json` prints it.
pub fn plan_rows(journal: &Journal) -> Result<Vec<serde_json::Value>> {
    let manifest = manifest_in_force(journal)?;
    let journal_runs = runs(journal)?;
    Ok(manifest
        .plans
        .iter()
        .map(|(name, plan)| {
            let of_plan: Vec<&RunView> = journal_runs.iter().filter(|r| &r.plan == name).collect();
            json!({
                "plan": name,
                "trigger": describe_trigger(&plan.trigger),
                "steps": plan.order().unwrap_or_default(),
                "grants": plan.grants,
                "runs": of_plan.len(),
                "in_progress": of_plan.iter().filter(|r| r.status == "running" || r.status == "waiting").count(),
                "last_status": of_plan.last().map(|r| r.status.clone()),
            })
        })
        .collect())
}

fn list(dir: &Path, json: bool) -> Result<()> {
    let (_target, journal) = read_journal(dir)?;
    let rows = plan_rows(&journal)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        outln!("no plans in the manifest in force")?;
    }
    for row in rows {
        outln!(
            "{}  ({}; steps: {}; grants: {}; {} run(s){})",
            row["plan"].as_str().unwrap_or_default(),
            row["trigger"].as_str().unwrap_or_default(),
            strings(&row["steps"]).join(" → "),
            strings(&row["grants"]).join(", "),
            row["runs"],
            row["last_status"]
                .as_str()
                .map(|s| format!(", last {s}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

fn strings(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(|i| i.as_str()).collect())
        .unwrap_or_default()
}

fn show(dir: &Path, name: &str, json: bool) -> Result<()> {
    let (_target, journal) = read_journal(dir)?;
    let manifest = manifest_in_force(&journal)?;
    let Some(plan) = manifest.plans.get(name) else {
        bail!(agentos_runtime::plans::unknown(name, manifest.plans.keys()));
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(plan)?)?;
        return Ok(());
    }
    print_plan(name, plan)?;
    Ok(())
}

fn print_plan(name: &str, plan: &PlanDef) -> std::io::Result<()> {
    outln!("plan {name}: {}", describe_trigger(&plan.trigger))?;
    if let Some(input) = plan.input_schema() {
        outln!("  input: {input}")?;
    }
    outln!("  grants: {}", plan.grants.join(", "))?;
    for (index, step_name) in plan.order().unwrap_or_default().into_iter().enumerate() {
        let step = &plan.steps[step_name];
        let what = match (&step.agent, &step.case) {
            (Some(agent), Some(case)) => format!("send `{case}` to {agent}"),
            _ => step.action.name().to_string(),
        };
        outln!("  {}. {step_name}: {what}", index + 1)?;
        for (input, given) in &step.with {
            match given {
                StepInput::Literal(json) => outln!("       {input} = {json}")?,
                StepInput::From(path) => outln!("       {input} ← {path}")?,
            }
        }
        if let Some(reply) = &step.reply {
            outln!("       awaits a `{reply}` reply for up to {} ms", step.timeout_ms())?;
        }
        if !step.after.is_empty() {
            outln!("       after {}", step.after.join(", "))?;
        }
        if let Some(retry) = &step.retry {
            outln!(
                "       up to {} attempts, {} ms apart (doubling)",
                retry.attempts,
                retry.backoff_ms
            )?;
        }
    }
    Ok(())
}

fn run_plan(dir: &Path, plan: &str, input: &str, json: bool) -> Result<()> {
    let mut world = World::open(dir, OpenMode::Run)?;
    for notice in &world.notices {
        eprintln!("note: {notice}");
    }
    let run = world.start_plan(plan, input)?;
    // Process until the run ends: a step awaiting a reply ends at the latest at its deadline.
    let wake = Wake {
        at_most_ms: 1000,
        ..Wake::TIMERS
    };
    world.run_rounds(wake, |world: &mut World| -> Result<Next> {
        let ended = find_run(world, run)?.is_some_and(|v| v.status == "completed" || v.status == "failed");
        Ok(if ended { Next::Stop } else { Next::Continue })
    })?;
    let view = find_run(&world, run)?;
    let Some(view) = view else {
        bail!(
            "run #{run} of plan `{plan}` did not start; `agentos-host log {}` shows why",
            dir.display()
        );
    };
    print_view(&view, json)
}

fn print_view(view: &RunView, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(view)?)?;
    } else {
        print_run(view)?;
    }
    Ok(())
}

fn find_run(world: &World, run: u64) -> Result<Option<RunView>> {
    let journal = world.kernel.journal();
    Ok(runs(&journal)?.into_iter().find(|r| r.run == run))
}

fn print_run(view: &RunView) -> std::io::Result<()> {
    let input = if view.input.is_null() {
        String::new()
    } else {
        format!(" with input {}", view.input)
    };
    outln!(
        "plan {} run #{} ({}, t={} ms){input}: {}",
        view.plan,
        view.run,
        view.trigger,
        view.at_ms,
        view.status
    )?;
    for step in &view.steps {
        let attempts = if step.attempts > 1 {
            format!(" after {} attempts", step.attempts)
        } else {
            String::new()
        };
        let detail = match (&step.output, &step.detail) {
            (Some(output), _) => format!(": {}", preview(output)),
            (None, Some(detail)) => format!(": {detail}"),
            (None, None) => String::new(),
        };
        outln!("  {} {}{attempts}{detail}", step.step, step.status)?;
    }
    Ok(())
}

/// Output JSON on one line, cut at 120 characters.
fn preview(value: &serde_json::Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
