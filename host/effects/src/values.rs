//! Event values: parsing WAVE text or JSON into typed component values, printing them back in
//! canonical WAVE, and describing types in WIT syntax for error messages.
//!
//! The event type comes from the component (`handle`'s parameter), so one host binary handles
//! every agent's events without generated code.

use serde_json::Value as Json;
use wasmtime::component::{Type, Val};

/// A type in WIT-like syntax, e.g. `variant { increment(u32), reset }`.
pub fn describe(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(list) => format!("list<{}>", describe(&list.ty())),
        Type::Record(record) => {
            let fields: Vec<String> = record
                .fields()
                .map(|f| format!("{}: {}", f.name, describe(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(tuple) => format!(
            "tuple<{}>",
            tuple.types().map(|t| describe(&t)).collect::<Vec<_>>().join(", ")
        ),
        Type::Variant(variant) => {
            let cases: Vec<String> = variant
                .cases()
                .map(|c| match c.ty {
                    Some(ty) => format!("{}({})", c.name, describe(&ty)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(option) => format!("option<{}>", describe(&option.ty())),
        Type::Result(result) => format!(
            "result<{}, {}>",
            result.ok().map_or("_".into(), |t| describe(&t)),
            result.err().map_or("_".into(), |t| describe(&t))
        ),
        Type::Flags(flags) => format!("flags {{ {} }}", flags.names().collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}

/// Parse WAVE text (`increment(5)`) as a value of `ty`.
pub fn parse_wave(ty: &Type, text: &str) -> Result<Val, ValueError> {
    wasm_wave::from_str::<Val>(ty, text.trim()).map_err(|e| ValueError::Wave(e.to_string()))
}

/// Print a value in canonical WAVE.
pub fn to_wave(val: &Val) -> String {
    wasm_wave::to_string(val).unwrap_or_else(|e| format!("<unprintable value: {e}>"))
}

/// Parse JSON as a value of `ty`. Variants and enums are `"case"` or `{"case": payload}`,
/// records are objects, tuples and lists arrays, options `null` or the value, results
/// `{"ok": v}` / `{"err": v}`, flags an array of names.
pub fn parse_json(ty: &Type, json: &Json) -> Result<Val, ValueError> {
    from_json(ty, json, "event")
}

/// Why text or JSON is not a value of the type it should have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not WAVE text of the type (the parser's message, with where it stopped).
    #[error("{0}")]
    Wave(String),
    /// JSON that does not fit the type: where (`event.field[2]`), and what is wrong there.
    #[error("{at}: {problem}")]
    Json { at: String, problem: String },
}

fn mismatch(at: &str, problem: String) -> ValueError {
    ValueError::Json {
        at: at.to_string(),
        problem,
    }
}

fn from_json(ty: &Type, json: &Json, at: &str) -> Result<Val, ValueError> {
    let wrong = || mismatch(at, format!("expected {}, got {json}", describe(ty)));
    let int = |json: &Json| json.as_i64().map(i128::from).or_else(|| json.as_u64().map(i128::from));
    macro_rules! integer {
        ($variant:ident, $t:ty) => {
            int(json)
                .and_then(|n| <$t>::try_from(n).ok())
                .map(Val::$variant)
                .ok_or_else(wrong)
        };
    }
    match ty {
        Type::Bool => json.as_bool().map(Val::Bool).ok_or_else(wrong),
        Type::S8 => integer!(S8, i8),
        Type::U8 => integer!(U8, u8),
        Type::S16 => integer!(S16, i16),
        Type::U16 => integer!(U16, u16),
        Type::S32 => integer!(S32, i32),
        Type::U32 => integer!(U32, u32),
        Type::S64 => integer!(S64, i64),
        Type::U64 => integer!(U64, u64),
        Type::Float32 => json.as_f64().map(|f| Val::Float32(f as f32)).ok_or_else(wrong),
        Type::Float64 => json.as_f64().map(Val::Float64).ok_or_else(wrong),
        Type::Char => {
            let s = json.as_str().ok_or_else(wrong)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(Val::Char(c)),
                _ => Err(wrong()),
            }
        }
        Type::String => json.as_str().map(|s| Val::String(s.to_string())).ok_or_else(wrong),
        Type::List(list) => {
            let items = json.as_array().ok_or_else(wrong)?;
            let inner = list.ty();
            items
                .iter()
                .enumerate()
                .map(|(i, item)| from_json(&inner, item, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()
                .map(Val::List)
        }
        Type::Record(record) => {
            let object = json.as_object().ok_or_else(wrong)?;
            let known: Vec<&str> = record.fields().map(|f| f.name).collect();
            if let Some(extra) = object.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(mismatch(
                    at,
                    format!("unknown field `{extra}` (fields: {})", known.join(", ")),
                ));
            }
            record
                .fields()
                .map(|field| {
                    let path = format!("{at}.{}", field.name);
                    match object.get(field.name) {
                        Some(value) => from_json(&field.ty, value, &path).map(|v| (field.name.to_string(), v)),
                        None if matches!(field.ty, Type::Option(_)) => Ok((field.name.to_string(), Val::Option(None))),
                        None => Err(mismatch(
                            &path,
                            format!("missing field of type {}", describe(&field.ty)),
                        )),
                    }
                })
                .collect::<Result<_, _>>()
                .map(Val::Record)
        }
        Type::Tuple(tuple) => {
            let items = json.as_array().ok_or_else(wrong)?;
            if items.len() != tuple.types().len() {
                return Err(wrong());
            }
            tuple
                .types()
                .zip(items)
                .enumerate()
                .map(|(i, (t, item))| from_json(&t, item, &format!("{at}.{i}")))
                .collect::<Result<_, _>>()
                .map(Val::Tuple)
        }
        Type::Variant(variant) => {
            let (name, payload) = match json {
                Json::String(name) => (name.as_str(), None),
                Json::Object(object) if object.len() == 1 => {
                    let (name, payload) = object.iter().next().expect("one entry");
                    (name.as_str(), Some(payload))
                }
                _ => return Err(wrong()),
            };
            let case = variant
                .cases()
                .find(|c| c.name == name)
                .ok_or_else(|| mismatch(at, format!("unknown case `{name}`; expected {}", describe(ty))))?;
            match (case.ty, payload) {
                (None, None) => Ok(Val::Variant(name.to_string(), None)),
                (Some(t), Some(p)) => Ok(Val::Variant(
                    name.to_string(),
                    Some(Box::new(from_json(&t, p, &format!("{at}.{name}"))?)),
                )),
                (Some(t), None) => Err(mismatch(
                    at,
                    format!("case `{name}` needs a payload of type {}", describe(&t)),
                )),
                (None, Some(_)) => Err(mismatch(at, format!("case `{name}` takes no payload"))),
            }
        }
        Type::Enum(e) => {
            let name = json.as_str().ok_or_else(wrong)?;
            if e.names().any(|n| n == name) {
                Ok(Val::Enum(name.to_string()))
            } else {
                Err(wrong())
            }
        }
        Type::Option(option) => match json {
            Json::Null => Ok(Val::Option(None)),
            value => Ok(Val::Option(Some(Box::new(from_json(&option.ty(), value, at)?)))),
        },
        Type::Result(result) => {
            let object = json.as_object().filter(|o| o.len() == 1).ok_or_else(wrong)?;
            let (key, value) = object.iter().next().expect("one entry");
            let side = |t: Option<Type>| -> Result<Option<Box<Val>>, ValueError> {
                match t {
                    Some(t) => Ok(Some(Box::new(from_json(&t, value, &format!("{at}.{key}"))?))),
                    None if value.is_null() => Ok(None),
                    None => Err(wrong()),
                }
            };
            match key.as_str() {
                "ok" => Ok(Val::Result(Ok(side(result.ok())?))),
                "err" => Ok(Val::Result(Err(side(result.err())?))),
                _ => Err(wrong()),
            }
        }
        Type::Flags(flags) => {
            let items = json.as_array().ok_or_else(wrong)?;
            let names: Vec<&str> = flags.names().collect();
            items
                .iter()
                .map(|item| {
                    item.as_str()
                        .filter(|s| names.contains(s))
                        .map(str::to_string)
                        .ok_or_else(wrong)
                })
                .collect::<Result<_, _>>()
                .map(Val::Flags)
        }
        _ => Err(mismatch(
            at,
            format!("values of type {} cannot be sent as events", describe(ty)),
        )),
    }
}
