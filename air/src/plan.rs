//! Plans: automations as data — a named, finite, acyclic graph of typed steps that call effects
//! under the plan's own grants, send events to agents (and await their replies), and store or
//! read blobs, with each step's inputs either literals or field paths into earlier steps'
//! outputs. No loops, no conditions, no expressions: code belongs in components.
//!
//! Authored in `world.toml`:
//!
//! ```toml
//! [plans.digest]
//! trigger = { every_ms = 3600000 }      # or "manual", { cron = "0 0 7 * * *" }, { event = "schema" }
//! grants = ["intranet", "store", "to-agents"]
//!
//! [plans.digest.steps.fetch]
//! do = "http"
//! with = { url = "http://127.0.0.1:8080/news" }
//! retry = { attempts = 3, backoff_ms = 200 }
//!
//! [plans.digest.steps.summarize]
//! do = "send"
//! agent = "summarizer"
//! case = "summarize"
//! with = { text = { from = "fetch.body" } }
//! reply = "summary"
//! timeout_ms = 60000
//! ```
//!
//! Each step's output has a type: `http` → `{ status: u16, body: string }`, `llm` → `{ text:
//! string, finish-reason: string, input-tokens: u32, output-tokens: u32 }`, `blob-put` → `{
//! digest: string }`, `blob-get` → `{ contents: string }`, `send` → its `reply` schema (none
//! without one). Validation type-checks every input against what it is bound to.

use crate::schema::TypeExpr;
use crate::{Cap, Manifest, Schema};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One automation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDef {
    /// What starts a run.
    pub trigger: Trigger,
    /// Schema of a manual run's input (an event trigger's input is its event).
    #[serde(default)]
    pub input: Option<String>,
    /// Names of `caps` entries the plan's effect and send steps run under.
    #[serde(default)]
    pub grants: Vec<String>,
    pub steps: BTreeMap<String, PlanStep>,
}

/// What starts a plan run. Authored as `"manual"`, `{ every_ms = N }`, `{ cron = "…" }` or
/// `{ event = "schema" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Only `agentos-host plan run`.
    Manual,
    /// Every this many milliseconds of world time.
    Every(u64),
    /// A cron expression (`sec min hour day-of-month month day-of-week [year]`, UTC; a
    /// five-field expression gets seconds = 0).
    Cron(String),
    /// Each event of this schema sent to `plan:<name>` starts a run with it as input.
    Event(String),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum AuthoredTrigger {
    Word(String),
    Table(TriggerTable),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    every_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<String>,
}

#[derive(Serialize, Deserialize)]
enum CanonicalTrigger {
    Manual,
    Every(u64),
    Cron(String),
    Event(String),
}

impl Serialize for Trigger {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        if ser.is_human_readable() {
            let table = |every_ms, cron, event| AuthoredTrigger::Table(TriggerTable { every_ms, cron, event });
            match self.clone() {
                Trigger::Manual => AuthoredTrigger::Word("manual".into()),
                Trigger::Every(ms) => table(Some(ms), None, None),
                Trigger::Cron(cron) => table(None, Some(cron), None),
                Trigger::Event(event) => table(None, None, Some(event)),
            }
            .serialize(ser)
        } else {
            match self.clone() {
                Trigger::Manual => CanonicalTrigger::Manual,
                Trigger::Every(ms) => CanonicalTrigger::Every(ms),
                Trigger::Cron(cron) => CanonicalTrigger::Cron(cron),
                Trigger::Event(event) => CanonicalTrigger::Event(event),
            }
            .serialize(ser)
        }
    }
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Trigger, D::Error> {
        use serde::de::Error;
        if !de.is_human_readable() {
            return Ok(match CanonicalTrigger::deserialize(de)? {
                CanonicalTrigger::Manual => Trigger::Manual,
                CanonicalTrigger::Every(ms) => Trigger::Every(ms),
                CanonicalTrigger::Cron(cron) => Trigger::Cron(cron),
                CanonicalTrigger::Event(event) => Trigger::Event(event),
            });
        }
        const FORMS: &str = r#"a trigger is "manual", { every_ms = N }, { cron = "…" } or { event = "schema" }"#;
        match AuthoredTrigger::deserialize(de).map_err(|_| D::Error::custom(FORMS))? {
            AuthoredTrigger::Word(word) if word == "manual" => Ok(Trigger::Manual),
            AuthoredTrigger::Word(word) => Err(D::Error::custom(format!("`{word}`: {FORMS}"))),
            AuthoredTrigger::Table(table) => match (table.every_ms, table.cron, table.event) {
                (Some(ms), None, None) => Ok(Trigger::Every(ms)),
                (None, Some(cron), None) => Ok(Trigger::Cron(cron)),
                (None, None, Some(event)) => Ok(Trigger::Event(event)),
                _ => Err(D::Error::custom(format!(
                    "give exactly one of every_ms, cron, event: {FORMS}"
                ))),
            },
        }
    }
}

