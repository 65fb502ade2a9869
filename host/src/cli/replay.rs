//! `replay`: re-execute a world's steps from genesis or a snapshot and report what matched.

use agentos_runtime::world::{OpenMode, ReplayFrom, World};
use anyhow::{Context as _, Result};
use std::path::Path;
use std::process::ExitCode;

pub fn run(dir: &Path, from: Option<&str>, json: bool) -> Result<ExitCode> {
    let start = match from {
        None => ReplayFrom::Genesis,
        Some("latest") => ReplayFrom::Snapshot(None),
        Some(seq) => ReplayFrom::Snapshot(Some(
            seq.trim_start_matches('#')
                .parse()
                .with_context(|| format!("--from `{seq}` is not an entry number or `latest`"))?,
        )),
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("replaying {bar:40} {pos}/{len} steps ({per_sec})")
            .expect("valid template"),
    );
    let target = agentos_runtime::bundle::ReadTarget::resolve(dir)?;
    let world = World::open_with_progress(target.root(), OpenMode::Replay(start), |done, total| {
        if total >= 1000 {
            bar.set_length(total);
            bar.set_position(done);
        }
    })?;
    bar.finish_and_clear();
    let report = &world.recovery;
    let from_text = match report.from_snapshot {
        Some(seq) => format!("from snapshot #{seq}"),
        None if start == ReplayFrom::Genesis => "from genesis".to_string(),
        None => "from genesis (no snapshot at or before that entry)".to_string(),
    };
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "from_snapshot": report.from_snapshot,
                "steps_replayed": report.steps_replayed,
                "effects_served_from_receipts": report.effects_served,
                "failed_steps_reproduced": report.failed_steps,
                "snapshots_checked": report.snapshots_checked,
                "pending": report.pending,
                "elapsed_ms": report.elapsed.as_millis() as u64,
                "agent_states": report.agent_states,
                "divergence": report.divergence.as_ref().map(|d| serde_json::json!({
                    "step": d.ingress, "agent": d.agent, "detail": d.detail
                })),
            })
        )?;
    }
    if let Some(divergence) = &report.divergence {
        if !json {
            eprintln!("replay DIVERGED at {divergence} (replaying {from_text})");
        }
        return Ok(ExitCode::from(1));
    }
    if !json {
        outln!(
            "replay OK {from_text}: {} steps re-executed ({} failed as recorded), {} effects served from receipts, \
             {} snapshots matched, identical state digests and outputs, {:.1} ms{}",
            report.steps_replayed,
            report.failed_steps,
            report.effects_served,
            report.snapshots_checked,
            report.elapsed.as_secs_f64() * 1e3,
            if report.pending > 0 {
                format!("; {} events pending", report.pending)
            } else {
                String::new()
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
