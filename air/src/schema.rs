//! Schemas: the typed vocabulary of a world's events — records, variants, enums, flags and type
//! aliases over primitives, lists, options, results, tuples and other schemas (no recursion, as
//! in WIT).
//!
//! Authored WIT-like, one string per field or case:
//!
//! ```toml
//! [schemas.point]
//! record = ["x: s32", "y: s32"]
//! [schemas.counter-event]
//! variant = ["increment(u32)", "move(point)", "reset"]
//! [schemas.color]
//! enum = ["red", "green"]
//! [schemas.perms]
//! flags = ["read", "write"]
//! [schemas.names]
//! type = "list<option<string>>"
//! ```
//!
//! The model holds parsed types; its serde form (text and canonical) is the normalised strings,
//! so `list< string >` and `list<string>` are the same schema with the same hash.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A type expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TypeExpr {
    Bool,
    U8,
    U16,
    U32,
    U64,
    S8,
    S16,
    S32,
    S64,
    F32,
    F64,
    Char,
    String,
    List(Box<TypeExpr>),
    Option(Box<TypeExpr>),
    Result(Option<Box<TypeExpr>>, Option<Box<TypeExpr>>),
    Tuple(Vec<TypeExpr>),
    /// Another schema of the world, by name.
    Named(String),
}

/// A schema definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AuthoredSchema", into = "AuthoredSchema")]
pub enum Schema {
    Record(Vec<(String, TypeExpr)>),
    Variant(Vec<(String, Option<TypeExpr>)>),
    Enum(Vec<String>),
    Flags(Vec<String>),
    /// Another name for a type expression.
    Alias(TypeExpr),
}

/// The authored (and canonical) form: strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
enum AuthoredSchema {
    Record(Vec<String>),
    Variant(Vec<String>),
    Enum(Vec<String>),
    Flags(Vec<String>),
    Type(String),
}

impl TryFrom<AuthoredSchema> for Schema {
    type Error = String;