impl Trigger {
    /// The cron schedule of a `cron` trigger, parsed (five fields get seconds = 0).
    pub fn cron_schedule(expression: &str) -> Result<cron::Schedule, String> {
        let fields = expression.split_whitespace().count();
        let full = if fields == 5 {
            format!("0 {expression}")
        } else {
            expression.to_string()
        };
        full.parse::<cron::Schedule>().map_err(|e| {
            // The parser's message points at the text over several lines; its last says why.
            let why = e.to_string();
            format!(
                "`{expression}` is not a cron expression ({}); fields are `sec min hour day-of-month month day-of-week [year]`, or the usual five without seconds",
                why.lines().last().unwrap_or_default().trim()
            )
        })
    }

    /// When a scheduled trigger next fires after `last_ms` (world time, ms since the Unix
    /// epoch); `None` for manual and event triggers.
    pub fn next_due_ms(&self, last_ms: u64) -> Option<u64> {
        match self {
            Trigger::Every(every) => Some(last_ms.saturating_add(*every)),
            Trigger::Cron(expression) => {
                let schedule = Trigger::cron_schedule(expression).ok()?;
                let after = chrono::DateTime::from_timestamp_millis(i64::try_from(last_ms).ok()?)?;
                let next = schedule.after(&after).next()?;
                u64::try_from(next.timestamp_millis()).ok()
            }
            Trigger::Manual | Trigger::Event(_) => None,
        }
    }

    /// The latest time a scheduled trigger fires after `last_ms` and at or before `now_ms`:
    /// where a world that was not running catches up with a single run. `None` when it does not
    /// fire in that span, and for manual and event triggers.
    pub fn latest_due_ms(&self, last_ms: u64, now_ms: u64) -> Option<u64> {
        let latest = match self {
            Trigger::Every(every) if *every > 0 => {
                let first = last_ms.checked_add(*every)?;
                first + (now_ms.checked_sub(first)? / every) * every
            }
            Trigger::Cron(expression) => {
                let schedule = Trigger::cron_schedule(expression).ok()?;
                let after_now = chrono::DateTime::from_timestamp_millis(i64::try_from(now_ms.checked_add(1)?).ok()?)?;
                let previous = schedule.after(&after_now).next_back()?;
                u64::try_from(previous.timestamp_millis()).ok()?
            }
            _ => return None,
        };
        (latest > last_ms && latest <= now_ms).then_some(latest)
    }
}

