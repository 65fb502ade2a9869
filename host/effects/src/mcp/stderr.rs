//! A stdio server's stderr: read to its end as it fills (a server whose stderr is not read
//! would block on it), its last bytes kept to explain a failure, and what it wrote since a call
//! began kept for that call. What leaves here has the secrets read for the server redacted.
//!
//! The pipe is read under the lock that keeps what was read: by a task as data arrives, and by
//! a call with a plain `read(2)` as soon as its answer has come, which sees whatever the server
//! wrote before answering whether or not the task has been told of it yet. Every read is
//! bounded, so a server that writes without pause holds neither the task nor a call.

use super::{STDERR_CALL_BYTES, STDERR_KEPT_BYTES, redact};
use std::os::fd::AsFd as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::net::unix::pipe;

/// Most bytes one read of the pipe takes (as much as a pipe can hold).
const DRAIN_MAX_BYTES: usize = 1 << 20;

/// A server's stderr (none for a server reached over HTTP).
#[derive(Default)]
pub(super) struct ServerStderr {
    pipe: Option<pipe::Receiver>,
    log: Mutex<StderrLog>,
    /// The values read for the server from the host's environment or files.
    secrets: Vec<String>,
    /// Bytes kept beyond a limit, so that a secret the limit cuts through is still redacted
    /// whole before the cut: the longest secret's length.
    slack: usize,
}

#[derive(Default)]
struct StderrLog {
    /// The last bytes (to explain a failure).
    tail: String,
    /// What came since the current call began, after the `context` bytes that came before.
    fresh: String,
    context: usize,
    /// The start of a character the last read cut short.
    partial: Vec<u8>,
    /// The server closed it (it exited).
    ended: bool,
}

impl ServerStderr {
    /// Read `stderr` from now on (inside the client runtime), redacting `secrets`.
    pub fn follow(stderr: tokio::process::ChildStderr, secrets: &[String]) -> std::io::Result<Arc<ServerStderr>> {
        let pipe = pipe::Receiver::from_owned_fd(stderr.into_owned_fd()?)?;
        let stderr = Arc::new(ServerStderr {
            pipe: Some(pipe),
            log: Mutex::default(),
            secrets: secrets.to_vec(),
            slack: secrets.iter().map(String::len).max().unwrap_or(0),
        });
        tokio::spawn(keep(stderr.clone()));
        Ok(stderr)
    }

    fn log(&self) -> MutexGuard<'_, StderrLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read what the pipe holds now; whether it has ended.
    pub fn drain(&self) -> bool {
        self.drain_into(&mut self.log())
    }

