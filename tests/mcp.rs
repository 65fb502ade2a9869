//! End to end: MCP servers as capability-gated, receipted effects. The repository's own server
//! (`mcp-files`) over stdio and over streamable HTTP on 127.0.0.1, called by the `assistant`
//! component (`call` runs one tool directly). From the attacker's side: a tool the grant does
//! not cover is denied with a receipt and never reaches the server; the server sees only the
//! environment its definition gives; a server that does not start, dies mid-call, garbles its
//! answer, hangs or answers too much fails the call with the reason, and the next call starts it
//! again; one that floods its stderr or pages its tool list without end is read to limits;
//! kill -9 during a non-idempotent call leaves it in doubt, never repeated. Replay serves tool
//! lists and results from receipts with the server gone. Every world ends with replay + verify.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A world whose agent `a` (the assistant) holds `tools` of server `files` (`server` is its
/// `[mcp.files]` table body).
fn world(server: &str, tools: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let manifest = format!(
        r#"
        [world]
        name = "mcp"
        [modules.assistant]
        component = "modules/assistant.wasm"
        [mcp.files]
        {server}
        [providers.local]
        api = "openai-chat"
        base_url = "http://127.0.0.1:9/v1"
        [caps.models]
        effect = "llm"
        providers = ["local"]
        models = ["m"]
        [caps.files]
        effect = "mcp"
        tools = [{tools}]
        {extra}
        [agents.a]
        module = "assistant"
        grants = ["models", "files"]
        config = {{ model = "m" }}
        "#
    );
    let (scratch, dir) = custom_world("assistant", &manifest);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/notes.txt"), "apples: 3\npears: 4\n").unwrap();
    (scratch, dir)
}

fn stdio(args: &str) -> String {
    format!(
        "command = \"{}\"\nargs = [\"--root\", \"data\", \"--hostile\"{args}]\ntimeout_ms = 3000\nmax_result_bytes = 4096",
        mcp_files().display()
    )
}

fn call(dir: &Path, tool: &str, arguments: &str) -> String {
    let event = format!(
        "call((\"files\", \"{tool}\", {}))",
        serde_json::to_string(arguments).unwrap()
    );
    ok(&["send", s(dir), "a", &event])
}

fn mcp_receipts(dir: &Path) -> Vec<Value> {
    let receipts: Vec<Value> = serde_json::from_str(&ok(&["receipts", s(dir), "--json"])).unwrap();
    receipts.into_iter().filter(|r| r["effect"] == "mcp").collect()
}

