//! Plans end to end through the binary: a run that fetches a page from a real server on
//! 127.0.0.1, has the `editor` agent review it (awaiting its reply), stores the headline and
//! tells the `notifier` agent; retries, a denied effect, an agent that never replies, schedules,
//! and a `kill -9` in the middle of a run. Every test ends with replay + verify.

use crate::common::*;
use std::path::{Path, PathBuf};

/// A loopback server: `/news` answers a short article, `/flaky` fails twice with 503 before
/// answering, `/slow` hangs the first time (60 s), anything else answers `ok`. Counts requests
/// per path.
pub fn server() -> (String, Hits) {
    serve(|request, count| {
        let path = request.url().to_string();
        let (status, body) = match path.as_str() {
            "/news" => (200, "Rust 2027 ships today. It is fast. Everyone is happy."),
            "/flaky" if count <= 2 => (503, "busy"),
            "/slow" if count == 1 => {
                // Hang without blocking the other requests.
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_secs(60));
                    let _ = request.respond(tiny_http::Response::from_string("late"));
                });
                return;
            }
            _ => (200, "ok"),
        };
        let _ = request.respond(tiny_http::Response::from_string(body).with_status_code(status));
    })
}

const WORLD: &str = r#"
[world]
name = "plans"

[schemas.review-event]
variant = ["review(string)"]
[schemas.verdict]
record = ["headline: string", "words: u32"]
[schemas.note-event]
variant = ["notify(string)", "recall(string)", "relay(tuple<string, string>)", "relay-then-fail(tuple<string, string>)"]

[modules.editor]
component = "modules/editor.wasm"
[modules.notifier]
component = "modules/notifier.wasm"

[caps.web]
effect = "http"
urls = ["BASE/news", "BASE/flaky", "BASE/a", "BASE/slow", "BASE/c"]
[caps.store]
effect = "blob"
[caps.to-agents]
effect = "emit"
targets = ["editor", "notifier"]
[caps.reply]
effect = "emit"
targets = ["plan:digest"]

[agents.editor]
module = "editor"
event = "review-event"
grants = ["reply"]
config = { reply_to = "plan:digest" }

[agents.notifier]
module = "notifier"
event = "note-event"
grants = ["store", "reply"]

[plans.digest]
trigger = "manual"
grants = ["web", "store", "to-agents"]

[plans.digest.steps.fetch]
do = "http"
with = { url = "BASE/news" }
retry = { attempts = 3, backoff_ms = 20 }

[plans.digest.steps.review]
do = "send"
agent = "editor"
case = "review"
with = { value = { from = "fetch.body" } }
reply = "verdict"
timeout_ms = 5000

[plans.digest.steps.keep]
do = "blob-put"
with = { contents = { from = "review.headline" } }

[plans.digest.steps.tell]
do = "send"
agent = "notifier"
case = "notify"
with = { value = { from = "keep.digest" } }
"#;

/// A world of the editor and notifier components with `WORLD` plus `extra`, talking to `base`.
pub fn world(base: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    for component in ["editor", "notifier"] {
        let built = agentos_effects::components::ensure_built(component).expect("component builds");
        std::fs::copy(built, dir.join("modules").join(format!("{component}.wasm"))).unwrap();
    }
    std::fs::write(
        dir.join("world.toml"),
        (WORLD.to_string() + extra).replace("BASE", base),
    )
    .unwrap();
    (scratch, dir)
}

fn run_json(dir: &Path, plan: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&["plan", "run", s(dir), plan, "--json"])).unwrap()
}

