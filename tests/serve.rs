//! End to end: `agentos-host serve` driven over real HTTP on 127.0.0.1 as another program would
//! drive it. Events go in (idempotent retries journal once, bad input is a 4xx naming what was
//! wrong), entries come out paged and live (the stream resumes from `Last-Event-ID`), tokens
//! guard every endpoint by scope, receipts, proofs and bundles check offline, a local command
//! finding the world held is pointed at the server, and SIGTERM with steps in flight finishes
//! them and commits. Every world ends with replay + verify through the binary.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A running `serve`, stopped (SIGTERM) or killed when dropped.
pub struct Server {
    child: std::process::Child,
    pub url: String,
}

impl Server {
    pub fn start(worlds: &[&Path], extra: &[&str]) -> Server {
        Server::start_with(worlds, extra, &[])
    }

    /// [`Server::start`] with `env` set for the server's process.
    pub fn start_with(worlds: &[&Path], extra: &[&str], env: &[(&str, &Path)]) -> Server {
        let mut args = vec!["serve".to_string()];
        args.extend(worlds.iter().map(|w| s(w).to_string()));
        args.extend(["--listen", "127.0.0.1:0", "--json"].map(String::from));
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut command = host_process();
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let listening: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("serve did not start: {line}\n{stderr}")
        });
        Server {
            child,
            url: listening["listening"].as_str().unwrap().to_string(),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// SIGTERM, then wait for the process; returns its exit status and stderr.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that hands back every status (4xx and 5xx included) as a response.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    answer(request.call().unwrap())
}

pub fn post(url: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = client().post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request.send_json(body).unwrap())
}

fn answer(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
    (status, body)
}

/// The error code and message of an error response with `status`.
fn error_of(response: (u16, Value), status: u16) -> (String, String) {
    assert_eq!(response.0, status, "{}", response.1);
    let error = &response.1["error"];
    (
        error["code"].as_str().unwrap().to_string(),
        error["message"].as_str().unwrap().to_string(),
    )
}

fn events_url(server: &Server) -> String {
    server.at("/v1/worlds/world/events")
}

#[test]
fn events_go_in_once_per_idempotency_key_and_entries_come_out_paged() {
    let (_scratch, dir) = init("counter");
    let server = Server::start(&[&dir], &[]);

    let (status, worlds) = get(&server.at("/v1/worlds"), None);
    assert_eq!(status, 200);
    assert_eq!(worlds[0]["name"], "world", "{worlds}");

    // An event, waited for to its step.
    let first = post(
        &format!("{}?wait=step", events_url(&server)),
        &json!({"agent": "counter", "wave": "increment(5)"}),
        &[("Idempotency-Key", "order-1")],
    );
    assert_eq!(first.0, 201, "{}", first.1);
    let entry = first.1["entry"].as_u64().unwrap();
    assert_eq!(first.1["duplicate"], false);
    assert_eq!(first.1["step"]["outcome"], "committed", "{}", first.1);
    assert!(first.1["step"]["entry"].as_u64().unwrap() > entry);

    // The webhook retries (its JSON form of the same event): the first entry, nothing journaled.
    let retry = post(
        &format!("{}?wait=step", events_url(&server)),
        &json!({"agent": "counter", "event": {"increment": 5}}),
        &[("Idempotency-Key", "order-1")],
    );
    assert_eq!(retry.0, 200, "{}", retry.1);
    assert_eq!(retry.1["entry"].as_u64(), Some(entry));
    assert_eq!(retry.1["duplicate"], true);
    assert_eq!(retry.1["step"], first.1["step"]);
    // The key reused for another event is refused, naming the first.
    let (code, message) = error_of(
        post(
            &events_url(&server),
            &json!({"agent": "counter", "wave": "increment(6)"}),
            &[("Idempotency-Key", "order-1")],
        ),
        422,
    );
    assert_eq!(code, "idempotency_key_reused");
    assert!(message.contains(&format!("entry #{entry}")), "{message}");

    // More events without waiting: each answered durable.
    for n in 0..5 {
        let (status, body) = post(
            &events_url(&server),
            &json!({"agent": "counter", "event": {"increment": n}}),
            &[],
        );
        assert_eq!(status, 201, "{body}");
        assert!(body["step"].is_null());
    }

    // Entries, paged and filtered: the six ingresses, two per page.
    let mut ingresses = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let query = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let (status, page) = get(
            &server.at(&format!("/v1/worlds/world/entries?kind=ingress&limit=2{query}")),
            None,
        );
        assert_eq!(status, 200, "{page}");
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 2);
        ingresses.extend(entries.iter().map(|e| e["seq"].as_u64().unwrap()));
        match page["next_after"].as_u64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(ingresses.len(), 6, "{ingresses:?}");
    assert_eq!(ingresses[0], entry);
    let (_, page) = get(
        &server.at(&format!("/v1/worlds/world/entries?after={entry}&limit=1")),
        None,
    );
    assert_eq!(page["entries"][0]["seq"].as_u64(), Some(entry + 1));

    // The agent and the world's status.
    let (status, agents) = get(&server.at("/v1/worlds/world/agents"), None);
    assert_eq!(status, 200);
    assert_eq!(agents[0]["name"], "counter");
    assert_eq!(agents[0]["state_digest"].as_str().unwrap().len(), 64);
    let (_, world) = get(&server.at("/v1/worlds/world"), None);
    assert_eq!(world["agents"], json!(["counter"]));

    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    // Every event sent ran (the server finished what was queued) and the journal checks.
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "ingress"), 6);
    assert_eq!(count_kind(&log, "step-committed"), 6);
    replay_and_verify(&dir);
}

