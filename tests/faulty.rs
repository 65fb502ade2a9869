//! End to end: failing steps — fuel exhaustion, traps, errors, memory exhaustion — roll the
//! agent's state back, are journaled as failed, never stop the world, and replay reproduces
//! them exactly.

use crate::common::*;

const MANIFEST: &str = r#"
    [world]
    name = "faulty"
    [modules.faulty]
    component = "modules/faulty.wasm"
    [caps.store]
    effect = "blob"
    max_bytes = 2097152
    [caps.itself]
    effect = "emit"
    targets = ["faulty"]
    [caps.public]
    effect = "http"
    urls = ["http://127.0.0.1:*/public/**"]
    [agents.faulty]
    module = "faulty"
    grants = ["store", "itself", "public"]
    fuel_per_step = 5000000
    memory_max_bytes = 16777216
"#;

fn total_digest(total: u64) -> String {
    #[derive(serde::Serialize)]
    struct State {
        total: u64,
        hoard: Vec<Vec<u8>>,
        poison: bool,
    }
    use sha2::Digest as _;
    let state = State {
        total,
        hoard: vec![],
        poison: false,
    };
    hex::encode(&sha2::Sha256::digest(postcard::to_allocvec(&state).unwrap())[..6])
}

#[test]
fn failed_steps_roll_back_journal_as_failed_and_replay_identically() {
    let (scratch, dir) = custom_world("faulty", MANIFEST);
    let events = scratch.path().join("events.txt");
    std::fs::write(
        &events,
        "faulty add(5)\nfaulty add-then-spin(100)\nfaulty add-then-panic(100)\nfaulty add-then-fail(100)\nfaulty grow(64)\nfaulty add(1)\n",
    )
    .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&ok(&["run", s(&dir), "--events", s(&events), "--json"])).unwrap();
    assert_eq!(summary["committed"], 2, "{summary}");
    assert_eq!(summary["failed"], 4, "{summary}");

    let log = ok(&["log", s(&dir)]);
    assert!(
        log.contains("FAILED (fuel-exhausted)") && log.contains("used all 5000000 units"),
        "{log}"
    );
    assert!(
        log.contains("FAILED (trap)") && log.contains("asked to panic at total 105"),
        "{log}"
    );
    assert!(
        log.contains("FAILED (error)") && log.contains("asked to fail at total 105"),
        "{log}"
    );
    assert!(
        log.contains("FAILED (memory-exhausted)") && log.contains("its cap (memory_max_bytes) is 16777216 bytes"),
        "{log}"
    );
    // The failures left no trace in the state: 5 + 1.
    assert!(log.contains(&format!("state sha256:{}", total_digest(6))), "{log}");

    // The world goes on after a restart, from the rolled-back state.
    let out = ok(&["send", s(&dir), "faulty", "add-then-spin(1)"]);
    assert!(out.contains("FAILED (fuel-exhausted)"), "{out}");
    let out = ok(&["send", s(&dir), "faulty", "add(4)"]);
    assert!(out.contains(&format!("state sha256:{}", total_digest(10))), "{out}");
    replay_and_verify(&dir);
}

