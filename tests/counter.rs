//! End to end: the counter agent through the real binary — a thousand events, a restart, replay,
//! verify — and the bad inputs that must be refused without losing anything journaled.

use crate::common::*;
use sha2::{Digest as _, Sha256};

/// The counter component's state, encoded as its SDK does (postcard).
#[derive(serde::Serialize)]
struct CounterState {
    value: u64,
    events: u64,
}

fn state_digest(value: u64, events: u64) -> String {
    hex::encode(&Sha256::digest(postcard::to_allocvec(&CounterState { value, events }).unwrap())[..6])
}

#[test]
fn a_thousand_events_restart_and_replay_identically() {
    let (scratch, dir) = init("counter");
    let events = scratch.path().join("events.txt");
    let mut text = String::from("# a thousand increments\n");
    let mut expected = 0u64;
    for i in 0..1000u64 {
        text.push_str(&format!("counter increment({})\n", i % 7));
        expected += i % 7;
    }
    std::fs::write(&events, text).unwrap();
    let summary = ok(&["run", s(&dir), "--events", s(&events), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["steps"], 1000);
    assert_eq!(summary["committed"], 1000);

    // A new process recovers the world from its journal and carries on from the right state.
    let out = ok(&["send", s(&dir), "counter", "increment(3)"]);
    let digest = state_digest(expected + 3, 1001);
    assert!(
        out.contains(&format!("committed: counter state sha256:{digest}")),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "counter", "--json", r#""reset""#]);
    assert!(
        out.contains(&format!("state sha256:{}", state_digest(0, 1002))),
        "{out}"
    );

    // Native code is cached in the user's cache, never in the world directory.
    assert!(!dir.join(".agentos/cache").exists());

    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "ingress"), 1002);
    assert_eq!(count_kind(&log, "step-committed"), 1002);
    replay_and_verify(&dir);
}

