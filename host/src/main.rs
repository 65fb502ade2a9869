//! The `agentos-host` binary: the command line over `agentos-runtime` (see `cli`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
