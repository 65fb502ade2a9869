//! Plans in AIR: the authored form, execution order, schedules, and every validation error
//! naming the plan, the step and the field.

use agentos_air::{AirError, Manifest, StepInput, Trigger, judge};

const WORLD: &str = r#"
[world]
name = "w"

[schemas.page]
record = ["url: string", "body: string"]
[schemas.summary]
record = ["text: string", "words: u32"]
[schemas.task]
variant = ["summarize(page)", "note(string)", "ping"]

[modules.worker]
component = "worker.wasm"

[caps.web]
effect = "http"
urls = ["http://127.0.0.1:*/**"]
[caps.store]
effect = "blob"
[caps.to-worker]
effect = "emit"
targets = ["worker"]
[caps.reply]
effect = "emit"
targets = ["plan:digest"]
[caps.files]
effect = "fs"
dir = "data"

[agents.worker]
module = "worker"
event = "task"
grants = ["reply"]

[policy]
approvers = { ada = "1111111111111111111111111111111111111111111111111111111111111111" }
rules = [{ effect = "blob", decision = "allow" }]

[plans.digest]
trigger = { every_ms = 60000 }
grants = GRANTS

[plans.digest.steps.fetch]
do = "http"
with = { url = "http://127.0.0.1:8080/news" }
retry = { attempts = 2, backoff_ms = 10 }

[plans.digest.steps.summarize]
do = "send"
agent = "worker"
case = "summarize"
with = { url = "http://127.0.0.1:8080/news", body = { from = "fetch.body" } }
reply = "summary"

[plans.digest.steps.store]
do = "blob-put"
with = { contents = { from = "summarize.text" } }
"#;

fn world(grants: &str, extra: &str) -> String {
    WORLD.replace("GRANTS", grants) + extra
}

