//! Plan values: JSON inside a run, typed by AIR. Replies and trigger events arrive as WAVE text,
//! parsed against the AIR schema (through `wasm-wave`'s dynamic types) and turned into JSON;
//! bindings read JSON by field path.

use crate::values::ValueError;
use agentos_air::{Manifest, Schema, TypeExpr};
use serde_json::Value as Json;
use std::borrow::Cow;
use wasm_wave::value::{Type as WaveType, Value as WaveValue};
use wasm_wave::wasm::{WasmTypeKind, WasmValue};

/// An AIR schema as `wasm-wave` types it.
#[derive(Debug, Clone)]
pub struct Typed {
    pub schema: String,
    pub ty: WaveType,
}

impl Typed {
    /// The dynamic type of schema `schema` (validation guarantees it exists and is not recursive).
    pub fn of_schema(manifest: &Manifest, schema: &str) -> Typed {
        Typed {
            schema: schema.to_string(),
            ty: wave_type(manifest, &TypeExpr::Named(schema.to_string())),
        }
    }

    /// Parse WAVE text as a value of this schema, as JSON, with its canonical WAVE text.
    pub fn parse(&self, text: &str) -> Result<(Json, String), ValueError> {
        let wave = |e: &dyn std::fmt::Display| ValueError::Wave(e.to_string());
        let value: WaveValue = wasm_wave::from_str(&self.ty, text.trim()).map_err(|e| wave(&e))?;
        let canonical = wasm_wave::to_string(&value).map_err(|e| wave(&e))?;
        Ok((to_json(&value), canonical))
    }
}

fn wave_type(manifest: &Manifest, ty: &TypeExpr) -> WaveType {
    let of = |t: &TypeExpr| wave_type(manifest, t);
    match ty {
        TypeExpr::Bool => WaveType::BOOL,
        TypeExpr::U8 => WaveType::U8,
        TypeExpr::U16 => WaveType::U16,
        TypeExpr::U32 => WaveType::U32,
        TypeExpr::U64 => WaveType::U64,
        TypeExpr::S8 => WaveType::S8,
        TypeExpr::S16 => WaveType::S16,
        TypeExpr::S32 => WaveType::S32,
        TypeExpr::S64 => WaveType::S64,
        TypeExpr::F32 => WaveType::F32,
        TypeExpr::F64 => WaveType::F64,
        TypeExpr::Char => WaveType::CHAR,
        TypeExpr::String => WaveType::STRING,
        TypeExpr::List(item) => WaveType::list(of(item)),
        TypeExpr::Option(inner) => WaveType::option(of(inner)),
        TypeExpr::Result(ok, err) => WaveType::result(ok.as_deref().map(of), err.as_deref().map(of)),
        TypeExpr::Tuple(items) => {
            WaveType::tuple(items.iter().map(of).collect::<Vec<_>>()).expect("validated tuples are not empty")
        }
        TypeExpr::Named(name) => match &manifest.schemas[name] {
            Schema::Record(fields) => WaveType::record(fields.iter().map(|(f, t)| (f.as_str(), of(t))))
                .expect("validated records have fields"),
            Schema::Variant(cases) => WaveType::variant(cases.iter().map(|(c, t)| (c.as_str(), t.as_ref().map(of))))
                .expect("validated variants have cases"),
            Schema::Enum(cases) => {
                WaveType::enum_ty(cases.iter().map(String::as_str)).expect("validated enums have cases")
            }
            Schema::Flags(flags) => WaveType::flags(flags.iter().map(String::as_str)).expect("validated flags exist"),
            Schema::Alias(aliased) => of(aliased),
        },
    }
}

/// A dynamic value as JSON, in the form events use (`values::parse_json` reads it back).
fn to_json(value: &WaveValue) -> Json {
    let nested = |v: Cow<'_, WaveValue>| to_json(&v);
    match value.kind() {
        WasmTypeKind::Bool => Json::Bool(value.unwrap_bool()),
        WasmTypeKind::S8 => value.unwrap_s8().into(),
        WasmTypeKind::S16 => value.unwrap_s16().into(),
        WasmTypeKind::S32 => value.unwrap_s32().into(),
        WasmTypeKind::S64 => value.unwrap_s64().into(),
        WasmTypeKind::U8 => value.unwrap_u8().into(),
        WasmTypeKind::U16 => value.unwrap_u16().into(),
        WasmTypeKind::U32 => value.unwrap_u32().into(),
        WasmTypeKind::U64 => value.unwrap_u64().into(),
        WasmTypeKind::F32 => f64::from(value.unwrap_f32()).into(),
        WasmTypeKind::F64 => value.unwrap_f64().into(),
        WasmTypeKind::Char => value.unwrap_char().to_string().into(),
        WasmTypeKind::String => value.unwrap_string().into_owned().into(),
        WasmTypeKind::List | WasmTypeKind::FixedLengthList => Json::Array(value.unwrap_list().map(nested).collect()),
        WasmTypeKind::Tuple => Json::Array(value.unwrap_tuple().map(nested).collect()),
        WasmTypeKind::Record => Json::Object(
            value
                .unwrap_record()
                .map(|(name, v)| (name.into_owned(), to_json(&v)))
                .collect(),
        ),
        WasmTypeKind::Variant => match value.unwrap_variant() {
            (case, None) => Json::String(case.into_owned()),
            (case, Some(payload)) => Json::Object([(case.into_owned(), to_json(&payload))].into_iter().collect()),
        },
        WasmTypeKind::Enum => Json::String(value.unwrap_enum().into_owned()),
        WasmTypeKind::Option => value.unwrap_option().map_or(Json::Null, nested),
        WasmTypeKind::Result => {
            let (case, payload) = match value.unwrap_result() {
                Ok(payload) => ("ok", payload),
                Err(payload) => ("err", payload),
            };
            Json::Object(
                [(case.to_string(), payload.map_or(Json::Null, nested))]
                    .into_iter()
                    .collect(),
            )
        }
        WasmTypeKind::Flags => Json::Array(value.unwrap_flags().map(|f| Json::String(f.into_owned())).collect()),
        _ => Json::Null,
    }
}

/// The value at `fields` inside `value` (record fields by name).
pub fn at_path<'a>(value: &'a Json, fields: &[&str]) -> Option<&'a Json> {
    fields.iter().try_fold(value, |v, field| v.get(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wave_replies_parse_against_air_schemas_into_json() {
        let manifest = Manifest::parse_toml(
            r#"
            [world]
            name = "w"
            [schemas.summary]
            record = ["text: string", "words: u32", "tags: list<tag>", "note: option<string>"]
            [schemas.tag]
            enum = ["news", "sport"]
            "#,
            "w.toml",
        )
        .unwrap();
        let typed = Typed::of_schema(&manifest, "summary");
        let (json, canonical) = typed
            .parse(r#"{text: "hi", words: 1, tags: [news], note: none}"#)
            .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"text": "hi", "words": 1, "tags": ["news"], "note": null})
        );
        // Canonical WAVE leaves out optional fields that are `none`.
        assert_eq!(canonical, r#"{text: "hi", words: 1, tags: [news]}"#);
        assert_eq!(at_path(&json, &["text"]), Some(&Json::from("hi")));
        let error = typed.parse(r#"{text: "hi"}"#).unwrap_err();
        assert!(error.to_string().contains("words"), "{error}");
    }
}
