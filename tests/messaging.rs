//! End to end: agents messaging each other (`emit`) and storing content-addressed notes
//! (`blob`) — delivery in one FIFO in journal order, nothing delivered from a failed step,
//! grants enforced with signed denials.

use crate::common::*;

const MANIFEST: &str = r#"
    [world]
    name = "messaging"
    [modules.notifier]
    component = "modules/notifier.wasm"

    [caps.notes]
    effect = "blob"
    max_bytes = 64
    [caps.to-archive]
    effect = "emit"
    targets = ["archive"]
    [caps.to-front]
    effect = "emit"
    targets = ["front"]

    [agents.front]
    module = "notifier"
    grants = ["notes", "to-archive"]
    [agents.archive]
    module = "notifier"
    grants = ["notes", "to-front"]
"#;

fn digest_of(text: &str) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(text.as_bytes())))
}

#[test]
fn events_flow_between_agents_and_notes_are_content_addressed() {
    let (_scratch, dir) = custom_world("notifier", MANIFEST);
    let out = ok(&[
        "send",
        s(&dir),
        "front",
        r#"relay(("archive", "notify(\"meeting at noon\")"))"#,
    ]);
    // The relayed event is journaled for `archive` and processed in the same run.
    assert!(
        out.contains(r#"→ archive notify("meeting at noon")  (emit:front"#),
        "{out}"
    );
    let digest = digest_of("meeting at noon");
    assert!(
        out.contains(&format!("blob put (15 bytes) → {digest} [grant notes]")),
        "{out}"
    );

    let out = ok(&["send", s(&dir), "archive", &format!(r#"recall("{digest}")"#)]);
    assert!(out.contains(&format!("note {digest}: meeting at noon")), "{out}");

    // Two relays in one run are delivered in the order they were sent.
    let events = dir.join("events.txt");
    std::fs::write(
        &events,
        "front relay((\"archive\", \"notify(\\\"first\\\")\"))\nfront relay((\"archive\", \"notify(\\\"second\\\")\"))\n",
    )
    .unwrap();
    ok(&["run", s(&dir), "--events", s(&events)]);
    let log = log_json(&dir);
    let delivered: Vec<&str> = log
        .iter()
        .filter(|e| e["kind"] == "ingress" && e["text"].as_str().unwrap().contains("(emit:front"))
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    assert!(
        delivered[1].contains("first") && delivered[2].contains("second"),
        "{delivered:?}"
    );
    replay_and_verify(&dir);
}

#[test]
fn grants_limit_targets_and_sizes_and_failed_steps_deliver_nothing() {
    let (_scratch, dir) = custom_world("notifier", MANIFEST);
    let out = ok(&["send", s(&dir), "archive", r#"relay(("archive", "notify(\"self\")"))"#]);
    assert!(
        out.contains("DENIED: no emit grant of agent `archive` allows sending to `archive`; granted targets: front"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "front", r#"relay(("archive", "shout(1)"))"#]);
    assert!(
        out.contains("failed: event `shout(1)` does not match agent `archive`'s event type"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "front", &format!(r#"notify("{}")"#, "x".repeat(65))]);
    assert!(
        out.contains("DENIED: a blob of 65 bytes exceeds the blob grants of agent `front` (max_bytes: notes 64)"),
        "{out}"
    );
    let missing = format!("sha256:{}", "0".repeat(64));
    let out = ok(&["send", s(&dir), "front", &format!(r#"recall("{missing}")"#)]);
    assert!(out.contains(&format!("failed: blob {missing} not found")), "{out}");

    // The emit is receipted, but the step fails, so nothing reaches `archive`.
    let out = ok(&[
        "send",
        s(&dir),
        "front",
        r#"relay-then-fail(("archive", "notify(\"lost\")"))"#,
    ]);
    assert!(
        out.contains("emit archive notify(\"lost\") → queued for archive"),
        "{out}"
    );
    assert!(out.contains("FAILED (error)"), "{out}");
    let log = log_json(&dir);
    let delivered = log
        .iter()
        .filter(|e| e["kind"] == "ingress" && e["text"].as_str().unwrap().contains("emit:"));
    assert_eq!(
        delivered.count(),
        0,
        "an event from a failed or denied call was delivered"
    );
    assert_eq!(
        ok(&["receipts", s(&dir)])
            .lines()
            .filter(|l| l.contains("DENIED"))
            .count(),
        2
    );
    replay_and_verify(&dir);
}
