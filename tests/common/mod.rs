//! Helpers shared by the end-to-end tests: drive the real `agentos-host` binary on real world
//! directories, and finish every test with replay + verify.

#![allow(dead_code, reason = "each test file uses a different subset")]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

pub fn host() -> Command {
    Command::cargo_bin("agentos-host").expect("the agentos-host binary is built for tests")
}

/// Run the binary, expect success, return stdout.
pub fn ok(args: &[&str]) -> String {
    ok_with(host(), args)
}

/// Run `command` (the binary, with extra environment say), expect success, return stdout.
pub fn ok_with(mut command: Command, args: &[&str]) -> String {
    let output = command.args(args).output().expect("run agentos-host");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "agentos-host {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// Run the binary, expect failure with `code`, return stderr.
pub fn fails(args: &[&str], code: i32) -> String {
    let output = host().args(args).output().expect("run agentos-host");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "agentos-host {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A new world from a template, in its own temporary directory.
pub fn init(template: &str) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    ok(&["init", s(&dir), "--template", template]);
    (scratch, dir)
}

/// Append `lines` to a world's `world.toml` before its first run (they land in its last
/// section, an agent's in every template).
pub fn append_to_manifest(dir: &Path, lines: &str) {
    let manifest = dir.join("world.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text + lines).unwrap();
}

/// A world directory with the given component copied in and `world.toml` text.
pub fn custom_world(component: &str, manifest: &str) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("world");
    std::fs::create_dir_all(dir.join("modules")).unwrap();
    let built = agentos_host::components::ensure_built(component).expect("component builds");
    std::fs::copy(built, dir.join("modules").join(format!("{component}.wasm"))).unwrap();
    std::fs::write(dir.join("world.toml"), manifest).unwrap();
    (scratch, dir)
}

/// The oracle every end-to-end test ends with.
pub fn replay_and_verify(dir: &Path) {
    let replay = ok(&["replay", s(dir)]);
    assert!(replay.starts_with("replay OK"), "{replay}");
    let verify = ok(&["verify", s(dir)]);
    assert!(verify.starts_with("verify OK"), "{verify}");
}

/// The journal as JSON lines.
pub fn log_json(dir: &Path) -> Vec<serde_json::Value> {
    ok(&["log", s(dir), "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn count_kind(log: &[serde_json::Value], kind: &str) -> usize {
    log.iter().filter(|e| e["kind"] == kind).count()
}
