//! The `builder` agent: turns source into components with the `compile` effect.
//!
//! Rust builds target a fixed world, `built`, whose agents take `add(u32)` events; the agent
//! supplies `wit/world.wit` and the given `src/lib.rs`. Artifacts are remembered by digest;
//! build failures are logged with the compiler's diagnostics and counted.

use agentos_sdk::compile::{self, Language, SourceFile};
use agentos_sdk::{Agent, log};
use bindings::Event;

const BUILT_WORLD: &str = "package agentos-example:built;

world built {
  include agentos:core/agent@0.2.0;
  variant event { add(u32) }
  export handle: func(event: event) -> result<_, string>;
}
";

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Builder {
    artifacts: Vec<String>,
    failures: u32,
}

impl Builder {
    fn build(&mut self, language: Language, files: Vec<SourceFile>) {
        match compile::build(language, &files) {
            Ok(artifact) => {
                log::info(format!(
                    "built {} ({} bytes) with {}",
                    artifact.digest, artifact.size, artifact.toolchain
                ));
                self.artifacts.push(artifact.digest);
            }
            Err(error) => {
                self.failures += 1;
                log::warn(format!("build failed: {error:?}"));
            }
        }
    }
}

impl Agent for Builder {
    type Event = Event;

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::BuildWat(text) => {
                self.build(
                    Language::Wat,
                    vec![SourceFile {
                        path: "component.wat".into(),
                        contents: text.into_bytes(),
                    }],
                );
            }
            Event::BuildRust(lib_rs) => {
                let files = vec![
                    SourceFile {
                        path: "src/lib.rs".into(),
                        contents: lib_rs.into_bytes(),
                    },
                    SourceFile {
                        path: "wit/world.wit".into(),
                        contents: BUILT_WORLD.as_bytes().to_vec(),
                    },
                ];
                self.build(Language::Rust, files);
            }
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Builder, world: "builder");
