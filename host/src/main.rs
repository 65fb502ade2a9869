//! The `agentos-host` binary: see `agentos_host::cli`.

fn main() -> std::process::ExitCode {
    agentos_host::cli::main()
}
