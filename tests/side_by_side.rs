//! End to end: steps of different agents run side by side. Their effects overlap (a slow
//! endpoint sees them at once), a slow step holds up no other agent, each agent's steps keep
//! its input order, replay redoes each step exactly in the order the journal recorded, and a
//! kill -9 with steps in flight loses nothing and repeats no POST.

use crate::common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const AGENTS: [&str; 4] = ["ada", "bob", "cy", "dee"];

/// A world of the four agents above, each a `hello` granted GET and POST to 127.0.0.1.
fn four_agents() -> (tempfile::TempDir, std::path::PathBuf) {
    hello_agents(&AGENTS, "")
}

/// A server answering each request after `delay_ms` on a thread of its own; counts the most
/// requests it held at once.
fn slow_server(delay_ms: u64) -> (String, Hits, Arc<AtomicU32>, Arc<AtomicU32>) {
    let (held, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (seen_held, seen_most) = (held.clone(), most.clone());
    let (base, hits) = serve(move |request, _| {
        let (held, most) = (seen_held.clone(), seen_most.clone());
        std::thread::spawn(move || {
            most.fetch_max(held.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            held.fetch_sub(1, Ordering::SeqCst);
            let _ = request.respond(tiny_http::Response::from_string("ok"));
        });
    });
    (base, hits, held, most)
}

/// The agents of the step records in `log`, in journal order.
fn stepped(log: &[serde_json::Value]) -> Vec<(String, u64)> {
    log.iter()
        .filter(|e| e["kind"] == "step-committed")
        .map(|e| (e["agent"].as_str().unwrap().to_string(), e["step"].as_u64().unwrap()))
        .collect()
}

#[test]
fn steps_of_different_agents_overlap_and_each_agent_keeps_its_order() {
    let (base, hits, _, most) = slow_server(300);
    let (scratch, dir) = four_agents();
    let events = scratch.path().join("events.txt");
    let lines: String = (0..2)
        .flat_map(|round| AGENTS.map(|agent| format!("{agent} fetch(\"{base}/{agent}/{round}\")\n")))
        .collect();
    std::fs::write(&events, lines).unwrap();
    let summary = ok(&["run", s(&dir), "--events", s(&events), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["committed"], 8, "{summary}");
    assert_eq!(total(&hits), 8);
    assert!(hits.lock().unwrap().values().all(|&n| n == 1), "{hits:?}");
    // The four agents' calls were in flight together (each held 300 ms).
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "at most {} requests at once",
        most.load(Ordering::SeqCst)
    );
    // Each agent's two steps in its input order, whatever order the agents finished in.
    let log = log_json(&dir);
    let stepped = stepped(&log);
    assert_eq!(stepped.len(), 8);
    for agent in AGENTS {
        let own: Vec<u64> = stepped
            .iter()
            .filter(|(a, _)| a == agent)
            .map(|(_, step)| *step)
            .collect();
        assert!(own.len() == 2 && own[0] < own[1], "{agent}: {stepped:?}");
    }
    replay_and_verify(&dir);
}

#[test]
fn a_slow_step_holds_up_no_other_agent() {
    // `ada` waits 5 s on its endpoint; `bob`'s three fetches, queued behind it, each take
    // 50 ms. Bob's steps all commit while ada's is in flight, so the journal records them
    // first: replay follows the journal's order, not the inputs'.
    let (slow, _, _, _) = slow_server(5_000);
    let (fast, fast_hits, _, _) = slow_server(50);
    let (scratch, dir) = hello_agents(&["ada", "bob"], "");
    let events = scratch.path().join("events.txt");
    let mut lines = format!("ada fetch(\"{slow}/ada\")\n");
    for i in 0..3 {
        lines.push_str(&format!("bob fetch(\"{fast}/bob/{i}\")\n"));
    }
    std::fs::write(&events, lines).unwrap();
    ok(&["run", s(&dir), "--events", s(&events)]);
    assert_eq!(total(&fast_hits), 3);
    let log = log_json(&dir);
    let agents: Vec<String> = stepped(&log).into_iter().map(|(agent, _)| agent).collect();
    assert_eq!(agents, ["bob", "bob", "bob", "ada"], "{log:?}");
    // Replay re-executes the steps in that order and finds every state as recorded.
    let replay = ok(&["replay", s(&dir), "--json"]);
    let replay: serde_json::Value = serde_json::from_str(&replay).unwrap();
    assert_eq!(replay["steps_replayed"], 4, "{replay}");
    replay_and_verify(&dir);
}

#[test]
fn kill_9_with_steps_in_flight_repeats_no_post_and_the_world_goes_on() {
    let (base, hits, held, _) = slow_server(5_000);
    let (scratch, dir) = four_agents();
    let events = scratch.path().join("events.txt");
    let lines: String = AGENTS
        .map(|agent| format!("{agent} post((\"{base}/{agent}\", \"order of {agent}\"))\n"))
        .concat();
    std::fs::write(&events, lines).unwrap();
    let mut child = spawn_quiet(&["run", s(&dir), "--events", s(&events)]);
    // Kill the host while at least two POSTs are in flight (their intents are durable).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while held.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "the POSTs never arrived");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let posted = total(&hits);

    // Reopening finishes the four steps: a POST whose intent is journaled without a receipt is
    // in doubt, never sent again.
    ok(&["run", s(&dir)]);
    let log = log_json(&dir);
    assert_eq!(
        count_kind(&log, "step-committed") + count_kind(&log, "step-failed"),
        4,
        "{log:?}"
    );
    let in_doubt = log
        .iter()
        .filter(|e| e["kind"] == "effect-receipt" && e["text"].as_str().unwrap().contains("in doubt"))
        .count();
    assert!(in_doubt >= 2, "{in_doubt} in doubt: {log:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        hits.lock().unwrap().values().all(|&n| n == 1),
        "a POST was sent twice: {hits:?}"
    );
    assert!(total(&hits) <= posted + (4 - in_doubt as u32), "{hits:?}");

    // The world goes on.
    let out = ok(&["send", s(&dir), "ada", "greet(\"again\")"]);
    assert!(out.contains("step-committed"), "{out}");
    replay_and_verify(&dir);
}

#[test]
fn snapshots_among_agents_taking_turns_side_by_side_verify() {
    // Three agents taking turns, each due a snapshot after every step, across the commit due at
    // the 256th step: snapshots are taken only between steps (none in flight), so each holds
    // the states after the records before it.
    let agents = ["ada", "bob", "cy"];
    let (scratch, dir) = hello_agents(&agents, "snapshot_every = 1");
    let events = scratch.path().join("events.txt");
    let lines: String = (0..258)
        .map(|i| format!("{} greet(\"x{i}\")\n", agents[i % 3]))
        .collect();
    std::fs::write(&events, lines).unwrap();
    let summary = ok(&["run", s(&dir), "--events", s(&events), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["committed"], 258, "{summary}");
    let log = log_json(&dir);
    let snapshots: Vec<String> = log
        .iter()
        .filter(|e| e["kind"] == "snapshot")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert!(!snapshots.is_empty(), "{log:?}");
    replay_and_verify(&dir);
}

#[test]
fn steps_in_flight_bounds_how_many_agents_run_at_once() {
    let (base, hits, _, most) = slow_server(200);
    let (scratch, dir) = four_agents();
    let events = scratch.path().join("events.txt");
    let lines: String = AGENTS
        .map(|agent| format!("{agent} fetch(\"{base}/{agent}\")\n"))
        .concat();
    std::fs::write(&events, lines).unwrap();
    ok(&["run", s(&dir), "--events", s(&events), "--steps-in-flight", "1"]);
    assert_eq!(total(&hits), 4);
    assert_eq!(most.load(Ordering::SeqCst), 1, "more than one step at once");
    let refused = fails(&["run", s(&dir), "--steps-in-flight", "0"], 2);
    assert!(refused.contains("--steps-in-flight"), "{refused}");
    replay_and_verify(&dir);
}