#[test]
fn bad_requests_are_refused_with_a_4xx_naming_what_was_wrong_and_nothing_journaled() {
    let (_scratch, dir) = init("counter");
    let server = Server::start(&[&dir], &[]);
    let events = events_url(&server);

    let cases: Vec<((u16, Value), u16, &str, &str)> = vec![
        (
            post(&events, &json!({"agent": "nobody", "wave": "increment(1)"}), &[]),
            404,
            "unknown_agent",
            "no agent `nobody`",
        ),
        (
            post(&events, &json!({"agent": "counter", "wave": "increment(\"x\")"}), &[]),
            422,
            "bad_event",
            "does not match agent `counter`",
        ),
        (
            post(&events, &json!({"agent": "counter", "event": {"explode": 1}}), &[]),
            422,
            "bad_event",
            "expected",
        ),
        (
            post(
                &events,
                &json!({"agent": "counter", "wave": "reset", "event": "reset"}),
                &[],
            ),
            422,
            "bad_event",
            "not both",
        ),
        (
            post(&events, &json!({"agent": "counter", "wav": "reset"}), &[]),
            422,
            "bad_body",
            "wav",
        ),
        (
            post(
                &events,
                &json!({"agent": "counter", "wave": "reset"}),
                &[("Idempotency-Key", "has space")],
            ),
            400,
            "bad_idempotency_key",
            "visible ASCII",
        ),
        (
            post(
                &server.at("/v1/worlds/elsewhere/events"),
                &json!({"agent": "counter", "wave": "reset"}),
                &[],
            ),
            404,
            "unknown_world",
            "no world `elsewhere`; worlds: world",
        ),
        (
            post(
                &format!("{events}?wait=forever"),
                &json!({"agent": "counter", "wave": "reset"}),
                &[],
            ),
            400,
            "bad_query",
            "wait",
        ),
        (
            get(&server.at("/v1/worlds/world/entries?limit=0"), None),
            400,
            "bad_query",
            "limit",
        ),
        (
            get(&server.at("/v1/worlds/world/entries?limit=5000"), None),
            400,
            "bad_query",
            "at most 1000",
        ),
        (
            get(&server.at("/v1/worlds/world/entries?after=-1"), None),
            400,
            "bad_query",
            "after",
        ),
        (
            get(&server.at("/v1/worlds/world/entries?colour=red"), None),
            400,
            "bad_query",
            "colour",
        ),
        (
            get(&server.at("/v1/worlds/world/entries?kind=party"), None),
            400,
            "bad_query",
            "no entry kind `party`",
        ),
        (
            get(&server.at("/v1/worlds/world/proofs/entries/twelve"), None),
            400,
            "bad_path",
            "",
        ),
        (
            get(&server.at("/v1/worlds/world/proofs/entries/999999"), None),
            404,
            "no_such_entry",
            "no entry #999999",
        ),
        (get(&server.at("/v1/nowhere"), None), 404, "not_found", "/v1/nowhere"),
    ];
    for (response, status, code, says) in cases {
        let (got_code, message) = error_of(response, status);
        assert_eq!(got_code, code, "{message}");
        assert!(message.contains(says), "{code}: {message:?} should say {says:?}");
    }

    // Not JSON at all, a wrong content type, a body past the limit, a wrong method. The last
    // two are refused before the body is read, so they go over a plain socket: the server may
    // answer and close before a client could finish sending.
    let not_json = client()
        .post(&events)
        .header("Content-Type", "application/json")
        .send(&b"{\"agent\": "[..])
        .unwrap();
    assert_eq!(error_of(answer(not_json), 400).0, "bad_body");
    let address = server.url.trim_start_matches("http://").to_string();
    let status_of = |content_type: &str, body: Vec<u8>| {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /v1/worlds/world/events HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        std::io::Write::write_all(&mut socket, head.as_bytes()).unwrap();
        // The body goes from another thread, which stops where the server stops reading.
        let mut writer = socket.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut writer, &body);
        });
        let mut status_line = String::new();
        BufReader::new(&socket).read_line(&mut status_line).unwrap();
        status_line
    };
    assert!(status_of("text/plain", b"{}".to_vec()).starts_with("HTTP/1.1 415"));
    // A page elsewhere: its name rebound to 127.0.0.1 (no token file here), or a cross-site
    // form posting to the server.
    let raw = |head: &str| {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        std::io::Write::write_all(&mut socket, head.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut socket, &mut answer);
        answer
    };
    let rebound = raw("GET /v1/worlds HTTP/1.1\r\nHost: evil.example:8470\r\nConnection: close\r\n\r\n");
    assert!(
        rebound.starts_with("HTTP/1.1 403") && rebound.contains("forbidden_host"),
        "{rebound}"
    );
    let body = r#"{"agent": "counter", "wave": "reset"}"#;
    let cross = raw(&format!(
        "POST /v1/worlds/world/events HTTP/1.1\r\nHost: {address}\r\nOrigin: http://evil.example\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    assert!(
        cross.starts_with("HTTP/1.1 403") && cross.contains("cross_origin"),
        "{cross}"
    );
    let huge = vec![b' '; 2 * 1024 * 1024];
    assert!(status_of("application/json", huge).starts_with("HTTP/1.1 413"));
    let wrong_method = answer(client().delete(&events).call().unwrap());
    assert_eq!(error_of(wrong_method, 405).0, "method_not_allowed");
    // A `Last-Event-ID` that is no entry number.
    let stream = client()
        .get(server.at("/v1/worlds/world/stream"))
        .header("Last-Event-ID", "yesterday")
        .call()
        .unwrap();
    assert_eq!(error_of(answer(stream), 400).0, "bad_last_event_id");

    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    assert_eq!(count_kind(&log_json(&dir), "ingress"), 0, "nothing was journaled");
    replay_and_verify(&dir);
}

