//! Components built against an earlier version of the contract keep running: every interface of
//! `agentos:core@0.1.0` is served by the host functions of the current version, registered a
//! second time under the 0.1.0 name. This works because 0.2.0 changed no 0.1.0 function, only
//! added ones (`llm.chat`), and the component model checks types by structure, not by name: the
//! current version's Rust types lift and lower the earlier version's values exactly.
//!
//! A later version that changes a function must serve its earlier form here with its own
//! types, converting to the current request (so the request a receipt hashes stays the one
//! earlier journals hold).

use super::StoreState;
use crate::bindings::agentos::core::{blob, compile, emit, fs, governance, http, llm, log, timer};
use crate::effects::EffectGate;
use wasmtime::component::Linker;

/// Contract versions served besides the current one.
pub const EARLIER_VERSIONS: &[&str] = &["0.1.0"];

/// The interfaces an earlier version's component can import (its `lifecycle` export is found
/// by the engine under either version).
pub fn interfaces_of(version: &str) -> Option<&'static [&'static str]> {
    match version {
        "0.1.0" => Some(&[
            "types",
            "log",
            "http",
            "llm",
            "fs",
            "blob",
            "timer",
            "compile",
            "emit",
            "governance",
        ]),
        _ => None,
    }
}

/// Register `functions` of interface `$module` under the instance name `$name`, each calling
/// the current version's host method.
macro_rules! serve_as {
    ($linker:expr, $name:literal, $module:ident { $($func:literal => $method:ident($($arg:ident: $ty:ty),*);)* }) => {{
        let mut instance = $linker.instance($name)?;
        $(
            instance.func_wrap(
                $func,
                |mut store: wasmtime::StoreContextMut<'_, StoreState>, ($($arg,)*): ($($ty,)*)| {
                    let gate: &mut EffectGate = &mut store.data_mut().gate;
                    Ok((<EffectGate as $module::Host>::$method(gate, $($arg),*)?,))
                },
            )?;
        )*
    }};
}

/// Serve contract 0.1.0 from the current host functions.
pub fn link(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    // Types only (`effect-error`, `field`): the instance need only exist.
    linker.instance("agentos:core/types@0.1.0")?;
    serve_as!(linker, "agentos:core/log@0.1.0", log {
        "write" => write(level: log::Level, message: String);
    });
    serve_as!(linker, "agentos:core/http@0.1.0", http {
        "send" => send(request: http::Request);
    });
    serve_as!(linker, "agentos:core/llm@0.1.0", llm {
        "complete" => complete(request: llm::CompletionRequest);
    });
    serve_as!(linker, "agentos:core/fs@0.1.0", fs {
        "read" => read(path: String);
        "write" => write(path: String, contents: Vec<u8>);
        "list-dir" => list_dir(path: String);
    });
    serve_as!(linker, "agentos:core/blob@0.1.0", blob {
        "put" => put(contents: Vec<u8>);
        "get" => get(digest: String);
    });
    serve_as!(linker, "agentos:core/timer@0.1.0", timer {
        "schedule" => schedule(when: timer::When, event: String);
        "cancel" => cancel(id: u64);
    });
    serve_as!(linker, "agentos:core/compile@0.1.0", compile {
        "build" => build(language: compile::Language, files: Vec<compile::SourceFile>);
    });
    serve_as!(linker, "agentos:core/emit@0.1.0", emit {
        "send" => send(target: String, event: String);
    });
    serve_as!(linker, "agentos:core/governance@0.1.0", governance {
        "manifest" => manifest();
        "propose" => propose(patch: String, description: String);
        "approve" => approve(proposal: String, comment: String);
    });
    Ok(())
}
