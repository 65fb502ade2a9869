//! `apply`: switch a world to the manifest an approved proposal describes.
//!
//! The checks come from the ledger (approvals under the policy in force, no rejection, base
//! still current, clean shadow if required); the switch itself from [`World::change_configuration`]
//! (new components checked, states migrated through `restore`). A proposal that passes the checks
//! but cannot run is refused with its reason journaled, and the world is unchanged. Afterwards
//! `world.toml` is rewritten to the new manifest of record unless it already says the same, and
//! component files it names that do not exist are written from the blob table.

use super::ledger::Ledger;
use super::{GovernanceError, Result};
use crate::journal::entry::{Digest, EntryBody};
use crate::world::{OpenMode, World, WorldPaths};
use agentos_air::Manifest;
use std::path::Path;

/// A proposal applied.
#[derive(Debug, Clone)]
pub struct Applied {
    pub proposal: u64,
    pub seq: u64,
    pub previous: Digest,
    pub manifest: Digest,
    /// Each agent's state digest after migration.
    pub agents: Vec<(String, String)>,
    /// Whether `world.toml` was rewritten to the new manifest.
    pub rewrote_manifest_file: bool,
    pub notices: Vec<String>,
}

/// Apply proposal `proposal` to the world at `root`.
pub fn apply(root: &Path, proposal: u64) -> Result<Applied> {
    let mut world = World::open(root, OpenMode::Govern)?;
    apply_to(&mut world, proposal)
}

/// Apply proposal `proposal` to an open world (one a server holds, between its steps).
pub fn apply_to(world: &mut World, proposal: u64) -> Result<Applied> {
    let ledger = Ledger::read(&world.kernel.journal())?;
    let state = ledger.proposal(proposal)?;
    let readiness = ledger.readiness(proposal);
    if !readiness.blockers.is_empty() {
        return Err(GovernanceError::NotReady {
            proposal,
            blockers: readiness.blockers,
        });
    }
    let previous = ledger.in_force().digest;
    let proposed = agentos_air::apply(&state.patch()?, &ledger.in_force().manifest)?;
    let outcome = world.change_configuration(
        (proposal, state.hash),
        proposed.clone(),
        state.proposal.body.modules.clone(),
    )?;
    let seq = match outcome {
        Ok(seq) => seq,
        Err(reason) => {
            let mut journal = world.kernel.journal();
            let at = journal.append(EntryBody::ApplyRefused(super::record::ApplyRefused {
                proposal,
                reason: reason.clone(),
            }));
            journal.commit()?;
            return Err(GovernanceError::NotApplied { proposal, at, reason });
        }
    };
    let mut notices = Vec::new();
    write_missing_components(world)?;
    let rewrote_manifest_file = write_manifest_file(&world.paths, &proposed, &mut notices)?;
    Ok(Applied {
        proposal,
        seq,
        previous,
        manifest: world.configuration.digest,
        agents: world
            .kernel
            .agents()
            .iter()
            .map(|(name, slot)| (name.clone(), hex::encode(slot.state_digest)))
            .collect(),
        rewrote_manifest_file,
        notices,
    })
}

/// Write each module's component file that does not exist (one an agent built and proposed by
/// digest) from the blob table, so the world directory holds what its manifest names. Existing
/// files are never overwritten.
fn write_missing_components(world: &World) -> Result<()> {
    let journal = world.kernel.journal();
    for (name, module) in &world.configuration.manifest.modules {
        let path = world.paths.root.join(&module.component);
        if path.exists() {
            continue;
        }
        let Some(bytes) = world
            .configuration
            .module_digest(name)
            .map(|digest| journal.blob(&digest))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| GovernanceError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, bytes).map_err(|source| GovernanceError::Write { path, source })?;
    }
    Ok(())
}

/// Make `world.toml` say `manifest` (unless it already does). Returns whether it was written.
fn write_manifest_file(paths: &WorldPaths, manifest: &Manifest, notices: &mut Vec<String>) -> Result<bool> {
    let file = paths.manifest();
    let same = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| Manifest::parse_toml(&text, "world.toml").ok())
        .is_some_and(|m| m.digest() == manifest.digest());
    if same {
        return Ok(false);
    }
    match manifest.to_toml() {
        Ok(text) => {
            let header = format!(
                "# The manifest of record in force (sha256:{}), written by `agentos-host apply`.\n\
                 # Change it through governance: edit, then `agentos-host propose <dir> --from world.toml`.\n\n",
                hex::encode(manifest.digest())
            );
            let temporary = file.with_extension("toml.new");
            std::fs::write(&temporary, header + &text).map_err(|source| GovernanceError::Write {
                path: temporary.clone(),
                source,
            })?;
            std::fs::rename(&temporary, &file).map_err(|source| GovernanceError::Write { path: file, source })?;
            Ok(true)
        }
        Err(error) => {
            notices.push(format!(
                "{} was left as it was ({error}); `agentos-host history` shows the manifest in force",
                file.display()
            ));
            Ok(false)
        }
    }
}
