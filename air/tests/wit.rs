//! WIT codegen: each agent of the vector worlds that has an event schema compiles to the world
//! pinned in `tests/wit/<vector>.<agent>.wit` (`AGENTOS_BLESS=1` rewrites them), and the generated
//! text is real WIT: it resolves with `wit-parser` against `wit/agentos.wit`.

use agentos_air::{Manifest, wit};
use std::path::Path;

#[test]
fn generated_worlds_match_their_golden_files_and_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("tests/vectors")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let vector = path.file_stem().unwrap().to_string_lossy().into_owned();
        let manifest = Manifest::parse_toml(&std::fs::read_to_string(&path).unwrap(), &vector).unwrap();
        for (agent, def) in &manifest.agents {
            if def.event.is_none() {
                assert_eq!(
                    wit::agent_world(&manifest, agent),
                    Err(wit::WitError::NoEvent(agent.clone()))
                );
                continue;
            }
            let generated = wit::agent_world(&manifest, agent).unwrap();
            let golden = root.join(format!("tests/wit/{vector}.{agent}.wit"));
            if std::env::var_os("AGENTOS_BLESS").is_some() {
                std::fs::write(&golden, &generated).unwrap();
            }
            assert_eq!(
                generated,
                std::fs::read_to_string(&golden).unwrap_or_default(),
                "{vector}.{agent}: generated WIT changed; if intended, rerun with AGENTOS_BLESS=1"
            );
            resolves(&generated, root);
            checked += 1;
        }
    }
    assert!(checked >= 2, "no agent with an event schema among the vectors");
}

/// The generated world parses and resolves against the core package.
fn resolves(generated: &str, root: &Path) {
    let scratch = tempfile::tempdir().unwrap();
    let deps = scratch.path().join("deps/agentos-core");
    std::fs::create_dir_all(&deps).unwrap();
    std::fs::copy(root.join("../wit/agentos.wit"), deps.join("agentos.wit")).unwrap();
    std::fs::write(scratch.path().join("world.wit"), generated).unwrap();
    let mut resolve = wit_parser::Resolve::default();
    resolve
        .push_dir(scratch.path())
        .unwrap_or_else(|e| panic!("generated WIT does not resolve: {e:#}\n{generated}"));
}

#[test]
fn agents_without_a_valid_name_or_event_say_why() {
    let text = "[world]\nname = \"w\"\n[modules.m]\ncomponent = \"m.wasm\"\n[agents.under_score]\nmodule = \"m\"\n\
                [schemas.event]\nvariant = [\"go\"]\n[agents.plain]\nmodule = \"m\"\n";
    let mut manifest = Manifest::parse_toml(text, "w.toml").unwrap();
    manifest.agents.get_mut("under_score").unwrap().event = Some("event".into());
    assert_eq!(
        wit::agent_world(&manifest, "under_score").unwrap_err().to_string(),
        "agent name `under_score` is not a WIT identifier (lowercase words of letters and digits joined by `-`)"
    );
    assert!(
        wit::agent_world(&manifest, "plain")
            .unwrap_err()
            .to_string()
            .contains("add `event = ")
    );
    assert_eq!(
        wit::agent_world(&manifest, "ghost"),
        Err(wit::WitError::NoAgent("ghost".into()))
    );
}
