//! The `compile` interface and its adapters: Rust crates built with the real toolchain
//! (`cargo build --release --target wasm32-wasip2 --offline` in a scratch directory, under a
//! time limit, with no network) and WAT text assembled in process. Artifacts go to the world's
//! blob store; the receipt ties the sources' digest (its request) to the artifact's digest and
//! the toolchain (its outcome), and its times give the build's duration.
//!
//! A Rust build gets a generated `Cargo.toml` (a `cdylib` depending on the guest SDK of this
//! host's checkout and on `serde`, with build scripts off), the checkout's `Cargo.lock` so it
//! resolves offline, and `agentos.wit` under `wit/deps/agentos-core/`; the guest supplies only
//! files under `src/` and `wit/`, so it cannot add dependencies, build scripts or cargo
//! configuration. The build is not otherwise sandboxed: `include_bytes!` with an absolute path
//! can still read files the host user can read.

use super::{EffectFailure, EffectGate, EffectOutcome, EffectRequest, EffectResponse};
use crate::journal::Journal;
use crate::receipts::Usage;
use crate::runtime::bindings::agentos::core::compile::{Artifact, Host, Language, SourceFile};
use crate::runtime::bindings::agentos::core::types::EffectError;
use agentos_air::CompileCap;
use std::path::{Component, Path};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Most source bytes one build may submit.
pub const SOURCES_MAX_BYTES: usize = 4 * 1024 * 1024;
/// How much of the compiler's output a failed build's receipt keeps (the end of it).
const DIAGNOSTICS_MAX_BYTES: usize = 8 * 1024;
const CRATE_NAME: &str = "compiled-agent";

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

fn failed(reason: impl Into<String>) -> (EffectOutcome, Usage) {
    (Err(EffectFailure::Failed(reason.into())), Usage::default())
}

/// Build `files` in `language` under `cap`; `scratch_root` holds build directories and the
/// shared target directory (so dependencies are compiled once per world).
pub fn execute(
    cap: &CompileCap,
    language: &str,
    files: &[(String, Vec<u8>)],
    journal: &std::sync::Mutex<Journal>,
    scratch_root: &Path,
) -> (EffectOutcome, Usage) {
    for (path, _) in files {
        let relative = Path::new(path);
        if path.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return failed(format!("source path `{path}` must be relative, without `..`"));
        }
        // Anything else (a `build.rs`, `.cargo/config.toml`, ...) could make cargo run code of
        // the guest's choosing on the host.
        if language == "rust" && !(path.starts_with("src/") || path.starts_with("wit/")) {
            return failed(format!(
                "source path `{path}` is outside src/ and wit/, the only directories a build may fill"
            ));
        }
    }
    let sent = files.iter().map(|(_, c)| c.len() as u64).sum();
    let built = match language {
        "wat" => build_wat(files),
        "rust" => build_rust(cap, files, scratch_root),
        other => Err(EffectFailure::Failed(format!("unknown language `{other}`"))),
    };
    let (bytes, toolchain) = match built {
        Ok(built) => built,
        Err(failure) => {
            return (
                Err(failure),
                Usage {
                    bytes_sent: sent,
                    ..Usage::default()
                },
            );
        }
    };
    if bytes.len() as u64 > cap.max_artifact_bytes {
        return failed(format!(
            "artifact of {} bytes exceeds max_artifact_bytes {}",
            bytes.len(),
            cap.max_artifact_bytes
        ));
    }
    let digest = journal.lock().expect("journal lock").put_blob(&bytes);
    let usage = Usage {
        bytes_sent: sent,
        bytes_received: bytes.len() as u64,
        ..Usage::default()
    };
    let artifact = EffectResponse::Artifact {
        digest: format!("sha256:{}", hex::encode(digest)),
        size: bytes.len() as u64,
        toolchain,
    };
    (Ok(artifact), usage)
}

fn build_wat(files: &[(String, Vec<u8>)]) -> Result<(Vec<u8>, String), EffectFailure> {
    let [(path, text)] = files else {
        return Err(EffectFailure::Failed(format!(
            "a wat build takes exactly one file, got {}",
            files.len()
        )));
    };
    let bytes = wat::parse_bytes(text).map_err(|e| EffectFailure::Failed(format!("{path}: {e}")))?;
    // A component's preamble: magic, then version 0x0d and layer 1.
    if bytes.get(4..8) != Some(&[0x0d, 0x00, 0x01, 0x00]) {
        return Err(EffectFailure::Failed(format!(
            "{path} assembles to a core module, not a component"
        )));
    }
    Ok((bytes.into_owned(), "wat (in process)".to_string()))
}