    /// [`Self::drain`] under the lock the caller holds.
    fn drain_into(&self, log: &mut StderrLog) -> bool {
        let Some(pipe) = &self.pipe else {
            return true;
        };
        let mut chunk = [0u8; 4096];
        let mut taken = 0;
        while !log.ended && taken < DRAIN_MAX_BYTES {
            match rustix::io::read(pipe.as_fd(), &mut chunk[..]) {
                Ok(0) => log.ended = true,
                Ok(read) => {
                    taken += read;
                    log.push(&chunk[..read], self.slack);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
        log.ended
    }

    /// A call begins: what the server wrote before it is not the call's (its last bytes are
    /// kept only to recognise a secret the call's first bytes end).
    pub fn begin_call(&self) {
        let mut log = self.log();
        self.drain_into(&mut log);
        let context = ceil_char_boundary(&log.tail, log.tail.len().saturating_sub(self.slack));
        log.fresh = log.tail[context..].to_string();
        log.context = log.fresh.len();
    }

    /// What the server wrote since the call began (at most [`STDERR_CALL_BYTES`]), redacted.
    pub fn call_text(&self) -> String {
        let mut log = self.log();
        self.drain_into(&mut log);
        let raw = std::mem::take(&mut log.fresh);
        let start = log.context;
        let end = floor_char_boundary(&raw, start + STDERR_CALL_BYTES);
        let mut text = self.redacted(&raw, start, end);
        text.truncate(floor_char_boundary(&text, STDERR_CALL_BYTES));
        text
    }

    /// The last [`STDERR_KEPT_BYTES`] the server wrote, redacted.
    pub fn tail_text(&self) -> String {
        let mut log = self.log();
        self.drain_into(&mut log);
        let raw = &log.tail;
        let start = ceil_char_boundary(raw, raw.len().saturating_sub(STDERR_KEPT_BYTES));
        let text = self.redacted(raw, start, raw.len());
        let cut = ceil_char_boundary(&text, text.len().saturating_sub(STDERR_KEPT_BYTES));
        text[cut..].to_string()
    }

    /// `raw[start..end]` redacted, its ends first moved so that they cut through no secret:
    /// a secret an end would cut (or the part of one the text begins or ends with) is left out.
    fn redacted(&self, raw: &str, mut start: usize, mut end: usize) -> String {
        let secrets: Vec<&str> = self
            .secrets
            .iter()
            .map(String::as_str)
            .filter(|s| s.len() >= 4)
            .collect();
        loop {
            let (was_start, was_end) = (start, end);
            for secret in &secrets {
                for (at, _) in raw.match_indices(secret) {
                    let after = at + secret.len();
                    if at < start && start < after {
                        start = after;
                    }
                    if at < end && end < after {
                        end = at;
                    }
                }
                end = end.max(start);
                let text = &raw[start..end];
                // The rest of a secret before `start`, or the beginning of one after `end`.
                let suffix = (4..secret.len())
                    .rev()
                    .filter(|&n| secret.is_char_boundary(secret.len() - n))
                    .find(|&n| text.starts_with(&secret[secret.len() - n..]));
                if let Some(part) = suffix {
                    start += part;
                }
                let text = &raw[start..end];
                let prefix = (4..secret.len())
                    .rev()
                    .filter(|&n| secret.is_char_boundary(n))
                    .find(|&n| text.ends_with(&secret[..n]));
                if let Some(part) = prefix {
                    end -= part;
                }
            }
            if (start, end) == (was_start, was_end) {
                return redact(raw[start..end].to_string(), &self.secrets);
            }
        }
    }
}

impl StderrLog {
    fn push(&mut self, bytes: &[u8], slack: usize) {
        let mut bytes = [std::mem::take(&mut self.partial).as_slice(), bytes].concat();
        self.partial = bytes.split_off(incomplete_end(&bytes));
        let text = String::from_utf8_lossy(&bytes);
        self.tail.push_str(&text);
        let cut = self.tail.len().saturating_sub(STDERR_KEPT_BYTES + slack);
        self.tail.drain(..ceil_char_boundary(&self.tail, cut));
        let room = (self.context + STDERR_CALL_BYTES + slack).saturating_sub(self.fresh.len());
        self.fresh.push_str(&text[..floor_char_boundary(&text, room)]);
    }
}

/// Where a character cut short at the end of `bytes` begins (`bytes.len()` if none is).
fn incomplete_end(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let at = bytes.len() - back;
        let lead = bytes[at];
        if lead & 0xC0 == 0x80 {
            continue;
        }
        let width = match lead {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if width > back { at } else { bytes.len() };
    }
    bytes.len()
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// Read `stderr` whenever it has data, to its end.
async fn keep(stderr: Arc<ServerStderr>) {
    let Some(pipe) = &stderr.pipe else { return };
    loop {
        if pipe.readable().await.is_err() {
            return;
        }
        {
            // Read under the lock, so that a call's own reads keep their place in the text.
            let mut log = stderr.log();
            // `try_read` clears the readiness the plain reads do not.
            let mut chunk = [0u8; 4096];
            match pipe.try_read(&mut chunk) {
                Ok(0) => {
                    log.ended = true;
                    return;
                }
                Ok(read) => log.push(&chunk[..read], stderr.slack),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            }
            if stderr.drain_into(&mut log) {
                return;
            }
        }
        // A server that writes without pause does not keep the runtime's one worker to itself.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_cut_by_a_read_is_kept_whole() {
        let mut log = StderrLog::default();
        let text = "naïve 日本 🙂\n".as_bytes();
        for byte in text {
            log.push(std::slice::from_ref(byte), 0);
        }
        assert_eq!(log.fresh, "naïve 日本 🙂\n");
        assert!(log.partial.is_empty());
    }

    #[test]
    fn a_secret_a_limit_would_cut_is_left_out_whole() {
        let mut log = StderrLog::default();
        log.push("x".repeat(STDERR_CALL_BYTES - 3).as_bytes(), 11);
        log.push(b"SECRETVALUE and more", 11);
        let stderr = ServerStderr {
            log: Mutex::new(log),
            secrets: vec!["SECRETVALUE".into()],
            slack: 11,
            ..ServerStderr::default()
        };
        assert_eq!(stderr.call_text(), "x".repeat(STDERR_CALL_BYTES - 3));
    }

    /// Wherever the limits fall, in whatever pieces the server writes, no part of a secret
    /// (of 6 bytes or more) is left in what a call or a failure shows.
    #[test]
    fn no_part_of_a_secret_survives_the_limits() {
        let secret = "Q1w2E3r4T5y6U7i8O9p0AsdfghjklZ";
        let leaks = |text: &str| (0..=secret.len() - 6).find(|&at| text.contains(&secret[at..at + 6]));
        for before in (0..STDERR_KEPT_BYTES + 40).step_by(7) {
            for piece in [1, 5, 4096] {
                let stderr = ServerStderr {
                    secrets: vec![secret.into()],
                    slack: secret.len(),
                    ..ServerStderr::default()
                };
                let written = format!(
                    "{}{secret}{}{secret}-{secret}",
                    "-".repeat(before),
                    "x".repeat(before % 300)
                );
                // A third before the call, the rest during it.
                let (before_call, during_call) = written.split_at(written.len() / 3);
                let write = |text: &str| {
                    for chunk in text.as_bytes().chunks(piece) {
                        stderr.log().push(chunk, stderr.slack);
                    }
                };
                write(before_call);
                stderr.begin_call();
                write(during_call);
                for text in [stderr.call_text(), stderr.tail_text()] {
                    assert_eq!(leaks(&text), None, "before {before}, pieces of {piece}: {text}");
                }
            }
        }
    }
}