/// Read server-sent events from `reader` until `count` have arrived: (id, event, data).
fn read_events(reader: &mut impl std::io::BufRead, count: usize) -> Vec<(u64, String, Value)> {
    let mut events = Vec::new();
    let (mut id, mut kind, mut data) = (None, None, None);
    while events.len() < count {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended early");
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(value) = line.strip_prefix("id: ") {
            id = Some(value.parse().unwrap());
        } else if let Some(value) = line.strip_prefix("event: ") {
            kind = Some(value.to_string());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(value).unwrap());
        } else if line.is_empty()
            && let (Some(id), Some(kind), Some(data)) = (id.take(), kind.take(), data.take())
        {
            events.push((id, kind, data));
        }
    }
    events
}

#[test]
fn the_live_stream_shows_entries_as_they_become_durable_and_resumes_from_last_event_id() {
    let (_scratch, dir) = init("counter");
    let server = Server::start(&[&dir], &[]);
    let stream = client().get(server.at("/v1/worlds/world/stream")).call().unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let mut reader = BufReader::new(stream.into_body().into_reader());
    // What the journal held already: genesis and its checkpoint.
    let before = read_events(&mut reader, 2);
    assert_eq!(before[0].1, "genesis");

    // An event posted now shows up live, as its ingress and its step.
    let (_, sent) = post(
        &format!("{}?wait=step", events_url(&server)),
        &json!({"agent": "counter", "wave": "increment(2)"}),
        &[],
    );
    let live = read_events(&mut reader, 3);
    let ids: Vec<u64> = live.iter().map(|e| e.0).collect();
    assert_eq!(ids, vec![2, 3, 4], "entries in order, none skipped: {live:?}");
    assert_eq!(live[0].1, "ingress");
    assert_eq!(live[0].2["seq"].as_u64(), sent["entry"].as_u64());
    assert_eq!(live[1].1, "step-committed");
    assert_eq!(live[1].2["agent"], "counter");
    drop(reader);

    // Disconnected, more happens; a client resuming from the last id it saw misses nothing and
    // sees nothing twice.
    for _ in 0..3 {
        post(
            &events_url(&server),
            &json!({"agent": "counter", "wave": "increment(1)"}),
            &[],
        );
    }
    let resumed = client()
        .get(server.at("/v1/worlds/world/stream"))
        .header("Last-Event-ID", "4")
        .call()
        .unwrap();
    let mut reader = BufReader::new(resumed.into_body().into_reader());
    let next = read_events(&mut reader, 1);
    assert_eq!(next[0].0, 5);
    let total = (get(&server.at("/v1/worlds/world"), None).1)["entries"]
        .as_u64()
        .unwrap();
    let rest = read_events(&mut reader, (total - 6) as usize);
    assert_eq!(rest.last().unwrap().0, total - 1);
    drop(reader);

    // The stream ends when the server stops; stopping is not held up by open streams.
    let open = client().get(server.at("/v1/worlds/world/stream")).call().unwrap();
    let (status, stderr) = server.terminate();
    assert!(status.success(), "{stderr}");
    let mut ended = String::new();
    let _ = std::io::Read::read_to_string(&mut open.into_body().into_reader(), &mut ended);
    replay_and_verify(&dir);
}

