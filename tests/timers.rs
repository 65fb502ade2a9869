//! End to end: timers fire in due order as journaled events across restarts, respect their
//! grant's limits, can be cancelled; `run --follow` takes events other processes `send`.

use crate::common::*;
use std::io::BufRead as _;

const MANIFEST: &str = r#"
    [world]
    name = "timers"
    [modules.ticker]
    component = "modules/ticker.wasm"
    [caps.clock]
    effect = "timer"
    min_interval_ms = 50
    max_pending = 3
    [agents.ticker]
    module = "ticker"
    grants = ["clock"]
    # Every restart starts from a snapshot, which must carry the pending timers.
    snapshot_every = 1
"#;

fn fired(dir: &std::path::Path) -> Vec<String> {
    log_json(dir)
        .iter()
        .filter(|e| e["kind"] == "ingress" && e["text"].as_str().unwrap().contains("(timer:"))
        .map(|e| {
            e["text"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .nth(2)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn timers_fire_in_due_order_across_restarts_within_their_limits() {
    let (_scratch, dir) = custom_world("ticker", MANIFEST);
    // Each `send` is its own process; the timers outlive them in the journal.
    ok(&["send", s(&dir), "ticker", "schedule((1500, 3))"]);
    ok(&["send", s(&dir), "ticker", "schedule((500, 1))"]);
    ok(&["send", s(&dir), "ticker", "schedule((1000, 2))"]);
    let out = ok(&["send", s(&dir), "ticker", "schedule((100, 4))"]);
    assert!(
        out.contains("DENIED: no timer grant of agent `ticker` allows this timer: clock: 3 timers already pending"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "ticker", "schedule((10, 5))"]);
    assert!(out.contains("delay 10 ms is under min_interval_ms 50"), "{out}");
    let out = ok(&["send", s(&dir), "ticker", "schedule-at(1000)"]);
    assert!(out.contains("failed: timer at t=1000 ms is in the past"), "{out}");
    assert!(fired(&dir).is_empty());

    let out = ok(&["run", s(&dir), "--wait-timers", "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["steps"], 3, "{summary}");
    assert_eq!(fired(&dir), ["tick(1)", "tick(2)", "tick(3)"]);
    // Each fired at its due time, in logical time.
    let log = ok(&["log", s(&dir)]);
    assert_eq!(log.matches("timer-scheduled").count(), 3, "{log}");
    replay_and_verify(&dir);
}

#[test]
fn a_cancelled_timer_never_fires() {
    let (_scratch, dir) = custom_world("ticker", MANIFEST);
    let out = ok(&["send", s(&dir), "ticker", "schedule((300, 7))"]);
    let id: u64 = out
        .split("→ timer ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    ok(&["send", s(&dir), "ticker", "schedule((600, 8))"]);
    let out = ok(&["send", s(&dir), "ticker", &format!("cancel({id})")]);
    assert!(out.contains(&format!("timer {id} cancelled")), "{out}");
    let out = ok(&["send", s(&dir), "ticker", &format!("cancel({id})")]);
    assert!(
        out.contains(&format!("failed: agent `ticker` has no pending timer {id}")),
        "{out}"
    );
    ok(&["run", s(&dir), "--wait-timers"]);
    assert_eq!(fired(&dir), ["tick(8)"]);
    replay_and_verify(&dir);
}

#[test]
fn run_follow_takes_events_sent_from_other_processes() {
    let (_scratch, dir) = custom_world("ticker", MANIFEST);
    ok(&["send", s(&dir), "ticker", "tick(1)"]);
    let mut follower = host_process()
        .args(["run", s(&dir), "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    let ready = lines.next().expect("the follower says it is following").unwrap();
    assert!(ready.starts_with("following"), "{ready}");

    let out = ok(&["send", s(&dir), "ticker", "schedule((200, 2))"]);
    assert!(
        out.contains("held by another process") && out.contains("inbox"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "ticker", "bogus(1)"]);
    assert!(out.contains("inbox"), "{out}");
    // The follower journals the sent event, then the timer it set fires.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = lines.next().expect("the follower printed its steps").unwrap();
        seen.push(line);
    }
    follower.kill().unwrap();
    let stderr = std::io::read_to_string(follower.stderr.take().unwrap()).unwrap();
    follower.wait().unwrap();
    assert!(seen.iter().all(|l| l.contains("committed: ticker")), "{seen:?}");
    assert!(
        stderr.contains("rejected inbox event") && stderr.contains("bogus"),
        "{stderr}"
    );
    let rejected = std::fs::read_dir(dir.join(".agentos/inbox/rejected")).unwrap().count();
    assert_eq!(rejected, 2, "the rejected event and its reason");
    assert_eq!(fired(&dir), ["tick(2)"]);
    let sources = ok(&["log", s(&dir)]);
    assert!(sources.contains("(inbox:"), "{sources}");
    replay_and_verify(&dir);
}
