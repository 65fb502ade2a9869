//! Patches: a change to a manifest as data — add, replace or remove named definitions, each
//! replace and remove carrying the hash of the definition it expects to find (its pre-image),
//! the whole against the hash of the manifest it was made from.
//!
//! Patches are authored or produced (by [`diff`], by people, by agents) as TOML or JSON and
//! applied with [`apply`], which refuses a patch made against another manifest or a definition
//! that changed since, and validates the result. This module does no IO.

use crate::ValidationError;
use crate::manifest::{AgentDef, Cap, LlmProvider, Manifest, ModuleDef, WorldMeta};
use crate::{PlanDef, Policy, Schema};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// A sha256 digest.
pub type Digest = [u8; 32];

/// The kinds of named definitions a manifest holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefKind {
    /// The `[world]` table (one definition, named `world`).
    World,
    Schema,
    Module,
    Cap,
    Agent,
    Provider,
    /// The `[policy]` table (one definition, named `policy`).
    Policy,
    Plan,
    /// An MCP server (`[mcp.<name>]`).
    McpServer,
}

impl DefKind {
    pub fn label(self) -> &'static str {
        match self {
            DefKind::World => "world",
            DefKind::Schema => "schema",
            DefKind::Module => "module",
            DefKind::Cap => "cap",
            DefKind::Agent => "agent",
            DefKind::Provider => "provider",
            DefKind::Policy => "policy",
            DefKind::Plan => "plan",
            DefKind::McpServer => "mcp server",
        }
    }
}

/// One definition of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Definition {
    World(WorldMeta),
    Schema(Schema),
    Module(ModuleDef),
    Cap(Cap),
    Agent(AgentDef),
    Provider(LlmProvider),
    Policy(Policy),
    Plan(PlanDef),
    McpServer(crate::McpServer),
}

impl Definition {
    pub fn kind(&self) -> DefKind {
        match self {
            Definition::World(_) => DefKind::World,
            Definition::Schema(_) => DefKind::Schema,
            Definition::Module(_) => DefKind::Module,
            Definition::Cap(_) => DefKind::Cap,
            Definition::Agent(_) => DefKind::Agent,
            Definition::Provider(_) => DefKind::Provider,
            Definition::Policy(_) => DefKind::Policy,
            Definition::Plan(_) => DefKind::Plan,
            Definition::McpServer(_) => DefKind::McpServer,
        }
    }

    /// The identity of the definition named `name`: sha256 of the canonical (postcard)
    /// encoding of (kind, name, definition).
    pub fn digest(&self, name: &str) -> Digest {
        let canonical = match self {
            Definition::World(d) => postcard::to_allocvec(&(self.kind(), name, d)),
            Definition::Schema(d) => postcard::to_allocvec(&(self.kind(), name, d)),
            Definition::Module(d) => postcard::to_allocvec(&(self.kind(), name, d)),
            Definition::Cap(d) => postcard::to_allocvec(&(self.kind(), name, d)),
            Definition::Agent(d) => postcard::to_allocvec(&(self.kind(), name, d)),
            Definition::Provider(d) => postcard::to_allocvec(&(self.kind(), name, d)),
            Definition::Policy(d) => postcard::to_allocvec(&(self.kind(), name, d)),
            Definition::Plan(d) => postcard::to_allocvec(&(self.kind(), name, d)),
            Definition::McpServer(d) => postcard::to_allocvec(&(self.kind(), name, d)),
        }
        .expect("definitions always encode");
        Sha256::digest(canonical).into()
    }

    /// Read a definition of `kind` from its JSON value (as it appears in a patch).
    fn from_value(kind: DefKind, value: serde_json::Value) -> Result<Definition, serde_json::Error> {
        Ok(match kind {
            DefKind::World => Definition::World(serde_json::from_value(value)?),
            DefKind::Schema => Definition::Schema(serde_json::from_value(value)?),
            DefKind::Module => Definition::Module(serde_json::from_value(value)?),
            DefKind::Cap => Definition::Cap(serde_json::from_value(value)?),
            DefKind::Agent => Definition::Agent(serde_json::from_value(value)?),
            DefKind::Provider => Definition::Provider(serde_json::from_value(value)?),
            DefKind::Policy => Definition::Policy(serde_json::from_value(value)?),
            DefKind::Plan => Definition::Plan(serde_json::from_value(value)?),
            DefKind::McpServer => Definition::McpServer(serde_json::from_value(value)?),
        })
    }
}

