//! The demo's stand-ins on 127.0.0.1, so it needs no network: a language model that speaks the
//! OpenAI chat-completions protocol (`POST /v1/chat/completions`) and the Anthropic messages
//! protocol (`POST /v1/messages`), and a plain server for other pages.
//!
//! The model answers a request without tools with the first sentence of its last message (a
//! "summary"). Offered tools, it works a question about a file's numbers as a model would: it
//! asks for `read_file` of the `.txt` file the question names, then for `add` of the numbers it
//! read, then answers with the sum — each step a tool call with its id, in either protocol.

use anyhow::Result;
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};

/// A server answering each request with `respond(path, body)` (content type, body). It serves
/// at most 16 requests within 30 s, on a thread that ends with them or with the process.
pub fn server(respond: fn(&str, &[u8]) -> (&'static str, String)) -> Result<(String, std::thread::JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let handle = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut served = 0;
        while served < 16 && std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    served += 1;
                    let _ = answer(stream, respond);
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    Ok((base, handle))
}

/// The model; returns its base URL (`…/v1`).
pub fn model() -> Result<(String, std::thread::JoinHandle<()>)> {
    let (base, handle) = server(|path, body| {
        let request: Value = serde_json::from_slice(body).unwrap_or_default();
        let reply = match path {
            "/v1/messages" => anthropic(&request),
            _ => openai(&request),
        };
        ("application/json", reply.to_string())
    })?;
    Ok((format!("{base}/v1"), handle))
}

fn answer(mut stream: std::net::TcpStream, respond: fn(&str, &[u8]) -> (&'static str, String)) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut length = 0usize;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (content_type, reply) = respond(&path, &body);
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    stream.flush()
}

/// What the model does next.
enum Move {
    Call { name: &'static str, arguments: Value },
    Say(String),
}

/// Work the question with the tools offered, given the results so far.
fn next_move(question: &str, tools: &[String], results: &[String]) -> Move {
    let offers = |name: &str| tools.iter().any(|t| t == name);
    let file = question
        .split(|c: char| c.is_whitespace() || c == '?' || c == ',')
        .find(|word| word.ends_with(".txt"));
    match (file, results) {
        (Some(file), []) if offers("read_file") => Move::Call {
            name: "read_file",
            arguments: json!({ "path": file }),
        },
        (Some(_), [contents]) if offers("add") => {
            let numbers: Vec<f64> = contents
                .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                .filter_map(|word| word.parse().ok())
                .collect();
            Move::Call {
                name: "add",
                arguments: json!({ "numbers": numbers }),
            }
        }
        (Some(file), [_, sum]) => Move::Say(format!("The numbers in {file} add up to {sum}.")),
        _ => Move::Say("I have no tool for that question.".into()),
    }
}

/// The first sentence of `text`.
fn summary(text: &str) -> String {
    text.split_inclusive('.').next().unwrap_or(text).trim().to_string()
}

fn openai(request: &Value) -> Value {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let tools: Vec<String> = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_string))
        .collect();
    let usage = json!({ "prompt_tokens": messages.len() * 10, "completion_tokens": 8 });
    if tools.is_empty() {
        let text = messages.last().and_then(|m| m["content"].as_str()).unwrap_or("");
        return json!({
            "choices": [{ "message": { "role": "assistant", "content": summary(text) }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": text.split_whitespace().count(), "completion_tokens": summary(text).split_whitespace().count() },
        });
    }
    let question = messages
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let results: Vec<String> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .collect();
    match next_move(question, &tools, &results) {
        Move::Call { name, arguments } => json!({
            "choices": [{ "message": { "role": "assistant", "content": null, "tool_calls": [{
                "id": format!("call_{}", results.len() + 1), "type": "function",
                "function": { "name": name, "arguments": arguments.to_string() } }] },
                "finish_reason": "tool_calls" }],
            "usage": usage,
        }),
        Move::Say(text) => json!({
            "choices": [{ "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
            "usage": usage,
        }),
    }
}

fn anthropic(request: &Value) -> Value {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let tools: Vec<String> = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    let usage = json!({ "input_tokens": messages.len() * 10, "output_tokens": 8 });
    let text_of = |content: &Value| match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect(),
        _ => String::new(),
    };
    if tools.is_empty() {
        let text = messages.last().map(|m| text_of(&m["content"])).unwrap_or_default();
        return json!({ "content": [{ "type": "text", "text": summary(&text) }], "stop_reason": "end_turn", "usage": usage });
    }
    let question = messages.first().map(|m| text_of(&m["content"])).unwrap_or_default();
    let results: Vec<String> = messages
        .iter()
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "tool_result")
        .filter_map(|b| b["content"].as_str().map(str::to_string))
        .collect();
    match next_move(&question, &tools, &results) {
        Move::Call { name, arguments } => json!({
            "content": [{ "type": "tool_use", "id": format!("toolu_{}", results.len() + 1), "name": name, "input": arguments }],
            "stop_reason": "tool_use",
            "usage": usage,
        }),
        Move::Say(text) => {
            json!({ "content": [{ "type": "text", "text": text }], "stop_reason": "end_turn", "usage": usage })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_the_file_adds_its_numbers_and_answers_in_both_protocols() {
        let tools = json!([{ "type": "function", "function": { "name": "read_file" } },
                           { "type": "function", "function": { "name": "add" } }]);
        let question = "What do the numbers in numbers.txt add up to?";
        let first = openai(&json!({ "messages": [{ "role": "user", "content": question }], "tools": tools }));
        assert_eq!(
            first["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
            "read_file"
        );
        let second = openai(&json!({ "messages": [{ "role": "user", "content": question },
            { "role": "assistant", "content": null, "tool_calls": [] },
            { "role": "tool", "tool_call_id": "call_1", "content": "12\n30\n" }], "tools": tools }));
        assert_eq!(
            second["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            json!({ "numbers": [12.0, 30.0] }).to_string()
        );
        let tools = json!([{ "name": "read_file" }, { "name": "add" }]);
        let third = anthropic(&json!({ "messages": [{ "role": "user", "content": question },
            { "role": "assistant", "content": [] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_1", "content": "12\n30\n" }] },
            { "role": "assistant", "content": [] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_2", "content": "42" }] }],
            "tools": tools }));
        assert_eq!(third["content"][0]["text"], "The numbers in numbers.txt add up to 42.");
    }
}