/// One step: what it does, its inputs, what it waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    #[serde(rename = "do")]
    pub action: StepAction,
    /// The agent a `send` step sends to.
    #[serde(default)]
    pub agent: Option<String>,
    /// The case of the agent's event variant a `send` step sends.
    #[serde(default)]
    pub case: Option<String>,
    /// Schema of the event a `send` step awaits: the agent replies by emitting it to
    /// `plan:<name>`. Without one the step ends when the agent's step does.
    #[serde(default)]
    pub reply: Option<String>,
    /// Inputs by name: literals, or `{ from = "step.field" }` / `{ from = "input.field" }`.
    #[serde(default)]
    pub with: BTreeMap<String, StepInput>,
    /// Steps that must finish first (besides those its inputs come from).
    #[serde(default)]
    pub after: Vec<String>,
    /// Attempts for an idempotent effect that fails (not for denials).
    #[serde(default)]
    pub retry: Option<Retry>,
    /// How long a `send` step waits for its agent (world time); default 60 s.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl PlanStep {
    pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
    pub const MAX_ATTEMPTS: u32 = 10;

    /// How long a `send` step waits.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(PlanStep::DEFAULT_TIMEOUT_MS)
    }

    /// The steps this one needs finished: `after` and the steps its inputs come from.
    pub fn depends_on(&self) -> BTreeSet<&str> {
        let bound = self.with.values().filter_map(|input| match input {
            StepInput::From(path) => path.split('.').next().filter(|step| *step != INPUT),
            StepInput::Literal(_) => None,
        });
        self.after.iter().map(String::as_str).chain(bound).collect()
    }

    /// Whether running the step twice is the same as once (only those may be retried).
    pub fn idempotent(&self) -> bool {
        match self.action {
            StepAction::Http => match self.with.get("method") {
                None => true,
                Some(StepInput::Literal(method)) => {
                    matches!(method.as_str(), "\"GET\"" | "\"HEAD\"" | "\"OPTIONS\"")
                }
                Some(StepInput::From(_)) => false,
            },
            StepAction::Llm | StepAction::BlobPut | StepAction::BlobGet => true,
            StepAction::Send => false,
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepAction {
    Http,
    Llm,
    BlobPut,
    BlobGet,
    Send,
}

impl StepAction {
    pub fn name(self) -> &'static str {
        match self {
            StepAction::Http => "http",
            StepAction::Llm => "llm",
            StepAction::BlobPut => "blob-put",
            StepAction::BlobGet => "blob-get",
            StepAction::Send => "send",
        }
    }

    /// The effect whose capability covers the step (`emit` for sending to an agent).
    pub fn effect(self) -> crate::EffectKind {
        match self {
            StepAction::Http => crate::EffectKind::Http,
            StepAction::Llm => crate::EffectKind::Llm,
            StepAction::BlobPut | StepAction::BlobGet => crate::EffectKind::Blob,
            StepAction::Send => crate::EffectKind::Emit,
        }
    }

    /// The inputs an effect step takes: (name, type, required). `send` takes its case's payload.
    pub fn inputs(self) -> &'static [(&'static str, TypeExpr, bool)] {
        match self {
            StepAction::Http => &[
                ("url", TypeExpr::String, true),
                ("method", TypeExpr::String, false),
                ("body", TypeExpr::String, false),
            ],
            StepAction::Llm => &[
                ("prompt", TypeExpr::String, true),
                ("model", TypeExpr::String, true),
                ("system", TypeExpr::String, false),
                ("provider", TypeExpr::String, false),
                ("max-tokens", TypeExpr::U32, false),
            ],
            StepAction::BlobPut => &[("contents", TypeExpr::String, true)],
            StepAction::BlobGet => &[("digest", TypeExpr::String, true)],
            StepAction::Send => &[],
        }
    }

    /// The record an effect step produces; `None` for `send` (its reply schema, if any).
    pub fn output(self) -> Option<&'static [(&'static str, TypeExpr)]> {
        match self {
            StepAction::Http => Some(&[("status", TypeExpr::U16), ("body", TypeExpr::String)]),
            StepAction::Llm => Some(&[
                ("text", TypeExpr::String),
                ("finish-reason", TypeExpr::String),
                ("input-tokens", TypeExpr::U32),
                ("output-tokens", TypeExpr::U32),
            ]),
            StepAction::BlobPut => Some(&[("digest", TypeExpr::String)]),
            StepAction::BlobGet => Some(&[("contents", TypeExpr::String)]),
            StepAction::Send => None,
        }
    }
}

/// The name bindings use for the run's input.
pub const INPUT: &str = "input";

/// A step input: a literal (kept as JSON text so the model stays encodable) or a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepInput {
    Literal(String),
    /// `step.field.field…` or `input.field…`.
    From(String),
}

#[derive(Serialize, Deserialize)]
enum CanonicalInput {
    Literal(String),
    From(String),
}

impl Serialize for StepInput {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match (self, ser.is_human_readable()) {
            (StepInput::From(path), true) => BTreeMap::from([("from", path)]).serialize(ser),
            (StepInput::Literal(json), true) => serde_json::from_str::<serde_json::Value>(json)
                .map_err(serde::ser::Error::custom)?
                .serialize(ser),
            (StepInput::From(path), false) => CanonicalInput::From(path.clone()).serialize(ser),
            (StepInput::Literal(json), false) => CanonicalInput::Literal(json.clone()).serialize(ser),
        }
    }
}