impl Manifest {
    /// Every definition, by (kind, name).
    pub fn definitions(&self) -> BTreeMap<(DefKind, String), Definition> {
        let mut all = BTreeMap::new();
        all.insert(
            (DefKind::World, "world".to_string()),
            Definition::World(self.world.clone()),
        );
        let named = self
            .schemas
            .iter()
            .map(|(n, d)| (DefKind::Schema, n, Definition::Schema(d.clone())))
            .chain(
                self.modules
                    .iter()
                    .map(|(n, d)| (DefKind::Module, n, Definition::Module(d.clone()))),
            )
            .chain(
                self.caps
                    .iter()
                    .map(|(n, d)| (DefKind::Cap, n, Definition::Cap(d.clone()))),
            )
            .chain(
                self.agents
                    .iter()
                    .map(|(n, d)| (DefKind::Agent, n, Definition::Agent(d.clone()))),
            )
            .chain(
                self.providers
                    .iter()
                    .map(|(n, d)| (DefKind::Provider, n, Definition::Provider(d.clone()))),
            )
            .chain(
                self.plans
                    .iter()
                    .map(|(n, d)| (DefKind::Plan, n, Definition::Plan(d.clone()))),
            )
            .chain(
                self.mcp
                    .iter()
                    .map(|(n, d)| (DefKind::McpServer, n, Definition::McpServer(d.clone()))),
            );
        for (kind, name, definition) in named {
            all.insert((kind, name.clone()), definition);
        }
        if let Some(policy) = &self.policy {
            all.insert(
                (DefKind::Policy, "policy".to_string()),
                Definition::Policy(policy.clone()),
            );
        }
        all
    }

    /// Put `definition` under `name`.
    fn put(&mut self, name: &str, definition: Definition) {
        let name = name.to_string();
        match definition {
            Definition::World(d) => self.world = d,
            Definition::Schema(d) => {
                self.schemas.insert(name, d);
            }
            Definition::Module(d) => {
                self.modules.insert(name, d);
            }
            Definition::Cap(d) => {
                self.caps.insert(name, d);
            }
            Definition::Agent(d) => {
                self.agents.insert(name, d);
            }
            Definition::Provider(d) => {
                self.providers.insert(name, d);
            }
            Definition::Policy(d) => self.policy = Some(d),
            Definition::Plan(d) => {
                self.plans.insert(name, d);
            }
            Definition::McpServer(d) => {
                self.mcp.insert(name, d);
            }
        }
    }

    /// Remove the definition of `kind` named `name` (the world definition cannot be removed).
    fn remove(&mut self, kind: DefKind, name: &str) {
        match kind {
            DefKind::World => {}
            DefKind::Schema => {
                self.schemas.remove(name);
            }
            DefKind::Module => {
                self.modules.remove(name);
            }
            DefKind::Cap => {
                self.caps.remove(name);
            }
            DefKind::Agent => {
                self.agents.remove(name);
            }
            DefKind::Provider => {
                self.providers.remove(name);
            }
            DefKind::Policy => self.policy = None,
            DefKind::Plan => {
                self.plans.remove(name);
            }
            DefKind::McpServer => {
                self.mcp.remove(name);
            }
        }
    }
}

/// What a change does to its definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Add(Definition),
    Replace { pre_image: Digest, with: Definition },
    Remove { pre_image: Digest },
}

/// One change: an action on the definition of `kind` named `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: DefKind,
    pub name: String,
    pub action: Action,
}

/// A change to a manifest, against the manifest it was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub base: Digest,
    pub changes: Vec<Change>,
}

