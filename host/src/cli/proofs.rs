//! `verify`, `checkpoint`, `prove` and `verify-proof`: the auditor's commands.

use crate::bundle::ReadTarget;
use crate::proofs::{ReceiptLog, check_checkpoint_file, checkpoint_file, verify_proof_text};
use crate::world::{WorldPaths, genesis, open_existing_journal};
use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::ExitCode;

/// Verify a world; with `old_checkpoint`, also that its receipt log extends that checkpoint.
pub fn verify(dir: &Path, old_checkpoint: Option<&Path>, json: bool) -> Result<ExitCode> {
    let target = ReadTarget::resolve(dir)?;
    let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
    let old = match old_checkpoint {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some((
                path,
                serde_json::from_str(&text).with_context(|| format!("{} is not a checkpoint file", path.display()))?,
            ))
        }
        None => None,
    };
    let outcome = crate::verify::verify(&journal)
        .map_err(anyhow::Error::from)
        .and_then(|report| {
            if let Some((path, file)) = &old {
                let key = ed25519_dalek::VerifyingKey::from_bytes(&genesis(&journal)?.host_public_key)?;
                let log = ReceiptLog::read(&journal)?;
                let checkpoint =
                    check_checkpoint_file(file, &log.keys(key)).with_context(|| format!("{}", path.display()))?;
                log.check_extends(&checkpoint)
                    .with_context(|| format!("against the checkpoint in {}", path.display()))?;
            }
            Ok(report)
        });
    match outcome {
        Ok(report) => {
            if json {
                outln!("{}", serde_json::to_string(&report)?)?;
            } else {
                outln!(
                    "verify OK: {} entries hash-chained, {} receipts signed by {}{}, {} checkpoints, {} snapshots, {} steps{}{}",
                    report.entries,
                    report.receipts,
                    report.public_key,
                    if report.key_rotations > 0 {
                        format!(
                            " and after {} key rotation(s) by {}",
                            report.key_rotations, report.key_in_force
                        )
                    } else {
                        String::new()
                    },
                    report.checkpoints,
                    report.snapshots,
                    report.steps,
                    if report.governance + report.manifest_changes > 0 {
                        format!(
                            ", {} signed proposals and verdicts, {} manifest changes each approved as its policy required",
                            report.governance, report.manifest_changes
                        )
                    } else {
                        String::new()
                    },
                    old.as_ref()
                        .map(|(path, _)| format!("; extends the checkpoint in {}", path.display()))
                        .unwrap_or_default()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            if json {
                outln!("{}", serde_json::json!({ "ok": false, "error": format!("{error:#}") }))?;
            } else {
                eprintln!("verify FAILED: {error:#}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

pub fn checkpoint(dir: &Path) -> Result<()> {
    let target = ReadTarget::resolve(dir)?;
    let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
    let log = ReceiptLog::read(&journal)?;
    let Some(latest) = log.checkpoints.last() else {
        bail!(
            "{} has no checkpoint yet: one is signed at each commit that adds receipts",
            dir.display()
        );
    };
    outln!("{}", serde_json::to_string_pretty(&checkpoint_file(latest))?)?;
    Ok(())
}

pub fn prove(dir: &Path, receipt: Option<&str>, consistency: Option<&[u64]>, output: Option<&Path>) -> Result<()> {
    let target = ReadTarget::resolve(dir)?;
    let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
    let log = ReceiptLog::read(&journal)?;
    let text = match (receipt, consistency) {
        (_, Some(&[old, new])) => serde_json::to_string_pretty(&log.prove_consistency(old, new)?)?,
        (Some(receipt), _) => {
            let seq: u64 = receipt
                .trim_start_matches('#')
                .parse()
                .with_context(|| format!("receipt `{receipt}` is not an entry number such as 12 or #12"))?;
            serde_json::to_string_pretty(&log.prove_inclusion(&journal, seq)?)?
        }
        _ => bail!("give a receipt's entry number, or --consistency OLD_SIZE NEW_SIZE"),
    };
    match output {
        Some(path) => std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?,
        None => outln!("{text}")?,
    }
    Ok(())
}

pub fn verify_proof(file: &Path, public_key: &str, json: bool) -> Result<ExitCode> {
    let key_bytes: [u8; 32] = hex::decode(public_key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .with_context(|| format!("--public-key `{public_key}` is not 64 hex digits (a 32-byte ed25519 key)"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes)
        .with_context(|| format!("--public-key `{public_key}` is not a valid ed25519 public key"))?;
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match verify_proof_text(&text, &key) {
        Ok(what) => {
            if json {
                outln!("{}", serde_json::json!({ "ok": true, "verified": what }))?;
            } else {
                outln!("proof OK: {what}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            if json {
                outln!("{}", serde_json::json!({ "ok": false, "error": error.to_string() }))?;
            } else {
                eprintln!("proof FAILED ({}): {error}", file.display());
            }
            Ok(ExitCode::from(1))
        }
    }
}
