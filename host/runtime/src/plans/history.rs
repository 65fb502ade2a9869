//! Plan runs as the journal tells them: each run with its trigger, input, steps (status,
//! attempts, output or reason) and outcome, folded from `plan` entries. Read-only; used by
//! `plan runs`, `plan run` and the demo.

use super::record::{PlanEntry, PlanEvent, RunOutcome, StepResult};
use crate::journal::Journal;
use crate::journal::JournalError;
use crate::journal::entry::EntryBody;

type Result<T> = std::result::Result<T, JournalError>;
use serde::Serialize;

/// One run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunView {
    pub plan: String,
    pub run: u64,
    pub trigger: String,
    pub input: serde_json::Value,
    /// World time the run started.
    pub at_ms: u64,
    pub steps: Vec<StepView>,
    /// `completed`, `failed`, `waiting` (for an agent's reply) or `running`.
    pub status: String,
    /// The failing step and why, for a failed run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<(String, String)>,
}

/// One step of a run, in the order it ran.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StepView {
    pub step: String,
    /// `done`, `failed` or `waiting`.
    pub status: String,
    pub attempts: u32,
    /// The output (JSON), for a step done with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_digest: Option<String>,
    /// Why it failed, or whom it waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Every plan run in the journal, oldest first.
pub fn runs(journal: &Journal) -> Result<Vec<RunView>> {
    let mut runs: Vec<RunView> = Vec::new();
    let mut started_at = std::collections::HashMap::new();
    for entry in journal.entries()? {
        match entry.body {
            EntryBody::Ingress(ingress) => {
                started_at.insert(entry.seq, ingress.at_ms);
            }
            EntryBody::Plan(plan) => fold(journal, &mut runs, &started_at, plan)?,
            _ => {}
        }
    }
    Ok(runs)
}

fn fold(
    journal: &Journal,
    runs: &mut Vec<RunView>,
    started_at: &std::collections::HashMap<u64, u64>,
    entry: PlanEntry,
) -> Result<()> {
    if let PlanEvent::Started { trigger, input } = &entry.event {
        runs.push(RunView {
            plan: entry.plan.clone(),
            run: entry.run,
            trigger: trigger.clone(),
            input: serde_json::from_str(input).unwrap_or(serde_json::Value::Null),
            at_ms: started_at.get(&entry.run).copied().unwrap_or_default(),
            steps: Vec::new(),
            status: "running".into(),
            failure: None,
        });
        return Ok(());
    }
    let Some(run) = runs
        .iter_mut()
        .rev()
        .find(|r| r.run == entry.run && r.plan == entry.plan)
    else {
        return Ok(());
    };
    match entry.event {
        PlanEvent::Started { .. } => {}
        PlanEvent::Awaiting {
            step,
            agent,
            deadline_ms,
        } => {
            run.status = "waiting".into();
            run.steps.push(StepView {
                step,
                status: "waiting".into(),
                attempts: 1,
                output: None,
                output_digest: None,
                detail: Some(format!("a reply from `{agent}` until t={deadline_ms} ms")),
            });
        }
        PlanEvent::StepFinished { step, attempts, result } => {
            run.status = "running".into();
            run.steps.retain(|s| s.step != step);
            let view = match result {
                StepResult::Done { output } => {
                    let value = match output {
                        Some(digest) => journal
                            .blob(&digest)?
                            .and_then(|bytes| serde_json::from_slice(&bytes).ok()),
                        None => None,
                    };
                    StepView {
                        step,
                        status: "done".into(),
                        attempts,
                        output: value,
                        output_digest: output.map(|d| format!("sha256:{}", hex::encode(d))),
                        detail: None,
                    }
                }
                StepResult::Failed { reason } => StepView {
                    step,
                    status: "failed".into(),
                    attempts,
                    output: None,
                    output_digest: None,
                    detail: Some(reason),
                },
            };
            run.steps.push(view);
        }
        PlanEvent::Finished { outcome } => match outcome {
            RunOutcome::Completed => run.status = "completed".into(),
            RunOutcome::Failed { step, reason } => {
                run.status = "failed".into();
                run.failure = Some((step, reason));
            }
        },
    }
    Ok(())
}