#[test]
fn tokens_guard_every_endpoint_by_scope_and_only_their_hashes_are_stored() {
    let (scratch, dir) = init("counter");
    let tokens = scratch.path().join("tokens.toml");
    let reader = ok(&["token", "new", s(&tokens), "--name", "dashboard", "--scope", "read"]);
    let sender = ok(&["token", "new", s(&tokens), "--name", "webhook", "--scope", "send,read"]);
    let (reader, sender) = (reader.trim().to_string(), sender.trim().to_string());
    let stored = std::fs::read_to_string(&tokens).unwrap();
    assert!(
        !stored.contains(&reader) && !stored.contains(&sender),
        "tokens are stored hashed"
    );
    assert!(ok(&["token", "list", s(&tokens)]).contains("webhook"));

    // Not on a public address without tokens.
    let refused = fails(&["serve", s(&dir), "--listen", "0.0.0.0:0"], 2);
    assert!(refused.contains("without --tokens"), "{refused}");

    let server = Server::start(&[&dir], &["--tokens", s(&tokens)]);
    let status = server.at("/v1/worlds/world");
    let none = client().get(&status).call().unwrap();
    assert_eq!(none.status().as_u16(), 401);
    assert_eq!(none.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(error_of(get(&status, Some("aos_forged")), 401).0, "unauthorized");
    // Almost the reader's token: one character changed.
    let mut near = reader.clone().into_bytes();
    let last = near.len() - 1;
    near[last] = if near[last] == b'0' { b'1' } else { b'0' };
    assert_eq!(get(&status, Some(std::str::from_utf8(&near).unwrap())).0, 401);
    assert_eq!(get(&status, Some(&reader)).0, 200);

    let event = json!({"agent": "counter", "wave": "increment(1)"});
    let with = |token: &str| format!("Bearer {token}");
    let reader_auth = with(&reader);
    let (code, message) = error_of(
        post(&events_url(&server), &event, &[("Authorization", &reader_auth)]),
        403,
    );
    assert_eq!(code, "forbidden");
    assert!(message.contains("`dashboard` lacks the `send` scope"), "{message}");
    let sender_auth = with(&sender);
    let (status_code, body) = post(&events_url(&server), &event, &[("Authorization", &sender_auth)]);
    assert_eq!(status_code, 201, "{body}");
    // The OpenAPI document is public: it describes, it holds nothing of a world.
    assert_eq!(get(&server.at("/v1/openapi.json"), None).0, 200);

    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    let log = log_json(&dir);
    let ingress = log.iter().find(|e| e["kind"] == "ingress").unwrap();
    assert!(ingress["text"].as_str().unwrap().contains("http:webhook"), "{ingress}");
    replay_and_verify(&dir);
}

/// A world of one `hello` agent that fetches from 127.0.0.1.
pub fn fetching_world() -> (tempfile::TempDir, PathBuf) {
    hello_agents(&["hello"], "")
}

#[test]
fn receipts_proofs_and_bundles_from_the_server_check_offline_against_its_key() {
    let (base, _hits) = serve_text("fetched over loopback");
    let (scratch, dir) = fetching_world();
    let server = Server::start(&[&dir], &[]);
    let (status, sent) = post(
        &format!("{}?wait=step", events_url(&server)),
        &json!({"agent": "hello", "wave": format!("fetch(\"{base}/page\")")}),
        &[],
    );
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["step"]["effects"], 2, "a fetch and its log line: {sent}");

    let (_, world) = get(&server.at("/v1/worlds/world"), None);
    let public_key = world["genesis_public_key"].as_str().unwrap().to_string();
    let (status, page) = get(&server.at("/v1/worlds/world/receipts"), None);
    assert_eq!(status, 200);
    let receipt = &page["receipts"][0];
    assert_eq!(receipt["effect"], "http", "{receipt}");
    assert_eq!(receipt["public_key"].as_str(), Some(public_key.as_str()));
    // The receipt's signature checks over its signed bytes with the world's key.
    let key = ed25519_dalek::VerifyingKey::from_bytes(&hex::decode(&public_key).unwrap().try_into().unwrap()).unwrap();
    let signature =
        ed25519_dalek::Signature::from_slice(&hex::decode(receipt["signature"].as_str().unwrap()).unwrap()).unwrap();
    let signed = hex::decode(receipt["signed_bytes"].as_str().unwrap()).unwrap();
    key.verify_strict(&signed, &signature).unwrap();

    // The receipt's inclusion proof checks offline with `verify-proof`.
    let seq = receipt["seq"].as_u64().unwrap();
    let (status, proof) = get(&server.at(&format!("/v1/worlds/world/proofs/entries/{seq}")), None);
    assert_eq!(status, 200, "{proof}");
    let proof_file = scratch.path().join("proof.json");
    std::fs::write(&proof_file, proof.to_string()).unwrap();
    let checked = ok(&["verify-proof", s(&proof_file), "--public-key", &public_key]);
    assert!(checked.contains("OK"), "{checked}");
    let (status, checkpoint) = get(&server.at("/v1/worlds/world/checkpoint"), None);
    assert_eq!(status, 200);
    let kept = scratch.path().join("checkpoint.json");
    std::fs::write(&kept, checkpoint.to_string()).unwrap();

    // After another step, the server's kept proof logs take in the new entries: the new
    // receipt's proof, and one that the older checkpoint is a prefix of the newer, check.
    let (status, sent) = post(
        &format!("{}?wait=step", events_url(&server)),
        &json!({"agent": "hello", "wave": format!("fetch(\"{base}/again\")")}),
        &[],
    );
    assert_eq!(status, 201, "{sent}");
    let (_, page) = get(&server.at("/v1/worlds/world/receipts"), None);
    let receipts = page["receipts"].as_array().unwrap();
    let newest = receipts[receipts.len() - 1]["seq"].as_u64().unwrap();
    let (status, newer) = get(&server.at("/v1/worlds/world/checkpoint"), None);
    assert_eq!(status, 200);
    let (old, new) = (
        checkpoint["tree_size"].as_u64().unwrap(),
        newer["tree_size"].as_u64().unwrap(),
    );
    assert!(new > old, "{checkpoint} {newer}");
    for path in [
        format!("/v1/worlds/world/proofs/entries/{newest}"),
        format!("/v1/worlds/world/proofs/consistency?old={old}&new={new}"),
    ] {
        let (status, proof) = get(&server.at(&path), None);
        assert_eq!(status, 200, "{path}: {proof}");
        std::fs::write(&proof_file, proof.to_string()).unwrap();
        let checked = ok(&["verify-proof", s(&proof_file), "--public-key", &public_key]);
        assert!(checked.contains("OK"), "{path}: {checked}");
    }

    // The bundle verifies against the key, extending the checkpoint kept from the server.
    let mut bundle = client().get(server.at("/v1/worlds/world/bundle")).call().unwrap();
    assert_eq!(bundle.status().as_u16(), 200);
    let bytes = bundle.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap();
    let bundle_file = scratch.path().join("world.bundle");
    std::fs::write(&bundle_file, bytes).unwrap();
    let verified = ok(&[
        "verify",
        s(&bundle_file),
        "--public-key",
        &public_key,
        "--checkpoint",
        s(&kept),
    ]);
    assert!(verified.starts_with("verify OK"), "{verified}");

    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    replay_and_verify(&dir);
}

#[test]
fn a_world_held_by_serve_points_local_commands_at_the_server() {
    let (_scratch, dir) = init("counter");
    let server = Server::start(&[&dir], &[]);
    let error = fails(&["send", s(&dir), "counter", "increment(1)"], 2);
    assert!(error.contains("held by `agentos-host serve`"), "{error}");
    assert!(error.contains(&server.url), "{error}");
    let error = fails(&["run", s(&dir)], 2);
    assert!(error.contains(&server.url), "{error}");
    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    assert!(
        !dir.join(".agentos/served.json").exists(),
        "the marker goes with the server"
    );
    ok(&["send", s(&dir), "counter", "increment(1)"]);
    replay_and_verify(&dir);
}

#[test]
fn sigterm_with_steps_in_flight_finishes_them_commits_and_leaves_the_rest_for_the_next_run() {
    // Each fetch takes 1.5 s: SIGTERM arrives while the first is in flight.
    let (base, hits) = serve(|request, _| {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            let _ = request.respond(tiny_http::Response::from_string("slow"));
        });
    });
    let (_scratch, dir) = fetching_world();
    let server = Server::start(&[&dir], &[]);
    for n in 0..3 {
        let (status, body) = post(
            &events_url(&server),
            &json!({"agent": "hello", "wave": format!("fetch(\"{base}/{n}\")")}),
            &[],
        );
        assert_eq!(status, 201, "{body}");
    }
    // Wait until the first fetch reached the server.
    let started = std::time::Instant::now();
    while total(&hits) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the first fetch never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    assert!(stderr.contains("all committed"), "{stderr}");
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "ingress"), 3, "every accepted event is journaled");
    let finished = count_kind(&log, "step-committed");
    assert!(finished >= 1, "the step in flight finished and committed");
    assert!(finished < 3, "nothing new started once stopping: {finished} steps ran");
    assert_eq!(total(&hits) as usize, finished, "no step started once stopping");

    // The next run processes the rest, fetching each remaining page once.
    ok(&["run", s(&dir)]);
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "step-committed"), 3);
    assert_eq!(total(&hits), 3, "no fetch repeated");
    replay_and_verify(&dir);
}