impl<'de> Deserialize<'de> for StepInput {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<StepInput, D::Error> {
        if !de.is_human_readable() {
            return Ok(match CanonicalInput::deserialize(de)? {
                CanonicalInput::Literal(json) => StepInput::Literal(json),
                CanonicalInput::From(path) => StepInput::From(path),
            });
        }
        let value = serde_json::Value::deserialize(de)?;
        Ok(match value {
            serde_json::Value::Object(table) if table.len() == 1 && table.contains_key("from") => {
                match &table["from"] {
                    serde_json::Value::String(path) => StepInput::From(path.clone()),
                    other => {
                        return Err(serde::de::Error::custom(format!(
                            "`from` takes a field path like \"fetch.body\", not {other}"
                        )));
                    }
                }
            }
            literal => StepInput::Literal(literal.to_string()),
        })
    }
}

/// Retries of a failing idempotent effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before each retry, doubled after each.
    #[serde(default)]
    pub backoff_ms: u64,
}

impl PlanDef {
    /// Step names in the order a run executes them: dependencies first, ties by name. `None`
    /// when the steps form a cycle (validation reports it).
    pub fn order(&self) -> Option<Vec<&str>> {
        let mut done: Vec<&str> = Vec::with_capacity(self.steps.len());
        let mut left: BTreeMap<&str, BTreeSet<&str>> = self
            .steps
            .iter()
            .map(|(name, step)| {
                let needs = step
                    .depends_on()
                    .into_iter()
                    .filter(|d| self.steps.contains_key(*d))
                    .collect();
                (name.as_str(), needs)
            })
            .collect();
        while !left.is_empty() {
            let ready = *left.iter().find(|(_, needs)| needs.is_empty())?.0;
            left.remove(ready);
            for needs in left.values_mut() {
                needs.remove(ready);
            }
            done.push(ready);
        }
        Some(done)
    }

    /// The type of the value a binding path names, or why it names none.
    pub fn binding_type(&self, manifest: &Manifest, path: &str) -> Result<TypeExpr, String> {
        let mut segments = path.split('.');
        let head = segments.next().unwrap_or_default();
        let fields: Vec<&str> = segments.collect();
        if head.is_empty() || fields.iter().any(|f| f.is_empty()) {
            return Err(format!("`{path}` is not a field path like `fetch.body` or `input.url`"));
        }
        if head == INPUT {
            let Some(schema) = self.input_schema() else {
                return Err(format!("`{path}`: the plan takes no input"));
            };
            return field_type(manifest, TypeExpr::Named(schema.to_string()), &fields, path);
        }
        let Some(step) = self.steps.get(head) else {
            return Err(format!("`{path}`: the plan has no step `{head}`"));
        };
        match (step.action.output(), &step.reply) {
            (Some(record), _) => {
                let Some((first, rest)) = fields.split_first() else {
                    return Err(format!(
                        "`{path}` is a whole record {}; bind one of its fields",
                        describe_fields(record)
                    ));
                };
                let Some((_, ty)) = record.iter().find(|(name, _)| name == first) else {
                    return Err(format!(
                        "`{path}`: a {} step's output has no field `{first}` (it is {})",
                        step.action.name(),
                        describe_fields(record)
                    ));
                };
                field_type(manifest, ty.clone(), rest, path)
            }
            (None, Some(reply)) => field_type(manifest, TypeExpr::Named(reply.clone()), &fields, path),
            (None, None) => Err(format!(
                "`{path}`: step `{head}` sends without awaiting a reply, so it has no output"
            )),
        }
    }

    /// The schema of a run's input, if runs take one.
    pub fn input_schema(&self) -> Option<&str> {
        match &self.trigger {
            Trigger::Event(schema) => Some(schema),
            _ => self.input.as_deref(),
        }
    }
}

fn describe_fields(record: &[(&str, TypeExpr)]) -> String {
    let fields: Vec<String> = record.iter().map(|(name, ty)| format!("{name}: {ty}")).collect();
    format!("{{ {} }}", fields.join(", "))
}

