//! End to end: the `compile` effect builds WAT in process and Rust with the real toolchain
//! (offline), stores the component in the world's blob store, and the host then runs it; build
//! errors, time limits and ungranted languages come back as receipts.

use crate::common::*;

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
    let journal = agentos_journal::Journal::open(&dir.join(".agentos/journal.redb")).unwrap();
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
    forget_builds(&dir);
}

/// What an agent granted `compile` may try, from the attacker's side: read the host's
/// environment, the world's host key or any other file through the compiler, or leave a build
/// running past its time limit. Nothing secret reaches the outcome, the journal or an export,
/// diagnostics name no host path, and nothing outlives the limit.
#[test]
fn a_build_reads_no_host_secret_and_outlives_no_time_limit() {
    let manifest = format!(
        "{MANIFEST}\n    [caps.slow]\n    effect = \"compile\"\n    languages = [\"rust\"]\n    time_limit_ms = 3000\n    \
         [agents.slowpoke]\n    module = \"builder\"\n    grants = [\"slow\"]\n    \
         [caps.open]\n    effect = \"compile\"\n    languages = [\"rust\"]\n    sandbox = \"none\"\n    \
         [agents.unconfined]\n    module = \"builder\"\n    grants = [\"open\"]\n"
    );
    let (scratch, dir) = custom_world("builder", &manifest);
    let secret = format!("s3cr3t-{}", std::process::id());
    let send = |agent: &str, source: &str| {
        let mut command = host();
        command.env("AGENTOS_TEST_SECRET", &secret);
        ok_with(
            command,
            &["send", s(&dir), agent, &format!("build-rust({})", quoted(source))],
        )
    };
    // The world exists (and has its key) once it has run.
    send("builder", SUM_AGENT);
    let key_file = dir.join(".agentos/host.key");
    let key = std::fs::read(&key_file).unwrap();
    // Each probe would put what it read into its diagnostics: the length of an array type.
    let leak = |read: &str| format!("{read}\nconst LEAK: [u8; DATA[0] as usize] = [];\n{SUM_AGENT}");
    let file_probes = [
        leak(&format!(
            "const DATA: &[u8] = include_bytes!({:?});",
            key_file.display().to_string()
        )),
        leak(&format!(
            "const DATA: &[u8] = include_bytes!(\"../../../../../../../../../..{}\");",
            key_file.display()
        )),
        leak("const DATA: &[u8] = include_bytes!(\"/proc/self/environ\");"),
        leak("const DATA: &[u8] = include_bytes!(\"/etc/hostname\");"),
        format!("#[path = \"/etc/hostname\"]\nmod leak;\n{SUM_AGENT}"),
    ];
    let home = std::env::var("HOME").unwrap_or_default();
    let env_probe = format!("compile_error!(env!(\"AGENTOS_TEST_SECRET\"));\n{SUM_AGENT}");
    for (index, probe) in file_probes.iter().chain([&env_probe]).enumerate() {
        let out = send("builder", probe);
        assert!(out.contains("failed: cargo build failed"), "{probe}\n{out}");
        assert!(!out.contains(&secret), "the secret leaked:\n{out}");
        assert!(
            !out.contains("expected an array with a size of"),
            "the build read the file:\n{out}"
        );
        for host_path in ["agentos-build-", "/.cargo/registry", "/.rustup/"] {
            assert!(!out.contains(host_path), "a host path in the diagnostics:\n{out}");
        }
        assert!(home.is_empty() || !out.contains(&format!("{home}/.cargo")), "{out}");
        match index < file_probes.len() {
            true => assert!(out.contains("Permission denied"), "not refused by the sandbox:\n{out}"),
            // Reading the environment found nothing to read: the build's environment is empty.
            false => assert!(
                out.contains("environment variable `AGENTOS_TEST_SECRET` not defined"),
                "{out}"
            ),
        }
    }
    // The same read without the sandbox (which `air check` warns about) gets the bytes: the probes
    // are real attacks, and only the confinement stops them.
    let out = send("unconfined", &file_probes[0]);
    assert!(out.contains("expected an array with a size of"), "{out}");
    let bundle = scratch.path().join("audit.agentos");
    ok(&["export", s(&dir), s(&bundle)]);
    for file in [dir.join(".agentos/journal.redb"), bundle] {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret",
            file.display()
        );
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_slice()),
            "{} holds the host key",
            file.display()
        );
    }

    // A build that would run for minutes is stopped at its limit, with everything it started.
    let spin = format!(
        "const SPIN: u64 = {{ let mut i = 0u64; while i < 400_000_000_000 {{ i += 1; }} i }};\n\
         pub fn spun() -> u64 {{ SPIN }}\n{SUM_AGENT}"
    );
    let out = send("slowpoke", &spin);
    assert!(
        out.contains("timeout: the build did not finish within 3000 ms"),
        "{out}"
    );
    let world_id: serde_json::Value = serde_json::from_str(&ok(&["verify", s(&dir), "--json"])).unwrap();
    let world_id = world_id["world_id"].as_str().unwrap().to_string();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&world_id))
        .collect();
    assert!(
        survivors.is_empty(),
        "processes of the build outlived it: {survivors:?}"
    );
    replay_and_verify(&dir);
    forget_builds(&dir);
}