/// A counter world whose policy names the key `approver` (hex) as `ada`, one step run.
pub fn counter_approved_by(approver: &str) -> (tempfile::TempDir, PathBuf) {
    let (scratch, dir) = init("counter");
    append_to_manifest(&dir, &format!("\n[policy]\napprovers = {{ ada = \"{approver}\" }}\n"));
    ok(&["send", s(&dir), "counter", "increment(5)"]);
    (scratch, dir)
}

/// The world's `world.toml` with a timer grant for the counter, written into `scratch`: what the
/// governance tests propose. Returns its path.
pub fn with_timer_grant(scratch: &Path, dir: &Path) -> PathBuf {
    let proposed = scratch.join("proposed.toml");
    let manifest = std::fs::read_to_string(dir.join("world.toml")).unwrap().replace(
        "module = \"counter\"\n",
        "module = \"counter\"\ngrants = [\"clock\"]\n\n[caps.clock]\neffect = \"timer\"\n",
    );
    std::fs::write(&proposed, manifest).unwrap();
    proposed
}

/// The documented verdict bytes: `"agentos.verdict.v1\0"` ‖ postcard(VerdictBody), built here
/// field by field as a client that has only the documentation would.
fn verdict_bytes(
    world_id: &[u8],
    proposal: u64,
    proposal_hash: &[u8],
    approve: bool,
    approver: &str,
    comment: &str,
) -> Vec<u8> {
    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    let mut out = b"agentos.verdict.v1\0".to_vec();
    out.push(1); // version
    out.extend_from_slice(world_id);
    varint(proposal, &mut out);
    out.extend_from_slice(proposal_hash);
    varint(u64::from(!approve), &mut out);
    varint(approver.len() as u64, &mut out);
    out.extend_from_slice(approver.as_bytes());
    out.push(0); // by_agent: None
    varint(comment.len() as u64, &mut out);
    out.extend_from_slice(comment.as_bytes());
    out
}

#[test]
fn an_approver_signs_a_verdict_on_their_own_machine_and_the_server_applies_the_proposal() {
    use ed25519_dalek::Signer as _;
    let ada = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let mallory = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let keys = tempfile::tempdir().unwrap();
    let with_keys = |args: &[&str]| {
        let mut command = host();
        command.env("AGENTOS_KEYS_DIR", keys.path());
        ok_with(command, args)
    };
    with_keys(&["keys", "new", "bob"]);
    let (scratch, dir) = counter_approved_by(&hex::encode(ada.verifying_key().as_bytes()));
    // Bob proposes a timer grant for the counter.
    let proposed = with_timer_grant(scratch.path(), &dir);
    let out = with_keys(&["propose", s(&dir), "--from", s(&proposed), "--key", "bob", "--json"]);
    let proposal = serde_json::from_str::<Value>(&out).unwrap()["proposal"]
        .as_u64()
        .unwrap();

    let server = Server::start(&[&dir], &[]);
    let url = |path: &str| server.at(&format!("/v1/worlds/world{path}"));
    let (status, policy) = get(&url("/policy"), None);
    assert_eq!(status, 200);
    assert_eq!(policy["approvers"][0]["name"], "ada");
    let (status, listed) = get(&url(&format!("/proposals/{proposal}")), None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["status"], "open");
    assert!(listed["changes"].to_string().contains("clock"), "{listed}");
    let world_id = hex::decode(listed["world_id"].as_str().unwrap()).unwrap();
    let hash = hex::decode(listed["hash"].as_str().unwrap()).unwrap();

    // Not ready: apply says what is missing.
    let (code, message) = error_of(
        post(&url(&format!("/proposals/{proposal}/apply")), &json!({}), &[]),
        409,
    );
    assert_eq!(code, "refused");
    assert!(message.contains("needs 1 approval"), "{message}");

    let signed = |key: &ed25519_dalek::SigningKey, approver: &str, for_proposal: u64, hash: &[u8], comment: &str| {
        let bytes = verdict_bytes(&world_id, for_proposal, hash, true, approver, comment);
        json!({
            "verdict": "approve", "approver": approver, "comment": comment,
            "world_id": hex::encode(&world_id), "proposal_hash": hex::encode(hash),
            "public_key": hex::encode(key.verifying_key().as_bytes()),
            "signature": hex::encode(key.sign(&bytes).to_bytes()),
        })
    };
    let verdicts = url(&format!("/proposals/{proposal}/verdicts"));
    // Attacks: a key the policy does not name claiming ada's name; ada's signature over other
    // words than those posted; ada's verdict for another proposal hash; another world's id.
    let (code, _) = error_of(
        post(&verdicts, &signed(&mallory, "ada", proposal, &hash, "lgtm"), &[]),
        403,
    );
    assert_eq!(code, "not_an_approver");
    let mut altered = signed(&ada, "ada", proposal, &hash, "lgtm");
    altered["comment"] = "lgtm, and more".into();
    let (_, message) = error_of(post(&verdicts, &altered, &[]), 409);
    assert!(message.contains("signature does not check"), "{message}");
    let (_, message) = error_of(post(&verdicts, &signed(&ada, "ada", proposal, &[0; 32], "x"), &[]), 409);
    assert!(message.contains("proposal hash"), "{message}");
    let mut elsewhere = signed(&ada, "ada", proposal, &hash, "x");
    elsewhere["world_id"] = hex::encode([1u8; 16]).into();
    let (_, message) = error_of(post(&verdicts, &elsewhere, &[]), 409);
    assert!(message.contains("not this world"), "{message}");
    let (code, _) = error_of(post(&verdicts, &json!({"verdict": "approve"}), &[]), 422);
    assert_eq!(code, "bad_body");

    // Ada's own verdict counts once; the quorum is met; apply switches the world.
    let (status, accepted) = post(&verdicts, &signed(&ada, "ada", proposal, &hash, "lgtm"), &[]);
    assert_eq!(status, 201, "{accepted}");
    assert_eq!(accepted["approved_by"], json!(["ada"]));
    assert_eq!(accepted["blockers"], json!([]));
    let (status, again) = post(&verdicts, &signed(&ada, "ada", proposal, &hash, "lgtm"), &[]);
    assert_eq!(status, 409, "{again}");
    let (status, applied) = post(&url(&format!("/proposals/{proposal}/apply")), &json!({}), &[]);
    assert_eq!(status, 200, "{applied}");
    let (_, listed) = get(&url(&format!("/proposals/{proposal}")), None);
    assert_eq!(listed["status"], "applied");
    // The world goes on under the new manifest.
    let (status, stepped) = post(
        &format!("{}?wait=step", events_url(&server)),
        &json!({"agent": "counter", "wave": "increment(1)"}),
        &[],
    );
    assert_eq!(stepped["step"]["outcome"], "committed", "{status} {stepped}");

    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "verdict"), 1, "only the good verdict is journaled");
    assert_eq!(count_kind(&log, "manifest-applied"), 1);
    replay_and_verify(&dir);
}

