//! The governance loop through the binary: propose → approve → apply → revert, with people's
//! keys named by the world's policy; refusals that change nothing; replay + verify across every
//! manifest change.

use crate::common::*;

use agentos_journal::entry::EntryBody;
use std::path::{Path, PathBuf};

/// A keys directory with `ada` and `bob`, and a command that uses it.
struct People {
    _dir: tempfile::TempDir,
    keys: PathBuf,
    ada: String,
}

impl People {
    fn new() -> People {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let mut people = People {
            _dir: dir,
            keys,
            ada: String::new(),
        };
        let created: serde_json::Value = serde_json::from_str(&people.ok(&["keys", "new", "ada", "--json"])).unwrap();
        people.ada = created["public_key"].as_str().unwrap().to_string();
        people.ok(&["keys", "new", "bob"]);
        people
    }

    fn ok(&self, args: &[&str]) -> String {
        let mut command = host();
        command.env("AGENTOS_KEYS_DIR", &self.keys);
        ok_with(command, args)
    }

    fn fails(&self, args: &[&str]) -> String {
        let output = host().env("AGENTOS_KEYS_DIR", &self.keys).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?} should fail: {output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

/// A counter world whose policy names ada as its one approver (plus `extra` policy lines).
fn counter_world(people: &People, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let (scratch, dir) = init("counter");
    append_to_manifest(
        &dir,
        &format!("\n[policy]\napprovers = {{ ada = \"{}\" }}\n{extra}", people.ada),
    );
    ok(&["send", s(&dir), "counter", "increment(5)"]);
    (scratch, dir)
}

/// The counter, changed: increments count double and each step prints the value.
fn doubling_counter() -> PathBuf {
    build_variant("counter", "counter_doubling", |source| {
        source
            .replace("checked_add(u64::from(by))", "checked_add(2 * u64::from(by))")
            .replace(
                "        self.events += 1;\n",
                "        self.events += 1;\n        println!(\"value {}\", self.value);\n",
            )
    })
}

fn outputs(dir: &Path) -> Vec<String> {
    log_json(dir)
        .iter()
        .filter(|e| e["kind"] == "output")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_person_proposes_an_upgrade_the_approver_approves_it_applies_with_the_state_and_reverts() {
    let people = People::new();
    let (_scratch, dir) = counter_world(&people, "");
    let world = s(&dir);

    // Rebuild the component in place, and propose the world as it now is on disk.
    std::fs::copy(doubling_counter(), dir.join("modules/counter.wasm")).unwrap();
    let manifest = dir.join("world.toml");
    let out = people.ok(&[
        "propose",
        world,
        "--from",
        s(&manifest),
        "--key",
        "ada",
        "-d",
        "double every increment",
    ]);
    assert!(out.contains("~ component of module counter: sha256:"), "{out}");
    assert!(out.contains("approvals needed: 1"), "{out}");
    let proposal = number(&out);

    // Until applied, the world runs the recorded component (and says so).
    let run = host()
        .args(["send", world, "counter", "increment(1)"])
        .output()
        .unwrap();
    assert!(run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("is not the component in force"),
        "{run:?}"
    );
    assert!(outputs(&dir).is_empty());

    let error = people.fails(&["apply", world, &proposal]);
    assert!(
        error.contains("it needs 1 approval(s) and has 0; can approve: ada"),
        "{error}"
    );
    let error = people.fails(&["approve", world, &proposal, "--key", "bob"]);
    assert!(
        error.contains("key `bob`") && error.contains("is not an approver in the policy in force; approvers: ada"),
        "{error}"
    );
    let out = people.ok(&["approve", world, &proposal, "--key", "ada", "--comment", "looks right"]);
    assert!(out.contains(&format!("proposal #{proposal} approved by ada")), "{out}");
    assert!(out.contains("ready to apply"), "{out}");
    let error = people.fails(&["approve", world, &proposal, "--key", "ada"]);
    assert!(error.contains("ada already approved"), "{error}");

    let out = people.ok(&["apply", world, &proposal]);
    assert!(out.contains(&format!("proposal #{proposal} applied")), "{out}");
    // 5 + 1 under the old logic, then + 2 × 1 under the new: the state came across.
    ok(&["send", world, "counter", "increment(1)"]);
    assert_eq!(outputs(&dir), ["counter stdout: value 8"]);
    let error = people.fails(&["apply", world, &proposal]);
    assert!(error.contains("it was already applied"), "{error}");
    replay_and_verify(&dir);

    // Back to the first manifest: the old logic again, on the state the new one left.
    let out = people.ok(&["revert", world, "--key", "ada"]);
    assert!(out.contains("applied"), "{out}");
    ok(&["send", world, "counter", "increment(1)"]);
    assert_eq!(
        outputs(&dir),
        ["counter stdout: value 8"],
        "the reverted counter prints nothing"
    );

    let history: serde_json::Value = serde_json::from_str(&ok(&["history", world, "--json"])).unwrap();
    let manifests = history["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3, "{history}");
    assert_eq!(manifests[0]["manifest"], manifests[2]["manifest"]);
    let first = &history["proposals"][0];
    assert_eq!(first["status"], "applied");
    assert_eq!(first["author"], "ada");
    assert_eq!(first["description"], "double every increment");
    assert_eq!(first["verdicts"][0]["approver"], "ada");
    assert_eq!(first["verdicts"][0]["comment"], "looks right");
    assert!(history["proposals"][1]["reverts_to"].is_string());
    let text = ok(&["history", world]);
    assert!(text.contains("approved by ada"), "{text}");
    let log = log_json(&dir);
    for kind in ["proposal", "verdict", "manifest-applied"] {
        assert_eq!(count_kind(&log, kind), 2, "{kind}");
    }
    replay_and_verify(&dir);
    let replay: serde_json::Value = serde_json::from_str(&ok(&["replay", world, "--json"])).unwrap();
    assert_eq!(replay["steps_replayed"], 4, "{replay}");
}

#[test]
fn a_new_module_whose_restore_rejects_the_old_state_is_refused_and_nothing_changes() {
    let people = People::new();
    let (_scratch, dir) = counter_world(&people, "");
    let world = s(&dir);
    let incompatible = build_variant("counter", "counter_relabelled", |source| {
        source.replace("    events: u64,\n}", "    events: u64,\n    label: String,\n}")
    });
    std::fs::copy(incompatible, dir.join("modules/counter.wasm")).unwrap();
    let out = people.ok(&["propose", world, "--from", s(&dir.join("world.toml")), "--key", "ada"]);
    let proposal = number(&out);
    people.ok(&["approve", world, &proposal, "--key", "ada"]);
    let error = people.fails(&["apply", world, &proposal]);
    assert!(
        error.contains("was not applied, nothing changed") && error.contains("restore rejected the state"),
        "{error}"
    );
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "apply-refused"), 1);
    assert_eq!(count_kind(&log, "manifest-applied"), 0);
    ok(&["send", world, "counter", "increment(1)"]);
    let history: serde_json::Value = serde_json::from_str(&ok(&["history", world, "--json"])).unwrap();
    assert_eq!(history["manifests"].as_array().unwrap().len(), 1);
    assert!(
        history["proposals"][0]["refusals"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("restore rejected")
    );
    replay_and_verify(&dir);
}

#[test]
fn stale_rejected_and_denied_proposals_are_refused_with_their_reason() {
    let people = People::new();
    let (scratch, dir) = counter_world(&people, "rules = [{ effect = \"http\", decision = \"deny\" }]\n");
    let world = s(&dir);
    let text = std::fs::read_to_string(dir.join("world.toml")).unwrap();
    let variant = |name: &str, edit: &str| {
        let file = scratch.path().join(name);
        std::fs::write(
            &file,
            text.replace("[agents.counter]\n", &format!("[agents.counter]\n{edit}\n")),
        )
        .unwrap();
        file
    };
    let fuel = variant("fuel.toml", "fuel_per_step = 2000000");
    let memory = variant("memory.toml", "memory_max_bytes = 8000000");
    let first = number(&people.ok(&["propose", world, "--from", s(&fuel), "--key", "ada"]));
    let second = number(&people.ok(&["propose", world, "--from", s(&memory), "--key", "ada"]));
    people.ok(&["approve", world, &first, "--key", "ada"]);
    people.ok(&["apply", world, &first]);
    let error = people.fails(&["approve", world, &second, "--key", "ada"]);
    assert!(error.contains("the world now runs sha256:"), "{error}");
    let error = people.fails(&["apply", world, &second]);
    assert!(error.contains("propose the change again"), "{error}");

    // A rejection stops a proposal for good.
    let third = number(&people.ok(&["propose", world, "--from", s(&memory), "--key", "ada"]));
    people.ok(&["reject", world, &third, "--key", "ada", "--comment", "not now"]);
    let error = people.fails(&["apply", world, &third]);
    assert!(error.contains("ada rejected it"), "{error}");

    // Granting an effect the policy denies is refused before anything is journaled.
    let before = log_json(&dir).len();
    let web = scratch.path().join("web.toml");
    std::fs::write(
        &web,
        std::fs::read_to_string(&fuel)
            .unwrap()
            .replace("[agents.counter]\n", "[caps.web]\neffect = \"http\"\nurls = [\"https://example.org/*\"]\n\n[agents.counter]\ngrants = [\"web\"]\n"),
    )
    .unwrap();
    let error = people.fails(&["propose", world, "--from", s(&web), "--key", "ada"]);
    assert!(
        error.contains("does not permit this change") && error.contains("gains cap `web` (http effect; policy: deny)"),
        "{error}"
    );
    let error = people.fails(&["propose", world, "--from", s(&fuel), "--key", "ada"]);
    assert!(error.contains("changes nothing"), "{error}");
    assert_eq!(log_json(&dir).len(), before);

    // An edited world.toml is not run behind governance's back.
    std::fs::copy(&memory, dir.join("world.toml")).unwrap();
    let error = fails(&["send", world, "counter", "increment(1)"], 2);
    assert!(error.contains("differs from the manifest in force"), "{error}");
    std::fs::copy(&fuel, dir.join("world.toml")).unwrap();
    replay_and_verify(&dir);
}

/// `verify` re-checks governance, even with the hash chain rebuilt around a forgery: a verdict
/// whose signature does not verify, a manifest change without the approvals it needed.
#[test]
fn verify_names_a_forged_verdict_and_a_change_applied_without_approval() {
    let people = People::new();
    let (_scratch, dir) = counter_world(&people, "");
    let world = s(&dir);
    std::fs::copy(doubling_counter(), dir.join("modules/counter.wasm")).unwrap();
    let proposal = number(&people.ok(&["propose", world, "--from", s(&dir.join("world.toml")), "--key", "ada"]));
    people.ok(&["approve", world, &proposal, "--key", "ada"]);
    people.ok(&["apply", world, &proposal]);
    let out = ok(&["verify", world]);
    assert!(
        out.contains("2 signed proposals and verdicts, 1 manifest changes each as proposed and approved"),
        "{out}"
    );
    replay_and_verify(&dir);
    let mut entries = read_entries(&dir);
    let at = entries
        .iter()
        .position(|e| matches!(e.body, EntryBody::Verdict(_)))
        .unwrap();
    let pristine = entries.clone();
    if let EntryBody::Verdict(verdict) = &mut entries[at].body {
        verdict.body.comment = "forged".into();
    }
    forge_journal(&dir, entries);
    let error = fails(&["verify", world], 1);
    assert!(
        error.contains(&format!("entry #{at}: verdict: the signature does not verify")),
        "{error}"
    );

    // Without the approval, the manifest change itself is named, even by a forger holding the
    // host key (who re-signs every checkpoint over the history without the verdict).
    let key = agentos_journal::receipts::HostKey::load_or_create(&dir.join(".agentos/host.key")).unwrap();
    let mut entries = pristine;
    entries.remove(at);
    let applied = entries
        .iter()
        .position(|e| matches!(e.body, EntryBody::ManifestApplied(_)))
        .unwrap();
    forge_journal_with_key(&dir, entries, &key);
    verify_fails_with(
        &dir,
        &format!("entry #{applied}: applies proposal #{proposal} although it needs 1 approval(s) and has 0"),
    );
}

/// The hello agent, changed: it fetches `/c` where it was asked for `/b`, and says `hi`.
fn changed_hello() -> PathBuf {
    build_variant("hello", "hello_changed", |source| {
        source
            .replace(
                "Event::Fetch(url) => match http::get(&url) {",
                "Event::Fetch(url) => match http::get(&url.replace(\"/b\", \"/c\")) {",
            )
            .replace("println!(\"greeted {name}\");", "println!(\"hi {name}\");")
    })
}

fn state_digests(dir: &Path) -> serde_json::Value {
    let replay: serde_json::Value = serde_json::from_str(&ok(&["replay", s(dir), "--json"])).unwrap();
    replay["agent_states"].clone()
}

#[test]
fn a_shadow_run_replays_real_history_under_the_proposal_without_touching_the_world() {
    let people = People::new();
    let (base, requests) = serve_text("page");
    let (scratch, dir) = init("hello");
    let world = s(&dir);
    append_to_manifest(
        &dir,
        &format!(
            "\n[policy]\napprovers = {{ ada = \"{}\" }}\nrequire_clean_shadow = true\n",
            people.ada
        ),
    );
    ok(&["send", world, "hello", r#"greet("ada")"#]);
    ok(&["send", world, "hello", &format!(r#"fetch("{base}/a")"#)]);
    ok(&["send", world, "hello", &format!(r#"fetch("{base}/b")"#)]);
    assert_eq!(total(&requests), 2);

    // Proposal 1: the changed component. Proposal 2: the web grant narrowed to `/c`.
    let text = std::fs::read_to_string(dir.join("world.toml")).unwrap();
    std::fs::copy(changed_hello(), dir.join("modules/hello.wasm")).unwrap();
    let upgrade = number(&people.ok(&["propose", world, "--from", s(&dir.join("world.toml")), "--key", "ada"]));
    std::fs::copy(
        agentos_effects::components::ensure_built("hello").unwrap(),
        dir.join("modules/hello.wasm"),
    )
    .unwrap();
    let narrower = scratch.path().join("narrower.toml");
    std::fs::write(
        &narrower,
        text.replace(
            r#"urls = ["http://127.0.0.1:*/**"]"#,
            r#"urls = ["http://127.0.0.1:*/c"]"#,
        ),
    )
    .unwrap();
    let narrowing = number(&people.ok(&["propose", world, "--from", s(&narrower), "--key", "ada"]));
    people.ok(&["approve", world, &upgrade, "--key", "ada"]);
    people.ok(&["approve", world, &narrowing, "--key", "ada"]);
    let error = people.fails(&["apply", world, &upgrade]);
    assert!(error.contains("requires a clean shadow run first"), "{error}");

    let states = state_digests(&dir);
    let entries = log_json(&dir).len();
    let report: serde_json::Value = serde_json::from_str(&ok(&["shadow", world, &upgrade, "--json"])).unwrap();
    assert_eq!(report["clean"], true, "{report}");
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{report}");
    assert_eq!(steps[0]["differences"][0], r#"output ["greeted ada"] → ["hi ada"]"#);
    assert!(steps[1]["differences"].as_array().unwrap().is_empty(), "{report}");
    let would_call = report["would_call"].as_array().unwrap();
    assert_eq!(would_call.len(), 1, "{report}");
    assert_eq!(would_call[0]["request"], format!("http GET {base}/c"));
    assert!(report["served_from_receipts"].as_u64().unwrap() >= 3, "{report}");
    // Nothing left the machine, nothing changed but one journaled report (and the checkpoint
    // that signs it).
    assert_eq!(total(&requests), 2);
    assert_eq!(state_digests(&dir), states);
    let log = log_json(&dir);
    assert_eq!(log.len(), entries + 2);
    assert_eq!(log[entries]["kind"], "shadow-report");
    assert_eq!(log[entries + 1]["kind"], "checkpoint");

    let text = ok(&["shadow", world, &narrowing, "--window", "2"]);
    assert!(text.contains("NOT CLEAN"), "{text}");
    assert!(
        text.contains("denied: step #") && text.contains(&format!("GET {base}/a")),
        "{text}"
    );
    assert!(text.contains("2 step(s) re-run"), "{text}");
    let error = people.fails(&["apply", world, &narrowing]);
    assert!(
        error.contains("the policy requires a clean shadow run, and the last one"),
        "{error}"
    );

    // Given events run under both manifests.
    let events = scratch.path().join("events.txt");
    std::fs::write(&events, "# what if bob came\nhello greet(\"bob\")\n").unwrap();
    let text = ok(&["shadow", world, &upgrade, "--events", s(&events)]);
    assert!(text.contains(r#"output ["greeted bob"] → ["hi bob"]"#), "{text}");

    people.ok(&["apply", world, &upgrade]);
    ok(&["send", world, "hello", r#"greet("cy")"#]);
    assert!(
        outputs(&dir).contains(&"hello stdout: hi cy".to_string()),
        "{:?}",
        outputs(&dir)
    );
    assert_eq!(total(&requests), 2);
    let history = ok(&["history", world]);
    assert!(
        history.contains("shadow run #") && history.contains("NOT CLEAN"),
        "{history}"
    );
    replay_and_verify(&dir);
}

/// A world whose `greeter` agent may build components and propose changes; ada approves.
fn greeter_world(people: &People) -> (tempfile::TempDir, PathBuf) {
    let manifest = format!(
        "[world]\nname = \"evolving\"\n\n[modules.greeter]\ncomponent = \"modules/greeter.wasm\"\n\n\
         [caps.toolchain]\neffect = \"compile\"\nlanguages = [\"rust\"]\ntime_limit_ms = 600000\n\n\
         [caps.self-governance]\neffect = \"governance\"\nmay_propose = true\n\n\
         [agents.greeter]\nmodule = \"greeter\"\ngrants = [\"toolchain\", \"self-governance\"]\n\n\
         [policy]\napprovers = {{ ada = \"{}\" }}\n",
        people.ada
    );
    custom_world("greeter", &manifest)
}

#[test]
fn an_agent_rebuilds_itself_proposes_the_upgrade_and_only_a_person_can_let_it_apply() {
    let people = People::new();
    let (_scratch, dir) = greeter_world(&people);
    let world = s(&dir);
    ok(&["send", world, "greeter", r#"greet("ada")"#]);
    ok(&["send", world, "greeter", r#"learn("Howdy")"#]);
    let history: serde_json::Value = serde_json::from_str(&ok(&["history", world, "--json"])).unwrap();
    let proposal = &history["proposals"][0];
    assert_eq!(proposal["author"], "greeter", "{history}");
    assert_eq!(proposal["agent_authored"], true);
    assert_eq!(proposal["description"], r#"greet with "Howdy" instead of "Hello""#);
    assert_eq!(proposal["changes"][0], "~ module greeter");
    let id = proposal["proposal"].as_u64().unwrap().to_string();
    let log = ok(&["log", world]);
    assert!(
        log.contains("proposal by agent `greeter` (signed by the host)"),
        "{log}"
    );

    // Still the old behaviour until a person approves and applies.
    ok(&["send", world, "greeter", r#"greet("bob")"#]);
    let error = people.fails(&["apply", world, &id]);
    assert!(error.contains("needs 1 approval(s) and has 0"), "{error}");
    let shadow = ok(&["shadow", world, &id]);
    assert!(
        shadow.contains(r#"output ["Hello, bob! (greeting #2)"] → ["Howdy, bob! (greeting #2)"]"#),
        "{shadow}"
    );
    people.ok(&["approve", world, &id, "--key", "ada"]);
    let out = people.ok(&["apply", world, &id]);
    assert!(out.contains("applied"), "{out}");
    let modules: Vec<String> = std::fs::read_dir(dir.join("modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(modules.iter().any(|m| m.starts_with("greeter-")), "{modules:?}");

    ok(&["send", world, "greeter", r#"greet("cy")"#]);
    people.ok(&["revert", world, "--key", "ada"]);
    ok(&["send", world, "greeter", r#"greet("dee")"#]);
    assert_eq!(
        outputs(&dir),
        [
            "greeter stdout: Hello, ada! (greeting #1)",
            "greeter stdout: Hello, bob! (greeting #2)",
            "greeter stdout: Howdy, cy! (greeting #3)",
            "greeter stdout: Hello, dee! (greeting #4)",
        ]
    );
    replay_and_verify(&dir);
}

#[test]
fn an_agent_without_may_propose_is_denied_with_a_receipt() {
    let people = People::new();
    let (_scratch, dir) = reviewed_world_with(&people, false, false, "");
    let fuel = r#"{"changes": [{"op": "replace", "kind": "agent", "name": "counter", "definition": {"module": "counter", "fuel_per_step": 2000000}}]}"#;
    ok(&["send", s(&dir), "reviewer", &format!("propose({fuel:?})")]);
    let log = ok(&["log", s(&dir)]);
    assert!(
        log.contains("DENIED: no governance grant of agent `reviewer` has may_propose = true"),
        "{log}"
    );
    assert_eq!(count_kind(&log_json(&dir), "proposal"), 0);
    replay_and_verify(&dir);
}

/// A counter world with a `reviewer` agent (governance read grant); `named` puts the reviewer in
/// the policy's approvers as `agent:reviewer`.
fn reviewed_world(people: &People, named: bool) -> (tempfile::TempDir, PathBuf) {
    reviewed_world_with(people, named, true, "")
}

/// As [`reviewed_world`], saying whether the reviewer may propose, with `extra` policy lines.
fn reviewed_world_with(people: &People, named: bool, may_propose: bool, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let (scratch, dir) = init("counter");
    std::fs::copy(
        agentos_effects::components::ensure_built("reviewer").unwrap(),
        dir.join("modules/reviewer.wasm"),
    )
    .unwrap();
    let reviewer = if named { ", reviewer = \"agent:reviewer\"" } else { "" };
    append_to_manifest(
        &dir,
        &format!(
            "\n[modules.reviewer]\ncomponent = \"modules/reviewer.wasm\"\n[caps.review]\neffect = \"governance\"\n\
             may_propose = {may_propose}\n[agents.reviewer]\nmodule = \"reviewer\"\ngrants = [\"review\"]\n\
             [policy]\napprovers = {{ ada = \"{}\"{reviewer} }}\n{extra}",
            people.ada
        ),
    );
    ok(&["send", s(&dir), "counter", "increment(5)"]);
    (scratch, dir)
}

/// ada proposes more fuel for the counter (a world.toml written in `scratch`), and the reviewer
/// agent approves it; returns the proposal's entry number.
fn more_fuel_approved_by_the_reviewer(people: &People, scratch: &Path, dir: &Path) -> String {
    let changed = scratch.join("changed.toml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(dir.join("world.toml"))
            .unwrap()
            .replace("[agents.counter]\n", "[agents.counter]\nfuel_per_step = 2000000\n"),
    )
    .unwrap();
    let proposal = number(&people.ok(&["propose", s(dir), "--from", s(&changed), "--key", "ada"]));
    ok(&["send", s(dir), "reviewer", &format!("approve(\"{proposal}\")")]);
    proposal
}

#[test]
fn an_agent_approves_only_where_the_policy_names_it() {
    let people = People::new();
    for named in [true, false] {
        let (scratch, dir) = reviewed_world(&people, named);
        let world = s(&dir);
        let proposal = more_fuel_approved_by_the_reviewer(&people, scratch.path(), &dir);
        let history: serde_json::Value = serde_json::from_str(&ok(&["history", world, "--json"])).unwrap();
        let verdicts = history["proposals"][0]["verdicts"].as_array().unwrap().clone();
        if named {
            assert_eq!(verdicts.len(), 1, "{history}");
            assert_eq!(verdicts[0]["approver"], "reviewer");
            let out = people.ok(&["apply", world, &proposal]);
            assert!(out.contains("applied"), "{out}");
        } else {
            assert!(verdicts.is_empty(), "{history}");
            let log = ok(&["log", world]);
            assert!(
                log.contains("DENIED: the policy in force does not name agent `reviewer` as an approver"),
                "{log}"
            );
            let error = people.fails(&["apply", world, &proposal]);
            assert!(error.contains("needs 1 approval(s) and has 0"), "{error}");
        }
        replay_and_verify(&dir);
    }
}

#[test]
fn an_agent_can_neither_grant_itself_what_the_policy_denies_nor_approve_its_own_proposal() {
    let people = People::new();
    let (_scratch, dir) = reviewed_world_with(
        &people,
        true,
        true,
        "rules = [{ effect = \"http\", decision = \"deny\" }]\n",
    );
    let world = s(&dir);
    // Hashes left out: the host anchors the patch to the manifest in force.
    let widen = r#"{"changes": [{"op": "add", "kind": "cap", "name": "web", "definition": {"effect": "http", "urls": ["https://example.org/*"]}}, {"op": "replace", "kind": "agent", "name": "reviewer", "definition": {"module": "reviewer", "grants": ["review", "web"]}}]}"#;
    ok(&["send", world, "reviewer", &format!("propose({widen:?})")]);
    let log = ok(&["log", world]);
    assert!(
        log.contains("the policy in force does not permit this change")
            && log.contains("agent `reviewer` gains cap `web` (http effect; policy: deny)"),
        "{log}"
    );
    assert_eq!(count_kind(&log_json(&dir), "proposal"), 0);

    let fuel = r#"{"changes": [{"op": "replace", "kind": "agent", "name": "counter", "definition": {"module": "counter", "fuel_per_step": 2000000}}]}"#;
    ok(&["send", world, "reviewer", &format!("propose({fuel:?})")]);
    let history: serde_json::Value = serde_json::from_str(&ok(&["history", world, "--json"])).unwrap();
    let proposal = &history["proposals"][0];
    assert_eq!(
        (proposal["author"].as_str(), proposal["agent_authored"].as_bool()),
        (Some("reviewer"), Some(true))
    );
    let id = proposal["proposal"].as_u64().unwrap().to_string();
    ok(&["send", world, "reviewer", &format!("approve(\"{id}\")")]);
    let log = ok(&["log", world]);
    assert!(
        log.contains(&format!("agent `reviewer` cannot judge its own proposal #{id}")),
        "{log}"
    );
    let error = people.fails(&["apply", world, &id]);
    assert!(error.contains("needs 1 approval(s) and has 0"), "{error}");
    people.ok(&["approve", world, &id, "--key", "ada"]);
    people.ok(&["apply", world, &id]);
    replay_and_verify(&dir);
}

/// What a holder of the host key signs is still judged against what was proposed: a change
/// approved only by the agent that wrote it, or putting in force a manifest or components other
/// than the proposal's, fails `verify` at the manifest change, checkpoints re-signed or not.
#[test]
fn verify_judges_each_manifest_change_against_its_proposal_even_when_signed() {
    use agentos_runtime::governance::record::Author;
    let people = People::new();
    let (scratch, dir) = reviewed_world(&people, true);
    let world = s(&dir);
    let proposal = more_fuel_approved_by_the_reviewer(&people, scratch.path(), &dir);
    people.ok(&["apply", world, &proposal]);
    replay_and_verify(&dir);
    let key = agentos_journal::receipts::HostKey::load_or_create(&dir.join(".agentos/host.key")).unwrap();
    let pristine = read_entries(&dir);
    let at: usize = proposal.parse().unwrap();
    let applied = pristine
        .iter()
        .position(|e| matches!(e.body, EntryBody::ManifestApplied(_)))
        .unwrap();

    // The proposal re-authored as the reviewer's own (signed by the host, as agents' are), its
    // verdict and the change re-pointed at it.
    let mut entries = pristine.clone();
    let EntryBody::Proposal(p) = &mut entries[at].body else {
        panic!("#{at} is not a proposal")
    };
    p.body.author = Author::Agent {
        name: "reviewer".into(),
    };
    p.signer = key.public().to_bytes();
    p.signature = key.signature(&p.body.signing_bytes());
    let hash = p.body.hash();
    for entry in &mut entries {
        match &mut entry.body {
            EntryBody::Verdict(v) => {
                v.body.proposal_hash = hash;
                v.signature = key.signature(&v.body.signing_bytes());
            }
            EntryBody::ManifestApplied(m) => m.proposal_hash = hash,
            _ => {}
        }
    }
    forge_journal_with_key(&dir, entries, &key);
    verify_fails_with(
        &dir,
        &format!("entry #{applied}: applies proposal #{proposal} although it needs 1 approval(s) and has 0"),
    );

    // The change puts in force more fuel than was proposed and approved.
    let mut entries = pristine.clone();
    let EntryBody::ManifestApplied(m) = &mut entries[applied].body else {
        unreachable!()
    };
    let mut manifest = agentos_air::Manifest::parse_json(&m.manifest_json, "recorded").unwrap();
    manifest.agents.get_mut("counter").unwrap().fuel_per_step = 3_000_000;
    m.manifest_json = manifest.to_json();
    m.manifest_digest = manifest.digest();
    forge_journal_with_key(&dir, entries, &key);
    verify_fails_with(
        &dir,
        &format!(
            "entry #{applied}: puts in force a manifest other than proposal #{proposal}'s patch makes of the one in force \
             (they differ in agent `counter`)"
        ),
    );

    // Or other components than the proposal named.
    let mut entries = pristine.clone();
    let EntryBody::ManifestApplied(m) = &mut entries[applied].body else {
        unreachable!()
    };
    m.modules[0].1 = m.modules[1].1;
    forge_journal_with_key(&dir, entries, &key);
    verify_fails_with(
        &dir,
        &format!("entry #{applied}: puts in force other components than proposal #{proposal} named"),
    );
    forge_journal_with_key(&dir, pristine, &key);
    replay_and_verify(&dir);
}

/// A holder of the host key who relabels an applied manifest with an earlier manifest's digest
/// (so that a proposal written against the earlier one looks current) is named at the change.
#[test]
fn a_manifest_change_recorded_under_another_manifest_s_digest_is_named() {
    let people = People::new();
    let (scratch, dir) = reviewed_world(&people, true);
    let proposal = more_fuel_approved_by_the_reviewer(&people, scratch.path(), &dir);
    people.ok(&["apply", s(&dir), &proposal]);
    let key = agentos_journal::receipts::HostKey::load_or_create(&dir.join(".agentos/host.key")).unwrap();
    let mut entries = read_entries(&dir);
    let EntryBody::Genesis(genesis) = &entries[0].body else {
        unreachable!()
    };
    let genesis_digest = genesis.manifest_digest;
    let applied = entries
        .iter()
        .position(|e| matches!(e.body, EntryBody::ManifestApplied(_)))
        .unwrap();
    let EntryBody::ManifestApplied(change) = &mut entries[applied].body else {
        unreachable!()
    };
    change.manifest_digest = genesis_digest;
    forge_journal_with_key(&dir, entries, &key);
    verify_fails_with(
        &dir,
        &format!(
            "entry #{applied}: records manifest sha256:{}, the digest of the different manifest in force from entry #0",
            hex::encode(genesis_digest)
        ),
    );
}

/// Governance decides from the whole history, checked against the last checkpoint before
/// anything is decided: a forger holding the journal file but not the host key gets nothing
/// from `approve`, `reject` or `apply`, whether they named themselves an approver in genesis or
/// rewrote any entry in between — also where this host has no record of having signed the
/// journal (a world directory received from elsewhere).
#[test]
fn approve_and_apply_refuse_a_forged_history() {
    use agentos_journal::entry::Entry;
    let people = People::new();
    let (scratch, mut dir) = counter_world(&people, "");
    std::fs::copy(doubling_counter(), dir.join("modules/counter.wasm")).unwrap();
    let proposal = number(&people.ok(&["propose", s(&dir), "--from", s(&dir.join("world.toml")), "--key", "ada"]));
    let pristine = read_entries(&dir);
    let shown = people.ok(&["keys", "show", "bob"]);
    let bob = shown.split_whitespace().last().unwrap().to_string();
    let bob_approves = |entries: &mut Vec<Entry>| {
        let EntryBody::Genesis(genesis) = &mut entries[0].body else {
            panic!("entry #0 is not genesis")
        };
        let mut manifest: serde_json::Value = serde_json::from_str(&genesis.manifest_json).unwrap();
        manifest["policy"]["approvers"]["bob"] = bob.clone().into();
        let forged = agentos_air::Manifest::parse_json(&manifest.to_string(), "forged").unwrap();
        genesis.manifest_json = forged.to_json();
        genesis.manifest_digest = forged.digest();
        "entry #0 is not the genesis"
    };
    let more_counted = |entries: &mut Vec<Entry>| {
        let ingress = entries
            .iter_mut()
            .find_map(|e| match &mut e.body {
                EntryBody::Ingress(ingress) => Some(ingress),
                _ => None,
            })
            .unwrap();
        ingress.event = "increment(500)".into();
        "are not what checkpoint"
    };
    for (n, forge) in [&bob_approves as &dyn Fn(&mut Vec<Entry>) -> &'static str, &more_counted]
        .into_iter()
        .enumerate()
    {
        let received = scratch.path().join(format!("received-{n}"));
        std::fs::rename(&dir, &received).unwrap();
        dir = received;
        let world = s(&dir);
        let mut entries = pristine.clone();
        let expected = forge(&mut entries);
        forge_journal(&dir, entries);
        let before = read_entries(&dir).len();
        for args in [
            &["approve", world, &proposal, "--key", "bob"][..],
            &["approve", world, &proposal, "--key", "ada"],
            &["reject", world, &proposal, "--key", "ada"],
            &["apply", world, &proposal],
        ] {
            let error = people.fails(args);
            assert!(error.contains("cannot be trusted to write to"), "{args:?}: {error}");
            assert!(error.contains(expected), "{args:?}: {error}");
        }
        assert_eq!(read_entries(&dir).len(), before, "something was journaled");
    }
    forge_journal(&dir, pristine);
    people.ok(&["approve", s(&dir), &proposal, "--key", "ada"]);
    people.ok(&["apply", s(&dir), &proposal]);
    replay_and_verify(&dir);
}

/// A shadow run decides every call as the live host would, on the fork's own facts: a proposal
/// that lowers the timer grant's `max_pending` is judged against the timers the world really has
/// pending, so the schedule the live world allowed but the proposal would refuse is reported.
#[test]
fn a_shadow_run_counts_pending_timers_as_the_live_host_does() {
    let people = People::new();
    let manifest = format!(
        "[world]\nname = \"ticking\"\n[modules.ticker]\ncomponent = \"modules/ticker.wasm\"\n\
         [caps.clock]\neffect = \"timer\"\nmax_pending = 3\n[agents.ticker]\nmodule = \"ticker\"\n\
         grants = [\"clock\"]\n\n[policy]\napprovers = {{ ada = \"{}\" }}\nrequire_clean_shadow = true\n",
        people.ada
    );
    let (scratch, dir) = custom_world("ticker", &manifest);
    let world = s(&dir);
    for n in 1..=2 {
        ok(&["send", world, "ticker", &format!("schedule((600000, {n}))")]);
    }
    let tighter = scratch.path().join("tighter.toml");
    std::fs::write(&tighter, manifest.replace("max_pending = 3", "max_pending = 1")).unwrap();
    let proposal = number(&people.ok(&["propose", world, "--from", s(&tighter), "--key", "ada"]));
    let text = ok(&["shadow", world, &proposal]);
    assert!(text.contains("NOT CLEAN"), "{text}");
    assert!(
        text.contains("denied: step #") && text.contains("max_pending"),
        "{text}"
    );
    people.ok(&["approve", world, &proposal, "--key", "ada"]);
    let error = people.fails(&["apply", world, &proposal]);
    assert!(error.contains("the last one"), "{error}");
    replay_and_verify(&dir);
}
