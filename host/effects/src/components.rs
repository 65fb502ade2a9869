//! Building the repository's example components (`components/<name>`) when they are stale.
//!
//! `init --template`, the demo, the benchmark and the tests need real components. They are
//! built with the plain `cargo build --release --target wasm32-wasip2 -p <name>` a user would
//! type, into the workspace's `target/`, and rebuilt only when a source file is newer than the
//! artifact. Before any build it makes sure the toolchain has the `wasm32-wasip2` standard
//! library ([`ensure_guest_target`]): rustup does not add a `rust-toolchain.toml` target to a
//! toolchain installed before the file asked for it, and cargo would otherwise find out only
//! after building everything else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The repository this binary was built from.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/effects/ has a grandparent")
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

/// Why a component cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A program that would not start (`what`: which, and what it was for).
    #[error("cannot run {what}")]
    CannotRun { what: String, source: std::io::Error },
    #[error("{rustc} cannot tell where the {GUEST_TARGET} standard library lives: {stderr}")]
    NoLibdir { rustc: String, stderr: String },
    #[error(
        "the Rust toolchain has no {GUEST_TARGET} target, which components are built for, and rustup is \
         not installed to add it; install the target for this toolchain (with rustup: `{ADD_TARGET}`; \
         otherwise your distribution's rust-std package for {GUEST_TARGET}), then run the command again"
    )]
    NoTargetNoRustup,
    #[error("`{ADD_TARGET}` failed ({status}); run it yourself, then run the command again")]
    AddTargetFailed { status: std::process::ExitStatus },
    #[error(
        "component sources {} not found: templates are built from an AgentOS checkout (this binary was built \
         from {})",
        sources.display(),
        root.display()
    )]
    NoSources { sources: PathBuf, root: PathBuf },
    #[error("building component `{name}` failed ({status}); see cargo's output above")]
    Failed {
        name: String,
        status: std::process::ExitStatus,
    },
}

type Result<T> = std::result::Result<T, BuildError>;

/// The target agents are built for.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// The command that installs [`GUEST_TARGET`] for the toolchain in use.
const ADD_TARGET: &str = "rustup target add wasm32-wasip2";

/// The programs that build components: rustc (as cargo will find it) and rustup.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub rustc: std::ffi::OsString,
    pub rustup: std::ffi::OsString,
}

impl Toolchain {
    /// What cargo would use: `$RUSTC` or `rustc`, and `rustup`, from `PATH`.
    pub fn from_env() -> Toolchain {
        Toolchain {
            rustc: std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()),
            rustup: "rustup".into(),
        }
    }

    /// Whether the toolchain that builds in `dir` (rustup resolves it from `dir`'s
    /// `rust-toolchain.toml` or `RUSTUP_TOOLCHAIN`, as it will for cargo) has the standard
    /// library of [`GUEST_TARGET`]. `Err` when rustc cannot be run at all.
    pub fn has_guest_target(&self, dir: &Path) -> Result<bool> {
        let rustc = self.rustc.to_string_lossy();
        let output = Command::new(&self.rustc)
            .args(["--print", "target-libdir", "--target", GUEST_TARGET])
            .current_dir(dir)
            .output()
            .map_err(|source| BuildError::CannotRun {
                what: format!("{rustc} (is the Rust toolchain installed?)"),
                source,
            })?;
        if !output.status.success() {
            return Err(BuildError::NoLibdir {
                rustc: rustc.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        Ok(std::fs::read_dir(&libdir).is_ok_and(|mut files| files.next().is_some()))
    }

    /// Make sure the toolchain that builds in `dir` can build components: when
    /// [`GUEST_TARGET`] is missing, install it with rustup (saying so in one line), or fail at
    /// once with the command to run where rustup is absent.
    pub fn ensure_guest_target(&self, dir: &Path) -> Result<()> {
        if self.has_guest_target(dir)? {
            return Ok(());
        }
        let rustup = Command::new(&self.rustup).arg("--version").current_dir(dir).output();
        if !rustup.is_ok_and(|output| output.status.success()) {
            return Err(BuildError::NoTargetNoRustup);
        }
        eprintln!("installing the {GUEST_TARGET} target, which components are built for ({ADD_TARGET})");
        let status = Command::new(&self.rustup)
            .args(["target", "add", GUEST_TARGET])
            .current_dir(dir)
            .status()
            .map_err(|source| BuildError::CannotRun {
                what: "rustup".into(),
                source,
            })?;
        if !status.success() || !self.has_guest_target(dir)? {
            return Err(BuildError::AddTargetFailed { status });
        }
        Ok(())
    }
}

/// [`Toolchain::ensure_guest_target`] for the toolchain cargo would use.
pub fn ensure_guest_target(dir: &Path) -> Result<()> {
    Toolchain::from_env().ensure_guest_target(dir)
}

/// Whether `artifact` exists and is newer than everything in `sources`.
fn built_after(artifact: &Path, sources: &[PathBuf]) -> bool {
    let newest = sources
        .iter()
        .map(|p| newest_mtime(p))
        .fold(SystemTime::UNIX_EPOCH, SystemTime::max);
    let built = std::fs::metadata(artifact).and_then(|m| m.modified()).ok();
    built.is_some_and(|built| built >= newest)
}

/// Path of the built component `name`, building it first if it is missing or stale.
pub fn ensure_built(name: &str) -> Result<PathBuf> {
    let root = repo_root();
    let crate_dir = root.join("components").join(name);
    if !crate_dir.join("Cargo.toml").exists() {
        return Err(BuildError::NoSources {
            sources: crate_dir,
            root,
        });
    }
    let target_dir = root.join("target");
    let artifact = target_dir.join("wasm32-wasip2/release").join(format!("{name}.wasm"));
    let sources = [
        crate_dir.clone(),
        root.join("wit"),
        root.join("guest-sdk/src"),
        root.join("Cargo.lock"),
    ];
    if built_after(&artifact, &sources) {
        return Ok(artifact);
    }
    ensure_guest_target(&root)?;
    eprintln!("building component `{name}` (cargo build --release --target wasm32-wasip2 -p {name})");
    run_build(
        guest_build(&root, &target_dir).args(["-p", name]),
        name,
        "cargo to build the component (is the Rust toolchain installed?)".into(),
    )?;
    Ok(artifact)
}

/// Path of the host program of `tools/<name>` (e.g. the `mcp-files` MCP server the demo and
/// the `assistant` template use), built first (`cargo build -p <name>`, the dev profile, whose
/// dependencies the host's own debug build shares) if it is missing or stale.
pub fn ensure_tool_built(name: &str) -> Result<PathBuf> {
    let root = repo_root();
    let crate_dir = root.join("tools").join(name);
    if !crate_dir.join("Cargo.toml").exists() {
        return Err(BuildError::NoSources {
            sources: crate_dir,
            root,
        });
    }
    let artifact = root.join("target/debug").join(name);
    if built_after(&artifact, &[crate_dir, root.join("Cargo.lock")]) {
        return Ok(artifact);
    }
    eprintln!("building `{name}` (cargo build -p {name})");
    run_build(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "-q", "-p", name, "--target-dir"])
            .arg(root.join("target"))
            .current_dir(&root)
            .env_remove("CARGO_TARGET_DIR"),
        name,
        format!("cargo to build `{name}` (is the Rust toolchain installed?)"),
    )?;
    Ok(artifact)
}

