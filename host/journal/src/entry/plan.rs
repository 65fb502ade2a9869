//! What the journal records of plan runs: one `plan` entry per thing that happened to a run,
//! appended by the turn that made it happen (before that turn's `step-committed`).

use crate::entry::Digest;
use serde::{Deserialize, Serialize};

/// One event of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// The ingress whose turn recorded it.
    pub ingress: u64,
    pub plan: String,
    /// The run: the entry number of the ingress that started it.
    pub run: u64,
    pub event: PlanEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanEvent {
    /// A run began: how (`manual`, `schedule`, `event`), with its input (JSON text, `null` when
    /// the plan takes none).
    Started { trigger: String, input: String },
    /// A `send` step delivered its event and waits for the agent's reply until `deadline_ms`
    /// (world time).
    Awaiting {
        step: String,
        agent: String,
        deadline_ms: u64,
    },
    /// A step ended: its output (JSON, in the blob table) or why it failed, after `attempts`
    /// tries.
    StepFinished {
        step: String,
        attempts: u32,
        result: StepResult,
    },
    /// The run ended.
    Finished { outcome: RunOutcome },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StepResult {
    /// Done; sha256 of the output's JSON text (none for a send without a reply).
    Done {
        output: Option<Digest>,
    },
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunOutcome {
    Completed,
    Failed { step: String, reason: String },
}

impl PlanEvent {
    /// One line naming the run, for divergence and shadow reports.
    pub fn of_run(&self, run: u64) -> String {
        format!("run #{run}: {}", self.describe())
    }

    /// One line for `log` and `plan runs`.
    pub fn describe(&self) -> String {
        match self {
            PlanEvent::Started { trigger, input } if input == "null" => format!("run started ({trigger})"),
            PlanEvent::Started { trigger, input } => format!("run started ({trigger}) with input {input}"),
            PlanEvent::Awaiting {
                step,
                agent,
                deadline_ms,
            } => format!("step `{step}`: sent to `{agent}`, awaiting its reply until t={deadline_ms} ms"),
            PlanEvent::StepFinished { step, attempts, result } => {
                let tries = if *attempts > 1 {
                    format!(" after {attempts} attempts")
                } else {
                    String::new()
                };
                match result {
                    StepResult::Done { output: Some(digest) } => {
                        format!("step `{step}` done{tries}: output sha256:{}", hex::encode(digest))
                    }
                    StepResult::Done { output: None } => format!("step `{step}` done{tries}"),
                    StepResult::Failed { reason } => format!("step `{step}` failed{tries}: {reason}"),
                }
            }
            PlanEvent::Finished {
                outcome: RunOutcome::Completed,
            } => "run completed".into(),
            PlanEvent::Finished {
                outcome: RunOutcome::Failed { step, .. },
            } => format!("run failed at step `{step}`"),
        }
    }
}

/// How the journal addresses a plan (ingress targets, emit targets, receipts' holder).
pub fn address(plan: &str) -> String {
    format!("plan:{plan}")
}

/// The plan an address names, if it names one.
pub fn addressed(target: &str) -> Option<&str> {
    target.strip_prefix("plan:")
}
