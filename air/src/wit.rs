//! WIT codegen: an agent's AIR compiles to its WIT world. Imports are exactly the `agentos:core`
//! effect interfaces its grants allow (and `log`, which every agent holds); exports are
//! `lifecycle` and `handle` over its event variant, with the schemas that variant uses.
//!
//! The output is deterministic (schemas in dependency order, then by name), so golden files pin
//! it and a component built from it matches what the host expects.

use crate::schema::{Schema, TypeExpr, is_identifier};
use crate::{EffectKind, Manifest};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The package and version of the interfaces every agent world draws on (`wit/agentos.wit`).
pub const CORE_PACKAGE: &str = "agentos:core";
pub const CORE_VERSION: &str = "0.2.0";

/// Why an agent's world cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitError {
    #[error("no agent `{0}` in the manifest")]
    NoAgent(String),
    #[error("agent `{0}` has no event schema: add `event = \"<variant schema>\"` to it to generate its WIT world")]
    NoEvent(String),
    #[error("{what} `{name}` is not a WIT identifier (lowercase words of letters and digits joined by `-`)")]
    NotIdentifier { what: &'static str, name: String },
}

/// WIT keywords, which a name must be written with a `%` prefix to use.
const KEYWORDS: &[&str] = &[
    "as",
    "async",
    "bool",
    "borrow",
    "char",
    "constructor",
    "enum",
    "export",
    "f32",
    "f64",
    "flags",
    "from",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "option",
    "own",
    "package",
    "record",
    "resource",
    "result",
    "s16",
    "s32",
    "s64",
    "s8",
    "static",
    "stream",
    "string",
    "tuple",
    "type",
    "u16",
    "u32",
    "u64",
    "u8",
    "use",
    "variant",
    "with",
    "world",
];

fn name(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("%{name}")
    } else {
        name.to_string()
    }
}

fn type_expr(ty: &TypeExpr) -> String {
    match ty {
        TypeExpr::Named(schema) => name(schema),
        TypeExpr::List(inner) => format!("list<{}>", type_expr(inner)),
        TypeExpr::Option(inner) => format!("option<{}>", type_expr(inner)),
        TypeExpr::Result(None, None) => "result".into(),
        TypeExpr::Result(Some(ok), None) => format!("result<{}>", type_expr(ok)),
        TypeExpr::Result(None, Some(err)) => format!("result<_, {}>", type_expr(err)),
        TypeExpr::Result(Some(ok), Some(err)) => format!("result<{}, {}>", type_expr(ok), type_expr(err)),
        TypeExpr::Tuple(items) => format!("tuple<{}>", items.iter().map(type_expr).collect::<Vec<_>>().join(", ")),
        primitive => primitive.to_string(),
    }
}

/// The WIT definition of one schema, indented for a world body.
fn definition(schema_name: &str, schema: &Schema) -> String {
    let members = |keyword: &str, items: Vec<String>| {
        let mut text = format!("  {keyword} {} {{\n", name(schema_name));
        for item in items {
            let _ = writeln!(text, "    {item},");
        }
        text + "  }\n"
    };
    match schema {
        Schema::Record(fields) => members(
            "record",
            fields
                .iter()
                .map(|(f, ty)| format!("{}: {}", name(f), type_expr(ty)))
                .collect(),
        ),
        Schema::Variant(cases) => members(
            "variant",
            cases
                .iter()
                .map(|(case, ty)| match ty {
                    Some(ty) => format!("{}({})", name(case), type_expr(ty)),
                    None => name(case),
                })
                .collect(),
        ),
        Schema::Enum(cases) => members("enum", cases.iter().map(|c| name(c)).collect()),
        Schema::Flags(flags) => members("flags", flags.iter().map(|f| name(f)).collect()),
        Schema::Alias(ty) => format!("  type {} = {};\n", name(schema_name), type_expr(ty)),
    }
}

/// Schemas reachable from `root`, dependencies before dependents (the manifest is validated:
/// every name resolves and there are no cycles).
fn in_dependency_order<'a>(manifest: &'a Manifest, root: &'a str) -> Vec<&'a str> {
    fn visit<'a>(manifest: &'a Manifest, name: &'a str, seen: &mut BTreeSet<&'a str>, out: &mut Vec<&'a str>) {
        if !seen.insert(name) {
            return;
        }
        if let Some(schema) = manifest.schemas.get(name) {
            let mut dependencies = schema.names();
            dependencies.sort_unstable();
            for dependency in dependencies {
                visit(manifest, dependency, seen, out);
            }
        }
        out.push(name);
    }
    let mut out = Vec::new();
    visit(manifest, root, &mut BTreeSet::new(), &mut out);
    out
}

/// The WIT world of `agent` (the package is `agentos-world:<world name>`).
pub fn agent_world(manifest: &Manifest, agent: &str) -> Result<String, WitError> {
    let def = manifest
        .agents
        .get(agent)
        .ok_or_else(|| WitError::NoAgent(agent.to_string()))?;
    let event = def
        .event
        .as_deref()
        .ok_or_else(|| WitError::NoEvent(agent.to_string()))?;
    for (what, checked) in [("world name", manifest.world.name.as_str()), ("agent name", agent)] {
        if !is_identifier(checked) {
            return Err(WitError::NotIdentifier {
                what,
                name: checked.to_string(),
            });
        }
    }
    let effects: BTreeSet<EffectKind> = std::iter::once(EffectKind::Log)
        .chain(manifest.grants_of(def).map(|(_, cap)| cap.effect()))
        .collect();

    let mut wit = format!(
        "// Generated from the AIR of world `{world}`, agent `{agent}`; do not edit.\n\
         // Regenerate: agentos-host air wit <world> --agent {agent}\n\
         package agentos-world:{world};\n\nworld {agent_name} {{\n",
        world = manifest.world.name,
        agent_name = name(agent),
    );
    for effect in &effects {
        let _ = writeln!(wit, "  import {CORE_PACKAGE}/{}@{CORE_VERSION};", effect.name());
    }
    let _ = writeln!(wit, "  export {CORE_PACKAGE}/lifecycle@{CORE_VERSION};\n");
    for schema_name in in_dependency_order(manifest, event) {
        wit += &definition(schema_name, &manifest.schemas[schema_name]);
        wit.push('\n');
    }
    if event != "event" {
        let _ = writeln!(wit, "  type event = {};\n", name(event));
    }
    wit += "  export handle: func(event: event) -> result<_, string>;\n}\n";
    Ok(wit)
}
