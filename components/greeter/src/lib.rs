//! The `greeter` agent: greets people, and can be asked to change how it greets.
//!
//! Asked to `learn` a new greeting, it rewrites its own source (this file, with another
//! `GREETING`), builds it with the `compile` effect, reads the world's manifest and proposes its
//! module's new component through the `governance` effect. That is all it can do: a person must
//! approve the proposal before the world runs the new build, and its state (how many people it
//! greeted) is carried across by `restore`.

use agentos_sdk::compile::{self, Language, SourceFile};
use agentos_sdk::{Agent, governance, log};
use bindings::Event;

/// How this build greets; `learn` builds the agent again with another value here.
const GREETING: &str = "Hello";
/// The module this agent runs as, in the world's manifest.
const MODULE: &str = "greeter";
const SOURCE: &str = include_str!("lib.rs");
const WORLD: &str = include_str!("../wit/world.wit");

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Greeter {
    greeted: u64,
    /// Proposals this agent made, by id.
    proposals: Vec<String>,
}

impl Greeter {
    fn learn(&mut self, greeting: &str) -> Result<String, String> {
        let current = format!("const GREETING: &str = {GREETING:?};");
        let wanted = format!("const GREETING: &str = {greeting:?};");
        let files = [
            SourceFile {
                path: "src/lib.rs".into(),
                contents: SOURCE.replacen(&current, &wanted, 1).into_bytes(),
            },
            SourceFile {
                path: "wit/world.wit".into(),
                contents: WORLD.as_bytes().to_vec(),
            },
        ];
        let artifact = compile::build(Language::Rust, &files).map_err(|e| format!("build failed: {e:?}"))?;
        let manifest = governance::manifest().map_err(|e| format!("cannot read the manifest: {e:?}"))?;
        log::info(format!(
            "built {} ({} bytes); the manifest in force is {} bytes of AIR",
            artifact.digest,
            artifact.size,
            manifest.len()
        ));
        let digest = artifact.digest.trim_start_matches("sha256:");
        let change = format!(
            r#"{{"changes": [{{"op": "replace", "kind": "module", "name": "{MODULE}", "definition": {{"component": "modules/{MODULE}-{}.wasm", "sha256": "{digest}"}}}}]}}"#,
            &digest[..12.min(digest.len())]
        );
        let description = format!("greet with {greeting:?} instead of {GREETING:?}");
        governance::propose(&change, &description).map_err(|e| format!("the proposal was refused: {e:?}"))
    }
}

impl Agent for Greeter {
    type Event = Event;

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Greet(name) => {
                self.greeted += 1;
                println!("{GREETING}, {name}! (greeting #{})", self.greeted);
            }
            Event::Learn(greeting) => match self.learn(&greeting) {
                Ok(id) => {
                    log::info(format!("proposed my upgrade as #{id}; a person has to approve it"));
                    self.proposals.push(id);
                }
                Err(reason) => log::warn(reason),
            },
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Greeter, world: "greeter");