fn http_receipts(dir: &Path) -> Vec<String> {
    serde_json::from_str::<Vec<serde_json::Value>>(&ok(&["receipts", s(dir), "--json"]))
        .unwrap()
        .iter()
        .filter(|r| r["effect"] == "http")
        .map(|r| format!("{} {}", r["request"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect()
}

#[test]
fn a_plan_fetches_has_an_agent_review_stores_and_notifies_and_replays() {
    let (base, hits) = server();
    let (_scratch, dir) = world(&base, "");
    ok(&["run", s(&dir)]);

    let run = run_json(&dir, "digest");
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["trigger"], "manual");
    let steps: Vec<(&str, &str)> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("fetch", "done"),
            ("review", "done"),
            ("keep", "done"),
            ("tell", "done")
        ]
    );
    assert_eq!(run["steps"][0]["output"]["status"], 200);
    assert_eq!(
        run["steps"][1]["output"],
        serde_json::json!({"headline": "Rust 2027 ships today", "words": 10})
    );
    let digest = run["steps"][2]["output"]["digest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{run:#}");
    assert_eq!(hits.lock().unwrap()["/news"], 1);

    // The notifier got the digest the plan stored; the editor's reply went to the plan.
    let log = ok(&["log", s(&dir)]);
    assert!(
        log.contains(&format!("→ notifier notify(\"{digest}\")  (emit:plan:digest")),
        "{log}"
    );
    assert!(
        log.contains("→ plan:digest {headline: \"Rust 2027 ships today\", words: 10}  (emit:editor"),
        "{log}"
    );
    assert!(log.contains("plan digest run #"), "{log}");
    assert!(log.contains("run completed"), "{log}");
    let receipts = http_receipts(&dir);
    assert_eq!(receipts, [format!("http GET {base}/news ok")]);

    // History, listing and the definition.
    let runs: serde_json::Value = serde_json::from_str(&ok(&["plan", "runs", s(&dir), "--json"])).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    let list = ok(&["plan", "list", s(&dir)]);
    assert!(
        list.contains("digest  (manual; steps: fetch → review → keep → tell; grants: web, store, to-agents; 1 run(s), last completed)"),
        "{list}"
    );
    let show = ok(&["plan", "show", s(&dir), "digest"]);
    assert!(show.contains("2. review: send `review` to editor"), "{show}");
    assert!(show.contains("value ← fetch.body"), "{show}");

    // Bad input: an unknown plan, an input for a plan that takes none.
    let error = fails(&["plan", "run", s(&dir), "digests"], 2);
    assert!(
        error.contains("no plan `digests` in the manifest of record; plans: digest"),
        "{error}"
    );
    let error = fails(&["plan", "run", s(&dir), "digest", "--input", "{\"x\": 1}"], 2);
    assert!(error.contains("plan `digest`: the plan takes no input"), "{error}");
    replay_and_verify(&dir);
}

#[test]
fn a_world_whose_plan_has_a_cycle_or_a_bad_binding_is_refused_naming_the_plan_step_and_field() {
    let (base, _hits) = server();
    let broken = WORLD
        .replace(
            "with = { url = \"BASE/news\" }",
            "with = { url = \"BASE/news\" }\nafter = [\"tell\"]",
        )
        .replace("from = \"review.headline\"", "from = \"review.title\"");
    let (_scratch, dir) = world(&base, "");
    std::fs::write(dir.join("world.toml"), broken.replace("BASE", &base)).unwrap();
    // `run` refuses to open it; `air check` reports it (exit 1: the manifest is invalid).
    let manifest = dir.join("world.toml");
    for (args, code) in [(&["run", s(&dir)][..], 2), (&["air", "check", s(&manifest)][..], 1)] {
        let error = fails(args, code);
        assert!(
            error.contains("plans.digest.steps: the steps form a cycle (each waits for the next): fetch → tell → keep → review → fetch"),
            "{error}"
        );
        assert!(
            error.contains("plans.digest.steps.keep.with.contents: `review.title`: record `verdict` has no field `title` (fields: headline, words)"),
            "{error}"
        );
    }
    assert!(!dir.join(".agentos").exists(), "a refused world must not be created");

    // A literal request the plan's grants refuse: the plan could only fail, so it is not loaded.
    let outside = WORLD.replace("with = { url = \"BASE/news\" }", "with = { url = \"BASE/elsewhere\" }");
    std::fs::write(dir.join("world.toml"), outside.replace("BASE", &base)).unwrap();
    let error = fails(&["run", s(&dir)], 2);
    assert!(
        error.contains(&format!(
            "plans.digest.steps.fetch: GET {base}/elsewhere is refused by the plan's grants"
        )),
        "{error}"
    );
}

