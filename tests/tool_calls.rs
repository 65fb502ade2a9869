//! End to end: `llm.chat` with tools, through the real client against a local stand-in that
//! speaks tool calls in both wire protocols (OpenAI chat completions and Anthropic messages) and
//! checks every request's shape. The `assistant` component runs the SDK's tool loop over the
//! tools of the repository's MCP server (`mcp-files`, started over stdio) its grant allows: the
//! model asks for `multiply`, then `add`, then answers; a tool that does not exist and arguments that do
//! not match the schema go back to the model as errors it reads; a loop past its turn limit is
//! resumed in a later step. Receipts name the tool calls; replay serves every turn from them.

use crate::common::*;
use serde_json::{Value, json};

/// What the scripted model does next, given the question and the tool results so far
/// (content, is_error).
enum Move {
    Call(&'static str, Value),
    Say(String),
}

fn script(question: &str, results: &[(String, bool)]) -> Move {
    match (question, results) {
        (q, []) if q.contains("times") => Move::Call("multiply", json!({"numbers": [3, 4]})),
        (q, [(product, false)]) if q.contains("times") => {
            Move::Call("add", json!({"numbers": [2, product.parse::<f64>().unwrap()]}))
        }
        (q, [_, (sum, false)]) if q.contains("times") => Move::Say(format!("2 + 3 × 4 = {sum}.")),
        (q, []) if q.contains("divide") => Move::Call("divide", json!({"numbers": [1, 0]})),
        (q, [(error, true)]) if q.contains("divide") => Move::Say(format!("I could not: {error}")),
        (q, []) if q.contains("sloppy") => Move::Call("add", json!({"numbers": "two and three"})),
        (q, [(error, true)]) if q.contains("sloppy") => Move::Say(format!("Retracted: {error}")),
        // Never answers: the loop stops at its turn limit.
        (q, _) if q.contains("forever") => Move::Call("add", json!({"numbers": [1]})),
        (_, results) => Move::Say(format!("unexpected results {results:?}")),
    }
}

/// The stand-in: OpenAI at `/openai/v1`, Anthropic at `/anthropic/v1`.
fn model() -> (String, Hits) {
    serve(|mut request, _| {
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let json: Value = serde_json::from_str(&body).unwrap();
        let (status, answer) = match request.url() {
            "/openai/v1/chat/completions" => openai(&json),
            "/anthropic/v1/messages" => anthropic(&json),
            other => (404, json!({"error": other})),
        };
        let _ = request.respond(tiny_http::Response::from_string(answer.to_string()).with_status_code(status));
    })
}

fn bad(why: String) -> (u16, Value) {
    (400, json!({"error": {"message": why}}))
}

fn openai(request: &Value) -> (u16, Value) {
    let tools: Vec<&str> = request["tools"].as_array().map_or(vec![], |t| {
        t.iter().filter_map(|t| t["function"]["name"].as_str()).collect()
    });
    if tools != ["add", "multiply"] || request["tool_choice"] != "auto" {
        return bad(format!("tools {tools:?} and choice {}", request["tool_choice"]));
    }
    if request["tools"][0]["type"] != "function" || !request["tools"][0]["function"]["parameters"].is_object() {
        return bad("a tool is not a function with an object schema".into());
    }
    let messages = request["messages"].as_array().unwrap();
    let question = messages.iter().find(|m| m["role"] == "user").unwrap()["content"]
        .as_str()
        .unwrap();
    // Every tool message answers a call of the assistant message before it.
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for message in messages {
        match message["role"].as_str() {
            Some("assistant") => {
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    calls.push(call["id"].as_str().unwrap().to_string());
                }
            }
            Some("tool") => {
                let id = message["tool_call_id"].as_str().unwrap_or_default();
                if !calls.iter().any(|c| c == id) {
                    return bad(format!("a tool result for unknown call {id}"));
                }
                let content = message["content"].as_str().unwrap().to_string();
                // OpenAI carries no error flag; the loop's errors say what went wrong.
                let is_error = content.contains("no tool") || content.contains("do not match");
                results.push((content, is_error));
            }
            _ => {}
        }
    }
    let usage = json!({"prompt_tokens": 10 + messages.len(), "completion_tokens": 5});
    let reply = match script(question, &results) {
        Move::Call(name, arguments) => json!({
            "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_{}", results.len() + 1), "type": "function",
                "function": {"name": name, "arguments": arguments.to_string()}}]},
                "finish_reason": "tool_calls"}],
            "usage": usage}),
        Move::Say(text) => json!({
            "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage}),
    };
    (200, reply)
}