#[test]
fn bad_events_are_refused_with_the_reason_and_nothing_is_lost() {
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(2)"]);

    let error = fails(&["send", s(&dir), "nobody", "increment(1)"], 2);
    assert!(
        error.contains("no agent `nobody`") && error.contains("agents: counter"),
        "{error}"
    );
    let error = fails(&["send", s(&dir), "counter", "increment(\"x\")"], 2);
    assert!(error.contains("does not match agent `counter`'s event type"), "{error}");
    assert!(error.contains("variant { increment(u32), reset }"), "{error}");
    let error = fails(&["send", s(&dir), "counter", "--json", r#"{"increment": -1}"#], 2);
    assert!(error.contains("event.increment: expected u32"), "{error}");
    let error = fails(&["send", s(&dir), "counter", "--json", r#"{"decrement": 1}"#], 2);
    assert!(error.contains("unknown case `decrement`"), "{error}");

    // Only the one good event was journaled, and it is intact.
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "ingress"), 1);
    assert_eq!(count_kind(&log, "step-committed"), 1);
    replay_and_verify(&dir);
}

#[test]
fn a_malformed_manifest_names_file_and_line() {
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let manifest = dir.join("world.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, original.replace("module = \"counter\"", "module = ")).unwrap();
    let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
    assert!(error.contains("world.toml") && error.contains("line "), "{error}");

    std::fs::write(
        &manifest,
        original.replace("module = \"counter\"", "module = \"counter\"\nfuel_per_step = 5"),
    )
    .unwrap();
    let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
    assert!(
        error.contains("differs from the manifest in force") && error.contains("agentos-host propose"),
        "{error}"
    );

    std::fs::write(&manifest, &original).unwrap();
    replay_and_verify(&dir);
}

#[test]
fn a_missing_component_file_is_named() {
    let (_scratch, dir) = init("counter");
    std::fs::remove_file(dir.join("modules/counter.wasm")).unwrap();
    let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
    assert!(
        error.contains("module `counter`") && error.contains("modules/counter.wasm"),
        "{error}"
    );
}

#[test]
fn a_second_process_is_refused_while_the_world_is_open() {
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let held = agentos_journal::Journal::open(&dir.join(".agentos/journal.redb")).unwrap();
    for command in ["run", "replay", "verify", "log"] {
        let error = fails(&[command, s(&dir)], 2);
        assert!(error.contains("open in another process"), "{command}: {error}");
    }
    // `send` leaves the event in the world's inbox for whoever holds it (or the next `run`).
    let out = ok(&["send", s(&dir), "counter", "increment(1)"]);
    assert!(
        out.contains("held by another process") && out.contains(".agentos/inbox/"),
        "{out}"
    );
    drop(held);
    let out = ok(&["run", s(&dir), "--json"]);
    assert!(
        out.contains(r#""queued":1"#) && out.contains(r#""committed":1"#),
        "{out}"
    );
    assert!(
        std::fs::read_dir(dir.join(".agentos/inbox")).unwrap().next().is_none(),
        "the inbox file was not removed"
    );
    replay_and_verify(&dir);
}

#[test]
fn a_component_that_is_not_an_agent_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    std::fs::write(dir.join("modules/empty.wasm"), wat::parse_str("(component)").unwrap()).unwrap();
    std::fs::write(
        dir.join("world.toml"),
        "[world]\nname = \"w\"\n[modules.empty]\ncomponent = \"modules/empty.wasm\"\n[agents.empty]\nmodule = \"empty\"\n",
    )
    .unwrap();
    let error = fails(&["send", s(&dir), "empty", "x"], 2);
    assert!(
        error.contains("agent `empty`: component does not export the agent world"),
        "{error}"
    );
    assert!(error.contains("agentos:core/lifecycle@0.2.0"), "{error}");
    // A world whose first open is refused journals nothing, not even genesis.
    assert!(ok(&["verify", s(&dir)]).starts_with("verify OK: 0 entries"));

    std::fs::write(dir.join("modules/empty.wasm"), b"\0asm not really").unwrap();
    let fresh = scratch.path().join("world2");
    std::fs::create_dir_all(fresh.join("modules")).unwrap();
    std::fs::copy(dir.join("modules/empty.wasm"), fresh.join("modules/empty.wasm")).unwrap();
    std::fs::copy(dir.join("world.toml"), fresh.join("world.toml")).unwrap();
    let error = fails(&["send", s(&fresh), "empty", "x"], 2);
    assert!(
        error.contains("module `empty`") && error.contains("not a valid wasm component"),
        "{error}"
    );
}

#[test]
fn help_explains_every_command() {
    let help = ok(&["--help"]);
    for command in [
        "init", "send", "run", "log", "receipts", "replay", "verify", "demo", "bench",
    ] {
        assert!(help.contains(command), "--help does not mention `{command}`:\n{help}");
        let own = ok(&[command, "--help"]);
        assert!(own.contains("Usage: agentos-host"), "{command} --help:\n{own}");
    }
    assert!(help.contains("Exit status"), "{help}");
}

#[test]
fn an_agent_importing_governance_without_a_grant_is_refused_at_load() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    let component = wat::parse_str(r#"(component (import "agentos:core/governance@0.1.0" (instance)))"#).unwrap();
    std::fs::write(dir.join("modules/thinker.wasm"), component).unwrap();
    std::fs::write(
        dir.join("world.toml"),
        "[world]\nname = \"w\"\n[modules.thinker]\ncomponent = \"modules/thinker.wasm\"\n[agents.thinker]\nmodule = \"thinker\"\n",
    )
    .unwrap();
    let error = fails(&["send", s(&dir), "thinker", "x"], 2);
    assert!(
        error.contains(
            "agent `thinker` imports `agentos:core/governance@0.1.0` but holds no grant for effect `governance`"
        ),
        "{error}"
    );
    assert!(ok(&["verify", s(&dir)]).starts_with("verify OK: 0 entries"));
}

#[test]
fn a_bad_line_in_an_events_file_is_named_and_journals_nothing_from_the_file() {
    let (scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let events = scratch.path().join("events.txt");
    std::fs::write(
        &events,
        "counter increment(2)\ncounter increment(minus one)\ncounter reset\n",
    )
    .unwrap();
    let error = fails(&["run", s(&dir), "--events", s(&events)], 2);
    assert!(
        error.contains("events.txt:2") && error.contains("does not match agent `counter`'s event type"),
        "{error}"
    );
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "ingress"), 1);
    replay_and_verify(&dir);
}

