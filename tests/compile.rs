//! End to end: the `compile` effect builds WAT in process and Rust with the real toolchain
//! (offline), stores the component in the world's blob store, and the host then runs it; build
//! errors, time limits and ungranted languages come back as receipts.

mod common;
use common::*;

const MANIFEST: &str = r#"
    [world]
    name = "builds"
    [modules.builder]
    component = "modules/builder.wasm"
    [caps.toolchain]
    effect = "compile"
    languages = ["rust", "wat"]
    time_limit_ms = 600000
    [caps.quick]
    effect = "compile"
    languages = ["rust"]
    time_limit_ms = 1
    [agents.builder]
    module = "builder"
    grants = ["toolchain"]
    [agents.hasty]
    module = "builder"
    grants = ["quick"]
"#;

const SUM_AGENT: &str = r#"
use agentos_sdk::Agent;
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Sum { total: u64 }

impl Agent for Sum {
    type Event = Event;
    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Add(n) => self.total += u64::from(n),
        }
        agentos_sdk::log::info(format!("total {}", self.total));
        Ok(())
    }
}

agentos_sdk::export_agent!(Sum, world: "built");
"#;

/// WAVE string literal for `text`.
fn quoted(text: &str) -> String {
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
    )
}

#[test]
fn sources_become_components_the_host_runs() {
    let (_scratch, dir) = custom_world("builder", MANIFEST);

    let out = ok(&["send", s(&dir), "builder", r#"build-wat("(component)")"#]);
    assert!(
        out.contains("compile wat (1 files, 11 bytes) → component sha256:") && out.contains("wat (in process)"),
        "{out}"
    );
    let out = ok(&["send", s(&dir), "builder", r#"build-wat("(module)")"#]);
    assert!(
        out.contains("failed: component.wat assembles to a core module, not a component"),
        "{out}"
    );

    let out = ok(&[
        "send",
        s(&dir),
        "builder",
        &format!("build-rust({})", quoted(SUM_AGENT)),
    ]);
    assert!(out.contains("[grant toolchain]") && out.contains("rustc 1."), "{out}");
    let digest = out
        .split("built sha256:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a digest")
        .to_string();

    let broken = SUM_AGENT.replace("self.total += u64::from(n)", "self.total += n");
    let out = ok(&["send", s(&dir), "builder", &format!("build-rust({})", quoted(&broken))]);
    assert!(
        out.contains("failed: cargo build failed") && out.contains("error[E0"),
        "{out}"
    );

    let out = ok(&["send", s(&dir), "hasty", &format!("build-rust({})", quoted(SUM_AGENT))]);
    assert!(out.contains("timeout: the build did not finish within 1 ms"), "{out}");
    let out = ok(&["send", s(&dir), "hasty", r#"build-wat("(component)")"#]);
    assert!(
        out.contains("DENIED: no compile grant of agent `hasty` allows wat; granted: rust"),
        "{out}"
    );
    replay_and_verify(&dir);

    // The artifact is in the world's blob store; a new world runs it.
    let journal = agentos_host::journal::Journal::open(&dir.join(".agentos/journal.redb")).unwrap();
    let key: [u8; 32] = hex::decode(&digest).unwrap().try_into().unwrap();
    let component = journal.blob(&key).unwrap().expect("the artifact is stored");
    drop(journal);
    let scratch = tempfile::tempdir().unwrap();
    let built = scratch.path().join("built");
    std::fs::create_dir_all(built.join("modules")).unwrap();
    std::fs::write(built.join("modules/sum.wasm"), component).unwrap();
    std::fs::write(
        built.join("world.toml"),
        "[world]\nname = \"built\"\n[modules.sum]\ncomponent = \"modules/sum.wasm\"\n[agents.sum]\nmodule = \"sum\"\n",
    )
    .unwrap();
    ok(&["send", s(&built), "sum", "add(40)"]);
    let out = ok(&["send", s(&built), "sum", "add(2)"]);
    assert!(out.contains("log info: total 42"), "{out}");
    replay_and_verify(&built);
}