#[test]
fn granted_tools_run_over_stdio_receipted_and_replay_serves_them_with_the_server_gone() {
    // The server's program inside the world, so the test can take it away before replay.
    let (_scratch, dir) = world(
        "command = \"bin/mcp-files\"\nargs = [\"--root\", \"data\"]",
        r#""files/read_*", "files/add""#,
        "",
    );
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy(mcp_files(), dir.join("bin/mcp-files")).unwrap();
    let out = call(&dir, "read_file", r#"{"path": "notes.txt"}"#);
    assert!(out.contains("files/read_file result: apples: 3"), "{out}");
    let out = call(&dir, "add", r#"{"numbers": [3, 4]}"#);
    assert!(out.contains("files/add result: 7"), "{out}");
    // Not covered by the grant: denied with a signed receipt; the server never sees it.
    let out = call(&dir, "append_line", r#"{"path": "notes.txt", "text": "plums: 1"}"#);
    assert!(
        out.contains("DENIED: no mcp grant of agent `a` covers `files/append_line` (granted: files/read_* by files, files/add by files)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("data/notes.txt")).unwrap(),
        "apples: 3\npears: 4\n"
    );
    // Arguments that are not an object never reach the server.
    let out = call(&dir, "read_file", "[1, 2]");
    assert!(
        out.contains("the arguments of `files/read_file` are not a JSON object"),
        "{out}"
    );

    let receipts = mcp_receipts(&dir);
    let subjects: Vec<&str> = receipts.iter().map(|r| r["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects.len(), 4);
    // Receipts name server, tool and the digest of the arguments.
    assert!(
        subjects[0].starts_with("files/read_file arguments sha256:"),
        "{subjects:?}"
    );
    assert!(
        subjects[2].starts_with("files/append_line arguments sha256:"),
        "{subjects:?}"
    );
    assert_eq!(receipts[2]["status"], "denied");
    // The server's read-only hints are not taken without `trust_hints`: each call made had an
    // intent; the denied one and the one with bad arguments were never made, and have none.
    assert_eq!(count_kind(&log_json(&dir), "effect-intent"), 2);

    // Replay needs no server: every result is served from its receipt.
    std::fs::remove_file(dir.join("bin/mcp-files")).unwrap();
    replay_and_verify(&dir);
}

#[test]
fn a_server_sees_only_the_environment_its_definition_gives() {
    let server = format!(
        "{}\nenv = {{ GREETING = \"hi\", TOKEN = {{ env = \"AGENTOS_TEST_MCP_TOKEN\" }} }}",
        stdio("")
    );
    let (_scratch, dir) = world(&server, r#""files/*""#, "");
    let mut command = host();
    command
        .env("AGENTOS_TEST_HOST_SECRET", "do-not-leak")
        .env("AGENTOS_TEST_MCP_TOKEN", "given");
    let out = ok_with(
        command,
        &["send", s(&dir), "a", r#"call(("files", "environment", "{}"))"#],
    );
    assert!(out.contains("files/environment result: GREETING,TOKEN"), "{out}");
    assert!(
        !out.contains("AGENTOS_TEST_HOST_SECRET") && !out.contains("PATH"),
        "{out}"
    );
    // The secret's value is in neither the journal nor the log.
    let journal = std::fs::read(dir.join(".agentos/journal.redb")).unwrap();
    assert!(!journal.windows(5).any(|w| w == b"given"));
    replay_and_verify(&dir);
}

#[test]
fn a_server_that_fails_hangs_garbles_or_answers_too_much_fails_the_call_and_is_restarted() {
    let (_scratch, dir) = world(&stdio(""), r#""files/*""#, "");
    let out = call(&dir, "crash", "{}");
    assert!(out.contains("MCP server `files` failed during `crash`"), "{out}");
    assert!(out.contains("crashing as asked"), "the server's stderr explains: {out}");
    // The next call starts it again.
    assert!(call(&dir, "add", r#"{"numbers": [1, 2]}"#).contains("files/add result: 3"));
    let out = call(&dir, "hang", "{}");
    assert!(
        out.contains("timeout: MCP server `files` did not answer `hang` within 3000 ms"),
        "{out}"
    );
    let out = call(&dir, "garble", "{}");
    assert!(out.contains("did not answer `garble` within 3000 ms"), "{out}");
    let out = call(&dir, "huge", r#"{"bytes": 100000}"#);
    assert!(
        out.contains("answered `huge` with 100000 bytes, more than its max_result_bytes (4096)"),
        "{out}"
    );
    assert!(call(&dir, "add", r#"{"numbers": [2, 2]}"#).contains("files/add result: 4"));
    // A server that writes to its stderr without pause holds neither the host nor the call: the
    // answer gets through, and what the step journals of the flood is within its limits.
    let out = call(&dir, "flood", r#"{"ms": 1000}"#);
    assert!(out.contains("files/flood result: flooded"), "{out}");
    let flood: Vec<Value> = log_json(&dir)
        .into_iter()
        .filter(|e| e["kind"] == "output" && e["text"].as_str().unwrap().contains("flood flood"))
        .collect();
    assert!(!flood.is_empty() && flood.len() <= 64, "{} lines", flood.len());
    let journaled: usize = flood.iter().map(|e| e["text"].as_str().unwrap().len()).sum();
    assert!(journaled <= 5 * 1024, "{journaled} bytes journaled");
    // A tool that runs and reports failure is a result the agent reads, not an effect error.
    let out = call(&dir, "read_file", r#"{"path": "../../etc/passwd"}"#);
    assert!(
        out.contains("files/read_file tool error: `../../etc/passwd` is not a path inside"),
        "{out}"
    );
    replay_and_verify(&dir);
}

/// A server that pages its tool listing without end (each page the same tools again and a
/// cursor to one more) neither holds the connection's start until its time-out nor fills the
/// host's memory: the listing is read up to a page limit, each tool kept once.
#[test]
fn a_tool_listing_that_pages_without_end_is_read_to_a_limit() {
    let (_scratch, dir) = world(&stdio(", \"--endless-listing\""), r#""files/*", "files/nothing_*""#, "");
    // `run` lists each granted server's tools to warn of a pattern that matches none of them.
    let output = host().args(["run", s(&dir)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let offered = stderr
        .lines()
        .find_map(|line| line.split_once("(it offers: ").map(|(_, tools)| tools))
        .unwrap_or_else(|| panic!("no listing in {stderr}"));
    assert_eq!(offered.matches("read_file").count(), 1, "{offered}");
    let out = call(&dir, "add", r#"{"numbers": [1, 2]}"#);
    assert!(out.contains("files/add result: 3"), "{out}");
    replay_and_verify(&dir);
}

#[test]
fn a_server_program_that_does_not_exist_is_named_where_it_is_declared_and_nothing_is_journaled() {
    let (_scratch, dir) = world("command = \"bin/no-such-server\"", r#""files/*""#, "");
    let error = fails(&["send", s(&dir), "a", r#"call(("files", "add", "{}"))"#], 2);
    assert!(
        error.contains("world.toml:7:9: mcp.files.command: its command `bin/no-such-server` does not exist"),
        "{error}"
    );
    assert!(!dir.join(".agentos/journal.redb").exists(), "nothing was journaled");
}

#[test]
fn trusted_hints_let_read_only_tools_skip_the_intent_and_nothing_else() {
    let (_scratch, dir) = world(&stdio(""), r#""files/*""#, "trust_hints = true");
    // `trust_hints` belongs to the cap table, which `extra` extends.
    call(&dir, "read_file", r#"{"path": "notes.txt"}"#);
    assert_eq!(
        count_kind(&log_json(&dir), "effect-intent"),
        0,
        "read-only, trusted: no intent"
    );
    call(&dir, "append_line", r#"{"path": "out.txt", "text": "one"}"#);
    assert_eq!(
        count_kind(&log_json(&dir), "effect-intent"),
        1,
        "a write always has one"
    );
    assert_eq!(std::fs::read_to_string(dir.join("data/out.txt")).unwrap(), "one\n");
    replay_and_verify(&dir);
}

#[test]
fn kill_9_during_a_non_idempotent_tool_call_leaves_it_in_doubt_and_never_repeats_it() {
    let (_scratch, dir) = world(&stdio(""), r#""files/*""#, "");
    let event = r#"call(("files", "append_line", "{\"path\": \"out.txt\", \"text\": \"once\", \"delay_ms\": 2000}"))"#;
    let mut child = spawn_quiet(&["send", s(&dir), "a", event]);
    // Kill the host once the server has the call (its intent was committed before it was sent).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.join("data/out.pending").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never reached the server"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the host finished before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let lines_after_crash = std::fs::read_to_string(dir.join("data/out.txt"))
        .unwrap_or_default()
        .lines()
        .count();
    assert!(lines_after_crash <= 1);
    // The next run finds the intent without a receipt: in doubt, not called again.
    let out = ok(&["run", s(&dir)]);
    let receipts = mcp_receipts(&dir);
    let last = receipts.last().unwrap();
    assert_eq!(last["status"], "in-doubt", "{out}\n{receipts:?}");
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let lines = std::fs::read_to_string(dir.join("data/out.txt"))
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(lines, lines_after_crash, "the call was not repeated");
    replay_and_verify(&dir);
}

#[test]
fn a_server_over_streamable_http_gets_its_token_from_the_host_environment() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "over http").unwrap();
    let mut server = std::process::Command::new(mcp_files())
        .args(["--root", s(data.path()), "--http", "127.0.0.1:0", "--token", "t0ken"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(server.stdout.take().unwrap()), &mut line).unwrap();
    let url = line.trim().strip_prefix("listening ").unwrap().to_string();
    let definition = format!(
        "url = \"{url}\"\nheaders = {{ Authorization = {{ env = \"AGENTOS_TEST_MCP_TOKEN\", prefix = \"Bearer \" }} }}"
    );
    let (_scratch, dir) = world(&definition, r#""files/read_file""#, "");
    let with_token = |token: &str| {
        let mut command = host();
        command.env("AGENTOS_TEST_MCP_TOKEN", token);
        command
            .args([
                "send",
                s(&dir),
                "a",
                r#"call(("files", "read_file", "{\"path\": \"hello.txt\"}"))"#,
            ])
            .output()
            .unwrap()
    };
    let refused = with_token("wrong");
    let out = String::from_utf8_lossy(&refused.stdout);
    assert!(
        out.contains("MCP server `files` did not start") && out.contains("401"),
        "{out}"
    );
    let answered = with_token("t0ken");
    let out = String::from_utf8_lossy(&answered.stdout);
    assert!(out.contains("files/read_file result: over http"), "{out}");
    server.kill().unwrap();
    server.wait().unwrap();
    // Replay reaches no server: the results are in the receipts.
    replay_and_verify(&dir);
}

#[test]
fn a_server_an_agent_could_write_is_not_run_and_secrets_never_reach_the_agent() {
    // The program inside a directory an fs grant lets the agent write: refused.
    let writable = "command = \"data/server\"\nargs = [\"--root\", \"data\"]";
    let (_scratch, dir) = world(
        writable,
        r#""files/*""#,
        "[caps.scratch]\neffect = \"fs\"\ndir = \"data\"\nmode = \"read-write\"",
    );
    std::fs::copy(mcp_files(), dir.join("data/server")).unwrap();
    let out = call(&dir, "add", "{}");
    assert!(
        out.contains("its command `data/server` is inside") && out.contains("which agents can write or must not read"),
        "{out}"
    );
    replay_and_verify(&dir);

    // A server that logs its token and dies: the agent reads the reason, not the token.
    let server = format!(
        "{}\nenv = {{ TOKEN = {{ env = \"AGENTOS_TEST_MCP_TOKEN\" }} }}",
        stdio("")
    );
    let (_scratch, dir) = world(&server, r#""files/*""#, "");
    let mut command = host();
    command.env("AGENTOS_TEST_MCP_TOKEN", "s3cret-token");
    let out = ok_with(command, &["send", s(&dir), "a", r#"call(("files", "crash", "{}"))"#]);
    assert!(out.contains("crashing as asked (TOKEN=[redacted])"), "{out}");
    assert!(!out.contains("s3cret-token"), "{out}");
    let journal = std::fs::read(dir.join(".agentos/journal.redb")).unwrap();
    assert!(
        !journal.windows(12).any(|w| w == b"s3cret-token"),
        "the token reached the journal"
    );
    replay_and_verify(&dir);
}

#[test]
fn run_warns_of_a_tool_pattern_that_matches_nothing_and_a_calls_stderr_becomes_output_lines() {
    let (_scratch, dir) = world(
        &stdio(""),
        r#""files/append_*", "files/chatter", "files/nothing_*""#,
        "",
    );
    let output = host().args(["run", s(&dir)]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: caps.files.tools: `files/nothing_*` matches no tool server `files` offers (it offers: "
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("files/append_*"), "{stderr}");
    // What the server writes to its stderr during a call is recorded with the call and
    // journaled as the step's output lines, which replay makes again from the record.
    let out = call(&dir, "append_line", r#"{"path": "out.txt", "text": "one"}"#);
    let line = "a server stderr: [files] mcp-files: appended a line to out.txt";
    assert!(out.contains(line), "{out}");
    let outputs: Vec<Value> = log_json(&dir).into_iter().filter(|e| e["kind"] == "output").collect();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(outputs[0]["text"], line);
    // A chatty server's blank lines are dropped and at most 64 lines are kept per call.
    let out = call(&dir, "chatter", r#"{"lines": 400}"#);
    assert!(out.contains("files/chatter result: wrote 400 lines"), "{out}");
    let chatter: Vec<String> = log_json(&dir)
        .into_iter()
        .filter(|e| e["kind"] == "output")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .skip(1)
        .collect();
    assert_eq!(chatter.len(), 64, "{chatter:?}");
    assert_eq!(chatter[0], "a server stderr: [files] chatter 1");
    assert_eq!(chatter[63], "a server stderr: [files] chatter 127");
    replay_and_verify(&dir);
}
