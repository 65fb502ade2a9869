//! End to end: a world held by a [`WorldService`] and fed by many senders at once. Senders
//! that arrive together share commits, one sender's event and the step that processes it are
//! made durable by one commit, a sender is answered while another agent's step is still in
//! flight and its mailbox fills up, a bad event is refused with nothing journaled, and stopping
//! finishes the step in flight, leaving what is queued for the next run. Every world ends with replay + verify through the binary.

use crate::common::*;
use agentos_runtime::service::{Event, ServiceError, WorldService};
use agentos_runtime::world::{OpenMode, World};
use std::sync::mpsc;
use std::time::Duration;

fn start(dir: &std::path::Path) -> WorldService {
    WorldService::start(World::open(dir, OpenMode::Run).unwrap()).unwrap()
}

fn increment() -> Event {
    Event::Wave("increment(1)".into())
}

#[test]
fn many_senders_share_commits_and_each_is_answered_with_its_committed_step() {
    const SENDERS: usize = 8;
    const EACH: usize = 20;
    let (_scratch, dir) = init("counter");
    let service = start(&dir);
    let threads: Vec<_> = (0..SENDERS)
        .map(|_| {
            let sender = service.sender();
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|_| {
                        let accepted = sender.send("counter", increment(), "test", true).unwrap();
                        let (step, outcome) = accepted.step.expect("the sender waited for its step");
                        assert_eq!(step.ingress, accepted.seq);
                        assert!(outcome > accepted.seq, "its outcome is journaled after its ingress");
                        accepted.seq
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    service.stop().unwrap();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), SENDERS * EACH);

    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "ingress"), SENDERS * EACH);
    assert_eq!(count_kind(&log, "step-committed"), SENDERS * EACH);
    // Fewer commits (each ends with a checkpoint) than steps: senders shared them.
    let checkpoints = count_kind(&log, "checkpoint");
    assert!(
        checkpoints < SENDERS * EACH,
        "{checkpoints} commits for {} steps",
        SENDERS * EACH
    );
    replay_and_verify(&dir);
}

#[test]
fn one_senders_event_and_its_step_are_made_durable_by_one_commit() {
    let (_scratch, dir) = init("counter");
    let service = start(&dir);
    let sender = service.sender();
    for _ in 0..5 {
        sender.send("counter", increment(), "test", true).unwrap();
    }
    service.stop().unwrap();
    // Between each event and its step record no checkpoint: no commit came between them.
    let log = log_json(&dir);
    let mut since_ingress: Option<Vec<&str>> = None;
    let mut checked = 0;
    for entry in &log {
        let kind = entry["kind"].as_str().unwrap();
        match kind {
            "ingress" => since_ingress = Some(Vec::new()),
            "step-committed" => {
                let between = since_ingress.take().expect("a step after its event");
                assert!(!between.contains(&"checkpoint"), "{between:?} in {log:?}");
                checked += 1;
            }
            _ => {
                if let Some(between) = since_ingress.as_mut() {
                    between.push(kind);
                }
            }
        }
    }
    assert_eq!(checked, 5);
    replay_and_verify(&dir);
}

#[test]
fn a_bad_event_is_refused_by_name_and_nothing_is_journaled() {
    let (_scratch, dir) = init("counter");
    let service = start(&dir);
    let sender = service.sender();
    sender.send("counter", increment(), "test", true).unwrap();
    let unknown = sender.send("nobody", increment(), "test", false).unwrap_err();
    assert!(matches!(unknown, ServiceError::World(_)), "{unknown:?}");
    assert!(unknown.to_string().contains("nobody"), "{unknown}");
    let malformed = sender
        .send("counter", Event::Wave("increment(".into()), "test", false)
        .unwrap_err();
    assert!(malformed.to_string().contains("counter"), "{malformed}");
    let json = sender
        .send(
            "counter",
            Event::Json(serde_json::json!({"no-such-case": 1})),
            "test",
            false,
        )
        .unwrap_err();
    assert!(json.to_string().contains("counter"), "{json}");
    // The world goes on, with exactly the good events journaled.
    sender.send("counter", increment(), "test", true).unwrap();
    service.stop().unwrap();
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "ingress"), 2, "{log:?}");
    assert_eq!(count_kind(&log, "step-committed"), 2, "{log:?}");
    replay_and_verify(&dir);
}