/// `ty` with schema aliases replaced by what they stand for, at every depth.
pub fn resolve(manifest: &Manifest, ty: &TypeExpr) -> TypeExpr {
    let inner = |t: &TypeExpr| Box::new(resolve(manifest, t));
    match ty {
        TypeExpr::Named(name) => match manifest.schemas.get(name) {
            Some(Schema::Alias(aliased)) => resolve(manifest, aliased),
            _ => ty.clone(),
        },
        TypeExpr::List(t) => TypeExpr::List(inner(t)),
        TypeExpr::Option(t) => TypeExpr::Option(inner(t)),
        TypeExpr::Result(ok, err) => TypeExpr::Result(ok.as_deref().map(inner), err.as_deref().map(inner)),
        TypeExpr::Tuple(items) => TypeExpr::Tuple(items.iter().map(|t| resolve(manifest, t)).collect()),
        primitive => primitive.clone(),
    }
}

/// Walk record fields from `ty` along `fields`.
fn field_type(manifest: &Manifest, mut ty: TypeExpr, fields: &[&str], path: &str) -> Result<TypeExpr, String> {
    for field in fields {
        let resolved = resolve(manifest, &ty);
        let record = match &resolved {
            TypeExpr::Named(name) => match manifest.schemas.get(name) {
                Some(Schema::Record(record)) => record,
                _ => {
                    return Err(format!(
                        "`{path}`: `{resolved}` is not a record, so it has no field `{field}`"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "`{path}`: `{other}` is not a record, so it has no field `{field}`"
                ));
            }
        };
        ty = match record.iter().find(|(name, _)| name == field) {
            Some((_, field_ty)) => field_ty.clone(),
            None => {
                let names: Vec<&str> = record.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "`{path}`: record `{resolved}` has no field `{field}` (fields: {})",
                    names.join(", ")
                ));
            }
        };
    }
    Ok(ty)
}

/// Whether a value of type `source` may be bound where `target` is expected: the same type
/// (aliases resolved), or `T` where `option<T>` is expected.
pub fn assignable(manifest: &Manifest, source: &TypeExpr, target: &TypeExpr) -> bool {
    let (source, target) = (resolve(manifest, source), resolve(manifest, target));
    source == target || matches!(&target, TypeExpr::Option(inner) if **inner == source)
}

