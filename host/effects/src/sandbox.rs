//! Confining a child process: what the `compile` effect runs its toolchain under.
//!
//! A [`Confinement`] says which paths the child may read (and execute) and which it may also
//! write; everything else on the filesystem is closed to it, and it may neither bind nor connect
//! a TCP socket, reach abstract Unix sockets outside it, nor signal processes outside it. This is
//! Landlock (the kernel's unprivileged access control; filesystem and TCP rules need ABI 4), set
//! up in the child between `fork` and `exec`, together with resource limits (address space, CPU
//! seconds, file size, processes, open files, no core dumps), and the child leads a process group
//! of its own so that everything it starts can be killed at once.
//!
//! Where the kernel cannot enforce the rules, [`Confinement::spawn`] refuses to start the child:
//! the sandbox fails closed. What the child gets beyond the rules (its environment, its working
//! directory) is the caller's business; the caller here is `compile`, which clears the
//! environment.

use landlock::{
    ABI, Access as _, AccessFs, AccessNet, CompatLevel, Compatible as _, Ruleset, RulesetAttr as _, RulesetCreated,
    RulesetCreatedAttr as _, Scope, path_beneath_rules,
};
use std::path::PathBuf;
use std::process::{Child, Command};

/// The Landlock ABI the rules need: filesystem rights and TCP rules.
const REQUIRED_ABI: ABI = ABI::V4;

/// Why a confined child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "this kernel cannot confine the build (Landlock with filesystem and network rules, ABI 4, Linux 6.7, is \
         needed): {0}; a compile grant may opt out with sandbox = \"none\", which runs the toolchain with the host's \
         rights"
    )]
    Unsupported(String),
    #[error("cannot start the confined process: {0}")]
    Spawn(std::io::Error),
}

/// Resource limits of a confined child (each applies to every process it starts, too).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub address_space_bytes: u64,
    pub cpu_seconds: u64,
    pub file_size_bytes: u64,
    pub processes: u64,
    pub open_files: u64,
}

/// What a confined child may touch.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Read and execute, beneath each path (files or directories; missing ones are skipped).
    pub read: Vec<PathBuf>,
    /// Everything, beneath each path.
    pub write: Vec<PathBuf>,
    pub limits: Limits,
}

impl Confinement {
    /// The ruleset, built before `fork` (building it allocates; the child only applies it).
    fn ruleset(&self) -> Result<RulesetCreated, SandboxError> {
        let existing = |paths: &[PathBuf]| -> Vec<PathBuf> { paths.iter().filter(|p| p.exists()).cloned().collect() };
        let build = || -> Result<RulesetCreated, landlock::RulesetError> {
            Ruleset::default()
                .set_compatibility(CompatLevel::HardRequirement)
                .handle_access(AccessFs::from_all(REQUIRED_ABI))?
                .handle_access(AccessNet::from_all(REQUIRED_ABI))?
                // Scopes (ABI 6) where the kernel has them; the rules above are required.
                .set_compatibility(CompatLevel::BestEffort)
                .scope(Scope::from_all(ABI::V6))?
                .create()?
                .set_compatibility(CompatLevel::HardRequirement)
                .add_rules(path_beneath_rules(
                    existing(&self.read),
                    AccessFs::from_read(REQUIRED_ABI),
                ))?
                .add_rules(path_beneath_rules(
                    existing(&self.write),
                    AccessFs::from_all(REQUIRED_ABI),
                ))
        };
        build().map_err(|e| SandboxError::Unsupported(e.to_string()))
    }

    /// Start `command` confined: it leads its own process group (see [`kill_group`]).
    pub fn spawn(&self, command: &mut Command) -> Result<Child, SandboxError> {
        use std::os::unix::process::CommandExt as _;
        let mut ruleset = Some(self.ruleset()?);
        let limits = self.limits;
        command.process_group(0);
        #[expect(
            unsafe_code,
            reason = "the confinement must be applied in the child, between fork and exec"
        )]
        // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
        // work is allowed: it makes setrlimit and Landlock system calls (the ruleset was built,
        // and its memory allocated, before the fork) and allocates nothing itself.
        unsafe {
            command.pre_exec(move || {
                apply_limits(&limits)?;
                let ruleset = ruleset
                    .take()
                    .ok_or_else(|| std::io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error()))?;
                match ruleset.restrict_self() {
                    Ok(status) if status.ruleset != landlock::RulesetStatus::NotEnforced => Ok(()),
                    _ => Err(std::io::Error::from_raw_os_error(
                        rustix::io::Errno::PERM.raw_os_error(),
                    )),
                }
            });
        }
        command.spawn().map_err(SandboxError::Spawn)
    }
}

fn apply_limits(limits: &Limits) -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let limit = |value: u64| Rlimit {
        current: Some(value),
        maximum: Some(value),
    };
    setrlimit(Resource::As, limit(limits.address_space_bytes))?;
    setrlimit(Resource::Cpu, limit(limits.cpu_seconds))?;
    setrlimit(Resource::Fsize, limit(limits.file_size_bytes))?;
    setrlimit(Resource::Nproc, limit(limits.processes))?;
    setrlimit(Resource::Nofile, limit(limits.open_files))?;
    setrlimit(Resource::Core, limit(0))?;
    Ok(())
}

/// Kill every process of the group `child` leads (what is left of it, at a time limit or after
/// it exited).
pub fn kill_group(child: &Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        // The group may be gone already: nothing to do then.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
