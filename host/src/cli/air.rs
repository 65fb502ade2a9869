//! `agentos-host air …`: the world's configuration as data — check, show, hash and diff AIR
//! manifests (`world.toml`, or JSON of the same model), and generate agents' WIT worlds.

use agentos_air::{AirError, Manifest, diff};
use agentos_runtime::bundle::ReadTarget;
use agentos_runtime::world::{MANIFEST_FILE, WorldPaths, configuration_at, genesis, open_existing_journal};
use anyhow::{Context as _, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AirCommand {
    /// Validate a manifest: every problem at once, each with file, line, column and definition.
    ///
    /// PATH is a world directory (its world.toml) or a manifest file (.toml, or .json). Exits 1
    /// when the manifest is not valid.
    Check { path: PathBuf },
    /// Print the manifest of record in force (genesis, or the last applied change), definition
    /// by definition; for a world that has not run yet, the manifest its world.toml would start
    /// it with.
    Show {
        /// A world directory, or an audit bundle file written by `export`.
        dir: PathBuf,
        /// The whole manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the manifest's identity and each definition's (sha256 of the canonical encoding).
    Hash {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Generate the WIT world of each agent that has an event schema (or of --agent A): its
    /// imports are exactly the effects its grants allow. Build the agent's component against it.
    Wit {
        path: PathBuf,
        #[arg(long)]
        agent: Option<String>,
        /// Write `<agent>.wit` files into DIR instead of printing.
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Print the patch (TOML, or JSON with --json) that turns manifest OLD into manifest NEW.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Read a manifest from a world directory's world.toml, a .json file or a .toml file.
fn read(path: &Path) -> Result<Manifest, anyhow::Error> {
    let file = if path.is_dir() {
        WorldPaths::new(path).manifest()
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file.display().to_string();
    let parsed = if file.extension().is_some_and(|e| e == "json") {
        Manifest::parse_json(&text, &name)
    } else {
        Manifest::parse_toml(&text, &name)
    };
    Ok(parsed?)
}

pub fn run(command: AirCommand) -> Result<ExitCode> {
    match command {
        AirCommand::Check { path } => match read(&path) {
            Ok(manifest) => {
                for warning in manifest.warnings() {
                    eprintln!("warning: {}: {warning}", path.display());
                }
                outln!(
                    "{}: valid — world `{}`: {} modules, {} capabilities, {} agents, {} providers; sha256:{}",
                    path.display(),
                    manifest.world.name,
                    manifest.modules.len(),
                    manifest.caps.len(),
                    manifest.agents.len(),
                    manifest.providers.len(),
                    hex::encode(manifest.digest())
                )?;
            }
            Err(error) if error.downcast_ref::<AirError>().is_some() => {
                eprintln!("{error}");
                return Ok(ExitCode::from(1));
            }
            Err(error) => return Err(error),
        },
        AirCommand::Show { dir, json } => {
            let paths = WorldPaths::new(&dir);
            if dir.is_dir() && !paths.journal().exists() {
                // Never run: show what its first run would record, and say so.
                let manifest = read(&dir)?;
                eprintln!(
                    "note: {} has not run yet, so it has no manifest of record; this is the manifest its {} \
                     would start it with (its first run records it)",
                    dir.display(),
                    MANIFEST_FILE
                );
                if json {
                    outln!("{}", manifest.to_json())?;
                } else {
                    outln!(
                        "{} (not yet the manifest of record): sha256:{}",
                        paths.manifest().display(),
                        hex::encode(manifest.digest())
                    )?;
                    print_definitions(&manifest)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            let target = ReadTarget::resolve(&dir)?;
            let journal = open_existing_journal(&WorldPaths::new(target.root()))?;
            let in_force = configuration_at(&journal, &genesis(&journal)?, u64::MAX)?;
            let manifest = in_force.manifest;
            if json {
                outln!("{}", manifest.to_json())?;
            } else {
                outln!(
                    "manifest of record in force since entry #{}: sha256:{}",
                    in_force.since,
                    hex::encode(in_force.digest)
                )?;
                print_definitions(&manifest)?;
            }
        }
        AirCommand::Hash { path, json } => {
            let manifest = read(&path)?;
            if json {
                let definitions: serde_json::Map<String, serde_json::Value> = manifest
                    .definitions()
                    .iter()
                    .map(|((kind, name), d)| (format!("{}.{name}", kind.label()), hex::encode(d.digest(name)).into()))
                    .collect();
                outln!(
                    "{}",
                    serde_json::json!({ "manifest": hex::encode(manifest.digest()), "definitions": definitions })
                )?;
            } else {
                outln!("sha256:{}  manifest", hex::encode(manifest.digest()))?;
                print_definitions(&manifest)?;
            }
        }
        AirCommand::Wit { path, agent, output } => {
            let manifest = read(&path)?;
            let agents: Vec<String> = match agent {
                Some(agent) => vec![agent],
                None => manifest
                    .agents
                    .iter()
                    .filter(|(_, def)| def.event.is_some())
                    .map(|(name, _)| name.clone())
                    .collect(),
            };
            if agents.is_empty() {
                anyhow::bail!(
                    "no agent of {} has an event schema (`event = \"<variant schema>\"`)",
                    path.display()
                );
            }
            for agent in agents {
                let wit = agentos_air::wit::agent_world(&manifest, &agent)?;
                match &output {
                    Some(dir) => {
                        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                        let file = dir.join(format!("{agent}.wit"));
                        std::fs::write(&file, wit).with_context(|| format!("cannot write {}", file.display()))?;
                        outln!("wrote {}", file.display())?;
                    }
                    None => out!("{wit}")?,
                }
            }
        }
        AirCommand::Diff { old, new, json } => {
            let patch = diff(&read(&old)?, &read(&new)?);
            if json {
                outln!("{}", patch.to_json())?;
            } else {
                for line in patch.summary() {
                    outln!("# {line}")?;
                }
                out!("{}", patch.to_toml().map_err(anyhow::Error::msg)?)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_definitions(manifest: &Manifest) -> std::io::Result<()> {
    for ((kind, name), definition) in manifest.definitions() {
        outln!(
            "sha256:{}  {} {name}",
            hex::encode(definition.digest(&name)),
            kind.label()
        )?;
    }
    Ok(())
}