    fn try_from(authored: AuthoredSchema) -> Result<Schema, String> {
        let schema = match authored {
            AuthoredSchema::Record(fields) => Schema::Record(
                fields
                    .iter()
                    .map(|field| {
                        let (name, ty) = field
                            .split_once(':')
                            .ok_or_else(|| format!("record field `{field}` is not `name: type`"))?;
                        Ok((identifier(name.trim())?, TypeExpr::parse(ty)?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            AuthoredSchema::Variant(cases) => Schema::Variant(
                cases
                    .iter()
                    .map(|case| match case.split_once('(') {
                        Some((name, rest)) => {
                            let ty = rest
                                .trim_end()
                                .strip_suffix(')')
                                .ok_or_else(|| format!("variant case `{case}` is not `name(type)` or `name`"))?;
                            Ok((identifier(name.trim())?, Some(TypeExpr::parse(ty)?)))
                        }
                        None => Ok((identifier(case.trim())?, None)),
                    })
                    .collect::<Result<_, String>>()?,
            ),
            AuthoredSchema::Enum(cases) => {
                Schema::Enum(cases.iter().map(|c| identifier(c.trim())).collect::<Result<_, _>>()?)
            }
            AuthoredSchema::Flags(flags) => {
                Schema::Flags(flags.iter().map(|f| identifier(f.trim())).collect::<Result<_, _>>()?)
            }
            AuthoredSchema::Type(ty) => Schema::Alias(TypeExpr::parse(&ty)?),
        };
        Ok(schema)
    }
}

impl From<Schema> for AuthoredSchema {
    fn from(schema: Schema) -> AuthoredSchema {
        match schema {
            Schema::Record(fields) => {
                AuthoredSchema::Record(fields.iter().map(|(name, ty)| format!("{name}: {ty}")).collect())
            }
            Schema::Variant(cases) => AuthoredSchema::Variant(
                cases
                    .iter()
                    .map(|(name, ty)| match ty {
                        Some(ty) => format!("{name}({ty})"),
                        None => name.clone(),
                    })
                    .collect(),
            ),
            Schema::Enum(cases) => AuthoredSchema::Enum(cases),
            Schema::Flags(flags) => AuthoredSchema::Flags(flags),
            Schema::Alias(ty) => AuthoredSchema::Type(ty.to_string()),
        }
    }
}

/// Whether `name` is a WIT identifier: lowercase words of letters and digits, each starting
/// with a letter, joined by `-`.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

fn identifier(name: &str) -> Result<String, String> {
    if is_identifier(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "`{name}` is not a WIT identifier (lowercase words of letters and digits joined by `-`)"
        ))
    }
}

impl TypeExpr {
    /// Parse `list<option<string>>`, `result<_, string>`, `tuple<u32, point>`, `point`, ...
    pub fn parse(text: &str) -> Result<TypeExpr, String> {
        let mut parser = Parser { text, at: 0, depth: 0 };
        let ty = parser.ty()?;
        parser.skip_space();
        if parser.at != text.len() {
            return Err(format!(
                "unexpected `{}` after the type in `{text}`",
                &text[parser.at..]
            ));
        }
        Ok(ty)
    }

    /// Schemas this expression names, directly or inside.
    pub fn names(&self) -> Vec<&str> {
        match self {
            TypeExpr::Named(name) => vec![name.as_str()],
            TypeExpr::List(inner) | TypeExpr::Option(inner) => inner.names(),
            TypeExpr::Result(ok, err) => ok.iter().chain(err.iter()).flat_map(|t| t.names()).collect(),
            TypeExpr::Tuple(items) => items.iter().flat_map(TypeExpr::names).collect(),
            _ => Vec::new(),
        }
    }
}

impl Schema {
    /// Schemas this one refers to.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Schema::Record(fields) => fields.iter().flat_map(|(_, ty)| ty.names()).collect(),
            Schema::Variant(cases) => cases
                .iter()
                .flat_map(|(_, ty)| ty.iter().flat_map(|t| t.names()))
                .collect(),
            Schema::Alias(ty) => ty.names(),
            Schema::Enum(_) | Schema::Flags(_) => Vec::new(),
        }
    }

    /// Names of fields, cases or flags, for duplicate checks.
    pub fn member_names(&self) -> Vec<&str> {
        match self {
            Schema::Record(fields) => fields.iter().map(|(n, _)| n.as_str()).collect(),
            Schema::Variant(cases) => cases.iter().map(|(n, _)| n.as_str()).collect(),
            Schema::Enum(names) | Schema::Flags(names) => names.iter().map(String::as_str).collect(),
            Schema::Alias(_) => Vec::new(),
        }
    }
}

impl fmt::Display for TypeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let simple = match self {
            TypeExpr::Bool => "bool",
            TypeExpr::U8 => "u8",
            TypeExpr::U16 => "u16",
            TypeExpr::U32 => "u32",
            TypeExpr::U64 => "u64",
            TypeExpr::S8 => "s8",
            TypeExpr::S16 => "s16",
            TypeExpr::S32 => "s32",
            TypeExpr::S64 => "s64",
            TypeExpr::F32 => "f32",
            TypeExpr::F64 => "f64",
            TypeExpr::Char => "char",
            TypeExpr::String => "string",
            TypeExpr::Named(name) => name,
            TypeExpr::List(inner) => return write!(f, "list<{inner}>"),
            TypeExpr::Option(inner) => return write!(f, "option<{inner}>"),
            TypeExpr::Result(None, None) => "result",
            TypeExpr::Result(Some(ok), None) => return write!(f, "result<{ok}>"),
            TypeExpr::Result(None, Some(err)) => return write!(f, "result<_, {err}>"),
            TypeExpr::Result(Some(ok), Some(err)) => return write!(f, "result<{ok}, {err}>"),
            TypeExpr::Tuple(items) => {
                let items: Vec<String> = items.iter().map(ToString::to_string).collect();
                return write!(f, "tuple<{}>", items.join(", "));
            }
        };
        f.write_str(simple)
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    /// How many type expressions enclose the one being parsed.
    depth: usize,
}