#[test]
fn retries_denials_and_an_agent_that_never_replies_end_as_journaled() {
    let (base, hits) = server();
    let extra = r#"
[plans.flaky]
trigger = "manual"
grants = ["web"]
[plans.flaky.steps.get]
do = "http"
with = { url = "BASE/flaky" }
retry = { attempts = 3, backoff_ms = 10 }

[plans.outside]
trigger = "manual"
input = "page"
grants = ["web"]
[plans.outside.steps.get]
do = "http"
with = { url = { from = "input.url" } }

[plans.on-page]
trigger = { event = "page" }
grants = ["store"]
[plans.on-page.steps.keep]
do = "blob-put"
with = { contents = { from = "input.body" } }

[schemas.page]
record = ["url: string", "body: string"]

[plans.silent]
trigger = "manual"
grants = ["to-agents"]
[plans.silent.steps.ask]
do = "send"
agent = "notifier"
case = "notify"
with = { value = "anyone there?" }
reply = "verdict"
timeout_ms = 300
"#;
    let (_scratch, dir) = world(&base, extra);

    let flaky = run_json(&dir, "flaky");
    assert_eq!(flaky["status"], "completed", "{flaky:#}");
    assert_eq!(flaky["steps"][0]["attempts"], 3);
    assert_eq!(hits.lock().unwrap()["/flaky"], 3);

    // A URL bound from the input is checked when the request is made.
    let input = format!(r#"{{"url": "{base}/elsewhere", "body": ""}}"#);
    let outside: serde_json::Value =
        serde_json::from_str(&ok(&["plan", "run", s(&dir), "outside", "--input", &input, "--json"])).unwrap();
    assert_eq!(outside["status"], "failed", "{outside:#}");
    let reason = outside["failure"][1].as_str().unwrap();
    assert!(reason.starts_with("denied: "), "{reason}");
    assert!(!hits.lock().unwrap().contains_key("/elsewhere"));

    let silent = run_json(&dir, "silent");
    assert_eq!(silent["status"], "failed", "{silent:#}");
    assert_eq!(
        silent["failure"],
        serde_json::json!(["ask", "`notifier` did not reply within 300 ms"])
    );

    // An event of the schema that triggers a plan starts a run with it as input.
    let out = ok(&["send", s(&dir), "plan:on-page", r#"{url: "u", body: "kept"}"#]);
    assert!(out.contains("plan on-page run #"), "{out}");
    let runs: serde_json::Value =
        serde_json::from_str(&ok(&["plan", "runs", s(&dir), "--plan", "on-page", "--json"])).unwrap();
    assert_eq!(runs[0]["trigger"], "event", "{runs:#}");
    assert_eq!(runs[0]["input"], serde_json::json!({"url": "u", "body": "kept"}));
    assert_eq!(runs[0]["status"], "completed", "{runs:#}");
    let error = fails(&["send", s(&dir), "plan:on-page", r#"{url: "u"}"#], 2);
    assert!(
        error.contains("event does not match schema `page` that triggers plan `on-page`"),
        "{error}"
    );
    let error = fails(&["send", s(&dir), "plan:flaky", "{}"], 2);
    assert!(error.contains("plan `flaky` is not triggered by events"), "{error}");

    // Each attempt (the exchange succeeded; the plan judged the 503) and the denial have their
    // receipt.
    let receipts = http_receipts(&dir);
    assert_eq!(
        receipts,
        [
            format!("http GET {base}/flaky ok"),
            format!("http GET {base}/flaky ok"),
            format!("http GET {base}/flaky ok"),
            format!("http GET {base}/elsewhere denied"),
        ],
        "{receipts:#?}"
    );
    replay_and_verify(&dir);
}

#[test]
fn kill_9_in_the_middle_of_a_run_resumes_at_the_step_in_flight_without_repeating_receipted_effects() {
    let (base, hits) = server();
    let extra = r#"
[plans.slow]
trigger = "manual"
grants = ["web"]
[plans.slow.steps.a]
do = "http"
with = { url = "BASE/a" }
[plans.slow.steps.b]
do = "http"
with = { url = "BASE/slow" }
after = ["a"]
[plans.slow.steps.c]
do = "http"
with = { url = "BASE/c" }
after = ["b"]
"#;
    let (_scratch, dir) = world(&base, extra);
    ok(&["run", s(&dir)]);
    let mut child = spawn_quiet(&["plan", "run", s(&dir), "slow"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !hits.lock().unwrap().contains_key("/slow") {
        assert!(std::time::Instant::now() < deadline, "the run never reached step b");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Step a is durable; b was in flight (no receipt).
    assert_eq!(http_receipts(&dir), [format!("http GET {base}/a ok")]);

    // Reopening resumes the run at b.
    ok(&["run", s(&dir)]);
    let runs: serde_json::Value = serde_json::from_str(&ok(&["plan", "runs", s(&dir), "--json"])).unwrap();
    assert_eq!(runs[0]["status"], "completed", "{runs:#}");
    let hits = hits.lock().unwrap().clone();
    assert_eq!((hits["/a"], hits["/slow"], hits["/c"]), (1, 2, 1), "{hits:?}");
    assert_eq!(
        http_receipts(&dir),
        [
            format!("http GET {base}/a ok"),
            format!("http GET {base}/slow ok"),
            format!("http GET {base}/c ok"),
        ]
    );
    replay_and_verify(&dir);
}

#[test]
fn a_scheduled_plan_runs_on_its_own_while_the_world_is_followed() {
    let (base, _hits) = server();
    let extra = r#"
[plans.tick]
trigger = { every_ms = 200 }
grants = ["store"]
[plans.tick.steps.keep]
do = "blob-put"
with = { contents = "tick" }
"#;
    let (_scratch, dir) = world(&base, extra);
    ok(&["run", s(&dir)]);
    let mut child = spawn_quiet(&["run", s(&dir), "--follow"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&["plan", "runs", s(&dir), "--plan", "tick", "--json"])).unwrap();
    let completed = runs.iter().filter(|r| r["status"] == "completed").count();
    assert!(completed >= 2, "{runs:#?}");
    assert!(runs.iter().all(|r| r["trigger"] == "schedule"), "{runs:#?}");
    replay_and_verify(&dir);
}

#[test]
fn a_changed_plan_is_governed_and_its_shadow_run_shows_what_it_would_call() {
    let (base, hits) = server();
    let keys = tempfile::tempdir().unwrap();
    let person = |args: &[&str]| {
        let mut command = host();
        command.env("AGENTOS_KEYS_DIR", keys.path());
        ok_with(command, args)
    };
    let created: serde_json::Value = serde_json::from_str(&person(&["keys", "new", "ada", "--json"])).unwrap();
    let policy = format!(
        "\n[policy]\napprovers = {{ ada = \"{}\" }}\n",
        created["public_key"].as_str().unwrap()
    );
    // `waiter` asks the notifier for a reply it never sends: its runs stay in progress.
    let waiter = r#"
[schemas.page]
record = ["url: string", "body: string"]
[plans.waiter]
trigger = { event = "page" }
grants = ["to-agents"]
[plans.waiter.steps.ask]
do = "send"
agent = "notifier"
case = "notify"
with = { value = { from = "input.body" } }
reply = "verdict"
timeout_ms = 600000
"#;
    let (scratch, dir) = world(&base, &(policy + waiter));
    assert_eq!(run_json(&dir, "digest")["status"], "completed");
    ok(&["send", s(&dir), "plan:waiter", r#"{url: "u", body: "hello?"}"#]);

    // The plan fetches another page: proposed like any change to the world.
    let changed = scratch.path().join("changed.toml");
    let text = std::fs::read_to_string(dir.join("world.toml")).unwrap();
    std::fs::write(
        &changed,
        text.replace(&format!("url = \"{base}/news\""), &format!("url = \"{base}/c\"")),
    )
    .unwrap();
    let out = person(&["propose", s(&dir), "--from", s(&changed), "--key", "ada"]);
    let proposal = number(&out);
    assert!(out.contains("~ plan digest"), "{out}");

    // Shadow: the recorded run re-runs under the new plan; the new request is listed, not made.
    let report: serde_json::Value = serde_json::from_str(&ok(&["shadow", s(&dir), &proposal, "--json"])).unwrap();
    let would_call: Vec<&str> = report["would_call"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request"].as_str().unwrap())
        .collect();
    assert!(
        !would_call.is_empty() && would_call.iter().all(|r| *r == format!("http GET {base}/c")),
        "{report:#}"
    );
    assert!(
        !hits.lock().unwrap().contains_key("/c"),
        "a shadow run executed a request"
    );

    // Applied, the next run takes the new page to the editor.
    person(&["approve", s(&dir), &proposal, "--key", "ada"]);
    person(&["apply", s(&dir), &proposal]);
    let run = run_json(&dir, "digest");
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(
        run["steps"][1]["output"],
        serde_json::json!({"headline": "ok", "words": 1})
    );
    assert_eq!(hits.lock().unwrap()["/c"], 1);

    // A plan with a run in progress cannot change under it: the apply is refused, journaled.
    let text = std::fs::read_to_string(dir.join("world.toml")).unwrap();
    std::fs::write(&changed, text.replace("timeout_ms = 600000", "timeout_ms = 1000")).unwrap();
    let out = person(&["propose", s(&dir), "--from", s(&changed), "--key", "ada"]);
    let proposal = number(&out);
    person(&["approve", s(&dir), &proposal, "--key", "ada"]);
    let output = host()
        .env("AGENTOS_KEYS_DIR", keys.path())
        .args(["apply", s(&dir), &proposal])
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(
        error.contains("plan:waiter") && error.contains("1 run(s) in progress"),
        "{error}"
    );
    assert_eq!(count_kind(&log_json(&dir), "apply-refused"), 1);
    replay_and_verify(&dir);
}
