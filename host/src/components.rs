//! Building the repository's example components (`components/<name>`) when they are stale.
//!
//! `init --template`, the demo, the benchmark and the tests need real components. They are
//! built with the plain `cargo build --release --target wasm32-wasip2 -p <name>` a user would
//! type, into the workspace's `target/`, and rebuilt only when a source file is newer than the
//! artifact.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The repository this binary was built from.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

fn newest_mtime(path: &Path) -> SystemTime {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return SystemTime::UNIX_EPOCH;
    };
    let own = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    if !meta.is_dir() {
        return own;
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| newest_mtime(&entry.path()))
        .fold(own, SystemTime::max)
}

/// Path of the built component `name`, building it first if it is missing or stale.
pub fn ensure_built(name: &str) -> Result<PathBuf> {
    let root = repo_root();
    let crate_dir = root.join("components").join(name);
    if !crate_dir.join("Cargo.toml").exists() {
        bail!(
            "component sources {} not found: templates are built from an AgentOS checkout \
             (this binary was built from {})",
            crate_dir.display(),
            root.display()
        );
    }
    let target_dir = root.join("target");
    let artifact = target_dir.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
    let sources = [
        crate_dir.clone(),
        root.join("wit"),
        root.join("guest-sdk/src"),
        root.join("Cargo.lock"),
    ];
    let newest = sources
        .iter()
        .map(|p| newest_mtime(p))
        .fold(SystemTime::UNIX_EPOCH, SystemTime::max);
    let built = std::fs::metadata(&artifact).and_then(|m| m.modified()).ok();
    if built.is_some_and(|built| built >= newest) {
        return Ok(artifact);
    }
    eprintln!("building component `{name}` (cargo build --release --target wasm32-wasip2 -p {name})");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            name,
            "--target-dir",
        ])
        .arg(&target_dir)
        .current_dir(&root)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("cannot run cargo to build the component (is the Rust toolchain installed?)")?;
    if !status.success() {
        bail!("building component `{name}` failed ({status}); see cargo's output above");
    }
    Ok(artifact)
}