fn rustc_version() -> String {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            Command::new("rustc")
                .arg("-V")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "rustc (version unknown)".to_string())
        })
        .clone()
}

fn build_rust(
    cap: &CompileCap,
    files: &[(String, Vec<u8>)],
    scratch_root: &Path,
) -> Result<(Vec<u8>, String), EffectFailure> {
    let io = |what: &str, e: std::io::Error| EffectFailure::Failed(format!("{what}: {e}"));
    let repo = crate::components::repo_root();
    std::fs::create_dir_all(scratch_root).map_err(|e| io("scratch directory", e))?;
    let scratch = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(scratch_root)
        .map_err(|e| io("scratch directory", e))?;
    let dir = scratch.path();
    for (path, contents) in files {
        if path == "Cargo.toml" || path == "Cargo.lock" {
            return Err(EffectFailure::Failed(format!(
                "`{path}` is generated by the host; send src/ and wit/ only"
            )));
        }
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap_or(dir)).map_err(|e| io(path, e))?;
        std::fs::write(&target, contents).map_err(|e| io(path, e))?;
    }
    let manifest = format!(
        "[package]\nname = \"{CRATE_NAME}\"\nversion = \"0.1.0\"\nedition = \"2024\"\nbuild = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nagentos-sdk = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
        repo.join("guest-sdk").display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| io("Cargo.toml", e))?;
    let _ = std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock"));
    let deps = dir.join("wit/deps/agentos-core");
    std::fs::create_dir_all(&deps).map_err(|e| io("wit/deps", e))?;
    std::fs::write(deps.join("agentos.wit"), include_str!("../../../wit/agentos.wit"))
        .map_err(|e| io("agentos.wit", e))?;

    match crate::components::Toolchain::from_env().has_guest_target(dir) {
        Ok(true) => {}
        Ok(false) => {
            return Err(EffectFailure::Failed(format!(
                "the host's Rust toolchain has no {} target; its operator can add it with `rustup target add {}`",
                crate::components::GUEST_TARGET,
                crate::components::GUEST_TARGET
            )));
        }
        Err(error) => return Err(EffectFailure::Failed(format!("{error:#}"))),
    }
    let target_dir = scratch_root.join("target");
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--offline",
            "--quiet",
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(dir)
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io("cannot run cargo", e))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_millis(cap.time_limit_ms);
    let status = loop {
        match child.try_wait().map_err(|e| io("waiting for cargo", e))? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(EffectFailure::Timeout(format!(
                    "the build did not finish within {} ms",
                    cap.time_limit_ms
                )));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let diagnostics = reader.join().unwrap_or_default();
    if !status.success() {
        let start = (diagnostics.len().saturating_sub(DIAGNOSTICS_MAX_BYTES)..=diagnostics.len())
            .find(|&i| diagnostics.is_char_boundary(i))
            .unwrap_or(0);
        let tail = &diagnostics[start..];
        let tail = tail.replace(&dir.display().to_string(), ".");
        return Err(EffectFailure::Failed(format!("cargo build failed ({status}):\n{tail}")));
    }
    let artifact = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", CRATE_NAME.replace('-', "_")));
    let bytes = std::fs::read(&artifact).map_err(|e| io("reading the built component", e))?;
    Ok((bytes, rustc_version()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_cannot_add_build_scripts_or_cargo_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let journal = std::sync::Mutex::new(Journal::open(&dir.path().join("j.redb")).unwrap());
        let cap = CompileCap {
            languages: vec!["rust".into()],
            time_limit_ms: 1000,
            max_artifact_bytes: 1 << 20,
            budget: None,
        };
        for path in [
            "build.rs",
            ".cargo/config.toml",
            "Cargo.toml",
            "../escape.rs",
            "/etc/x.rs",
        ] {
            let files = [(path.to_string(), b"fn main() {}".to_vec())];
            let (outcome, _) = execute(&cap, "rust", &files, &journal, dir.path());
            let Err(EffectFailure::Failed(reason)) = outcome else {
                panic!("{path} was accepted")
            };
            assert!(
                reason.contains(path.trim_start_matches('/')) || reason.contains(path),
                "{path}: {reason}"
            );
        }
    }
}