/// Deepest nesting of type expressions accepted (`list<option<...>>`).
const TYPE_DEPTH_MAX: usize = 32;

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.text[self.at..].starts_with(' ') {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: char) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: char) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!(
                "expected `{token}` at position {} of `{}`",
                self.at + 1,
                self.text
            ))
        }
    }

    fn word(&mut self) -> Result<&str, String> {
        self.skip_space();
        let rest = &self.text[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(format!(
                "expected a type at position {} of `{}`",
                self.at + 1,
                self.text
            ));
        }
        self.at += len;
        Ok(&rest[..len])
    }

    fn ty(&mut self) -> Result<TypeExpr, String> {
        if self.depth >= TYPE_DEPTH_MAX {
            return Err(format!(
                "types are nested more than {TYPE_DEPTH_MAX} deep at position {} of `{}`",
                self.at + 1,
                self.text
            ));
        }
        self.depth += 1;
        let ty = self.ty_here();
        self.depth -= 1;
        ty
    }

    fn ty_here(&mut self) -> Result<TypeExpr, String> {
        let word = self.word()?.to_string();
        Ok(match word.as_str() {
            "bool" => TypeExpr::Bool,
            "u8" => TypeExpr::U8,
            "u16" => TypeExpr::U16,
            "u32" => TypeExpr::U32,
            "u64" => TypeExpr::U64,
            "s8" => TypeExpr::S8,
            "s16" => TypeExpr::S16,
            "s32" => TypeExpr::S32,
            "s64" => TypeExpr::S64,
            "f32" => TypeExpr::F32,
            "f64" => TypeExpr::F64,
            "char" => TypeExpr::Char,
            "string" => TypeExpr::String,
            "list" | "option" => {
                self.expect('<')?;
                let inner = Box::new(self.ty()?);
                self.expect('>')?;
                if word == "list" {
                    TypeExpr::List(inner)
                } else {
                    TypeExpr::Option(inner)
                }
            }
            "result" => {
                if !self.eat('<') {
                    return Ok(TypeExpr::Result(None, None));
                }
                let ok = if self.eat('_') {
                    None
                } else {
                    Some(Box::new(self.ty()?))
                };
                let err = if self.eat(',') {
                    Some(Box::new(self.ty()?))
                } else {
                    None
                };
                self.expect('>')?;
                if ok.is_none() && err.is_none() {
                    return Err(format!("`result<_>` in `{}` says nothing; write `result`", self.text));
                }
                TypeExpr::Result(ok, err)
            }
            "tuple" => {
                self.expect('<')?;
                let mut items = vec![self.ty()?];
                while self.eat(',') {
                    items.push(self.ty()?);
                }
                self.expect('>')?;
                TypeExpr::Tuple(items)
            }
            name => TypeExpr::Named(identifier(name)?),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_type_nested_past_the_limit_is_refused_not_recursed_into() {
        let nested = |depth: usize| format!("{}u8{}", "list<".repeat(depth), ">".repeat(depth));
        // `TYPE_DEPTH_MAX` type expressions in all: that many - 1 lists around a `u8`.
        assert!(super::TypeExpr::parse(&nested(super::TYPE_DEPTH_MAX - 1)).is_ok());
        let error = super::TypeExpr::parse(&nested(super::TYPE_DEPTH_MAX)).unwrap_err();
        assert!(error.contains("nested more than"), "{error}");
        // Deep enough to overflow a thread's stack if it were recursed into.
        assert!(super::TypeExpr::parse(&nested(200_000)).is_err());
    }

    use super::*;

    #[test]
    fn type_expressions_parse_and_print_normalised() {
        for (text, normal) in [
            ("list< option<string> >", "list<option<string>>"),
            ("result<_,string>", "result<_, string>"),
            ("result", "result"),
            ("result<u32>", "result<u32>"),
            ("tuple<u32,point , list<u8>>", "tuple<u32, point, list<u8>>"),
            ("counter-event", "counter-event"),
        ] {
            assert_eq!(TypeExpr::parse(text).unwrap().to_string(), normal, "{text}");
        }
        for (text, problem) in [
            ("list<string", "expected `>`"),
            ("list string", "expected `<`"),
            ("Point", "`Point` is not a WIT identifier"),
            ("u32 u32", "unexpected `u32`"),
            ("result<_>", "says nothing"),
            ("", "expected a type"),
        ] {
            let error = TypeExpr::parse(text).unwrap_err();
            assert!(error.contains(problem), "{text}: {error}");
        }
    }

    #[test]
    fn schemas_read_their_authored_form_and_write_it_back_normalised() {
        let text = r#"
            point = { record = ["x: s32", "y :s32"] }
            event = { variant = ["increment(u32)", "move( point )", "reset"] }
            color = { enum = ["red", "green"] }
        "#;
        let schemas: std::collections::BTreeMap<String, Schema> = toml::from_str(text).unwrap();
        assert_eq!(
            schemas["event"],
            Schema::Variant(vec![
                ("increment".into(), Some(TypeExpr::U32)),
                ("move".into(), Some(TypeExpr::Named("point".into()))),
                ("reset".into(), None),
            ])
        );
        let json = serde_json::to_string(&schemas).unwrap();
        assert!(json.contains(r#""record":["x: s32","y: s32"]"#), "{json}");
        let error = toml::from_str::<std::collections::BTreeMap<String, Schema>>("bad = { record = [\"x s32\"] }")
            .unwrap_err()
            .to_string();
        assert!(error.contains("record field `x s32` is not `name: type`"), "{error}");
    }
}
