//! Drafting and journaling proposals: from a patch file, from a whole manifest file, or back to
//! a manifest the world ran before.
//!
//! A draft pins the component bytes of every module of the proposed manifest (read from the
//! world directory now, or taken from the record for a revert), so what is approved is exactly
//! what will run. Nothing is journaled for a draft that does not apply, changes nothing, or
//! grants an effect the policy in force denies.

use super::ledger::{Configuration, Ledger};
use super::record::{Author, Proposal, ProposalBody};
use super::{GovernanceError, Result};
use crate::journal::Journal;
use crate::journal::entry::{Digest, EntryBody, sha256};
use crate::receipts::HostKey;
use crate::world::WorldPaths;
use agentos_air::{Judgement, Manifest, Patch};
use std::path::Path;

/// Component digest of each module, by module name.
pub type ModuleTable = Vec<(String, Digest)>;

/// Where a proposal comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A patch file (TOML, or JSON by extension), as `agentos-host air diff` writes.
    Patch(&'a Path),
    /// A whole manifest (`world.toml` edited, or another file): the patch is the difference.
    Manifest(&'a Path),
    /// JSON text from an agent: a whole manifest (an object with `world`), or a patch whose
    /// `base` and `pre_image` hashes may be left out (anchored to the manifest in force).
    Json(&'a str),
    /// An earlier manifest of record with its components: by the entry number it came into
    /// force at, or by manifest digest (hex, at least 8 digits); the last one that differs from
    /// what is in force when `None`.
    Revert(Option<&'a str>),
}

/// A proposal before it is signed.
#[derive(Debug, Clone)]
pub struct Draft {
    pub patch: Patch,
    pub proposed: Manifest,
    pub modules: ModuleTable,
    /// Component bytes not yet in the journal.
    pub new_components: Vec<Vec<u8>>,
    pub reverts_to: Option<Digest>,
}

/// Make a draft against the manifest in force; component bytes come from the world directory,
/// or from the journal's blob table for a module pinned by `sha256` whose file does not exist.
pub fn draft(paths: &WorldPaths, journal: &Journal, ledger: &Ledger, source: Source<'_>) -> Result<Draft> {
    let current = ledger.in_force();
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| GovernanceError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let is_json = |path: &Path| path.extension().is_some_and(|e| e == "json");
    let (patch, proposed) = match source {
        Source::Patch(path) => {
            let (text, name) = (read(path)?, path.display().to_string());
            let patch = if is_json(path) {
                Patch::parse_json(&text, &name)?
            } else {
                Patch::parse_toml(&text, &name)?
            };
            let proposed =
                agentos_air::apply(&patch, &current.manifest).map_err(|source| GovernanceError::DoesNotApply {
                    what: name,
                    source: Box::new(source),
                })?;
            (patch, proposed)
        }
        Source::Manifest(path) => {
            let (text, name) = (read(path)?, path.display().to_string());
            let proposed = if is_json(path) {
                Manifest::parse_json(&text, &name)?
            } else {
                Manifest::parse_toml(&text, &name)?
            };
            (agentos_air::diff(&current.manifest, &proposed), proposed)
        }
        Source::Json(text) => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(GovernanceError::NotJson)?;
            if value.get("world").is_some() {
                let proposed = Manifest::parse_json(text, "the proposed manifest")?;
                (agentos_air::diff(&current.manifest, &proposed), proposed)
            } else {
                let patch = Patch::parse_json_against(text, "the proposed patch", &current.manifest)?;
                let proposed =
                    agentos_air::apply(&patch, &current.manifest).map_err(|source| GovernanceError::DoesNotApply {
                        what: "the patch".into(),
                        source: Box::new(source),
                    })?;
                (patch, proposed)
            }
        }
        Source::Revert(to) => {
            let target = revert_target(ledger, to)?;
            let patch = agentos_air::diff(&current.manifest, &target.manifest);
            return Ok(Draft {
                patch,
                proposed: target.manifest.clone(),
                modules: target.modules.clone(),
                new_components: Vec::new(),
                reverts_to: Some(target.digest),
            });
        }
    };
    let (modules, new_components) = pin_components(paths, journal, current, &proposed)?;
    Ok(Draft {
        patch,
        proposed,
        modules,
        new_components,
        reverts_to: None,
    })
}

/// The configuration a revert returns to.
fn revert_target<'l>(ledger: &'l Ledger, to: Option<&str>) -> Result<&'l Configuration> {
    let current = ledger.in_force();
    let earlier = &ledger.configurations[..ledger.configurations.len() - 1];
    let differs = |c: &&Configuration| !c.same_as(current);
    let Some(to) = to else {
        return earlier.iter().rev().find(differs).ok_or_else(|| {
            GovernanceError::RevertTarget("the world has run no other configuration to revert to".into())
        });
    };
    let listed = "`agentos-host history` lists them";
    if let Ok(since) = to.trim_start_matches('#').parse::<u64>()
        && to.len() < 8
    {
        return earlier.iter().find(|c| c.since == since).ok_or_else(|| {
            GovernanceError::RevertTarget(format!(
                "no earlier manifest came into force at entry #{since} ({listed})"
            ))
        });
    }
    let prefix = to.strip_prefix("sha256:").unwrap_or(to).to_ascii_lowercase();
    if prefix.len() < 8 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(GovernanceError::RevertTarget(format!(
            "`{to}` is neither an entry number nor a manifest digest (hex, at least 8 digits); {listed}"
        )));
    }
    let mut matches: Vec<&Configuration> = earlier
        .iter()
        .filter(|c| hex::encode(c.digest).starts_with(&prefix))
        .filter(differs)
        .collect();
    matches.dedup_by(|a, b| a.same_as(b));
    match matches.as_slice() {
        [one] => Ok(one),
        [] if hex::encode(current.digest).starts_with(&prefix) => Err(GovernanceError::RevertTarget(format!(
            "sha256:{prefix}… is the manifest in force, with the components in force"
        ))),
        [] => Err(GovernanceError::RevertTarget(format!(
            "the world never ran a manifest sha256:{prefix}… ({listed})"
        ))),
        several => Err(GovernanceError::RevertTarget(format!(
            "sha256:{prefix}… names several configurations (the same manifest with other components); \
             give the entry number one came into force at: {}",
            several
                .iter()
                .map(|c| format!("#{}", c.since))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Read the component of every module of `proposed` from the world directory; a module whose
/// file does not exist takes the bytes its `sha256` pins from the journal's blob table, or keeps
/// its recorded bytes if its definition did not change.
fn pin_components(
    paths: &WorldPaths,
    journal: &Journal,
    current: &Configuration,
    proposed: &Manifest,
) -> Result<(ModuleTable, Vec<Vec<u8>>)> {
    let (mut modules, mut new_components) = (Vec::new(), Vec::new());
    for (name, module) in &proposed.modules {
        let path = paths.root.join(&module.component);
        let unchanged = current.manifest.modules.get(name) == Some(module);
        let digest = match std::fs::read(&path) {
            Ok(bytes) => {
                let digest = sha256(&bytes);
                if current.module_digest(name) != Some(digest) {
                    new_components.push(bytes);
                }
                digest
            }
            Err(_) if unchanged && current.module_digest(name).is_some() => {
                current.module_digest(name).expect("checked")
            }
            Err(_) if let Some(stored) = pinned_blob(journal, module.sha256.as_deref())? => stored,
            Err(reason) => {
                return Err(GovernanceError::UnreadableComponent {
                    module: name.clone(),
                    path,
                    reason,
                });
            }
        };
        if let Some(pinned) = &module.sha256
            && *pinned != hex::encode(digest)
        {
            return Err(GovernanceError::PinMismatch {
                module: name.clone(),
                path,
                actual: hex::encode(digest),
                pinned: pinned.clone(),
            });
        }
        modules.push((name.clone(), digest));
    }
    Ok((modules, new_components))
}

/// The digest `pin` names (hex), if the blob table holds those bytes.
fn pinned_blob(journal: &Journal, pin: Option<&str>) -> Result<Option<Digest>> {
    let Some(digest) = pin
        .and_then(|p| hex::decode(p).ok())
        .and_then(|b| Digest::try_from(b).ok())
    else {
        return Ok(None);
    };
    Ok(journal.blob(&digest)?.map(|_| digest))
}

/// A line per change for people: the patch's definitions, then component bytes that change.
pub fn change_lines(current: &Configuration, patch: &Patch, modules: &[(String, Digest)]) -> Vec<String> {
    let mut lines = patch.summary();
    for (name, digest) in modules {
        match current.module_digest(name) {
            Some(old) if old != *digest => lines.push(format!(
                "~ component of module {name}: sha256:{} → sha256:{}",
                hex::encode(&old[..8]),
                hex::encode(&digest[..8])
            )),
            None => lines.push(format!(
                "+ component of module {name}: sha256:{}",
                hex::encode(&digest[..8])
            )),
            _ => {}
        }
    }
    lines
}

/// A proposal as journaled.
#[derive(Debug, Clone)]
pub struct Journaled {
    pub seq: u64,
    pub hash: Digest,
    pub changes: Vec<String>,
    pub judgement: Judgement,
}

/// A proposal ready to be signed: its body and what it changes.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub body: ProposalBody,
    pub changes: Vec<String>,
    pub judgement: Judgement,
    /// Component bytes the journal does not hold yet.
    pub new_components: Vec<Vec<u8>>,
}

/// The body `author` signs for `draft`. Refuses a draft that changes nothing or grants an
/// effect the policy in force denies.
pub fn prepare(ledger: &Ledger, draft: Draft, description: &str, author: Author) -> Result<Prepared> {
    let current = ledger.in_force();
    if draft.patch.changes.is_empty() && draft.modules == current.modules {
        return Err(GovernanceError::ChangesNothing {
            in_force: hex::encode(current.digest),
        });
    }
    let judgement = agentos_air::judge(&current.manifest, &draft.proposed, draft.modules != current.modules);
    let denied: Vec<String> = judgement.denied().map(ToString::to_string).collect();
    if !denied.is_empty() {
        return Err(GovernanceError::PolicyDenies { denied });
    }
    let changes = change_lines(current, &draft.patch, &draft.modules);
    let body = ProposalBody {
        version: 1,
        world_id: ledger.world_id,
        base: current.digest,
        patch_json: draft.patch.to_json(),
        modules: draft.modules,
        description: description.to_string(),
        author,
        reverts_to: draft.reverts_to,
    };
    Ok(Prepared {
        body,
        changes,
        judgement,
        new_components: draft.new_components,
    })
}

/// Sign and journal `draft` (the caller commits). Refuses a draft that changes nothing or
/// grants an effect the policy in force denies.
pub fn journal_proposal(
    journal: &mut Journal,
    ledger: &Ledger,
    draft: Draft,
    description: &str,
    author: Author,
    key: &HostKey,
) -> Result<Journaled> {
    let prepared = prepare(ledger, draft, description, author)?;
    let proposal = Proposal::sign(prepared.body.clone(), key);
    Ok(journal_prepared(journal, prepared, proposal))
}

fn journal_prepared(journal: &mut Journal, prepared: Prepared, proposal: Proposal) -> Journaled {
    for bytes in &prepared.new_components {
        journal.put_blob(bytes);
    }
    let hash = proposal.body.hash();
    let seq = journal.append(EntryBody::Proposal(proposal));
    Journaled {
        seq,
        hash,
        changes: prepared.changes,
        judgement: prepared.judgement,
    }
}

/// A person's proposal signed elsewhere (on their machine, against a body this host drafted),
/// checked and journaled: signed by the author's key over the documented proposal bytes, and
/// exactly the body this host drafts now from its patch (same base, modules, components), so
/// what is approved is what will run. The journal stays as it was if any check fails.
pub fn submit_signed(paths: &WorldPaths, journal: &mut Journal, proposal: Proposal) -> Result<Journaled> {
    let ledger = Ledger::read(journal)?;
    let refused = |reason: String| Err(GovernanceError::NotAsDrafted { reason });
    if !matches!(proposal.body.author, Author::Person { .. }) {
        return refused("an agent proposes through the `governance` effect, not over the API".into());
    }
    if let Err(error) = proposal.verify_person() {
        return refused(format!("its signature does not check: {error}"));
    }
    if let Some(earlier) = ledger.proposals.values().find(|p| p.hash == proposal.body.hash()) {
        return refused(format!(
            "it is proposal #{} already (a signed proposal is journaled once)",
            earlier.seq
        ));
    }
    // A revert is drafted again to the configuration it names by digest and components (the
    // same manifest may have run with other components).
    let revert_to = match proposal.body.reverts_to {
        Some(digest) => {
            let target = ledger
                .configurations
                .iter()
                .find(|c| c.digest == digest && c.modules == proposal.body.modules)
                .ok_or_else(|| GovernanceError::NotAsDrafted {
                    reason: format!(
                        "the world never ran manifest sha256:{} with these components",
                        hex::encode(digest)
                    ),
                })?;
            Some(format!("#{}", target.since))
        }
        None => None,
    };
    let source = match &revert_to {
        Some(since) => Source::Revert(Some(since)),
        None => Source::Json(&proposal.body.patch_json),
    };
    let drafted = draft(paths, journal, &ledger, source)?;
    let prepared = prepare(
        &ledger,
        drafted,
        &proposal.body.description,
        proposal.body.author.clone(),
    )?;
    if prepared.body != proposal.body {
        return refused(format!(
            "the signed body is not the one this host drafts from its patch now (the manifest in force is sha256:{}); \
             draft it again",
            hex::encode(ledger.in_force().digest)
        ));
    }
    let journaled = journal_prepared(journal, prepared, proposal);
    journal.commit()?;
    Ok(journaled)
}

/// `propose` for a person: draft against the world's journal, sign with their key, commit.
pub fn propose(root: &Path, source: Source<'_>, description: &str, author: Author, key: &HostKey) -> Result<Journaled> {
    let paths = WorldPaths::new(root);
    let mut journal = crate::world::open_journal_to_write(&paths)?;
    let ledger = Ledger::read(&journal)?;
    let draft = draft(&paths, &journal, &ledger, source)?;
    let journaled = journal_proposal(&mut journal, &ledger, draft, description, author, key)?;
    journal.commit()?;
    Ok(journaled)
}