/// Run the binary with `args`, failing the test if it has not finished within `bound` (a
/// guard against a hang, not a measurement).
fn ok_within(bound: std::time::Duration, args: &[&str]) -> String {
    let mut child = host_process()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + bound;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("agentos-host {args:?} was still running after {bound:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "agentos-host {args:?}: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_guest_that_sleeps_an_hour_finishes_its_step_at_once_in_virtual_time() {
    let (_scratch, dir) = custom_world("faulty", MANIFEST);
    let bound = std::time::Duration::from_secs(60);
    let out = ok_within(bound, &["send", s(&dir), "faulty", "sleep(3600000)"]);
    assert!(
        out.contains("stdout: slept 3600000 ms") && out.contains("committed"),
        "{out}"
    );
    let out = ok_within(bound, &["send", s(&dir), "faulty", "add(1)"]);
    assert!(out.contains(&format!("state sha256:{}", total_digest(2))), "{out}");
    // To the end of time: the clock stops there, the host goes on.
    let out = ok_within(bound, &["send", s(&dir), "faulty", &format!("sleep({})", u64::MAX)]);
    assert!(out.contains("committed") || out.contains("FAILED"), "{out}");
    ok_within(bound, &["send", s(&dir), "faulty", "add(1)"]);
    // Replay sees the same hour go by, just as fast.
    ok_within(bound, &["replay", s(&dir)]);
    replay_and_verify(&dir);
}

#[test]
fn a_step_past_its_deadline_fails_and_the_world_goes_on_and_replays_without_waiting() {
    // Fuel enough for hours: only the deadline stops this loop.
    let manifest = MANIFEST.replace("fuel_per_step = 5000000", "fuel_per_step = 1000000000000000")
        + "    step_deadline_ms = 300\n";
    let (_scratch, dir) = custom_world("faulty", &manifest);
    let bound = std::time::Duration::from_secs(60);
    let out = ok_within(bound, &["send", s(&dir), "faulty", "add-then-spin(7)"]);
    assert!(
        out.contains("FAILED (deadline-exceeded)") && out.contains("step_deadline_ms of 300 ms"),
        "{out}"
    );
    let out = ok_within(bound, &["send", s(&dir), "faulty", "add(1)"]);
    assert!(out.contains(&format!("state sha256:{}", total_digest(1))), "{out}");
    let out = ok_within(bound, &["replay", s(&dir)]);
    assert!(out.starts_with("replay OK"), "{out}");
    replay_and_verify(&dir);
}

#[test]
fn a_snapshot_that_loops_spends_the_step_s_fuel_and_rolls_back() {
    let (_scratch, dir) = custom_world("faulty", MANIFEST);
    ok(&["send", s(&dir), "faulty", "add(2)"]);
    let out = ok(&["send", s(&dir), "faulty", "poison-snapshot"]);
    assert!(
        out.contains("FAILED (fuel-exhausted)") && out.contains("used all 5000000 units"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "faulty", "add(1)"]);
    assert!(out.contains(&format!("state sha256:{}", total_digest(3))), "{out}");
    replay_and_verify(&dir);
}

#[test]
fn a_step_flooding_the_journal_with_payloads_or_events_fails_at_its_cap() {
    let manifest = MANIFEST.replace("fuel_per_step = 5000000", "fuel_per_step = 100000000000");
    let (_scratch, dir) = custom_world("faulty", &manifest);
    // 1,000 blobs of 1 MiB in one step: the step fails once it holds 64 MiB of payloads.
    let out = ok(&["send", s(&dir), "faulty", "flood-blobs((1000, 1024))"]);
    assert!(
        out.contains("FAILED (trap)") && out.contains("more than its step_payload_max_bytes (67108864)"),
        "{out}"
    );
    let receipts = count_kind(&log_json(&dir), "effect-receipt");
    assert!((60..=70).contains(&receipts), "{receipts} blob puts were journaled");
    let out = ok(&["send", s(&dir), "faulty", "flood-emits(1000)"]);
    assert!(
        out.contains("FAILED (trap)") && out.contains("emitted more than step_emits_max (100) events"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "faulty", "add(1)"]);
    assert!(out.contains(&format!("state sha256:{}", total_digest(1))), "{out}");
    replay_and_verify(&dir);
}

/// An agent, in component text, whose instance declares `hogs` extra memories of 16 MiB each.
fn memory_hog(hogs: usize) -> String {
    let hog_instances: String = (0..hogs)
        .map(|i| format!("(core instance $hog{i} (instantiate $hog))\n"))
        .collect();
    format!(
        r#"(component
  (core module $hog (memory (export "memory") 256))
  {hog_instances}
  (core module $agent
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      global.get $next
      local.set $at
      global.get $next
      local.get 3
      i32.add
      i32.const 7
      i32.add
      i32.const -8
      i32.and
      global.set $next
      local.get $at)
    (func (export "init") (param i32 i32) (result i32) i32.const 0)
    (func (export "snapshot") (result i32) i32.const 16)
    (func (export "restore") (param i32 i32) (result i32) i32.const 0)
    (func (export "handle") (param i32) (result i32) i32.const 0))
  (core instance $a (instantiate $agent))
  (func $init (param "config" string) (result (result (error string)))
    (canon lift (core func $a "init") (memory (core memory $a "memory")) (realloc (core func $a "realloc"))))
  (func $snapshot (result (list u8))
    (canon lift (core func $a "snapshot") (memory (core memory $a "memory")) (realloc (core func $a "realloc"))))
  (func $restore (param "state" (list u8)) (result (result (error string)))
    (canon lift (core func $a "restore") (memory (core memory $a "memory")) (realloc (core func $a "realloc"))))
  (instance $lifecycle
    (export "init" (func $init))
    (export "snapshot" (func $snapshot))
    (export "restore" (func $restore)))
  (export "agentos:core/lifecycle@0.1.0" (instance $lifecycle))
  (type $event (variant (case "go")))
  (export $ev "event" (type $event))
  (func $handle (param "event" $ev) (result (result (error string)))
    (canon lift (core func $a "handle") (memory (core memory $a "memory")) (realloc (core func $a "realloc"))))
  (export "handle" (func $handle)))"#
    )
}