/// Why a patch does not apply.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: change {index} ({kind} `{name}`): {message}")]
    Malformed {
        file: String,
        index: usize,
        kind: &'static str,
        name: String,
        message: String,
    },
    #[error(
        "the patch was made against manifest sha256:{}, but this manifest is sha256:{}",
        hex::encode(expected),
        hex::encode(found)
    )]
    WrongBase { expected: Digest, found: Digest },
    #[error(
        "{kind} `{name}` changed since the patch was made: it expects sha256:{}, the manifest has {}",
        hex::encode(expected),
        found.map_or("no such definition".to_string(), |f| format!("sha256:{}", hex::encode(f)))
    )]
    Stale {
        kind: &'static str,
        name: String,
        expected: Digest,
        found: Option<Digest>,
    },
    #[error("{kind} `{name}` already exists; replace it instead of adding it")]
    Exists { kind: &'static str, name: String },
    #[error("the world definition cannot be added or removed, only replaced")]
    WorldNotReplaced,
    #[error("the patched manifest is not valid: {0}")]
    Invalid(#[from] ValidationError),
}

/// The patch that turns `old` into `new`.
pub fn diff(old: &Manifest, new: &Manifest) -> Patch {
    let (before, after) = (old.definitions(), new.definitions());
    let mut changes = Vec::new();
    for ((kind, name), definition) in &before {
        let pre_image = definition.digest(name);
        match after.get(&(*kind, name.clone())) {
            None => changes.push(Change {
                kind: *kind,
                name: name.clone(),
                action: Action::Remove { pre_image },
            }),
            Some(now) if now != definition => changes.push(Change {
                kind: *kind,
                name: name.clone(),
                action: Action::Replace {
                    pre_image,
                    with: now.clone(),
                },
            }),
            Some(_) => {}
        }
    }
    for ((kind, name), definition) in &after {
        if !before.contains_key(&(*kind, name.clone())) {
            changes.push(Change {
                kind: *kind,
                name: name.clone(),
                action: Action::Add(definition.clone()),
            });
        }
    }
    Patch {
        base: old.digest(),
        changes,
    }
}

/// Apply `patch` to `base`: every change in order, then validate the result.
pub fn apply(patch: &Patch, base: &Manifest) -> Result<Manifest, PatchError> {
    if patch.base != base.digest() {
        return Err(PatchError::WrongBase {
            expected: patch.base,
            found: base.digest(),
        });
    }
    apply_changes(patch, base, true)
}

/// Apply a patch recorded in a journal to the manifest it was recorded against: every change
/// must still make sense (add only what is new, replace and remove only what exists) and the
/// result must validate, but the base and pre-image hashes are not compared, since the host
/// that recorded the patch computed them under its own encoding, which a later host's may not
/// reproduce. For re-judging history (`verify`), never for making a change.
pub fn apply_recorded(patch: &Patch, base: &Manifest) -> Result<Manifest, PatchError> {
    apply_changes(patch, base, false)
}

fn apply_changes(patch: &Patch, base: &Manifest, check_hashes: bool) -> Result<Manifest, PatchError> {
    let mut manifest = base.clone();
    for change in &patch.changes {
        let current = manifest
            .definitions()
            .get(&(change.kind, change.name.clone()))
            .map(|d| d.digest(&change.name));
        let stale = |expected: &Digest| PatchError::Stale {
            kind: change.kind.label(),
            name: change.name.clone(),
            expected: *expected,
            found: current,
        };
        match &change.action {
            Action::Add(_) | Action::Remove { .. } if change.kind == DefKind::World => {
                return Err(PatchError::WorldNotReplaced);
            }
            Action::Add(definition) => {
                if current.is_some() {
                    return Err(PatchError::Exists {
                        kind: change.kind.label(),
                        name: change.name.clone(),
                    });
                }
                manifest.put(&change.name, definition.clone());
            }
            Action::Replace { pre_image, with } => {
                if current.is_none() || (check_hashes && current != Some(*pre_image)) {
                    return Err(stale(pre_image));
                }
                manifest.put(&change.name, with.clone());
            }
            Action::Remove { pre_image } => {
                if current.is_none() || (check_hashes && current != Some(*pre_image)) {
                    return Err(stale(pre_image));
                }
                manifest.remove(change.kind, &change.name);
            }
        }
    }
    manifest.validate("the patched manifest")?;
    Ok(manifest)
}

/// The authored form of a patch (TOML or JSON): hex digests, definitions as plain values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchFile {
    /// sha256 of the manifest the patch applies to.
    base: String,
    #[serde(default)]
    changes: Vec<ChangeFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeFile {
    op: Op,
    kind: DefKind,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pre_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    definition: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Op {
    Add,
    Replace,
    Remove,
}

impl Patch {
    fn to_file(&self) -> PatchFile {
        PatchFile {
            base: hex::encode(self.base),
            changes: self
                .changes
                .iter()
                .map(|change| {
                    let (op, pre_image, definition) = match &change.action {
                        Action::Add(d) => (Op::Add, None, Some(d)),
                        Action::Replace { pre_image, with } => (Op::Replace, Some(pre_image), Some(with)),
                        Action::Remove { pre_image } => (Op::Remove, Some(pre_image), None),
                    };
                    ChangeFile {
                        op,
                        kind: change.kind,
                        name: change.name.clone(),
                        pre_image: pre_image.map(hex::encode),
                        definition: definition.map(|d| {
                            without_nulls(serde_json::to_value(d).expect("definitions always encode as JSON"))
                        }),
                    }
                })
                .collect(),
        }
    }

    fn from_file(file: PatchFile, source: &str) -> Result<Patch, PatchError> {
        let digest = |what: &str, text: &str| -> Result<Digest, String> {
            hex::decode(text)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| format!("{what} `{text}` is not a hex sha256 (64 hex digits)"))
        };
        let base = digest("base", &file.base).map_err(|message| PatchError::Syntax {
            file: source.to_string(),
            message,
        })?;
        let mut changes = Vec::new();
        for (index, change) in file.changes.into_iter().enumerate() {
            let malformed = |message: String| PatchError::Malformed {
                file: source.to_string(),
                index: index + 1,
                kind: change.kind.label(),
                name: change.name.clone(),
                message,
            };
            let definition = |value: Option<serde_json::Value>| -> Result<Definition, PatchError> {
                let value = value.ok_or_else(|| malformed(format!("{:?} needs a definition", change.op)))?;
                Definition::from_value(change.kind, value).map_err(|e| malformed(e.to_string()))
            };
            let pre_image = || -> Result<Digest, PatchError> {
                let text = change
                    .pre_image
                    .as_deref()
                    .ok_or_else(|| malformed(format!("{:?} needs the pre_image hash", change.op)))?;
                digest("pre_image", text).map_err(malformed)
            };
            let single = match change.kind {
                DefKind::World => Some("world"),
                DefKind::Policy => Some("policy"),
                _ => None,
            };
            if let Some(single) = single
                && change.name != single
            {
                return Err(malformed(format!("the {single} definition is named `{single}`")));
            }
            let action = match change.op {
                Op::Add => Action::Add(definition(change.definition.clone())?),
                Op::Replace => Action::Replace {
                    pre_image: pre_image()?,
                    with: definition(change.definition.clone())?,
                },
                Op::Remove => Action::Remove {
                    pre_image: pre_image()?,
                },
            };
            changes.push(Change {
                kind: change.kind,
                name: change.name,
                action,
            });
        }
        Ok(Patch { base, changes })
    }

    /// The TOML form; fails only for a definition TOML cannot hold (a `null` inside an agent's
    /// config), which the JSON form can.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(&self.to_file()).map_err(|e| format!("the patch cannot be written as TOML ({e}); use JSON"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_file()).expect("patches always encode as JSON")
    }

    /// Read a patch from TOML; `file` names the source in errors.
    pub fn parse_toml(text: &str, file: &str) -> Result<Patch, PatchError> {
        let parsed: PatchFile = toml::from_str(text).map_err(|e| PatchError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Patch::from_file(parsed, file)
    }

    /// Read a JSON patch written against `current`, whose `base` and `pre_image` hashes may be
    /// left out (agents write these: computing canonical hashes is the host's job). A missing
    /// base is `current`'s digest; a missing pre-image that of `current`'s definition.
    pub fn parse_json_against(text: &str, file: &str, current: &Manifest) -> Result<Patch, PatchError> {
        let syntax = |message: String| PatchError::Syntax {
            file: file.to_string(),
            message,
        };
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| syntax("a patch is a JSON object with `changes`".into()))?;
        object
            .entry("base")
            .or_insert_with(|| hex::encode(current.digest()).into());
        let definitions = current.definitions();
        for change in object
            .get_mut("changes")
            .and_then(|c| c.as_array_mut())
            .into_iter()
            .flatten()
        {
            let kind = change
                .get("kind")
                .cloned()
                .and_then(|k| serde_json::from_value::<DefKind>(k).ok());
            let name = change.get("name").and_then(|n| n.as_str()).map(str::to_string);
            let adds = change.get("op").and_then(|o| o.as_str()) == Some("add");
            if let (Some(kind), Some(name), Some(fields)) = (kind, name, change.as_object_mut())
                && !adds
                && let Some(definition) = definitions.get(&(kind, name.clone()))
            {
                fields
                    .entry("pre_image")
                    .or_insert_with(|| hex::encode(definition.digest(&name)).into());
            }
        }
        Patch::parse_json(&value.to_string(), file)
    }

    /// Read a patch from JSON; `file` names the source in errors.
    pub fn parse_json(text: &str, file: &str) -> Result<Patch, PatchError> {
        let parsed: PatchFile = serde_json::from_str(text).map_err(|e| PatchError::Syntax {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        Patch::from_file(parsed, file)
    }

    /// A line per change, for people: `+ agent reviewer`, `~ cap web`, `- module old`.
    pub fn summary(&self) -> Vec<String> {
        self.changes
            .iter()
            .map(|change| {
                let sign = match change.action {
                    Action::Add(_) => '+',
                    Action::Replace { .. } => '~',
                    Action::Remove { .. } => '-',
                };
                format!("{sign} {} {}", change.kind.label(), change.name)
            })
            .collect()
    }
}

/// Drop `null` members of objects (absent optional fields), which TOML cannot express and the
/// model reads back as absent.
pub(crate) fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(members) => members
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}