#[test]
fn a_plan_run_started_over_http_runs_step_by_step_on_the_served_world() {
    let (base, hits) = crate::plans::server();
    let (_scratch, dir) = crate::plans::world(&base, "");
    let server = Server::start(&[&dir], &[]);
    let url = |path: &str| server.at(&format!("/v1/worlds/world{path}"));
    let (status, plans) = get(&url("/plans"), None);
    assert_eq!(status, 200);
    assert_eq!(plans[0]["plan"], "digest", "{plans}");

    let (code, message) = error_of(post(&url("/plans/nothing/runs"), &json!({}), &[]), 404);
    assert_eq!(code, "unknown_plan", "{message}");
    let (code, message) = error_of(post(&url("/plans/digest/runs"), &json!({"input": {"x": 1}}), &[]), 422);
    assert_eq!(code, "bad_input", "{message}");

    let (status, started) = post(&url("/plans/digest/runs"), &json!({}), &[]);
    assert_eq!(status, 201, "{started}");
    let run = started["run"].as_u64().unwrap();
    let begun = std::time::Instant::now();
    let finished = loop {
        let (_, runs) = get(&url("/plans/runs?plan=digest"), None);
        let this = runs.as_array().unwrap().iter().find(|r| r["run"] == run).cloned();
        if let Some(this) = this.filter(|r| r["status"] == "completed" || r["status"] == "failed") {
            break this;
        }
        assert!(begun.elapsed() < Duration::from_secs(60), "the run never ended: {runs}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(finished["status"], "completed", "{finished}");
    let steps: Vec<&str> = finished["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["fetch", "review", "keep", "tell"]);
    assert_eq!(hits.lock().unwrap()["/news"], 1);
    // The same through the command line.
    let by_cli: Value = serde_json::from_str(&ok(&[
        "plan",
        "run",
        "world",
        "digest",
        "--server",
        &server.url,
        "--json",
    ]))
    .unwrap();
    assert_eq!(by_cli["status"], "completed", "{by_cli}");

    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    replay_and_verify(&dir);
}

#[test]
fn the_command_line_drives_a_served_world_with_server_signing_with_local_keys() {
    let keys = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let tokens = scratch.path().join("tokens.toml");
    let token = ok(&[
        "token",
        "new",
        s(&tokens),
        "--name",
        "cli",
        "--scope",
        "read,send,operate",
    ]);
    let cli = |args: &[&str]| {
        let mut command = host();
        command
            .env("AGENTOS_KEYS_DIR", keys.path())
            .env("AGENTOS_TOKEN", token.trim());
        command.args(args).output().unwrap()
    };
    let ok_cli = |args: &[&str]| {
        let output = cli(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let ada: Value = serde_json::from_str(&ok_cli(&["keys", "new", "ada", "--json"])).unwrap();
    ok_cli(&["keys", "new", "bob"]);
    let (world_scratch, dir) = counter_approved_by(ada["public_key"].as_str().unwrap());
    let server = Server::start(&[&dir], &["--tokens", s(&tokens)]);
    let at = server.url.as_str();

    let sent = ok_cli(&["send", "world", "counter", "increment(2)", "--server", at]);
    assert!(sent.contains("ingress") && sent.contains("step-committed"), "{sent}");
    let sent = ok_cli(&[
        "send",
        "world",
        "counter",
        "{\"increment\": 3}",
        "--json",
        "--server",
        at,
    ]);
    assert!(sent.contains("increment(3)"), "{sent}");
    let refused = cli(&["send", "world", "nobody", "increment(1)", "--server", at]);
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("no agent `nobody`"), "{message}");
    // Without the token: the server's refusal, named.
    let anonymous = host()
        .args(["log", "world", "--server", at])
        .env_remove("AGENTOS_TOKEN")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&anonymous.stderr).contains("needs a bearer token"),
        "{anonymous:?}"
    );
    // The server given by the environment; `log --json` as the local command prints it.
    let mut command = host();
    command.env("AGENTOS_SERVER", at).env("AGENTOS_TOKEN", token.trim());
    let remote_log = ok_with(command, &["log", "world", "--json"]);
    assert!(remote_log.lines().count() >= 9, "{remote_log}");
    ok_cli(&["receipts", "world", "--server", at, "--json"]);

    // Bob proposes a timer grant; his key signs here, the server drafts and journals.
    let proposed = with_timer_grant(world_scratch.path(), &dir);
    let out = ok_cli(&[
        "propose",
        "world",
        "--from",
        s(&proposed),
        "--key",
        "bob",
        "--server",
        at,
        "--json",
    ]);
    let proposal = serde_json::from_str::<Value>(&out).unwrap()["proposal"].to_string();
    let refused = cli(&["approve", "world", &proposal, "--key", "bob", "--server", at]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is not an approver"),
        "{refused:?}"
    );
    let approved = ok_cli(&["approve", "world", &proposal, "--key", "ada", "--server", at]);
    assert!(approved.contains("ready to apply"), "{approved}");
    let applied = ok_cli(&["apply", "world", &proposal, "--server", at]);
    assert!(applied.contains("applied"), "{applied}");
    // And back, in one command.
    let reverted = ok_cli(&["revert", "world", "--key", "ada", "--server", at]);
    assert!(reverted.contains("applied"), "{reverted}");

    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "manifest-applied"), 2);
    assert_eq!(count_kind(&log, "proposal"), 2);
    replay_and_verify(&dir);
}

