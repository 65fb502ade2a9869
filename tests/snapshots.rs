//! Snapshots: a world snapshots its agents every N steps; reopening starts from the latest
//! snapshot and replays only what follows, and ends in the same states as replay from genesis.

use crate::common::*;

fn replay_json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["replay", s(dir), "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&all)).unwrap()
}

#[test]
fn recovery_from_a_snapshot_equals_replay_from_genesis() {
    let (scratch, dir) = init("counter");
    append_to_manifest(&dir, "snapshot_every = 100\n");
    let events = scratch.path().join("events.txt");
    let lines: String = (1..=3000).map(|n| format!("counter increment({})\n", n % 7)).collect();
    std::fs::write(&events, lines).unwrap();
    ok(&["run", s(&dir), "--events", s(&events)]);
    let log = log_json(&dir);
    let snapshots = count_kind(&log, "snapshot");
    assert!(snapshots >= 10, "{snapshots} snapshots for 3000 steps at one per 100");

    let genesis = replay_json(&dir, &["--all"]);
    assert_eq!(genesis["steps_replayed"], 3000);
    assert_eq!(genesis["snapshots_checked"].as_u64().unwrap() as usize, snapshots);
    let latest = replay_json(&dir, &["--from", "latest"]);
    assert!(latest["steps_replayed"].as_u64().unwrap() < 300, "{latest}");
    assert_eq!(latest["agent_states"], genesis["agent_states"]);
    // From an older snapshot: more steps, same end.
    let middle = log
        .iter()
        .filter(|e| e["kind"] == "snapshot")
        .nth(snapshots / 2)
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    let from_middle = replay_json(&dir, &["--from", &middle.to_string()]);
    assert_eq!(from_middle["from_snapshot"], middle);
    assert!(from_middle["steps_replayed"].as_u64().unwrap() > latest["steps_replayed"].as_u64().unwrap());
    assert_eq!(from_middle["agent_states"], genesis["agent_states"]);

    // A new process opens from the snapshot and goes on; both replays still agree.
    let out = ok(&["send", s(&dir), "counter", "increment(1000)"]);
    assert!(out.contains("committed"), "{out}");
    let after = replay_json(&dir, &[]);
    assert_eq!(
        after["agent_states"],
        replay_json(&dir, &["--from", "latest"])["agent_states"]
    );
    assert_ne!(after["agent_states"], genesis["agent_states"]);
    replay_and_verify(&dir);
}