#[test]
fn a_world_runs_from_any_directory() {
    let (scratch, dir) = init("counter");
    let elsewhere = tempfile::tempdir().unwrap();
    let relative = pathdiff(&dir, elsewhere.path());
    let output = host()
        .current_dir(elsewhere.path())
        .args(["send", &relative, "counter", "increment(9)"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Moving the whole world keeps it working: nothing in it points outside it.
    let moved = scratch.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    let out = ok(&["send", s(&moved), "counter", "increment(1)"]);
    assert!(out.contains(&format!("state sha256:{}", state_digest(10, 2))), "{out}");
    replay_and_verify(&moved);
}

/// `target` relative to `base` (both absolute), via `..` segments.
fn pathdiff(target: &std::path::Path, base: &std::path::Path) -> String {
    let depth = base.components().count() - 1;
    let mut relative = std::path::PathBuf::new();
    for _ in 0..depth {
        relative.push("..");
    }
    relative.push(target.strip_prefix("/").unwrap());
    relative.to_str().unwrap().to_string()
}

/// Output cut short by a pipe (`agentos-host log w | head`) ends the command quietly, as Unix
/// tools do: exit 0, no panic, no message; the world is untouched.
#[test]
fn every_command_whose_output_pipe_closes_exits_quietly() {
    let (scratch, dir) = init("counter");
    for n in 1..=20 {
        ok(&["send", s(&dir), "counter", &format!("increment({n})")]);
    }
    let bundle = scratch.path().join("b.agentos");
    ok(&["export", s(&dir), s(&bundle)]);
    let d = s(&dir);
    let commands: &[&[&str]] = &[
        &["log", d],
        &["log", d, "--json"],
        &["receipts", d, "--json"],
        &["replay", d],
        &["verify", d],
        &["air", "show", d],
        &["air", "hash", d],
        &["history", d],
        &["plan", "list", d],
        &["log", s(&bundle)],
        &["send", d, "counter", "increment(1)"],
        &["--help"],
    ];
    for args in commands {
        // A pipe whose reading end is already closed: the command's first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut command = host_process();
        let output = command.args(*args).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "agentos-host {args:?} with a closed stdout: {}\n{stderr}",
            output.status
        );
    }
    replay_and_verify(&dir);
}

/// Every file the host writes for a world is its owner's alone: `.agentos/` and everything under
/// it 0700 / 0600 whatever the umask, audit bundles 0600, the compiled-component cache too.
#[test]
fn every_file_the_host_writes_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let (scratch, dir) = init("hello");
    let cache = scratch.path().join("cache-home");
    let with_cache = |args: &[&str]| {
        let mut command = host();
        command.env("XDG_CACHE_HOME", &cache);
        ok_with(command, args)
    };
    with_cache(&["send", s(&dir), "hello", r#"greet("ada")"#]);
    with_cache(&["rotate-key", s(&dir)]);
    let bundle = scratch.path().join("audit.agentos");
    with_cache(&["export", s(&dir), s(&bundle)]);
    {
        // While another process holds the world, `send` leaves its event in the inbox.
        let _held = agentos_journal::Journal::open(&dir.join(".agentos/journal.redb")).unwrap();
        with_cache(&["send", s(&dir), "hello", r#"greet("bob")"#]);
    }
    let mode = |path: &std::path::Path| std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777;
    fn walk(path: &std::path::Path, seen: &mut Vec<std::path::PathBuf>) {
        seen.push(path.to_path_buf());
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), seen);
            }
        }
    }
    let mut seen = Vec::new();
    walk(&dir.join(".agentos"), &mut seen);
    walk(&cache.join("agentos"), &mut seen);
    assert!(seen.iter().any(|p| p.ends_with("journal.redb")) && seen.iter().any(|p| p.ends_with("host.key")));
    assert!(
        seen.iter().any(|p| p.to_string_lossy().ends_with(".event.json")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|p| p.extension().is_some_and(|e| e == "cwasm")),
        "{seen:?}"
    );
    for path in &seen {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), expected, "{} is {:o}", path.display(), mode(path));
    }
    assert_eq!(mode(&bundle), 0o600);
    with_cache(&["run", s(&dir)]);
    replay_and_verify(&dir);
}

