//! End to end: the hello agent's effects against a real HTTP server on 127.0.0.1 — one signed
//! receipt per effect, verifiable with a plain ed25519 library; denials for calls outside the
//! grants; instantiation refused for an ungranted import.

use crate::common::*;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

fn receipts(dir: &std::path::Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(&["receipts", s(dir), "--json"])).unwrap()
}

#[test]
fn every_effect_has_a_receipt_any_ed25519_library_verifies() {
    let (_scratch, dir) = init("hello");
    let (base, _) = serve_text("hello over http");

    let out = ok(&["send", s(&dir), "hello", r#"greet("ada")"#]);
    assert!(
        out.contains("fs read data/greeting.txt → 31 bytes [grant data]"),
        "{out}"
    );
    assert!(out.contains("Hello from a granted directory, ada!"), "{out}");
    assert!(out.contains("hello stdout: greeted ada"), "{out}");

    let out = ok(&["send", s(&dir), "hello", &format!(r#"fetch("{base}/ok")"#)]);
    assert!(
        out.contains(&format!("http GET {base}/ok → HTTP 200, 15 bytes [grant local-web]")),
        "{out}"
    );

    let all = receipts(&dir);
    // greet: fs read + log; fetch: http + log.
    assert_eq!(all.len(), 4, "{all:#?}");
    let statuses: Vec<&str> = all.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["ok", "ok", "ok", "ok"]);
    assert_eq!(all[2]["effect"], "http");
    assert_eq!(all[2]["usage"]["bytes_received"], 15);
    for receipt in &all {
        let key: [u8; 32] = hex::decode(receipt["public_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let signature: [u8; 64] = hex::decode(receipt["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let signed = hex::decode(receipt["signed_bytes"].as_str().unwrap()).unwrap();
        assert!(signed.starts_with(b"agentos.receipt.v1\0"));
        VerifyingKey::from_bytes(&key)
            .unwrap()
            .verify(&signed, &Signature::from_bytes(&signature))
            .unwrap();
        let mut tampered = signed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(
            VerifyingKey::from_bytes(&key)
                .unwrap()
                .verify(&tampered, &Signature::from_bytes(&signature))
                .is_err()
        );
    }
    replay_and_verify(&dir);
}

#[test]
fn calls_outside_the_grants_are_denied_with_signed_receipts() {
    let (_scratch, dir) = init("hello");
    let (base, _) = serve_text("hello over http");
    let port = base.rsplit(':').next().unwrap();

    // Same server, but as `localhost`: not covered by the `http://127.0.0.1:*/**` pattern.
    let out = ok(&[
        "send",
        s(&dir),
        "hello",
        &format!(r#"fetch("http://localhost:{port}/ok")"#),
    ]);
    assert!(
        out.contains("DENIED: no http grant of agent `hello` allows GET http://localhost"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "hello", r#"read-file("data/../world.toml")"#]);
    assert!(
        out.contains("DENIED") && out.contains("`..` and absolute paths are refused"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "hello", r#"read-file("secrets/key")"#]);
    assert!(out.contains("DENIED") && out.contains("not under an fs grant"), "{out}");

    let all = receipts(&dir);
    let denied: Vec<_> = all.iter().filter(|r| r["status"] == "denied").collect();
    assert_eq!(denied.len(), 3, "{all:#?}");
    assert!(denied.iter().all(|r| r["grant"].is_null()));
    replay_and_verify(&dir);
}

#[test]
fn an_ungranted_import_fails_instantiation_naming_agent_interface_and_grant() {
    let manifest = r#"
        [world]
        name = "no-http"
        [modules.hello]
        component = "modules/hello.wasm"
        [caps.data]
        effect = "fs"
        dir = "data"
        [agents.hello]
        module = "hello"
        grants = ["data"]
    "#;
    let (_scratch, dir) = custom_world("hello", manifest);
    let error = fails(&["send", s(&dir), "hello", r#"greet("x")"#], 2);
    assert!(
        error.contains("agent `hello` imports `agentos:core/http@0.2.0` but holds no grant for effect `http`"),
        "{error}"
    );
    // Refused at its first open, the world journaled nothing.
    assert!(ok(&["verify", s(&dir)]).starts_with("verify OK: 0 entries"));
}

#[test]
fn a_component_built_with_cargo_component_runs_where_it_is_installed() {
    let installed = std::process::Command::new("cargo")
        .args(["component", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!(
            "cargo-component is not installed here; the plain `cargo build --target wasm32-wasip2` path is tested everywhere"
        );
        return;
    }
    let root = agentos_effects::components::repo_root();
    let target = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cargo")
        .args(["component", "build", "--release", "-p", "counter", "--target-dir"])
        .arg(target.path())
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let built = walk(target.path())
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "counter.wasm"))
        .expect("counter.wasm built");
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    std::fs::copy(built, dir.join("modules/counter.wasm")).unwrap();
    std::fs::write(dir.join("world.toml"), "[world]\nname = \"cc\"\n[modules.counter]\ncomponent = \"modules/counter.wasm\"\n[agents.counter]\nmodule = \"counter\"\n").unwrap();
    let out = ok(&["send", s(&dir), "counter", "increment(4)"]);
    assert!(out.contains("committed"), "{out}");
    replay_and_verify(&dir);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

#[test]
fn budgets_are_enforced_from_journaled_receipts_across_restarts() {
    let (_scratch, dir) = init("hello");
    let manifest = dir.join("world.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // Before the world's first run, its manifest may still be edited: add a budget, and
    // snapshot after every step so each restart restores the budget ledger from a snapshot.
    let text = text.replace("timeout_ms = 5000\n", "timeout_ms = 5000\nbudget = { calls = 2 }\n");
    std::fs::write(&manifest, text + "snapshot_every = 1\n").unwrap();
    let (base, _) = serve_text("hello over http");
    let fetch = format!(r#"fetch("{base}/ok")"#);
    for _ in 0..2 {
        let out = ok(&["send", s(&dir), "hello", &fetch]);
        assert!(out.contains("→ HTTP 200"), "{out}");
    }
    let out = ok(&["send", s(&dir), "hello", &fetch]);
    assert!(
        out.contains("budget exceeded: grant `local-web` of agent `hello` has used 2 of its 2 calls"),
        "{out}"
    );
    // A new process rebuilds the budget from the journal, and replay decides identically.
    let out = ok(&["send", s(&dir), "hello", &fetch]);
    assert!(out.contains("budget exceeded"), "{out}");
    let all = receipts(&dir);
    let statuses: Vec<&str> = all
        .iter()
        .filter(|r| r["effect"] == "http")
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "budget-exceeded", "budget-exceeded"]);
    replay_and_verify(&dir);
}

/// What an agent writes cannot drive the terminal of the person reading the log: control
/// characters and bidirectional overrides are shown escaped; JSON keeps the text as written.
#[test]
fn agent_text_reaches_people_escaped() {
    let (_scratch, dir) = init("hello");
    let hostile = r#"greet("\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}olleh")"#;
    let out = ok(&["send", s(&dir), "hello", hostile]);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{202e}'), "{out:?}");
    assert!(
        out.contains(r"greeted \u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}olleh"),
        "{out}"
    );
    let log = ok(&["log", s(&dir)]);
    assert!(!log.contains('\u{1b}'), "{log:?}");
    let json = log_json(&dir);
    assert!(
        json.iter()
            .any(|e| e["text"].as_str().is_some_and(|t| t.contains("greeted \u{1b}]0;pwned"))),
        "JSON keeps the text as the agent wrote it"
    );
    replay_and_verify(&dir);
}
