//! Writing the commands' output to stdout so that a closed pipe ends the command quietly.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`agentos-host log w | head`),
//! because Rust ignores SIGPIPE. The commands write through [`outln!`] / [`out!`] instead, which
//! return the write error; it travels up like any other error, so the command stops at its next
//! line with everything it holds dropped (journals closed, nothing half-written), and
//! [`is_broken_pipe`] lets `main` exit with status 0 and no message, as `head`'s writers do.

/// `println!` that returns the write's `io::Result` (use it with `?`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` that returns the write's `io::Result` (use it with `?`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// Whether `error` was caused by writing to a pipe nobody reads any more.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
