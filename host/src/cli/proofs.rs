//! `verify`, `checkpoint`, `prove` and `verify-proof`: the auditor's commands, and the trust
//! anchors they take (`--public-key`, `--trusted-keys`, `--checkpoint`).

use agentos_runtime::bundle::ReadTarget;
use agentos_runtime::proofs::{CheckpointFile, JournalLog, checkpoint_file, read_checkpoint_file, verify_proof_text};
use agentos_runtime::verify::{Trust, VerifyReport};
use agentos_runtime::world::{WorldPaths, open_existing_journal};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What the verifier trusts, as given on the command line.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// A host public key you trust (hex; `verify` prints a world's): the world must have been
    /// signed by it, or by a key it handed over to. Repeatable.
    #[arg(long = "public-key", value_name = "HEX")]
    pub public_keys: Vec<String>,
    /// A file of trusted host public keys: one hex key per line, optionally followed by a label;
    /// `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    pub trusted_keys: Option<PathBuf>,
}

impl TrustArgs {
    /// The trusted keys, each checked to be an ed25519 public key.
    pub fn keys(&self) -> Result<Vec<[u8; 32]>> {
        let mut keys = Vec::new();
        for text in &self.public_keys {
            keys.push(parse_key(text).with_context(|| format!("--public-key `{text}`"))?);
        }
        if let Some(file) = &self.trusted_keys {
            let given = keys.len();
            let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
            for (number, line) in text.lines().enumerate() {
                let Some(key) = line.split('#').next().and_then(|l| l.split_whitespace().next()) else {
                    continue;
                };
                keys.push(parse_key(key).with_context(|| format!("{}:{}", file.display(), number + 1))?);
            }
            if keys.len() == given {
                bail!("{} holds no public key", file.display());
            }
        }
        Ok(keys)
    }
}

fn parse_key(text: &str) -> Result<[u8; 32]> {
    let bytes: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .context("not 64 hex digits (a 32-byte ed25519 public key)")?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).context("not a valid ed25519 public key")?;
    Ok(bytes)
}

/// Verify a world (or a bundle) against what the user trusts.
pub fn verify(dir: &Path, kept: Option<&Path>, trust: &TrustArgs, json: bool) -> Result<ExitCode> {
    let target = ReadTarget::resolve(dir)?;
    let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
    let kept = match kept {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let file: CheckpointFile = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a checkpoint file (from `agentos-host checkpoint`)",
                    path.display()
                )
            })?;
            let checkpoint = read_checkpoint_file(&file).with_context(|| path.display().to_string())?;
            Some((path.display().to_string(), checkpoint))
        }
        None => None,
    };
    let trust = Trust {
        keys: trust.keys()?,
        kept,
    };
    match agentos_runtime::verify::verify(&journal, &trust) {
        Ok(report) => {
            if json {
                outln!("{}", serde_json::to_string(&report)?)?;
            } else {
                outln!("{}", verdict(&report))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            if json {
                outln!("{}", serde_json::json!({ "ok": false, "error": error.to_string() }))?;
            } else {
                eprintln!("verify FAILED: {error}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// The verdict of a successful verification, in words.
fn verdict(report: &VerifyReport) -> String {
    let keys = if report.key_rotations > 0 {
        format!(
            "{}, and after {} key rotation(s) {}",
            report.public_key, report.key_rotations, report.key_in_force
        )
    } else {
        report.public_key.clone()
    };
    let governance = if report.governance + report.manifest_changes > 0 {
        format!(
            ", {} signed proposals and verdicts, {} manifest changes each as proposed and approved as its policy required",
            report.governance, report.manifest_changes
        )
    } else {
        String::new()
    };
    let anchor = match &report.anchor {
        Some(anchor) => format!("anchored: {anchor}"),
        None => "NOT ANCHORED: self-consistent, but tied to no key you trust (anyone can make a world that \
                 verifies like this); pass --public-key with the world's host key, obtained from its operator, \
                 or --checkpoint with a checkpoint you kept"
            .into(),
    };
    format!(
        "verify OK: {} entries ({}), {} receipts, {} checkpoints, {} snapshots, {} steps; signed by {keys}{governance}\n{anchor}",
        report.entries,
        report.coverage.describe(),
        report.receipts,
        report.checkpoints,
        report.snapshots,
        report.steps,
    )
}

pub fn checkpoint(dir: &Path) -> Result<()> {
    let target = ReadTarget::resolve(dir)?;
    let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
    let log = JournalLog::read(&journal)?;
    let Some((_, latest)) = log.latest() else {
        bail!(
            "{} has no checkpoint yet: one is signed at the end of each commit (journals of format 4 or earlier: \
             of each commit that added receipts)",
            dir.display()
        );
    };
    outln!("{}", serde_json::to_string_pretty(&checkpoint_file(latest))?)?;
    Ok(())
}

pub fn prove(dir: &Path, entry: Option<&str>, consistency: Option<&[u64]>, output: Option<&Path>) -> Result<()> {
    let target = ReadTarget::resolve(dir)?;
    let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
    let log = JournalLog::read(&journal)?;
    let text = match (entry, consistency) {
        (_, Some(&[old, new])) => serde_json::to_string_pretty(&log.prove_consistency(old, new)?)?,
        (Some(entry), _) => {
            let seq: u64 = entry
                .trim_start_matches('#')
                .parse()
                .with_context(|| format!("entry `{entry}` is not an entry number such as 12 or #12"))?;
            serde_json::to_string_pretty(&log.prove(&journal, seq)?)?
        }
        _ => bail!("give an entry number, or --consistency OLD_SIZE NEW_SIZE"),
    };
    match output {
        Some(path) => std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?,
        None => outln!("{text}")?,
    }
    Ok(())
}

pub fn verify_proof(file: &Path, trust: &TrustArgs, json: bool) -> Result<ExitCode> {
    let keys = trust
        .keys()?
        .iter()
        .map(|key| ed25519_dalek::VerifyingKey::from_bytes(key).expect("checked when parsed"))
        .collect::<Vec<_>>();
    if keys.is_empty() {
        bail!("a proof checks only against a key you trust: give --public-key HEX or --trusted-keys FILE");
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match verify_proof_text(&text, &keys) {
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