/// Check a JSON literal against `ty`, in the JSON form events use: records are objects,
/// variants `"case"` or `{"case": payload}`, enums `"case"`, flags arrays of names, options
/// `null` or the value, results `{"ok": v}` / `{"err": v}`, tuples and lists arrays.
pub fn check_literal(manifest: &Manifest, value: &serde_json::Value, ty: &TypeExpr) -> Result<(), String> {
    use serde_json::Value as J;
    let wrong = || Err(format!("expected {ty}, got {value}"));
    let int_in = |min: i128, max: i128| {
        let n = value
            .as_i64()
            .map(i128::from)
            .or_else(|| value.as_u64().map(i128::from));
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            _ => wrong(),
        }
    };
    match resolve(manifest, ty) {
        TypeExpr::Bool if value.is_boolean() => Ok(()),
        TypeExpr::U8 => int_in(0, u8::MAX.into()),
        TypeExpr::U16 => int_in(0, u16::MAX.into()),
        TypeExpr::U32 => int_in(0, u32::MAX.into()),
        TypeExpr::U64 => int_in(0, u64::MAX.into()),
        TypeExpr::S8 => int_in(i8::MIN.into(), i8::MAX.into()),
        TypeExpr::S16 => int_in(i16::MIN.into(), i16::MAX.into()),
        TypeExpr::S32 => int_in(i32::MIN.into(), i32::MAX.into()),
        TypeExpr::S64 => int_in(i64::MIN.into(), i64::MAX.into()),
        TypeExpr::F32 | TypeExpr::F64 if value.is_number() => Ok(()),
        TypeExpr::Char if value.as_str().is_some_and(|s| s.chars().count() == 1) => Ok(()),
        TypeExpr::String if value.is_string() => Ok(()),
        TypeExpr::List(item) => match value {
            J::Array(items) => items.iter().try_for_each(|v| check_literal(manifest, v, &item)),
            _ => wrong(),
        },
        TypeExpr::Option(inner) => match value {
            J::Null => Ok(()),
            v => check_literal(manifest, v, &inner),
        },
        TypeExpr::Tuple(types) => match value {
            J::Array(items) if items.len() == types.len() => items
                .iter()
                .zip(&types)
                .try_for_each(|(v, t)| check_literal(manifest, v, t)),
            _ => wrong(),
        },
        TypeExpr::Result(ok, err) => match value.as_object().filter(|o| o.len() == 1) {
            Some(object) => {
                let (case, payload) = object.iter().next().expect("one entry");
                let ty = match case.as_str() {
                    "ok" => ok,
                    "err" => err,
                    _ => return wrong(),
                };
                match ty {
                    Some(ty) => check_literal(manifest, payload, &ty),
                    None if payload.is_null() => Ok(()),
                    None => wrong(),
                }
            }
            None => wrong(),
        },
        TypeExpr::Named(name) => match manifest.schemas.get(&name) {
            Some(Schema::Record(fields)) => {
                let Some(object) = value.as_object() else {
                    return wrong();
                };
                for key in object.keys() {
                    if !fields.iter().any(|(f, _)| f == key) {
                        return Err(format!("record `{name}` has no field `{key}`"));
                    }
                }
                for (field, field_ty) in fields {
                    match object.get(field) {
                        Some(v) => check_literal(manifest, v, field_ty).map_err(|e| format!("field `{field}`: {e}"))?,
                        None if matches!(resolve(manifest, field_ty), TypeExpr::Option(_)) => {}
                        None => return Err(format!("record `{name}` needs field `{field}`")),
                    }
                }
                Ok(())
            }
            Some(Schema::Variant(cases)) => {
                let (case, payload) = match value {
                    J::String(case) => (case.as_str(), None),
                    J::Object(o) if o.len() == 1 => {
                        let (case, payload) = o.iter().next().expect("one entry");
                        (case.as_str(), Some(payload))
                    }
                    _ => return wrong(),
                };
                match (cases.iter().find(|(c, _)| c == case), payload) {
                    (Some((_, None)), None) => Ok(()),
                    (Some((_, Some(ty))), Some(payload)) => check_literal(manifest, payload, ty),
                    (Some(_), _) => Err(format!("case `{case}` of `{name}` is given the wrong payload")),
                    (None, _) => Err(format!("`{name}` has no case `{case}`")),
                }
            }
            Some(Schema::Enum(cases)) => match value.as_str() {
                Some(case) if cases.iter().any(|c| c == case) => Ok(()),
                _ => wrong(),
            },
            Some(Schema::Flags(flags)) => match value {
                J::Array(items)
                    if items
                        .iter()
                        .all(|i| i.as_str().is_some_and(|f| flags.iter().any(|g| g == f))) =>
                {
                    Ok(())
                }
                _ => wrong(),
            },
            _ => wrong(),
        },
        _ => wrong(),
    }
}

/// The inputs a `send` step takes for `case` of its agent's event schema: the case payload's
/// record fields, a single `value` for any other payload type, none for a case without one.
pub fn send_inputs(manifest: &Manifest, payload: Option<&TypeExpr>) -> Vec<(String, TypeExpr, bool)> {
    let Some(payload) = payload else { return Vec::new() };
    if let TypeExpr::Named(name) = resolve(manifest, payload)
        && let Some(Schema::Record(fields)) = manifest.schemas.get(&name)
    {
        return fields
            .iter()
            .map(|(field, ty)| {
                let optional = matches!(resolve(manifest, ty), TypeExpr::Option(_));
                (field.clone(), ty.clone(), !optional)
            })
            .collect();
    }
    vec![("value".to_string(), payload.clone(), true)]
}

impl Manifest {
    /// Every problem with the plans, as (definition path, message).
    pub(crate) fn plan_problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, plan) in &self.plans {
            plan_problems(self, name, plan, &mut |at: String, message: String| {
                problems.push((at, message))
            });
        }
        problems
    }
}

