//! The guest's side of `compile`: build a component from sources (Rust, WAT).
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::compile`.

use crate::bindings::agentos::core::compile::{Artifact, Host, Language, SourceFile};
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::compile::SOURCES_MAX_BYTES;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse};

impl Host for EffectGate {
    fn build(&mut self, language: Language, files: Vec<SourceFile>) -> wasmtime::Result<Result<Artifact, EffectError>> {
        let size: usize = files.iter().map(|f| f.path.len() + f.contents.len()).sum();
        if size > SOURCES_MAX_BYTES {
            wasmtime::bail!("compile sources of {size} bytes exceed the limit of {SOURCES_MAX_BYTES} bytes");
        }
        let language = match language {
            Language::Rust => "rust",
            Language::Wat => "wat",
        };
        let files = files.into_iter().map(|f| (f.path, f.contents)).collect();
        Ok(
            match self.call(EffectRequest::Compile {
                language: language.to_string(),
                files,
            })? {
                Ok(EffectResponse::Artifact {
                    digest,
                    size,
                    toolchain,
                }) => Ok(Artifact {
                    digest,
                    size,
                    toolchain,
                }),
                Ok(other) => wasmtime::bail!("journal holds a non-artifact outcome for a compile call: {other:?}"),
                Err(failure) => Err(failure.into()),
            },
        )
    }
}
