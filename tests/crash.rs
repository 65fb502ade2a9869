//! Crash safety: `kill -9` the host in the middle of a stream of effectful steps, restart it,
//! and check that no effect whose receipt was durable ran twice and no journaled event was lost.

mod common;
use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A loopback server counting requests per path.
fn counting_server() -> (String, Arc<Mutex<HashMap<String, u32>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", server.server_addr().to_ip().unwrap().port());
    let hits = Arc::new(Mutex::new(HashMap::new()));
    let seen = hits.clone();
    std::thread::spawn(move || {
        // Bounded: at most 5000 requests, and it stops after 60 s without one.
        for _ in 0..5000 {
            let Ok(Some(request)) = server.recv_timeout(std::time::Duration::from_secs(60)) else {
                return;
            };
            *seen.lock().unwrap().entry(request.url().to_string()).or_insert(0) += 1;
            let _ = request.respond(tiny_http::Response::from_string("ok"));
        }
    });
    (base, hits)
}

#[test]
fn kill_9_mid_stream_loses_nothing_and_repeats_no_receipted_effect() {
    const EVENTS: usize = 700;
    let (scratch, dir) = init("hello");
    let (base, hits) = counting_server();
    let events = scratch.path().join("events.txt");
    let lines: String = (0..EVENTS)
        .map(|i| format!("hello fetch(\"{base}/item/{i}\")\n"))
        .collect();
    std::fs::write(&events, lines).unwrap();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agentos-host"))
        .args(["run", s(&dir), "--events", s(&events)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it get past the first commit batch, then kill it without warning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while hits.lock().unwrap().len() < 400 {
        assert!(std::time::Instant::now() < deadline, "the host made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the host finished before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let hits_at_crash = hits.lock().unwrap().clone();

    // What survived: every event, and the receipts of the committed batches.
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "ingress"), EVENTS, "journaled events were lost");
    let durable: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&ok(&["receipts", s(&dir), "--json"]))
        .unwrap()
        .iter()
        .filter(|r| r["effect"] == "http")
        .map(|r| {
            r["request"]
                .as_str()
                .unwrap()
                .trim_start_matches(&format!("http GET {base}"))
                .to_string()
        })
        .collect();
    assert!(
        !durable.is_empty(),
        "no batch was committed before the kill; the test proves nothing"
    );
    assert!(durable.len() < EVENTS);

    let out = ok(&["run", s(&dir), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        summary["replayed"].as_u64().unwrap() + summary["steps"].as_u64().unwrap(),
        EVENTS as u64,
        "{summary}"
    );

    let hits = hits.lock().unwrap().clone();
    for path in &durable {
        assert_eq!(hits[path], 1, "{path} had a durable receipt and was requested again");
    }
    for i in 0..EVENTS {
        let path = format!("/item/{i}");
        let count = hits.get(&path).copied().unwrap_or(0);
        // Idempotent GETs without a durable receipt may run again, at most once more.
        assert!(
            count == 1 || (count == 2 && hits_at_crash.contains_key(&path)),
            "{path}: {count} requests"
        );
    }
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "step-committed"), EVENTS);
    replay_and_verify(&dir);
}