fn plan_problems(manifest: &Manifest, name: &str, plan: &PlanDef, problem: &mut dyn FnMut(String, String)) {
    let at = format!("plans.{name}");
    match &plan.trigger {
        Trigger::Every(0) => problem(format!("{at}.trigger"), "every_ms must be positive".into()),
        Trigger::Cron(expression) => {
            if let Err(error) = Trigger::cron_schedule(expression) {
                problem(format!("{at}.trigger"), error);
            }
        }
        Trigger::Event(schema) if !manifest.schemas.contains_key(schema) => {
            problem(
                format!("{at}.trigger"),
                format!("`{schema}` names no schema in [schemas]"),
            );
        }
        _ => {}
    }
    if let Some(input) = &plan.input {
        if plan.trigger != Trigger::Manual {
            problem(
                format!("{at}.input"),
                "only a manual plan declares an input (an event trigger's input is its event; scheduled runs have none)"
                    .into(),
            );
        } else if !manifest.schemas.contains_key(input) {
            problem(format!("{at}.input"), format!("`{input}` names no schema in [schemas]"));
        }
    }
    let mut held: BTreeMap<crate::EffectKind, Vec<(&str, &Cap)>> = BTreeMap::new();
    for grant in &plan.grants {
        match manifest.caps.get(grant) {
            None => problem(
                format!("{at}.grants"),
                format!("`{grant}` names no capability in [caps]"),
            ),
            Some(cap @ (Cap::Http(_) | Cap::Llm(_) | Cap::Blob(_) | Cap::Emit(_))) => {
                held.entry(cap.effect()).or_default().push((grant, cap));
            }
            Some(cap) => problem(
                format!("{at}.grants"),
                format!(
                    "`{grant}` is a {} capability; plans use only http, llm, blob and emit",
                    cap.effect()
                ),
            ),
        }
    }
    if plan.steps.is_empty() {
        problem(format!("{at}.steps"), "a plan needs at least one step".into());
    }
    for (step_name, step) in &plan.steps {
        let at = format!("{at}.steps.{step_name}");
        if step_name == INPUT || !crate::schema::is_identifier(step_name) {
            problem(
                at.clone(),
                "step names are WIT identifiers other than `input` (lowercase words joined by `-`)".into(),
            );
        }
        step_problems(manifest, plan, step, &at, &held, problem);
    }
    if plan.order().is_none() {
        problem(
            format!("{at}.steps"),
            format!(
                "the steps form a cycle (each waits for the next): {}",
                describe_cycle(plan)
            ),
        );
    }
}

fn step_problems(
    manifest: &Manifest,
    plan: &PlanDef,
    step: &PlanStep,
    at: &str,
    held: &BTreeMap<crate::EffectKind, Vec<(&str, &Cap)>>,
    problem: &mut dyn FnMut(String, String),
) {
    let action = step.action;
    let send = action == StepAction::Send;
    for (field, given) in [
        ("agent", step.agent.is_some()),
        ("case", step.case.is_some()),
        ("reply", step.reply.is_some()),
    ] {
        if given && !send {
            problem(format!("{at}.{field}"), format!("only `send` steps take `{field}`"));
        }
    }
    if step.timeout_ms.is_some() && !send {
        problem(
            format!("{at}.timeout_ms"),
            "only `send` steps wait; an effect step is bounded by its capability's timeout".into(),
        );
    }
    if step.timeout_ms == Some(0) {
        problem(format!("{at}.timeout_ms"), "a zero timeout lets no agent reply".into());
    }
    for after in &step.after {
        if !plan.steps.contains_key(after) {
            problem(format!("{at}.after"), format!("`{after}` names no step of this plan"));
        }
    }
    if let Some(retry) = &step.retry {
        if retry.attempts == 0 || retry.attempts > PlanStep::MAX_ATTEMPTS {
            problem(
                format!("{at}.retry.attempts"),
                format!(
                    "attempts is between 1 and {} (the first try included)",
                    PlanStep::MAX_ATTEMPTS
                ),
            );
        }
        if !step.idempotent() {
            problem(
                format!("{at}.retry"),
                match action {
                    StepAction::Send => "a `send` step is never retried: the agent would see the event twice".into(),
                    _ => "only idempotent requests are retried (http GET, HEAD or OPTIONS given as a literal method)"
                        .into(),
                },
            );
        }
    }
    // What the step accepts, and whether the plan's grants cover it.
    let inputs: Vec<(String, TypeExpr, bool)> = if send {
        send_problems(manifest, step, at, held, problem)
    } else {
        if !held.contains_key(&action.effect()) {
            problem(
                at.to_string(),
                format!(
                    "a `{}` step needs a {} capability in the plan's grants",
                    action.name(),
                    action.effect()
                ),
            );
        }
        action
            .inputs()
            .iter()
            .map(|(name, ty, required)| (name.to_string(), ty.clone(), *required))
            .collect()
    };
    for (input, ty, required) in &inputs {
        if *required && !step.with.contains_key(input) {
            problem(format!("{at}.with"), format!("needs input `{input}` ({ty})"));
        }
    }
    for (input, given) in &step.with {
        let at = format!("{at}.with.{input}");
        let Some((_, ty, _)) = inputs.iter().find(|(name, _, _)| name == input) else {
            let names: Vec<&str> = inputs.iter().map(|(name, _, _)| name.as_str()).collect();
            let takes = if names.is_empty() {
                "no inputs".to_string()
            } else {
                names.join(", ")
            };
            problem(at, format!("`{input}` is not an input of this step (it takes {takes})"));
            continue;
        };
        match given {
            StepInput::Literal(json) => {
                let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                if let Err(error) = check_literal(manifest, &value, ty) {
                    problem(at, error);
                }
            }
            StepInput::From(path) => match plan.binding_type(manifest, path) {
                Ok(source) if assignable(manifest, &source, ty) => {}
                Ok(source) => problem(at, format!("`{path}` is {source}, but `{input}` takes {ty}")),
                Err(error) => problem(at, error),
            },
        }
    }
}