#[test]
fn many_memories_count_together_against_the_instance_cap() {
    let world = |hogs: usize| {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("world");
        std::fs::create_dir_all(dir.join("modules")).unwrap();
        std::fs::write(dir.join("modules/hog.wasm"), wat::parse_str(memory_hog(hogs)).unwrap()).unwrap();
        std::fs::write(
            dir.join("world.toml"),
            "[world]\nname = \"hogs\"\n[modules.hog]\ncomponent = \"modules/hog.wasm\"\n\
             [agents.hog]\nmodule = \"hog\"\nmemory_max_bytes = 67108864\n",
        )
        .unwrap();
        (scratch, dir)
    };
    // Two memories of 16 MiB fit a 64 MiB cap: the component is a working agent.
    let (_scratch, dir) = world(2);
    let out = ok(&["send", s(&dir), "hog", "go"]);
    assert!(out.contains("committed"), "{out}");
    replay_and_verify(&dir);
    // Eight of them, each under the cap alone, do not fit it together.
    let (_scratch, dir) = world(8);
    let error = fails(&["send", s(&dir), "hog", "go"], 2);
    assert!(
        error.contains("memory limit exceeded") && error.contains("in all (memories and tables)"),
        "{error}"
    );
}

/// A server on 127.0.0.1 that answers with the request's path and Host header, as it received
/// them.
fn echo_server() -> String {
    serve(|request, _| {
        let host = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("host"))
            .map(|h| h.value.to_string())
            .unwrap_or_default();
        let body = format!("path={} host={host}", request.url());
        let _ = request.respond(tiny_http::Response::from_string(body));
    })
    .0
}

#[test]
fn the_request_sent_is_the_one_checked_and_agents_cannot_set_the_target_or_framing() {
    let (_scratch, dir) = custom_world("faulty", MANIFEST);
    let base = echo_server();
    let port = base.rsplit(':').next().unwrap();
    // Granted after normalisation, and sent as normalised: the server never sees the dot segments.
    let out = ok(&[
        "send",
        s(&dir),
        "faulty",
        &format!(r#"fetch-with(("{base}/public/./x/../y", []))"#),
    ]);
    assert!(
        out.contains(&format!("status 200: path=/public/y host=127.0.0.1:{port}")),
        "{out}"
    );
    // Headers that would pick another virtual host or reframe the request are refused, with a
    // signed denial; the server never hears of them.
    for header in [
        "Host",
        "host",
        "Transfer-Encoding",
        "Content-Length",
        "Connection",
        "Upgrade",
    ] {
        let out = ok(&[
            "send",
            s(&dir),
            "faulty",
            &format!(r#"fetch-with(("{base}/public/a", [("{header}", "internal.example")]))"#),
        ]);
        assert!(
            out.contains(&format!(
                "DENIED: header `{header}` is set by the host, not by an agent"
            )) && out.contains("refused: EffectError::Denied"),
            "{header}: {out}"
        );
    }
    let out = ok(&[
        "send",
        s(&dir),
        "faulty",
        &format!(r#"fetch-with(("{base}/public/a", [("x-note", "one\r\nHost: internal.example")]))"#),
    ]);
    assert!(out.contains("has a line break or NUL in its value"), "{out}");
    replay_and_verify(&dir);
}

#[test]
fn a_grant_that_denies_private_addresses_refuses_loopback_after_resolution() {
    let manifest = MANIFEST.replace(
        "urls = [\"http://127.0.0.1:*/public/**\"]",
        "urls = [\"http://127.0.0.1:*/public/**\", \"http://localhost:*/public/**\"]\n    deny_private_addresses = true",
    );
    let (_scratch, dir) = custom_world("faulty", &manifest);
    let base = echo_server();
    let port = base.rsplit(':').next().unwrap();
    for url in [format!("{base}/public/a"), format!("http://localhost:{port}/public/a")] {
        let out = ok(&["send", s(&dir), "faulty", &format!(r#"fetch-with(("{url}", []))"#)]);
        assert!(
            out.contains("a loopback address, which the grant refuses (deny_private_addresses)")
                && out.contains("refused: EffectError::Denied"),
            "{url}: {out}"
        );
    }
    replay_and_verify(&dir);
}