#[test]
fn tls_serves_https_with_the_given_certificate_and_nothing_in_plain_text() {
    let (scratch, dir) = init("counter");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (scratch.path().join("cert.pem"), scratch.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start(&[&dir], &["--tls-cert", s(&cert), "--tls-key", s(&key)]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);

    let trusting = |roots: ureq::tls::RootCerts| -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .into()
    };
    let ours = ureq::tls::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let agent = trusting(ureq::tls::RootCerts::from(vec![ours]));
    let (status, sent) = answer(
        agent
            .post(server.at("/v1/worlds/world/events?wait=step"))
            .send_json(json!({"agent": "counter", "wave": "increment(4)"}))
            .unwrap(),
    );
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["step"]["outcome"], "committed");
    // A client that does not trust the certificate gets nowhere; neither does plain HTTP.
    let strangers = trusting(ureq::tls::RootCerts::WebPki);
    assert!(strangers.get(server.at("/v1/worlds")).call().is_err());
    let plain = server.url.replace("https://", "http://");
    assert!(client().get(format!("{plain}/v1/worlds")).call().is_err());

    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    replay_and_verify(&dir);
}

#[test]
fn a_proposal_is_journaled_only_as_drafted_signed_by_its_author_and_once() {
    use ed25519_dalek::Signer as _;
    let bob = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let mallory = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
    let (scratch, dir) = counter_approved_by(&hex::encode([7u8; 32]));
    let proposed = with_timer_grant(scratch.path(), &dir);
    let manifest: Value = {
        let text = std::fs::read_to_string(&proposed).unwrap();
        let manifest = agentos_air::Manifest::parse_toml(&text, "proposed.toml").unwrap();
        serde_json::to_value(&manifest).unwrap()
    };
    let server = Server::start(&[&dir], &[]);
    let url = |path: &str| server.at(&format!("/v1/worlds/world{path}"));
    let (status, draft) = post(
        &url("/proposals/drafts"),
        &json!({"manifest": manifest, "description": "timers", "author": "bob",
                "public_key": hex::encode(bob.verifying_key().as_bytes())}),
        &[],
    );
    assert_eq!(status, 200, "{draft}");
    let signing_bytes = hex::decode(draft["signing_bytes"].as_str().unwrap()).unwrap();
    let signed = |key: &ed25519_dalek::SigningKey, body: &Value| json!({"body": body, "signature": hex::encode(key.sign(&signing_bytes).to_bytes())});
    let submit = |request: &Value| post(&url("/proposals"), request, &[]);

    // Signed by someone else than the author it names.
    let (_, message) = error_of(submit(&signed(&mallory, &draft["body"])), 409);
    assert!(message.contains("signature does not check"), "{message}");
    // The author's signature over the drafted bytes, with the description changed afterwards.
    let mut altered = draft["body"].clone();
    altered["description"] = "harmless".into();
    let (_, message) = error_of(submit(&signed(&bob, &altered)), 409);
    assert!(message.contains("signature does not check"), "{message}");
    // A body the server did not draft, signed over its own bytes by its author.
    let mut forged_body = draft["body"].clone();
    forged_body["base"] = json!(vec![0u8; 32]);
    let forged_bytes = {
        let body: agentos_runtime::governance::record::ProposalBody =
            serde_json::from_value(forged_body.clone()).unwrap();
        body.signing_bytes()
    };
    let (_, message) = error_of(
        submit(&json!({"body": forged_body, "signature": hex::encode(bob.sign(&forged_bytes).to_bytes())})),
        409,
    );
    assert!(message.contains("not the one this host drafts"), "{message}");

    // As drafted, signed by its author: journaled, once.
    let (status, accepted) = submit(&signed(&bob, &draft["body"]));
    assert_eq!(status, 201, "{accepted}");
    let (_, message) = error_of(submit(&signed(&bob, &draft["body"])), 409);
    assert!(message.contains("already"), "{message}");

    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    assert_eq!(
        count_kind(&log_json(&dir), "proposal"),
        1,
        "only the proposal as drafted is journaled"
    );
    replay_and_verify(&dir);
}