/// Problems of a `send` step's agent, case and reply; returns the inputs its case takes.
fn send_problems(
    manifest: &Manifest,
    step: &PlanStep,
    at: &str,
    held: &BTreeMap<crate::EffectKind, Vec<(&str, &Cap)>>,
    problem: &mut dyn FnMut(String, String),
) -> Vec<(String, TypeExpr, bool)> {
    if let Some(reply) = &step.reply
        && !manifest.schemas.contains_key(reply)
    {
        problem(format!("{at}.reply"), format!("`{reply}` names no schema in [schemas]"));
    }
    let Some(agent_name) = &step.agent else {
        problem(at.to_string(), "a `send` step names its `agent`".into());
        return Vec::new();
    };
    let covered = held
        .get(&crate::EffectKind::Emit)
        .into_iter()
        .flatten()
        .any(|(_, cap)| matches!(cap, Cap::Emit(emit) if emit.targets.iter().any(|t| t == agent_name)));
    if !covered {
        problem(
            format!("{at}.agent"),
            format!("the plan's grants hold no emit capability with target `{agent_name}`"),
        );
    }
    let Some(agent) = manifest.agents.get(agent_name) else {
        problem(
            format!("{at}.agent"),
            format!("`{agent_name}` names no agent in [agents]"),
        );
        return Vec::new();
    };
    let Some(Schema::Variant(cases)) = agent.event.as_ref().and_then(|event| manifest.schemas.get(event)) else {
        problem(
            format!("{at}.agent"),
            format!("agent `{agent_name}` declares no event schema, so what the plan sends cannot be checked"),
        );
        return Vec::new();
    };
    let Some(case_name) = &step.case else {
        problem(
            at.to_string(),
            "a `send` step names the `case` of the agent's event to send".into(),
        );
        return Vec::new();
    };
    match cases.iter().find(|(case, _)| case == case_name) {
        Some((_, payload)) => send_inputs(manifest, payload.as_ref()),
        None => {
            let names: Vec<&str> = cases.iter().map(|(c, _)| c.as_str()).collect();
            problem(
                format!("{at}.case"),
                format!(
                    "agent `{agent_name}`'s events have no case `{case_name}` (cases: {})",
                    names.join(", ")
                ),
            );
            Vec::new()
        }
    }
}

/// One cycle among the steps, as `a → b → a`.
fn describe_cycle(plan: &PlanDef) -> String {
    fn visit<'a>(plan: &'a PlanDef, step: &'a str, path: &mut Vec<&'a str>) -> Option<Vec<&'a str>> {
        if let Some(at) = path.iter().position(|s| *s == step) {
            return Some(path[at..].iter().copied().chain([step]).collect());
        }
        path.push(step);
        for next in plan.steps.get(step)?.depends_on() {
            if let Some(cycle) = visit(plan, next, path) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    plan.steps
        .keys()
        .find_map(|start| visit(plan, start, &mut Vec::new()))
        .map_or_else(String::new, |cycle| cycle.join(" → "))
}
