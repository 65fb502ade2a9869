//! End to end: the `llm` effect through the real client against a local server speaking the
//! OpenAI chat-completions and Anthropic messages protocols — receipts with token usage, keys
//! that never reach the journal, provider errors and malformed answers as `failed` receipts,
//! replay served from receipts without calling the provider again.

use crate::common::*;

const KEY: &str = "test-key-123";

/// A provider stand-in on 127.0.0.1; returns its base URL and the requests it got.
fn provider() -> (String, Hits) {
    serve(|mut request, _| {
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect();
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let (status, answer) = match request.url() {
            "/openai/v1/chat/completions" if header("authorization").as_deref() != Some(&format!("Bearer {KEY}")) => {
                (401, r#"{"error":{"message":"bad key"}}"#.to_string())
            }
            "/openai/v1/chat/completions" => {
                assert_eq!(json["messages"][0]["role"], "system");
                assert_eq!(json["temperature"], 0.0);
                (200, r#"{"choices":[{"message":{"role":"assistant","content":"A short \"summary\"."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4}}"#.to_string())
            }
            "/anthropic/v1/messages" => {
                let ok = header("x-api-key").as_deref() == Some(KEY)
                    && header("anthropic-version").is_some()
                    && json["system"].is_string()
                    && json["messages"]
                        .as_array()
                        .is_some_and(|m| m.iter().all(|m| m["role"] != "system"));
                if ok {
                    (200, r#"{"content":[{"type":"text","text":"Claude says hi."}],"stop_reason":"end_turn","usage":{"input_tokens":9,"output_tokens":3}}"#.to_string())
                } else {
                    (400, format!("unexpected request {body}"))
                }
            }
            "/broken/v1/chat/completions" => (200, "this is not json".to_string()),
            _ => (500, "upstream exploded".to_string()),
        };
        let _ = request.respond(tiny_http::Response::from_string(answer).with_status_code(status));
    })
}

fn world(base: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let manifest = format!(
        r#"
        [world]
        name = "llm"
        [modules.summarizer]
        component = "modules/summarizer.wasm"
        [modules.notifier]
        component = "modules/notifier.wasm"

        [providers.openai]
        api = "openai-chat"
        base_url = "{base}/openai/v1"
        api_key_env = "AGENTOS_TEST_LLM_KEY"
        [providers.claude]
        api = "anthropic-messages"
        base_url = "{base}/anthropic/v1"
        api_key_file = "claude.key"
        [providers.broken]
        api = "openai-chat"
        base_url = "{base}/broken/v1"
        [providers.failing]
        api = "openai-chat"
        base_url = "{base}/failing/v1"
        [providers.keyless]
        api = "openai-chat"
        base_url = "{base}/openai/v1"
        api_key_env = "AGENTOS_TEST_UNSET_KEY"

        [caps.docs]
        effect = "fs"
        dir = "docs"
        [caps.models]
        effect = "llm"
        providers = ["openai", "claude", "broken", "failing", "keyless"]
        models = ["small-model"]
        max_tokens_per_call = 512
        [caps.notes]
        effect = "blob"
        [caps.to-archive]
        effect = "emit"
        targets = ["archive"]
        [caps.back]
        effect = "emit"
        targets = ["summarizer"]
        [caps.reminders]
        effect = "timer"

        [agents.summarizer]
        module = "summarizer"
        grants = ["docs", "models", "notes", "to-archive", "reminders"]
        config = {{ model = "small-model", notify = "archive" }}
        [agents.archive]
        module = "notifier"
        grants = ["notes", "back"]
        "#
    );
    let (scratch, dir) = custom_world("summarizer", &manifest);
    let notifier = agentos_effects::components::ensure_built("notifier").unwrap();
    std::fs::copy(notifier, dir.join("modules/notifier.wasm")).unwrap();
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(
        dir.join("docs/report.txt"),
        "Quarterly numbers went up. Costs went down.",
    )
    .unwrap();
    std::fs::write(dir.join("claude.key"), format!("{KEY}\n")).unwrap();
    (scratch, dir)
}

/// Run with the provider key in the environment, as an operator would.
fn keyed(args: &[&str]) -> String {
    let mut command = host();
    command
        .env("AGENTOS_TEST_LLM_KEY", KEY)
        .env_remove("AGENTOS_TEST_UNSET_KEY");
    ok_with(command, args)
}

#[test]
fn summaries_flow_through_llm_blob_and_emit_with_receipts_and_replay_without_calls() {
    let (base, calls) = provider();
    let (_scratch, dir) = world(&base);
    let out = keyed(&["send", s(&dir), "summarizer", r#"summarize("docs/report.txt")"#]);
    assert!(out.contains("fs read docs/report.txt"), "{out}");
    assert!(
        out.contains(
            r#"llm default/small-model (max 256 tokens) → "A short \"summary\"." (stop, 12+4 tokens) [grant models]"#
        ),
        "{out}"
    );
    assert!(
        out.contains(r#"→ archive notify("A short \"summary\".")  (emit:summarizer"#),
        "{out}"
    );
    assert!(out.contains("stored note sha256:"), "{out}");

    let out = keyed(&["send", s(&dir), "summarizer", r#"ask(("claude", "hello?"))"#]);
    assert!(
        out.contains(r#"llm claude/small-model (max 256 tokens) → "Claude says hi." (stop, 9+3 tokens)"#),
        "{out}"
    );
    assert_eq!(total(&calls), 2);

    let receipts: Vec<serde_json::Value> = serde_json::from_str(&ok(&["receipts", s(&dir), "--json"])).unwrap();
    let llm: Vec<_> = receipts.iter().filter(|r| r["effect"] == "llm").collect();
    assert_eq!(llm.len(), 2);
    // Receipts name the provider (the default one resolved) and the model.
    assert_eq!(llm[0]["subject"], "openai/small-model");
    assert_eq!(llm[1]["subject"], "claude/small-model");
    assert_eq!(
        (
            llm[0]["usage"]["tokens_in"].as_u64(),
            llm[0]["usage"]["tokens_out"].as_u64()
        ),
        (Some(12), Some(4))
    );
    assert_eq!(
        (
            llm[1]["usage"]["tokens_in"].as_u64(),
            llm[1]["usage"]["tokens_out"].as_u64()
        ),
        (Some(9), Some(3))
    );

    // Replay serves the completions from receipts: the provider is not called again.
    replay_and_verify(&dir);
    assert_eq!(total(&calls), 2);
    // The key is nowhere in the world's journal or its printed history.
    let journal = std::fs::read(dir.join(".agentos/journal.redb")).unwrap();
    assert!(
        !journal.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "the API key reached the journal"
    );
    assert!(!ok(&["log", s(&dir)]).contains(KEY));
}

#[test]
fn provider_problems_become_failed_receipts_never_crashes_or_leaks() {
    let (base, _calls) = provider();
    let (_scratch, dir) = world(&base);
    let out = keyed(&["send", s(&dir), "summarizer", r#"ask(("keyless", "hi"))"#]);
    assert!(
        out.contains(
            "failed: provider `keyless`: environment variable `AGENTOS_TEST_UNSET_KEY` (its API key) is not set"
        ),
        "{out}"
    );
    let out = keyed(&["send", s(&dir), "summarizer", r#"ask(("broken", "hi"))"#]);
    assert!(
        out.contains("failed: provider `broken` returned malformed JSON for its protocol: this is not json"),
        "{out}"
    );
    let out = keyed(&["send", s(&dir), "summarizer", r#"ask(("failing", "hi"))"#]);
    assert!(
        out.contains("failed: provider `failing` answered HTTP 500: upstream exploded"),
        "{out}"
    );
    let out = keyed(&["send", s(&dir), "summarizer", r#"ask(("elsewhere", "hi"))"#]);
    assert!(
        out.contains(
            "DENIED: no llm grant of agent `summarizer` allows this call: models: provider `elsewhere` not granted"
        ),
        "{out}"
    );
    // Without the key in the environment the OpenAI-compatible provider refuses: a failed receipt.
    let out = ok(&["send", s(&dir), "summarizer", r#"ask(("openai", "hi"))"#]);
    assert!(
        out.contains("failed: provider `openai`: environment variable `AGENTOS_TEST_LLM_KEY` (its API key) is not set"),
        "{out}"
    );
    assert!(!out.contains(KEY));
    replay_and_verify(&dir);
}

#[test]
fn a_component_built_against_contract_0_1_0_still_runs_and_replays() {
    // `tests/fixtures/contract-0.1.0/summarizer.wasm` is the summarizer as built against
    // agentos:core@0.1.0: it imports llm, fs, blob, emit, timer and log at 0.1.0.
    let (base, calls) = provider();
    let (_scratch, dir) = world(&base);
    let earlier =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/contract-0.1.0/summarizer.wasm");
    std::fs::copy(earlier, dir.join("modules/summarizer.wasm")).unwrap();
    let out = keyed(&["send", s(&dir), "summarizer", r#"summarize("docs/report.txt")"#]);
    assert!(out.contains("fs read docs/report.txt"), "{out}");
    assert!(out.contains(r#"→ "A short \"summary\"." (stop, 12+4 tokens)"#), "{out}");
    assert!(out.contains("stored note sha256:"), "{out}");
    assert_eq!(total(&calls), 1);
    replay_and_verify(&dir);
    assert_eq!(total(&calls), 1, "replay serves the 0.1.0 call from its receipt");
}
