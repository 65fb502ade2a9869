//! `agentos-host air`: check, show, hash and diff manifests through the binary.

use crate::common::*;

use agentos_air::{Manifest, Patch, apply};

#[test]
fn check_reports_every_problem_with_file_line_and_column() {
    let scratch = tempfile::tempdir().unwrap();
    let bad = scratch.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[world]\nname = \"w\"\n[caps.web]\neffect = \"http\"\nurls = [\"ftp://x\"]\n[agents.a]\nmodule = \"nope\"\ngrants = [\"web\", \"ghost\"]\n",
    )
    .unwrap();
    let error = fails(&["air", "check", s(&bad)], 1);
    let file = bad.display();
    for expected in [
        format!("{file}: 3 problems"),
        format!("{file}:5:1: caps.web.urls: `ftp://x` cannot match"),
        format!("{file}:7:1: agents.a.module: `nope` names no module"),
        format!("{file}:8:1: agents.a.grants: `ghost` names no capability"),
    ] {
        assert!(error.contains(&expected), "{expected}\n{error}");
    }
    std::fs::write(&bad, "[world\n").unwrap();
    let error = fails(&["air", "check", s(&bad)], 1);
    assert!(error.contains("line 1, column 7"), "{error}");
    let json = scratch.path().join("w.json");
    std::fs::write(&json, r#"{"world": {"name": "w"}, "colour": "blue"}"#).unwrap();
    let error = fails(&["air", "check", s(&json)], 1);
    assert!(error.contains("unknown field `colour`"), "{error}");
}

#[test]
fn diff_prints_a_patch_that_turns_one_manifest_into_the_other() {
    let (scratch, dir) = init("hello");
    let out = ok(&["air", "check", s(&dir)]);
    assert!(
        out.contains("valid — world `world`: 1 modules, 2 capabilities, 1 agents"),
        "{out}"
    );
    let old_text = std::fs::read_to_string(dir.join("world.toml")).unwrap();
    let new = scratch.path().join("new.toml");
    let new_text =
        old_text.replace("grants = [\"data\", \"local-web\"]", "grants = [\"data\"]") + "snapshot_every = 10\n";
    std::fs::write(&new, &new_text).unwrap();

    let patch_text = ok(&["air", "diff", s(&dir), s(&new)]);
    assert!(patch_text.starts_with("# ~ agent hello\n"), "{patch_text}");
    let patch = Patch::parse_toml(&patch_text, "diff output").unwrap();
    let old = Manifest::parse_toml(&old_text, "old").unwrap();
    assert_eq!(
        apply(&patch, &old).unwrap(),
        Manifest::parse_toml(&new_text, "new").unwrap()
    );
    let json = ok(&["air", "diff", s(&dir), s(&new), "--json"]);
    assert_eq!(Patch::parse_json(&json, "diff output").unwrap(), patch);

    // The hashes name the manifest and each definition; the patch's base is the old manifest's.
    let hashes: serde_json::Value = serde_json::from_str(&ok(&["air", "hash", s(&dir), "--json"])).unwrap();
    assert_eq!(hashes["manifest"], hex::encode(patch.base));
    assert_eq!(hashes["definitions"].as_object().unwrap().len(), 5);
}