#[test]
fn a_proposal_is_shadow_run_over_the_api_from_the_servers_own_view_of_the_world() {
    use ed25519_dalek::Signer as _;
    let ada = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let keys = tempfile::tempdir().unwrap();
    let with_keys = |args: &[&str]| {
        let mut command = host();
        command.env("AGENTOS_KEYS_DIR", keys.path());
        ok_with(command, args)
    };
    with_keys(&["keys", "new", "bob"]);
    let (scratch, dir) = init("counter");
    append_to_manifest(
        &dir,
        &format!(
            "\n[policy]\napprovers = {{ ada = \"{}\" }}\nrequire_clean_shadow = true\n",
            hex::encode(ada.verifying_key().as_bytes())
        ),
    );
    ok(&["send", s(&dir), "counter", "increment(5)"]);
    let proposed = with_timer_grant(scratch.path(), &dir);
    let out = with_keys(&["propose", s(&dir), "--from", s(&proposed), "--key", "bob", "--json"]);
    let proposal = serde_json::from_str::<Value>(&out).unwrap()["proposal"]
        .as_u64()
        .unwrap();

    let server = Server::start(&[&dir], &[]);
    let url = |path: &str| server.at(&format!("/v1/worlds/world{path}"));
    for n in 1..=3 {
        let (status, stepped) = post(
            &format!("{}?wait=step", events_url(&server)),
            &json!({"agent": "counter", "wave": format!("increment({n})")}),
            &[],
        );
        assert_eq!(stepped["step"]["outcome"], "committed", "{status} {stepped}");
    }
    let shadow = url(&format!("/proposals/{proposal}/shadow"));

    // Bad requests: each a 4xx naming what was wrong, nothing journaled.
    let entries_before = get(&url(""), None).1["entries"].clone();
    for (body, status, code, says) in [
        (json!({"window": 0}), 422, "bad_body", "`window` is 1 to"),
        (json!({"window": 100_000}), 422, "bad_body", "`window` is 1 to"),
        (
            json!({"window": 1, "events": [{"agent": "counter", "event": "increment(1)"}]}),
            422,
            "bad_body",
            "not both",
        ),
        (json!({"events": []}), 422, "bad_body", "`events` holds 1 to"),
        (
            json!({"events": [{"agent": "nobody", "event": "increment(1)"}]}),
            422,
            "bad_event",
            "nobody",
        ),
        (
            json!({"events": [{"agent": "counter", "event": "increment("}]}),
            422,
            "bad_event",
            "increment(",
        ),
        (json!({"windows": 3}), 422, "bad_body", "windows"),
    ] {
        let (got_code, message) = error_of(post(&shadow, &body, &[]), status);
        assert_eq!(got_code, code, "{body}: {message}");
        assert!(message.contains(says), "{body}: {message}");
    }
    let (code, _) = error_of(post(&url("/proposals/999/shadow"), &json!({}), &[]), 404);
    assert_eq!(code, "no_such_proposal");
    assert_eq!(get(&url(""), None).1["entries"], entries_before, "nothing journaled");

    // The policy wants a clean shadow run before apply.
    let hash = hex::decode(
        get(&url(&format!("/proposals/{proposal}")), None).1["hash"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let world_id = hex::decode(
        get(&url(&format!("/proposals/{proposal}")), None).1["world_id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let bytes = verdict_bytes(&world_id, proposal, &hash, true, "ada", "");
    let (status, accepted) = post(
        &url(&format!("/proposals/{proposal}/verdicts")),
        &json!({"verdict": "approve", "approver": "ada", "comment": "",
                "world_id": hex::encode(&world_id), "proposal_hash": hex::encode(&hash),
                "public_key": hex::encode(ada.verifying_key().as_bytes()),
                "signature": hex::encode(ada.sign(&bytes).to_bytes())}),
        &[],
    );
    assert_eq!(status, 201, "{accepted}");
    let (_, message) = error_of(
        post(&url(&format!("/proposals/{proposal}/apply")), &json!({}), &[]),
        409,
    );
    assert!(message.contains("clean shadow run first"), "{message}");

    // The recorded window, re-run on a fork the server takes of its own world.
    let (status, shadowed) = post(&shadow, &json!({"window": 10}), &[]);
    assert_eq!(status, 201, "{shadowed}");
    let report = &shadowed["report"];
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(
        report["steps"].as_array().unwrap().len(),
        4,
        "every recorded step: {report}"
    );
    assert!(report["new_capabilities"].to_string().contains("clock"), "{report}");
    // Given events, after the present state; then from the command line, as a client.
    let (status, shadowed_events) = post(
        &shadow,
        &json!({"events": [{"agent": "counter", "event": "increment(7)"}]}),
        &[],
    );
    assert_eq!(status, 201, "{shadowed_events}");
    assert_eq!(shadowed_events["report"]["steps"][0]["after"]["committed"], true);
    let printed = ok(&["shadow", "world", &proposal.to_string(), "--server", &server.url]);
    assert!(
        printed.contains("clean") && printed.contains("report journaled"),
        "{printed}"
    );
    // A local shadow run of the served world is pointed at the server.
    let error = fails(&["shadow", s(&dir), &proposal.to_string()], 2);
    assert!(error.contains(&format!("--server {}", server.url)), "{error}");

    let (_, detail) = get(&url(&format!("/proposals/{proposal}")), None);
    assert_eq!(detail["shadow_reports"].as_array().unwrap().len(), 3, "{detail}");
    // world.toml before and after, as diff hunks.
    let diff: Vec<&str> = detail["diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(diff[0].starts_with("@@ "), "{diff:?}");
    assert!(
        diff.iter().any(|l| l.starts_with('+') && l.contains("clock")),
        "{diff:?}"
    );
    assert!(diff.iter().any(|l| l.starts_with("-grants = []")), "{diff:?}");
    assert_eq!(detail["shadow_reports"][0]["steps"], report["steps"]);
    // The world went on stepping, and applies with the clean run on record.
    let (status, applied) = post(&url(&format!("/proposals/{proposal}/apply")), &json!({}), &[]);
    assert_eq!(status, 200, "{applied}");

    let (exit, stderr) = server.terminate();
    assert!(exit.success(), "{stderr}");
    let log = log_json(&dir);
    assert_eq!(count_kind(&log, "shadow-report"), 3);
    assert_eq!(count_kind(&log, "manifest-applied"), 1);
    replay_and_verify(&dir);
}