fn valid() -> String {
    world(r#"["web", "store", "to-worker"]"#, "")
}

/// The validation report of `text`, which must be invalid.
fn report(text: &str) -> String {
    match Manifest::parse_toml(text, "world.toml") {
        Err(AirError::Invalid(error)) => error.to_string(),
        Err(other) => panic!("expected a validation error, got: {other}"),
        Ok(_) => panic!("expected a validation error, the manifest is valid"),
    }
}

fn assert_reports(text: &str, expected: &[&str]) {
    let report = report(text);
    for line in expected {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
}

#[test]
fn a_plan_reads_runs_its_steps_in_dependency_order_and_round_trips() {
    let manifest = Manifest::parse_toml(&valid(), "world.toml").unwrap();
    let plan = &manifest.plans["digest"];
    assert_eq!(plan.trigger, Trigger::Every(60_000));
    assert_eq!(plan.order().unwrap(), ["fetch", "summarize", "store"]);
    assert_eq!(
        plan.steps["store"].with["contents"],
        StepInput::From("summarize.text".into())
    );
    assert_eq!(
        plan.steps["fetch"].with["url"],
        StepInput::Literal("\"http://127.0.0.1:8080/news\"".into())
    );
    // Canonical bytes, JSON and TOML all give the same model back.
    let bytes = manifest.canonical_bytes();
    assert_eq!(Manifest::from_canonical_bytes(&bytes, "c").unwrap(), manifest);
    assert_eq!(Manifest::parse_json(&manifest.to_json(), "j").unwrap(), manifest);
    let toml = manifest.to_toml().unwrap();
    assert_eq!(Manifest::parse_toml(&toml, "t").unwrap(), manifest, "{toml}");
}

#[test]
fn schedules_give_their_next_time() {
    assert_eq!(Trigger::Every(1000).next_due_ms(5_000), Some(6_000));
    // 2026-11-24T17:00:00Z → the next 07:30 UTC is the following morning.
    let five_pm = 1_795_539_600_000;
    let next = Trigger::Cron("30 7 * * *".into()).next_due_ms(five_pm).unwrap();
    assert_eq!(next - five_pm, (14 * 60 + 30) * 60 * 1000);
    // Six fields: seconds first.
    let next = Trigger::Cron("15 * * * * *".into()).next_due_ms(five_pm).unwrap();
    assert_eq!(next - five_pm, 15_000);
    assert_eq!(Trigger::Manual.next_due_ms(0), None);
    // Catching up after a closed world: only the latest missed time.
    assert_eq!(Trigger::Every(1000).latest_due_ms(5_000, 9_500), Some(9_000));
    assert_eq!(Trigger::Every(1000).latest_due_ms(5_000, 5_999), None);
    let daily = Trigger::Cron("30 7 * * *".into());
    let three_days = five_pm + 3 * 24 * 3600 * 1000;
    let latest = daily.latest_due_ms(five_pm, three_days).unwrap();
    assert_eq!(
        three_days - latest,
        (9 * 60 + 30) * 60 * 1000,
        "07:30 on the third morning"
    );
    assert_eq!(daily.latest_due_ms(five_pm, five_pm + 3600 * 1000), None);
    let on_the_second = daily.next_due_ms(five_pm).unwrap();
    assert_eq!(daily.latest_due_ms(five_pm, on_the_second), Some(on_the_second));
}

#[test]
fn a_cycle_is_named_step_by_step() {
    let text = valid().replace(
        "retry = { attempts = 2, backoff_ms = 10 }",
        "retry = { attempts = 2, backoff_ms = 10 }\nafter = [\"store\"]",
    );
    assert_reports(
        &text,
        &["plans.digest.steps: the steps form a cycle (each waits for the next): fetch → store → summarize → fetch"],
    );
}

#[test]
fn bindings_to_missing_fields_or_of_the_wrong_type_are_named_with_their_step_and_field() {
    let text = valid()
        .replace("from = \"fetch.body\"", "from = \"fetch.bdy\"")
        .replace("from = \"summarize.text\"", "from = \"summarize.words\"");
    assert_reports(
        &text,
        &[
            "plans.digest.steps.summarize.with.body: `fetch.bdy`: a http step's output has no field `bdy` (it is { status: u16, body: string })",
            "plans.digest.steps.store.with.contents: `summarize.words` is u32, but `contents` takes string",
        ],
    );
    let text = valid().replace("from = \"fetch.body\"", "from = \"nowhere.body\"");
    assert_reports(
        &text,
        &["plans.digest.steps.summarize.with.body: `nowhere.body`: the plan has no step `nowhere`"],
    );
    // A literal of the wrong type; an input the step does not take; a missing one.
    let text = valid()
        .replace(
            "with = { url = \"http://127.0.0.1:8080/news\" }",
            "with = { url = 8080, verb = \"GET\" }",
        )
        .replace("url = \"http://127.0.0.1:8080/news\", body", "body");
    assert_reports(
        &text,
        &[
            "plans.digest.steps.fetch.with.url: expected string, got 8080",
            "plans.digest.steps.fetch.with.verb: `verb` is not an input of this step (it takes url, method, body)",
            "plans.digest.steps.summarize.with: needs input `url` (string)",
        ],
    );
}

#[test]
fn effects_outside_the_plans_grants_are_refused() {
    assert_reports(
        &world(r#"["to-worker", "files"]"#, ""),
        &[
            "plans.digest.grants: `files` is a fs capability; plans use only http, llm, blob and emit",
            "plans.digest.steps.fetch: a `http` step needs a http capability in the plan's grants",
            "plans.digest.steps.store: a `blob-put` step needs a blob capability in the plan's grants",
        ],
    );
    assert_reports(
        &world(r#"["web", "store"]"#, ""),
        &["plans.digest.steps.summarize.agent: the plan's grants hold no emit capability with target `worker`"],
    );
}

#[test]
fn triggers_that_do_not_parse_are_refused_with_the_forms_they_may_take() {
    let cron = valid().replace(
        "trigger = { every_ms = 60000 }",
        "trigger = { cron = \"every morning\" }",
    );
    assert_reports(
        &cron,
        &["plans.digest.trigger: `every morning` is not a cron expression"],
    );
    let located = report(&cron);
    assert!(located.contains("world.toml:40:1: plans.digest.trigger"), "{located}");
    let word = valid().replace("trigger = { every_ms = 60000 }", "trigger = \"hourly\"");
    let Err(AirError::Syntax { message, .. }) = Manifest::parse_toml(&word, "world.toml") else {
        panic!("a trigger word other than manual is a syntax error");
    };
    assert!(message.contains(r#"`hourly`: a trigger is "manual""#), "{message}");
    let both = valid().replace(
        "trigger = { every_ms = 60000 }",
        "trigger = { every_ms = 5, cron = \"* * * * *\" }",
    );
    let Err(AirError::Syntax { message, .. }) = Manifest::parse_toml(&both, "world.toml") else {
        panic!("two schedules are a syntax error");
    };
    assert!(
        message.contains("give exactly one of every_ms, cron, event"),
        "{message}"
    );
    assert_reports(
        &valid().replace("trigger = { every_ms = 60000 }", "trigger = { event = \"nope\" }"),
        &["plans.digest.trigger: `nope` names no schema in [schemas]"],
    );
}

#[test]
fn send_steps_are_checked_against_the_agents_event_schema() {
    let text = valid().replace("case = \"summarize\"", "case = \"sumarize\"").replace(
        "retry = { attempts = 2, backoff_ms = 10 }",
        "retry = { attempts = 2 }\ntimeout_ms = 5",
    );
    assert_reports(
        &text,
        &[
            "plans.digest.steps.summarize.case: agent `worker`'s events have no case `sumarize` (cases: summarize, note, ping)",
            "plans.digest.steps.fetch.timeout_ms: only `send` steps wait",
        ],
    );
    let retried_send = valid().replace("reply = \"summary\"", "reply = \"summary\"\nretry = { attempts = 3 }");
    assert_reports(
        &retried_send,
        &["plans.digest.steps.summarize.retry: a `send` step is never retried"],
    );
    let post = valid().replace(
        "with = { url = \"http://127.0.0.1:8080/news\" }",
        "with = { url = \"http://127.0.0.1:8080/news\", method = \"POST\" }",
    );
    assert_reports(
        &post,
        &["plans.digest.steps.fetch.retry: only idempotent requests are retried"],
    );
    let no_reply = valid().replace("reply = \"summary\"", "");
    assert_reports(
        &no_reply,
        &[
            "plans.digest.steps.store.with.contents: `summarize.text`: step `summarize` sends without awaiting a reply, so it has no output",
        ],
    );
}

#[test]
fn emit_targets_may_name_plans_and_the_input_of_manual_and_event_plans_binds() {
    let extra = r#"
[plans.by-hand]
trigger = "manual"
input = "page"
grants = ["store"]
[plans.by-hand.steps.keep]
do = "blob-put"
with = { contents = { from = "input.body" } }
"#;
    Manifest::parse_toml(&world(r#"["web", "store", "to-worker"]"#, extra), "w").unwrap();
    assert_reports(
        &world(
            r#"["web", "store", "to-worker"]"#,
            &extra.replace("input.body", "input.size"),
        ),
        &[
            "plans.by-hand.steps.keep.with.contents: `input.size`: record `page` has no field `size` (fields: url, body)",
        ],
    );
    assert_reports(
        &valid().replace("targets = [\"plan:digest\"]", "targets = [\"plan:digests\"]"),
        &["caps.reply.targets: `plan:digests` names no plan in [plans]"],
    );
}

#[test]
fn a_plans_new_grants_count_as_widenings_under_the_policy() {
    let current = Manifest::parse_toml(&world(r#"["web", "store", "to-worker"]"#, ""), "a").unwrap();
    let mut proposed = current.clone();
    proposed.plans.get_mut("digest").unwrap().grants.push("reply".into());
    let judgement = judge(&current, &proposed, false);
    let widenings: Vec<String> = judgement.widenings.iter().map(ToString::to_string).collect();
    assert_eq!(
        widenings,
        ["plan `digest` gains cap `reply` (emit effect; policy: require-approval)"]
    );
    assert_eq!(judgement.approvals_needed, 1);
}
