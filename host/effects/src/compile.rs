//! The `compile` effect's adapters: Rust crates built with the real toolchain and WAT
//! text assembled in process. Artifacts go to the world's blob store; the receipt ties the
//! sources' digest (its request) to the artifact's digest and the toolchain (its outcome), and
//! its times give the build's duration.
//!
//! A Rust build gets a generated `Cargo.toml` (a `cdylib` depending on the guest SDK of this
//! host's checkout and on `serde`, with build scripts off), the checkout's `Cargo.lock` so it
//! resolves offline, and `agentos.wit` under `wit/deps/agentos-core/`; the guest supplies only
//! files under `src/` and `wit/`, so it cannot add dependencies, build scripts or cargo
//! configuration. The build runs in a private scratch directory outside the world (its target
//! directory, shared by the world's builds so dependencies compile once, lives in the user's
//! cache), with an empty environment but for what cargo needs, and — unless the grant says
//! `sandbox = "none"` — confined by [`super::sandbox`]: it may read the toolchain, the registry
//! cache and the guest SDK, write its scratch and target directories, and nothing else; no
//! network; limits on memory, CPU time, file size and processes; its whole process group killed
//! at the time limit. Diagnostics returned to the agent carry no host paths.

use super::sandbox::{Confinement, Limits, kill_group};
use super::{EffectFailure, EffectOutcome, EffectResponse};
use crate::journal::Journal;
use crate::receipts::Usage;
use agentos_air::{CompileCap, CompileSandbox};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Most source bytes one build may submit.
pub const SOURCES_MAX_BYTES: usize = 4 * 1024 * 1024;
/// How much of the compiler's output a failed build's receipt keeps (the end of it).
const DIAGNOSTICS_MAX_BYTES: usize = 8 * 1024;
const CRATE_NAME: &str = "compiled-agent";

fn failed(reason: impl Into<String>) -> (EffectOutcome, Usage) {
    (Err(EffectFailure::Failed(reason.into())), Usage::default())
}

/// The target directory world `world_id`'s builds share, so its dependencies compile once:
/// in the user's cache, outside the world directory (made on first use; deleting it costs only
/// a rebuild).
pub fn target_dir(world_id: [u8; 16]) -> PathBuf {
    let world = hex::encode(world_id);
    crate::private::user_cache(&["compile", &world])
        .unwrap_or_else(|| std::env::temp_dir().join(format!("agentos-compile-{world}")))
        .join("target")
}

/// Remove world `world_id`'s build directory (what only makes its next build faster).
pub fn forget_builds(world_id: [u8; 16]) {
    if let Some(target) = target_dir(world_id).parent() {
        let _ = std::fs::remove_dir_all(target);
    }
}

/// Build `files` in `language` under `cap` for world `world_id`.
pub fn execute(
    cap: &CompileCap,
    language: &str,
    files: &[(String, Vec<u8>)],
    journal: &std::sync::Mutex<Journal>,
    world_id: [u8; 16],
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
        "rust" => build_rust(cap, files, &target_dir(world_id)),
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

/// The toolchain that builds agents, found once: its sysroot (whose `bin/` holds cargo and
/// rustc, run directly so no rustup proxy or its settings are involved) and version.
struct Toolchain {
    sysroot: PathBuf,
    version: String,
}

fn toolchain() -> Result<&'static Toolchain, EffectFailure> {
    static TOOLCHAIN: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    let found = TOOLCHAIN.get_or_init(|| {
        let repo = crate::components::repo_root();
        let rustc = crate::components::Toolchain::from_env().rustc;
        let run = |args: &[&str]| -> Result<String, String> {
            let output = Command::new(&rustc)
                .args(args)
                .current_dir(&repo)
                .output()
                .map_err(|e| format!("cannot run rustc: {e}"))?;
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
        };
        let sysroot = PathBuf::from(run(&["--print", "sysroot"])?);
        let version = run(&["-V"])?;
        match sysroot.join("bin/cargo").exists() {
            true => Ok(Toolchain { sysroot, version }),
            false => Err(format!("the toolchain at {} has no cargo", sysroot.display())),
        }
    });
    found
        .as_ref()
        .map_err(|reason| EffectFailure::Failed(format!("the host has no usable Rust toolchain: {reason}")))
}

