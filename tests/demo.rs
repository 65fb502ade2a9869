//! The README's first command: the demo worlds (including the governed self-upgrade, the
//! scheduled plan and the assistant using MCP tools) run end to end, offline, and stay
//! replayable; and the benchmark runs.

use crate::common::*;

#[test]
fn the_demo_runs_end_to_end_offline() {
    let scratch = tempfile::tempdir().unwrap();
    let out = ok(&["demo", s(scratch.path())]);
    assert_eq!(out.matches("replay OK").count(), 5, "{out}");
    assert_eq!(out.matches("verify OK").count(), 5, "{out}");
    assert!(out.contains("DENIED: no http grant of agent `hello`"), "{out}");
    assert!(out.contains("(emit:summarizer"), "{out}");
    assert!(out.contains("reminder: summary sha256:"), "{out}");
    // The self-upgrade: the agent's proposal, its shadow run, the person's approval, the new
    // behaviour with the old state, and the revert.
    for expected in [
        "proposal by agent `greeter` (signed by the host)",
        r#"output ["Hello, ada! (greeting #1)"] → ["Howdy, ada! (greeting #1)"]"#,
        "-- approved by ada",
        "greeter stdout: Howdy, bob! (greeting #2)",
        "greeter stdout: Hello, cy! (greeting #3)",
        // The scheduled plan, driving the editor and the notifier.
        "(schedule): completed",
        r#"review done {"headline":"Plans ship in AgentOS today","words":13}"#,
        "tell done",
        // The assistant: each model turn and each tool call of the MCP server, with receipts.
        "mcp list-tools (every granted server) → 4 tools: files/add, files/list_files, files/multiply, files/read_file",
        r#"and tool calls read_file({"path":"numbers.txt"})"#,
        r#"tool read_file({"path":"numbers.txt"}) → 12"#,
        r#"tool add({"numbers":[12.0,30.0]}) → 42"#,
        "answer after 3 model turn(s): The numbers in numbers.txt add up to 42.",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
    for world in ["basics", "pipeline", "self-upgrade", "plans", "tools"] {
        replay_and_verify(&scratch.path().join(world));
    }
    let history = ok(&["history", s(&scratch.path().join("self-upgrade"))]);
    assert_eq!(history.matches("applied at #").count(), 2, "{history}");
    let runs: serde_json::Value =
        serde_json::from_str(&ok(&["plan", "runs", s(&scratch.path().join("plans")), "--json"])).unwrap();
    assert!(runs.as_array().unwrap().len() >= 2, "{runs:#}");
}

/// The benchmark runs every measurement (small sizes; its numbers are not judged here).
#[test]
fn bench_reports_every_measurement_against_its_floor() {
    let out = ok(&[
        "bench",
        "--steps",
        "400",
        "--recovery-steps",
        "1500",
        "--agents",
        "1,3",
        "--calls",
        "2",
        "--latency-ms",
        "20",
        "--senders",
        "2",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for field in [
        "journaled_vs_raw_ratio",
        "durable_vs_raw_commit_ratio",
        "choke_point_log_us",
        "raw_ed25519_sign_us",
        "raw_rmcp_call_us",
        "choke_point_mcp_us",
        "choke_point_mcp_with_intent_us",
        "open_from_snapshot_and_step_ms",
        "replay_from_genesis_ms",
        "verify_vs_raw_ratio",
    ] {
        assert!(report[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {report}");
    }
    for field in ["durable_one_sender_steps_per_s", "durable_many_senders_steps_per_s"] {
        assert!(report[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {report}");
    }
    // Each agent's calls run one after another, so no run beats the ideal; the serial sum is
    // every call in turn.
    let runs = report["side_by_side"].as_array().expect("side-by-side runs");
    assert_eq!(runs.len(), 2, "{report}");
    for (run, agents) in runs.iter().zip([1.0, 3.0]) {
        assert_eq!(run["agents"].as_f64(), Some(agents), "{run}");
        assert!(
            (run["serial_s"].as_f64().unwrap() - agents * 2.0 * 0.02).abs() < 1e-9,
            "{run}"
        );
        assert!(
            run["wall_s"].as_f64().unwrap() >= run["ideal_s"].as_f64().unwrap(),
            "{run}"
        );
    }
    assert_eq!(report["recovery_steps"], 1501);
    assert!(report["recovery_snapshots"].as_u64().unwrap() >= 1, "{report}");
}
