//! Crash safety: `kill -9` the host in the middle of a stream of effectful steps, restart it,
//! and check that no effect whose receipt was durable ran twice and no journaled event was lost.

use crate::common::*;

#[test]
fn kill_9_mid_stream_loses_nothing_and_repeats_no_receipted_effect() {
    const EVENTS: usize = 700;
    let (scratch, dir) = init("hello");
    let (base, hits) = serve_text("ok");
    let events = scratch.path().join("events.txt");
    let lines: String = (0..EVENTS)
        .map(|i| format!("hello fetch(\"{base}/item/{i}\")\n"))
        .collect();
    std::fs::write(&events, lines).unwrap();

    let mut child = spawn_quiet(&["run", s(&dir), "--events", s(&events)]);
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
    // Requests the host sent before it died may still wait in the test server's accept queue:
    // let it count them before taking what the host had asked for by the crash.
    std::thread::sleep(std::time::Duration::from_millis(500));
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

#[test]
fn a_non_idempotent_effect_interrupted_after_its_intent_is_in_doubt_not_retried() {
    use agentos_effects::EffectRequest;
    use agentos_journal::entry::{EffectIntent, EntryBody, sha256};
    use agentos_runtime::world::{EventInput, OpenMode, World};

    let (base, hits) = serve_text("ok");
    let manifest = r#"
        [world]
        name = "in-doubt"
        [modules.hello]
        component = "modules/hello.wasm"
        [caps.data]
        effect = "fs"
        dir = "data"
        [caps.api]
        effect = "http"
        urls = ["http://127.0.0.1:*/**"]
        methods = ["GET", "POST"]
        [agents.hello]
        module = "hello"
        grants = ["data", "api"]
    "#;
    let (_scratch, dir) = custom_world("hello", manifest);
    let url = format!("{base}/orders");

    // A POST runs live: its intent is journaled (and committed) before its receipt.
    let out = ok(&["send", s(&dir), "hello", &format!(r#"post(("{url}", "order 1"))"#)]);
    let intent = out.find("effect-intent").expect("an intent before the POST");
    assert!(intent < out.find("http POST").unwrap(), "{out}");
    assert_eq!(hits.lock().unwrap()[&"/orders".to_string()], 1);

    // The state a crash leaves between the intent's commit and the POST's receipt: the event and
    // the intent are durable, nothing after them is.
    {
        let mut world = World::open(&dir, OpenMode::Run).unwrap();
        let seq = world
            .ingest(
                "hello",
                EventInput::Wave(&format!(r#"post(("{url}", "order 2"))"#)),
                "test",
            )
            .unwrap();
        let request = EffectRequest::Http {
            method: "POST".into(),
            url: url.clone(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Some(b"order 2".to_vec()),
        };
        let mut journal = world.kernel.journal();
        journal.append(EntryBody::EffectIntent(EffectIntent {
            ingress: seq,
            effect_index: 0,
            effect: "http".into(),
            request_digest: sha256(&request.encode()),
        }));
        journal.commit().unwrap();
    }
    let out = ok(&["run", s(&dir)]);
    assert!(out.contains("processed 1 steps"), "{out}");
    let log = ok(&["log", s(&dir)]);
    assert!(
        log.contains("in doubt: http POST") && log.contains("is not retried"),
        "{log}"
    );
    assert_eq!(
        hits.lock().unwrap()[&"/orders".to_string()],
        1,
        "the in-doubt POST was sent again"
    );
    replay_and_verify(&dir);
}

/// A step that stops the host at every attempt (here: the host is killed while the step waits
/// on a request) is set aside after its attempts, journaled as abandoned, so the world opens
/// and serves the next event.
#[test]
fn a_step_that_stops_the_host_at_every_attempt_is_abandoned_and_the_world_goes_on() {
    let (scratch, dir) = init("hello");
    // A server that never answers /slow in time, and counts the requests it got.
    let (base, hits) = serve(|request, _| {
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(120));
            let _ = request.respond(tiny_http::Response::from_string("late"));
        });
    });
    let events = scratch.path().join("events.txt");
    std::fs::write(&events, format!("hello fetch(\"{base}/slow\")\nhello greet(\"ada\")\n")).unwrap();

    let mut attempts = 0;
    for args in [
        &["run", s(&dir), "--events", s(&events)][..],
        &["run", s(&dir)],
        &["run", s(&dir)],
    ] {
        let mut child = host_process()
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        attempts += 1;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while total(&hits) < attempts {
            assert!(
                std::time::Instant::now() < deadline,
                "attempt {attempts} never reached the server"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the host finished instead of waiting"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // The fourth open sets the step aside without running it, then serves the next event.
    let out = ok(&["run", s(&dir), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["committed"], 1, "{summary}");
    assert_eq!(total(&hits), 3, "the abandoned step ran again");
    let log = ok(&["log", s(&dir)]);
    assert!(
        log.contains("FAILED (abandoned)")
            && log.contains("the host stopped during this step at each of its 3 attempts"),
        "{log}"
    );
    assert_eq!(count_kind(&log_json(&dir), "step-attempt"), 2);
    assert!(log.contains("greeted ada") || log.contains("Hello"), "{log}");
    // A served world lists the input it set aside.
    let server = crate::serve::Server::start(&[&dir], &[]);
    let (status, page) = crate::serve::get(&server.at("/v1/worlds/world/dead-letters"), None);
    assert_eq!(status, 200, "{page}");
    let letters = page["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{page}");
    assert_eq!(letters[0]["failure"], "abandoned");
    assert!(letters[0]["event"].as_str().unwrap().contains("/slow"), "{page}");
    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    replay_and_verify(&dir);
}
