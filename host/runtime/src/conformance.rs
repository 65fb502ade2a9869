//! Conformance of a component to its agent's AIR: the component's event type (the parameter of
//! its `handle` export) must be, structurally, the variant schema the manifest declares. Every
//! difference is reported with its path, e.g. `event.increment: AIR says u32, the component has
//! u64`. Pure: it compares an AIR schema with a wasmtime component type.

use agentos_air::{Manifest, Schema, TypeExpr};
use wasmtime::component::Type;

/// Compare `ty` with the schema `schema` of `manifest`; returns every difference found.
pub fn differences(manifest: &Manifest, schema: &str, ty: &Type) -> Vec<String> {
    let mut found = Vec::new();
    compare_named(manifest, schema, ty, "event", &mut found);
    found
}

fn compare_named(manifest: &Manifest, schema: &str, ty: &Type, at: &str, found: &mut Vec<String>) {
    let Some(definition) = manifest.schemas.get(schema) else {
        found.push(format!("{at}: AIR has no schema `{schema}`"));
        return;
    };
    let describe = crate::values::describe;
    let mismatch = |found: &mut Vec<String>, expected: &str| {
        found.push(format!("{at}: AIR says {expected}, the component has {}", describe(ty)));
    };
    match (definition, ty) {
        (Schema::Alias(expr), _) => compare(manifest, expr, ty, at, found),
        (Schema::Record(fields), Type::Record(record)) => {
            let actual: Vec<(String, Type)> = record.fields().map(|f| (f.name.to_string(), f.ty)).collect();
            compare_members(
                at,
                "field",
                &fields.iter().map(|(n, t)| (n.as_str(), Some(t))).collect::<Vec<_>>(),
                &actual.iter().map(|(n, t)| (n.as_str(), Some(t))).collect::<Vec<_>>(),
                manifest,
                found,
            );
        }
        (Schema::Variant(cases), Type::Variant(variant)) => {
            let actual: Vec<(String, Option<Type>)> = variant.cases().map(|c| (c.name.to_string(), c.ty)).collect();
            compare_members(
                at,
                "case",
                &cases.iter().map(|(n, t)| (n.as_str(), t.as_ref())).collect::<Vec<_>>(),
                &actual.iter().map(|(n, t)| (n.as_str(), t.as_ref())).collect::<Vec<_>>(),
                manifest,
                found,
            );
        }
        (Schema::Enum(names), Type::Enum(actual)) => {
            if !names.iter().map(String::as_str).eq(actual.names()) {
                mismatch(found, &format!("enum {{ {} }}", names.join(", ")));
            }
        }
        (Schema::Flags(names), Type::Flags(actual)) => {
            if !names.iter().map(String::as_str).eq(actual.names()) {
                mismatch(found, &format!("flags {{ {} }}", names.join(", ")));
            }
        }
        (definition, _) => mismatch(found, &format!("{} `{schema}`", kind(definition))),
    }
}

fn kind(schema: &Schema) -> &'static str {
    match schema {
        Schema::Record(_) => "a record",
        Schema::Variant(_) => "a variant",
        Schema::Enum(_) => "an enum",
        Schema::Flags(_) => "flags",
        Schema::Alias(_) => "a type",
    }
}

/// Fields or cases, in order: names, then payload types.
fn compare_members(
    at: &str,
    what: &str,
    expected: &[(&str, Option<&TypeExpr>)],
    actual: &[(&str, Option<&Type>)],
    manifest: &Manifest,
    found: &mut Vec<String>,
) {
    let expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    let actual_names: Vec<&str> = actual.iter().map(|(n, _)| *n).collect();
    if expected_names != actual_names {
        let missing: Vec<&str> = expected_names
            .iter()
            .filter(|n| !actual_names.contains(n))
            .copied()
            .collect();
        let extra: Vec<&str> = actual_names
            .iter()
            .filter(|n| !expected_names.contains(n))
            .copied()
            .collect();
        let mut detail = Vec::new();
        if !missing.is_empty() {
            detail.push(format!("the component lacks {what} {}", quoted(&missing)));
        }
        if !extra.is_empty() {
            detail.push(format!("the component adds {what} {}", quoted(&extra)));
        }
        if detail.is_empty() {
            detail.push(format!(
                "{what}s are in another order: AIR {}, the component {}",
                quoted(&expected_names),
                quoted(&actual_names)
            ));
        }
        found.push(format!("{at}: {}", detail.join("; ")));
        return;
    }
    for ((name, expected), (_, actual)) in expected.iter().zip(actual) {
        let at = format!("{at}.{name}");
        match (expected, actual) {
            (Some(expected), Some(actual)) => compare(manifest, expected, actual, &at, found),
            (None, None) => {}
            (Some(expected), None) => found.push(format!("{at}: AIR says {expected}, the component has no payload")),
            (None, Some(actual)) => found.push(format!(
                "{at}: AIR says no payload, the component has {}",
                crate::values::describe(actual)
            )),
        }
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn compare(manifest: &Manifest, expected: &TypeExpr, ty: &Type, at: &str, found: &mut Vec<String>) {
    let same = match (expected, ty) {
        (TypeExpr::Named(schema), _) => return compare_named(manifest, schema, ty, at, found),
        (TypeExpr::List(inner), Type::List(list)) => return compare(manifest, inner, &list.ty(), at, found),
        (TypeExpr::Option(inner), Type::Option(option)) => return compare(manifest, inner, &option.ty(), at, found),
        // Same sides present: compare each; otherwise one mismatch for the whole result (below).
        (TypeExpr::Result(ok, err), Type::Result(result))
            if ok.is_some() == result.ok().is_some() && err.is_some() == result.err().is_some() =>
        {
            for (side, want, have) in [("ok", ok, result.ok()), ("err", err, result.err())] {
                if let (Some(want), Some(have)) = (want, have) {
                    compare(manifest, want, &have, &format!("{at}.{side}"), found);
                }
            }
            return;
        }
        (TypeExpr::Tuple(items), Type::Tuple(tuple)) => {
            let actual: Vec<Type> = tuple.types().collect();
            if actual.len() == items.len() {
                for (n, (expected, actual)) in items.iter().zip(&actual).enumerate() {
                    compare(manifest, expected, actual, &format!("{at}.{n}"), found);
                }
                return;
            }
            false
        }
        (TypeExpr::Bool, Type::Bool)
        | (TypeExpr::U8, Type::U8)
        | (TypeExpr::U16, Type::U16)
        | (TypeExpr::U32, Type::U32)
        | (TypeExpr::U64, Type::U64)
        | (TypeExpr::S8, Type::S8)
        | (TypeExpr::S16, Type::S16)
        | (TypeExpr::S32, Type::S32)
        | (TypeExpr::S64, Type::S64)
        | (TypeExpr::F32, Type::Float32)
        | (TypeExpr::F64, Type::Float64)
        | (TypeExpr::Char, Type::Char)
        | (TypeExpr::String, Type::String) => true,
        _ => false,
    };
    if !same {
        found.push(format!(
            "{at}: AIR says {expected}, the component has {}",
            crate::values::describe(ty)
        ));
    }
}
