//! End to end: failing steps — fuel exhaustion, traps, errors, memory exhaustion — roll the
//! agent's state back, are journaled as failed, never stop the world, and replay reproduces
//! them exactly.

mod common;
use common::*;

const MANIFEST: &str = r#"
    [world]
    name = "faulty"
    [modules.faulty]
    component = "modules/faulty.wasm"
    [agents.faulty]
    module = "faulty"
    fuel_per_step = 5000000
    memory_max_bytes = 16777216
"#;

fn total_digest(total: u64) -> String {
    #[derive(serde::Serialize)]
    struct State {
        total: u64,
        hoard: Vec<Vec<u8>>,
    }
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(postcard::to_allocvec(&State { total, hoard: vec![] }).unwrap())[..6])
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
        log.contains("FAILED (memory-exhausted)") && log.contains("its cap is 16777216 bytes"),
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