fn anthropic(request: &Value) -> (u16, Value) {
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .map_or(vec![], |t| t.iter().filter_map(|t| t["name"].as_str()).collect());
    if tools != ["add", "multiply"] || request["tool_choice"] != json!({"type": "auto"}) {
        return bad(format!("tools {tools:?} and choice {}", request["tool_choice"]));
    }
    if !request["tools"][0]["input_schema"].is_object() || !request["system"].is_string() {
        return bad("no input_schema or system prompt".into());
    }
    let messages = request["messages"].as_array().unwrap();
    // Roles alternate, starting with the user.
    for (i, message) in messages.iter().enumerate() {
        if message["role"] != if i % 2 == 0 { "user" } else { "assistant" } {
            return bad(format!("message {i} breaks the alternation: {message}"));
        }
    }
    let question = match &messages[0]["content"] {
        Value::String(text) => text.clone(),
        other => return bad(format!("the question is not text: {other}")),
    };
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for message in messages {
        for block in message["content"].as_array().into_iter().flatten() {
            match block["type"].as_str() {
                Some("tool_use") if block["input"].is_object() => calls.push(block["id"].as_str().unwrap().to_string()),
                Some("tool_use") => return bad("a tool_use input is not an object".into()),
                Some("tool_result") => {
                    let id = block["tool_use_id"].as_str().unwrap_or_default();
                    if !calls.iter().any(|c| c == id) {
                        return bad(format!("a tool_result for unknown call {id}"));
                    }
                    results.push((
                        block["content"].as_str().unwrap().to_string(),
                        block["is_error"] == true,
                    ));
                }
                _ => {}
            }
        }
    }
    let usage = json!({"input_tokens": 20 + messages.len(), "output_tokens": 6});
    let reply = match script(&question, &results) {
        Move::Call(name, input) => json!({
            "content": [{"type": "text", "text": "Let me work it out."},
                        {"type": "tool_use", "id": format!("toolu_{}", results.len() + 1), "name": name, "input": input}],
            "stop_reason": "tool_use", "usage": usage}),
        Move::Say(text) => {
            json!({"content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "usage": usage})
        }
    };
    (200, reply)
}

fn world(base: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let manifest = format!(
        r#"
        [world]
        name = "tools"
        [modules.assistant]
        component = "modules/assistant.wasm"
        [providers.openai]
        api = "openai-chat"
        base_url = "{base}/openai/v1"
        [providers.claude]
        api = "anthropic-messages"
        base_url = "{base}/anthropic/v1"
        [mcp.calc]
        command = "{server}"
        args = ["--root", "data"]
        [caps.models]
        effect = "llm"
        providers = ["openai", "claude"]
        models = ["stand-in"]
        max_tokens_per_call = 1024
        [caps.arithmetic]
        effect = "mcp"
        tools = ["calc/add", "calc/multiply"]
        [agents.gpt]
        module = "assistant"
        grants = ["models", "arithmetic"]
        config = {{ model = "stand-in", provider = "openai", max_turns = 3 }}
        [agents.claude]
        module = "assistant"
        grants = ["models", "arithmetic"]
        config = {{ model = "stand-in", provider = "claude", max_turns = 3 }}
        "#,
        server = mcp_files().display()
    );
    let (scratch, dir) = custom_world("assistant", &manifest);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    (scratch, dir)
}

fn receipts_of(dir: &std::path::Path, agent: &str) -> Vec<Value> {
    let receipts: Vec<Value> = serde_json::from_str(&ok(&["receipts", s(dir), "--json"])).unwrap();
    receipts
        .into_iter()
        .filter(|r| r["agent"] == agent && r["effect"] == "llm")
        .collect()
}

#[test]
fn a_tool_loop_runs_model_turns_and_tool_calls_in_both_protocols_and_replays_from_receipts() {
    let (base, calls) = model();
    let (_scratch, dir) = world(&base);
    for agent in ["gpt", "claude"] {
        let out = ok(&["send", s(&dir), agent, r#"ask("What is 2 + 3 times 4?")"#]);
        assert!(
            out.contains(r#"tool multiply({"numbers":[3,4]}) → 12"#),
            "{agent}: {out}"
        );
        assert!(out.contains(r#"tool add({"numbers":[2,12.0]}) → 14"#), "{agent}: {out}");
        assert!(
            out.contains("answer after 3 model turn(s): 2 + 3 × 4 = 14."),
            "{agent}: {out}"
        );
        assert!(out.contains("and tool calls multiply("), "{agent}: {out}");
        // Each receipt names the tool calls the model asked for.
        let subjects: Vec<String> = receipts_of(&dir, agent)
            .iter()
            .map(|r| r["subject"].as_str().unwrap().to_string())
            .collect();
        let provider = if agent == "gpt" { "openai" } else { "claude" };
        assert_eq!(
            subjects,
            [
                format!("{provider}/stand-in → tool calls: multiply"),
                format!("{provider}/stand-in → tool calls: add"),
                format!("{provider}/stand-in"),
            ],
            "{agent}"
        );
    }
    let openai = calls.lock().unwrap().get("/openai/v1/chat/completions").copied();
    let anthropic = calls.lock().unwrap().get("/anthropic/v1/messages").copied();
    assert_eq!((openai, anthropic), (Some(3), Some(3)));
    replay_and_verify(&dir);
    assert_eq!(total(&calls), 6, "replay called no model");
}

#[test]
fn a_model_that_asks_for_a_missing_tool_or_sends_bad_arguments_reads_the_error_and_goes_on() {
    let (base, _calls) = model();
    let (_scratch, dir) = world(&base);
    for agent in ["gpt", "claude"] {
        let out = ok(&["send", s(&dir), agent, r#"ask("Please divide 1 by 0")"#]);
        assert!(
            out.contains(
                "tool divide({\"numbers\":[1,0]}) failed there is no tool `divide`; the tools are: add, multiply"
            ),
            "{agent}: {out}"
        );
        assert!(
            out.contains("answer after 2 model turn(s): I could not: there is no tool `divide`"),
            "{agent}: {out}"
        );
        let out = ok(&["send", s(&dir), agent, r#"ask("Be sloppy: add two and three")"#]);
        assert!(
            out.contains(
                "failed the arguments of `add` do not match its schema: arguments.numbers must be of type array"
            ),
            "{agent}: {out}"
        );
        assert!(
            out.contains("answer after 2 model turn(s): Retracted:"),
            "{agent}: {out}"
        );
    }
    replay_and_verify(&dir);
}

#[test]
fn a_loop_at_its_turn_limit_is_kept_and_resumed_in_a_later_step() {
    let (base, calls) = model();
    let (_scratch, dir) = world(&base);
    let out = ok(&["send", s(&dir), "claude", r#"ask("Add forever")"#]);
    assert!(out.contains("reached its turn limit"), "{out}");
    assert_eq!(total(&calls), 3, "max_turns = 3 model turns in the step");
    // The next step goes on with the same conversation (six tool results by its end).
    let out = ok(&["send", s(&dir), "claude", "resume"]);
    assert!(out.contains("reached its turn limit"), "{out}");
    assert_eq!(total(&calls), 6);
    let failed = ok(&["send", s(&dir), "gpt", "resume"]);
    assert!(
        failed.contains("FAILED (error): gpt — no question waits to be resumed"),
        "{failed}"
    );
    replay_and_verify(&dir);
}