/// The cargo home whose registry cache builds resolve from (read-only to them).
fn registry() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("registry"))
        .filter(|registry| registry.is_dir())
}

/// Limits of a confined build besides its time limit.
const BUILD_ADDRESS_SPACE_BYTES: u64 = 8 << 30;
const BUILD_FILE_SIZE_BYTES: u64 = 2 << 30;
const BUILD_PROCESSES: u64 = 512;
const BUILD_OPEN_FILES: u64 = 4096;
/// How long the diagnostics may go on after the build's processes are gone.
const DIAGNOSTICS_GRACE: Duration = Duration::from_secs(2);

fn build_rust(
    cap: &CompileCap,
    files: &[(String, Vec<u8>)],
    target_dir: &Path,
) -> Result<(Vec<u8>, String), EffectFailure> {
    let io = |what: &str, e: std::io::Error| EffectFailure::Failed(format!("{what}: {e}"));
    let toolchain = toolchain()?;
    if !toolchain
        .sysroot
        .join("lib/rustlib")
        .join(crate::components::GUEST_TARGET)
        .exists()
    {
        return Err(EffectFailure::Failed(format!(
            "the host's Rust toolchain has no {target} target; its operator can add it with `rustup target add {target}`",
            target = crate::components::GUEST_TARGET
        )));
    }
    let repo = crate::components::repo_root();
    let registry =
        registry().ok_or_else(|| EffectFailure::Failed("the host has no cargo registry cache to build from".into()))?;
    // Private (0700), outside the world directory, gone when the build is.
    let scratch = tempfile::Builder::new()
        .prefix("agentos-build-")
        .tempdir()
        .map_err(|e| io("scratch directory", e))?;
    let dir = scratch.path().join("crate");
    for (path, contents) in files {
        if path == "Cargo.toml" || path == "Cargo.lock" {
            return Err(EffectFailure::Failed(format!(
                "`{path}` is generated by the host; send src/ and wit/ only"
            )));
        }
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap_or(&dir)).map_err(|e| io(path, e))?;
        std::fs::write(&target, contents).map_err(|e| io(path, e))?;
    }
    let manifest = format!(
        "[package]\nname = \"{CRATE_NAME}\"\nversion = \"0.1.0\"\nedition = \"2024\"\nbuild = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nagentos-sdk = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
        repo.join("guest-sdk").display().to_string()
    );
    std::fs::create_dir_all(&dir).map_err(|e| io("crate directory", e))?;
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| io("Cargo.toml", e))?;
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| io("Cargo.lock", e))?;
    let deps = dir.join("wit/deps/agentos-core");
    std::fs::create_dir_all(&deps).map_err(|e| io("wit/deps", e))?;
    std::fs::write(deps.join("agentos.wit"), include_str!("../../../wit/agentos.wit"))
        .map_err(|e| io("agentos.wit", e))?;
    // cargo's own home is the scratch's: its locks and caches go there; the registry it reads is
    // the host's, linked in.
    let cargo_home = scratch.path().join("cargo-home");
    let temporary = scratch.path().join("tmp");
    std::fs::create_dir_all(&cargo_home).map_err(|e| io("cargo home", e))?;
    std::fs::create_dir_all(&temporary).map_err(|e| io("temporary directory", e))?;
    std::os::unix::fs::symlink(&registry, cargo_home.join("registry")).map_err(|e| io("cargo home", e))?;
    crate::private::dir(target_dir).map_err(|e| EffectFailure::Failed(e.to_string()))?;

    let bin = toolchain.sysroot.join("bin");
    let mut command = Command::new(bin.join("cargo"));
    command
        .args([
            "build",
            "--release",
            "--target",
            crate::components::GUEST_TARGET,
            "--offline",
            "--quiet",
            "--color",
            "never",
            "--target-dir",
        ])
        .arg(target_dir)
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        // cargo reads `.cargo/config.toml` in every ancestor of its working directory; the
        // scratch's ancestors include the shared temporary directory, `/`'s only itself.
        .current_dir("/")
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", scratch.path())
        .env("CARGO_HOME", &cargo_home)
        .env("RUSTC", bin.join("rustc"))
        .env("TMPDIR", &temporary)
        .env("CARGO_NET_OFFLINE", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let time_limit = Duration::from_millis(cap.time_limit_ms);
    let mut child = match cap.sandbox {
        CompileSandbox::Landlock => {
            let confinement = Confinement {
                read: vec![
                    toolchain.sysroot.clone(),
                    registry.clone(),
                    repo.join("guest-sdk"),
                    repo.join("wit"),
                    repo.join("Cargo.toml"),
                    PathBuf::from("/usr"),
                    PathBuf::from("/lib"),
                    PathBuf::from("/lib64"),
                    PathBuf::from("/bin"),
                    PathBuf::from("/etc/ld.so.cache"),
                    PathBuf::from("/dev/null"),
                    PathBuf::from("/dev/urandom"),
                ],
                write: vec![scratch.path().to_path_buf(), target_dir.to_path_buf()],
                limits: Limits {
                    address_space_bytes: BUILD_ADDRESS_SPACE_BYTES,
                    cpu_seconds: time_limit.as_secs() + 1,
                    file_size_bytes: BUILD_FILE_SIZE_BYTES,
                    processes: BUILD_PROCESSES,
                    open_files: BUILD_OPEN_FILES,
                },
            };
            confinement
                .spawn(&mut command)
                .map_err(|e| EffectFailure::Denied(e.to_string()))?
        }
        CompileSandbox::None => {
            use std::os::unix::process::CommandExt as _;
            command
                .process_group(0)
                .spawn()
                .map_err(|e| io("cannot run cargo", e))?
        }
    };
    let stderr = child.stderr.take().expect("piped stderr");
    // Read to the end (a build never blocks on a full pipe), keeping only the tail.
    let (diagnostics_sender, diagnostics_received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read as _;
        let (mut stderr, mut kept, mut chunk) = (stderr, Vec::new(), [0u8; 8192]);
        while let Ok(read @ 1..) = stderr.read(&mut chunk) {
            kept.extend_from_slice(&chunk[..read]);
            if kept.len() > 2 * DIAGNOSTICS_MAX_BYTES {
                kept.drain(..kept.len() - DIAGNOSTICS_MAX_BYTES);
            }
        }
        let _ = diagnostics_sender.send(String::from_utf8_lossy(&kept).into_owned());
    });
    let deadline = Instant::now() + time_limit;
    let status = loop {
        match child.try_wait().map_err(|e| io("waiting for cargo", e))? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                kill_group(&child);
                let _ = child.wait();
                return Err(EffectFailure::Timeout(format!(
                    "the build did not finish within {} ms",
                    cap.time_limit_ms
                )));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    // Nothing the build started outlives it.
    kill_group(&child);
    // A process that escaped the group may hold the pipe open: the build does not wait for it.
    let diagnostics = diagnostics_received
        .recv_timeout(DIAGNOSTICS_GRACE)
        .unwrap_or_else(|_| "(the build's diagnostics did not end with it)".into());
    if !status.success() {
        let start = (diagnostics.len().saturating_sub(DIAGNOSTICS_MAX_BYTES)..=diagnostics.len())
            .find(|&i| diagnostics.is_char_boundary(i))
            .unwrap_or(0);
        let places = [
            (dir.display().to_string(), "."),
            (scratch.path().display().to_string(), "<scratch>"),
            (target_dir.display().to_string(), "<target>"),
            (registry.display().to_string(), "<registry>"),
            (toolchain.sysroot.display().to_string(), "<toolchain>"),
            (repo.display().to_string(), "<agentos>"),
        ];
        let mut tail = diagnostics[start..].to_string();
        for (path, name) in places {
            tail = tail.replace(&path, name);
        }
        return Err(EffectFailure::Failed(format!("cargo build failed ({status}):\n{tail}")));
    }
    let artifact = target_dir
        .join(crate::components::GUEST_TARGET)
        .join("release")
        .join(format!("{}.wasm", CRATE_NAME.replace('-', "_")));
    // Not through a link the build may have left, and not more than the grant allows.
    let bytes = crate::private::read_at_most(&artifact, cap.max_artifact_bytes)
        .map_err(|e| io("reading the built component", e))?;
    Ok((bytes, toolchain.version.clone()))
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
            sandbox: agentos_air::CompileSandbox::Landlock,
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
            let (outcome, _) = execute(&cap, "rust", &files, &journal, [0; 16]);
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