/// A world directory from elsewhere cannot make the host write outside it, nor run its own
/// native code: a planted `inbox` link is refused, a planted compiled component is never read.
#[test]
fn planted_links_and_planted_native_code_in_a_world_directory_are_not_followed() {
    let (scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let elsewhere = scratch.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let _ = std::fs::remove_dir_all(dir.join(".agentos/inbox"));
    std::os::unix::fs::symlink(&elsewhere, dir.join(".agentos/inbox")).unwrap();
    {
        let _held = agentos_journal::Journal::open(&dir.join(".agentos/journal.redb")).unwrap();
        let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
        assert!(error.contains("inbox is a symbolic link"), "{error}");
    }
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "the host wrote through the link"
    );
    std::fs::remove_file(dir.join(".agentos/inbox")).unwrap();

    // Native code compiled from another component (the faulty agent), planted under the name
    // the counter's would have in the world's directory.
    let theirs = scratch.path().join("their-cache");
    let (_faulty_scratch, faulty) = custom_world(
        "faulty",
        "[world]\nname = \"f\"\n[modules.faulty]\ncomponent = \"modules/faulty.wasm\"\n\
         [caps.store]\neffect = \"blob\"\n[caps.itself]\neffect = \"emit\"\ntargets = [\"faulty\"]\n\
         [caps.web]\neffect = \"http\"\nurls = [\"http://127.0.0.1:*/**\"]\n\
         [agents.faulty]\nmodule = \"faulty\"\ngrants = [\"store\", \"itself\", \"web\"]\n",
    );
    let mut command = host();
    command.env("XDG_CACHE_HOME", &theirs);
    ok_with(command, &["send", s(&faulty), "faulty", "add(1)"]);
    let planted_code = std::fs::read_dir(theirs.join("agentos/components"))
        .unwrap()
        .flat_map(|engine| std::fs::read_dir(engine.unwrap().path()).unwrap())
        .map(|file| file.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    use sha2::Digest as _;
    let counter = hex::encode(sha2::Sha256::digest(
        std::fs::read(dir.join("modules/counter.wasm")).unwrap(),
    ));
    std::fs::create_dir_all(dir.join(".agentos/cache")).unwrap();
    std::fs::copy(&planted_code, dir.join(format!(".agentos/cache/{counter}.cwasm"))).unwrap();
    let mut command = host();
    command.env("XDG_CACHE_HOME", scratch.path().join("fresh-cache"));
    let out = ok_with(command, &["send", s(&dir), "counter", "increment(2)"]);
    assert!(out.contains(&format!("state sha256:{}", state_digest(3, 2))), "{out}");
    replay_and_verify(&dir);
}

/// A `.agentos` of someone else's is neither written nor run (as root, the test can make one).
#[test]
fn a_world_whose_private_directory_belongs_to_another_user_is_refused() {
    let (_scratch, dir) = init("counter");
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    let state = dir.join(".agentos");
    if std::os::unix::fs::chown(&state, Some(4242), None).is_err() {
        eprintln!(
            "not running as root: cannot give {} to another user; nothing to check",
            state.display()
        );
        return;
    }
    let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
    assert!(
        error.contains("is owned by user 4242, not by the user this host runs as"),
        "{error}"
    );
    std::os::unix::fs::chown(&state, Some(agentos_journal::private::uid()), None).unwrap();
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    replay_and_verify(&dir);
}