#[test]
fn a_sender_is_answered_while_another_agents_step_waits_and_stop_finishes_it() {
    // `ada`'s fetch is held by the server until the test lets it go: everything below happens
    // while ada's step is provably in flight.
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let (arrived, arrival) = mpsc::channel::<()>();
    let released = std::sync::Arc::new(released);
    let (base, hits) = serve(move |request, _| {
        if !request.url().starts_with("/held") {
            let _ = request.respond(tiny_http::Response::from_string("ok"));
            return;
        }
        let (arrived, released) = (arrived.clone(), released.clone());
        std::thread::spawn(move || {
            let _ = arrived.send(());
            let _ = released.lock().unwrap().recv_timeout(Duration::from_secs(60));
            let _ = request.respond(tiny_http::Response::from_string("ok"));
        });
    });
    let manifest = r#"
        [world]
        name = "service"
        [modules.hello]
        component = "modules/hello.wasm"
        [caps.data]
        effect = "fs"
        dir = "data"
        [caps.api]
        effect = "http"
        urls = ["http://127.0.0.1:*/**"]
        methods = ["GET"]
        timeout_ms = 60000
        [agents.ada]
        module = "hello"
        grants = ["data", "api"]
        [agents.bob]
        module = "hello"
        grants = ["data", "api"]
    "#;
    let (_scratch, dir) = custom_world("hello", manifest);
    let service = start(&dir);

    // Ada's event is answered durable at once; her step goes on waiting.
    let ada = service
        .sender()
        .send("ada", Event::Wave(format!("fetch(\"{base}/held\")")), "test", false)
        .unwrap();
    assert!(ada.step.is_none());
    arrival
        .recv_timeout(Duration::from_secs(60))
        .expect("ada's fetch reached the server");
    // Ada's mailbox fills up behind her step; none of it stands in bob's way.
    const QUEUED: usize = 300;
    for i in 0..QUEUED {
        let greet = Event::Wave(format!("greet(\"{i}\")"));
        service.sender().send("ada", greet, "test", false).unwrap();
    }

    // Bob's steps run and commit beside it.
    let sender = service.sender();
    let (bob_done, bob) = mpsc::channel();
    std::thread::spawn(move || {
        let answers: Vec<_> = (0..2)
            .map(|i| sender.send("bob", Event::Wave(format!("fetch(\"{base}/bob/{i}\")")), "test", true))
            .collect();
        let _ = bob_done.send(answers);
    });
    let answers = bob
        .recv_timeout(Duration::from_secs(60))
        .expect("bob was answered while ada's step was in flight");
    for answer in answers {
        let (step, _) = answer.unwrap().step.expect("bob waited for his step");
        assert!(
            matches!(step.outcome, agentos_runtime::kernel::StepOutcome::Committed { .. }),
            "{step:?}"
        );
    }

    // Stopping lets ada's step finish and commit, and starts nothing after it. (Her fetch is
    // released once the stop has had time to reach the stepper: a step that ended before the
    // stop arrived would rightly let her next one start.)
    let stopping = std::thread::spawn(move || service.stop().map(drop));
    std::thread::sleep(Duration::from_millis(300));
    release.send(()).unwrap();
    stopping.join().unwrap().unwrap();
    assert_eq!(total(&hits), 3);
    let log = log_json(&dir);
    let stepped: Vec<&str> = log
        .iter()
        .filter(|e| e["kind"] == "step-committed")
        .map(|e| e["agent"].as_str().unwrap())
        .collect();
    assert_eq!(stepped, ["bob", "bob", "ada"], "{stepped:?}");
    // What was still queued when the world stopped is journaled, and runs when it next does.
    ok(&["run", s(&dir)]);
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "step-committed"), 3 + QUEUED);
    replay_and_verify(&dir);
}

#[test]
fn an_idempotency_key_is_remembered_across_a_restart_from_the_journal_alone() {
    use agentos_runtime::service::Outgoing;
    let (_scratch, dir) = init("counter");
    let keyed = |key: &str, amount: u32| Outgoing {
        agent: "counter".into(),
        event: Event::Wave(format!("increment({amount})")),
        source: "test".into(),
        idempotency_key: Some(key.into()),
        wait_for_step: true,
    };
    let service = start(&dir);
    let first = service.sender().send_outgoing(keyed("hook-1", 3)).unwrap();
    assert!(!first.duplicate && first.stepped);
    // A retry racing the first one's step: the same entry, once.
    let again = service.sender().send_outgoing(keyed("hook-1", 3)).unwrap();
    assert_eq!((again.seq, again.duplicate), (first.seq, true));
    service.stop().unwrap();

    let service = start(&dir);
    let after_restart = service.sender().send_outgoing(keyed("hook-1", 3)).unwrap();
    assert_eq!((after_restart.seq, after_restart.duplicate), (first.seq, true));
    assert!(after_restart.stepped, "its step is in the journal");
    let reused = service.sender().send_outgoing(keyed("hook-1", 4)).unwrap_err();
    assert!(
        matches!(reused, ServiceError::KeyReused { seq, .. } if seq == first.seq),
        "{reused}"
    );
    let bad = service.sender().send_outgoing(keyed("", 1)).unwrap_err();
    assert!(matches!(bad, ServiceError::Key(_)), "{bad}");
    // A query runs beside the stepper; a job gets the whole world.
    let agents = service.sender().query(|kernel| kernel.agents().len()).unwrap();
    assert_eq!(agents, 1);
    let entries = service
        .sender()
        .with_world(|world| world.kernel.journal().len())
        .unwrap();
    assert!(entries > first.seq);
    service.stop().unwrap();

    let log = log_json(&dir);
    assert_eq!(
        count_kind(&log, "ingress"),
        1,
        "one event journaled for every send under the key"
    );
    replay_and_verify(&dir);
}