#[test]
fn show_prints_the_manifest_of_record_from_the_journal() {
    let (scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let file_digest = hex::encode(
        Manifest::parse_toml(&std::fs::read_to_string(dir.join("world.toml")).unwrap(), "w")
            .unwrap()
            .digest(),
    );
    let out = ok(&["air", "show", s(&dir)]);
    assert!(
        out.starts_with(&format!(
            "manifest of record in force since entry #0: sha256:{file_digest}\n"
        )),
        "{out}"
    );
    assert!(out.contains(" agent counter\n"), "{out}");
    let bundle = scratch.path().join("b.agentos");
    ok(&["export", s(&dir), s(&bundle)]);
    let json = ok(&["air", "show", s(&bundle), "--json"]);
    assert_eq!(
        hex::encode(Manifest::parse_json(&json, "show").unwrap().digest()),
        file_digest
    );
    replay_and_verify(&dir);
}

#[test]
fn show_on_a_world_that_never_ran_prints_what_its_first_run_would_record() {
    let (_scratch, dir) = init("counter");
    assert!(!dir.join(".agentos/journal.redb").exists());
    let output = host().args(["air", "show", s(&dir)]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let (out, note) = (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    assert!(
        note.contains("has not run yet, so it has no manifest of record"),
        "{note}"
    );
    assert!(out.contains("(not yet the manifest of record)"), "{out}");
    assert!(out.contains(" agent counter\n"), "{out}");
    let json = ok(&["air", "show", s(&dir), "--json"]);
    // Showing it created nothing: the world is still unrun.
    assert!(!dir.join(".agentos/journal.redb").exists());

    // Its first run records exactly that manifest.
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    assert_eq!(ok(&["air", "show", s(&dir), "--json"]), json);
    let shown = ok(&["air", "show", s(&dir)]);
    let digest = out.split("sha256:").nth(1).unwrap().lines().next().unwrap();
    assert!(
        shown.starts_with(&format!(
            "manifest of record in force since entry #0: sha256:{digest}\n"
        )),
        "{shown}"
    );
    replay_and_verify(&dir);
}

/// The counter's Rust source, built against the WIT world generated from AIR (not its own
/// hand-written world), runs in a world whose manifest declares that event schema.
#[test]
fn a_component_built_from_the_generated_wit_runs_in_its_world() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scratch = tempfile::tempdir().unwrap();
    let world = scratch.path().join("world");
    std::fs::create_dir_all(world.join("modules")).unwrap();
    std::fs::write(
        world.join("world.toml"),
        "[world]\nname = \"generated\"\n\n[schemas.event]\nvariant = [\"increment(u32)\", \"reset\"]\n\n\
         [modules.counter]\ncomponent = \"modules/counter.wasm\"\n\n[agents.counter]\nmodule = \"counter\"\nevent = \"event\"\n",
    )
    .unwrap();

    let crate_dir = scratch.path().join("counter");
    let source = std::fs::read_to_string(repo.join("components/counter/src/lib.rs")).unwrap();
    guest_crate(&crate_dir, "counter", &source, "");
    let out = ok(&["air", "wit", s(&world), "-o", s(&crate_dir.join("wit"))]);
    assert!(out.contains("counter.wit"), "{out}");
    let built = build_guest_crate(&crate_dir, &repo.join("target/air-generated"), "counter");
    std::fs::copy(built, world.join("modules/counter.wasm")).unwrap();

    ok(&["send", s(&world), "counter", "increment(5)"]);
    ok(&["send", s(&world), "counter", "reset"]);
    let error = fails(&["send", s(&world), "counter", "decrement(1)"], 2);
    assert!(error.contains("does not match agent `counter`'s event type"), "{error}");
    replay_and_verify(&world);
}

/// A component whose event type is not its agent's schema is refused at load, with every
/// difference named; one that matches runs.
#[test]
fn a_component_that_does_not_match_its_event_schema_is_refused_with_a_precise_diff() {
    let manifest = |event: &str| {
        format!(
            "[world]\nname = \"w\"\n[schemas.counter-event]\nvariant = {event}\n\
             [modules.counter]\ncomponent = \"modules/counter.wasm\"\n\
             [agents.counter]\nmodule = \"counter\"\nevent = \"counter-event\"\n"
        )
    };
    let (_ok_scratch, matching) = custom_world("counter", &manifest(r#"["increment(u32)", "reset"]"#));
    ok(&["send", s(&matching), "counter", "increment(2)"]);
    replay_and_verify(&matching);

    for (event, expected) in [
        (
            r#"["increment(u64)", "reset"]"#,
            "event.increment: AIR says u64, the component has u32",
        ),
        (
            r#"["increment(u32)", "reset", "double"]"#,
            "event: the component lacks case `double`",
        ),
        (r#"["reset", "increment(u32)"]"#, "cases are in another order"),
        (
            r#"["increment", "reset"]"#,
            "event.increment: AIR says no payload, the component has u32",
        ),
        (
            "[\"increment(point)\", \"reset\"]\n[schemas.point]\nrecord = [\"x: u32\"]",
            "event.increment: AIR says a record `point`, the component has u32",
        ),
    ] {
        let (_scratch, dir) = custom_world("counter", &manifest(event));
        let error = fails(&["send", s(&dir), "counter", "reset"], 2);
        assert!(
            error.contains(
                "agent `counter`: component modules/counter.wasm does not match its event schema `counter-event`"
            ) && error.contains(expected),
            "{expected}\n{error}"
        );
        assert!(log_json(&dir).is_empty(), "nothing journaled, not even genesis");
    }
    // A world whose first open failed is not bound to what failed: fix the manifest, it opens.
    let (_scratch, dir) = custom_world("counter", &manifest(r#"["increment(u64)", "reset"]"#));
    fails(&["send", s(&dir), "counter", "reset"], 2);
    std::fs::write(dir.join("world.toml"), manifest(r#"["increment(u32)", "reset"]"#)).unwrap();
    ok(&["send", s(&dir), "counter", "reset"]);
    replay_and_verify(&dir);
}

/// A module may pin its component by sha256; other bytes are refused before anything is journaled.
#[test]
fn a_module_pinned_by_sha256_accepts_only_those_bytes() {
    let built = agentos_effects::components::ensure_built("counter").unwrap();
    let digest = hex::encode(agentos_journal::entry::sha256(&std::fs::read(built).unwrap()));
    let manifest = |pin: &str| {
        format!(
            "[world]\nname = \"w\"\n[modules.counter]\ncomponent = \"modules/counter.wasm\"\nsha256 = \"{pin}\"\n\
             crate = \"components/counter\"\n[agents.counter]\nmodule = \"counter\"\n"
        )
    };
    let wrong = "0".repeat(64);
    let (_scratch, dir) = custom_world("counter", &manifest(&wrong));
    let error = fails(&["send", s(&dir), "counter", "reset"], 2);
    assert!(
        error.contains(&format!("has sha256:{digest}, but")) && error.contains(&format!("pins sha256:{wrong}")),
        "{error}"
    );
    std::fs::write(dir.join("world.toml"), manifest(&digest)).unwrap();
    ok(&["send", s(&dir), "counter", "increment(3)"]);
    replay_and_verify(&dir);
    std::fs::write(dir.join("world.toml"), manifest("not-a-digest")).unwrap();
    let error = fails(&["air", "check", s(&dir)], 1);
    assert!(
        error.contains("modules.counter.sha256: `not-a-digest` is not a sha256"),
        "{error}"
    );
}

#[test]
fn check_warns_about_a_compile_grant_without_its_sandbox() {
    let scratch = tempfile::tempdir().unwrap();
    let manifest = scratch.path().join("world.toml");
    std::fs::write(
        &manifest,
        "[world]\nname = \"w\"\n[caps.build]\neffect = \"compile\"\nlanguages = [\"rust\"]\nsandbox = \"none\"\n",
    )
    .unwrap();
    let output = host().args(["air", "check", s(&manifest)]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let warning = String::from_utf8_lossy(&output.stderr);
    assert!(
        warning.contains("warning:") && warning.contains("caps.build.sandbox = \"none\": builds run unconfined"),
        "{warning}"
    );
    std::fs::write(
        &manifest,
        "[world]\nname = \"w\"\n[caps.build]\neffect = \"compile\"\nlanguages = [\"rust\"]\n",
    )
    .unwrap();
    let output = host().args(["air", "check", s(&manifest)]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).is_empty(), "{output:?}");
}