/// Run `build`, cargo building `name`; `what` says what cargo was for if it cannot be run.
fn run_build(build: &mut Command, name: &str, what: String) -> Result<()> {
    let status = build
        .status()
        .map_err(|source| BuildError::CannotRun { what, source })?;
    if !status.success() {
        return Err(BuildError::Failed {
            name: name.to_string(),
            status,
        });
    }
    Ok(())
}

/// The one command that builds guest components: `cargo build --release --target
/// wasm32-wasip2` of the crate or workspace at `dir` into `target_dir`, with none of the
/// caller's target directory or compiler flags (which are the host's, not the guest's).
pub fn guest_build(dir: &Path, target_dir: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .args(["build", "--release", "--target", GUEST_TARGET, "--target-dir"])
        .arg(target_dir)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell script standing in for a toolchain program.
    fn program(dir: &Path, name: &str, script: &str) -> std::ffi::OsString {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.into_os_string()
    }

    #[test]
    fn a_missing_target_without_rustup_stops_at_once_saying_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let libdir = dir.path().join("lib/rustlib/wasm32-wasip2/lib");
        let toolchain = Toolchain {
            rustc: program(dir.path(), "rustc", &format!("echo {}", libdir.display())),
            rustup: dir.path().join("no-rustup-here").into_os_string(),
        };
        assert!(!toolchain.has_guest_target(dir.path()).unwrap());
        let error = toolchain.ensure_guest_target(dir.path()).unwrap_err().to_string();
        assert!(error.contains("rustup is not installed"), "{error}");
        assert!(error.contains("`rustup target add wasm32-wasip2`"), "{error}");

        // With the standard library in place, nothing is asked of rustup.
        std::fs::create_dir_all(&libdir).unwrap();
        std::fs::write(libdir.join("libstd-0.rlib"), b"").unwrap();
        toolchain.ensure_guest_target(dir.path()).unwrap();
    }

    #[test]
    fn a_missing_target_is_added_with_rustup_and_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let libdir = dir.path().join("lib/rustlib/wasm32-wasip2/lib");
        let log = dir.path().join("rustup.log");
        let toolchain = Toolchain {
            rustc: program(dir.path(), "rustc", &format!("echo {}", libdir.display())),
            rustup: program(
                dir.path(),
                "rustup",
                &format!(
                    "echo \"$@\" >> {log}\n[ \"$1\" = target ] && mkdir -p {lib} && touch {lib}/libstd-0.rlib\nexit 0",
                    log = log.display(),
                    lib = libdir.display()
                ),
            ),
        };
        toolchain.ensure_guest_target(dir.path()).unwrap();
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(calls, "--version\ntarget add wasm32-wasip2\n");

        // A rustup that claims success without installing anything is not believed.
        std::fs::remove_dir_all(&libdir).unwrap();
        let liar = Toolchain {
            rustup: program(dir.path(), "rustup-liar", "exit 0"),
            ..toolchain
        };
        let error = liar.ensure_guest_target(dir.path()).unwrap_err().to_string();
        assert!(error.contains("failed"), "{error}");
    }
}
