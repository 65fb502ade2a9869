//! Idempotency keys: a sender that retries an event under the key it first sent it with gets
//! the first event's entry back instead of a second ingress. The key is journaled in the
//! ingress's source (`<source> idempotency-key:<key>`), so the keys of the last
//! [`KEY_WINDOW_MS`] survive a restart: the service reads them back from the journal's tail
//! when it starts. Keys are per source (a token's events and another's never collide), and a
//! key reused for a different agent or event is refused.

use crate::journal::entry::{Digest, EntryBody, Ingress, sha256};
use crate::journal::{Journal, JournalError};
use std::collections::{HashMap, VecDeque};

/// How long a key is remembered, by the logical time of its event: a day.
pub const KEY_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// Longest key accepted, in bytes.
pub const KEY_BYTES_MAX: usize = 200;

const MARK: &str = " idempotency-key:";

/// Entries read at a time while looking back through the journal for keys.
const SCAN_CHUNK: u64 = 4096;

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyError {
    #[error("the idempotency key is empty")]
    Empty,
    #[error("the idempotency key is {0} bytes long; at most {KEY_BYTES_MAX} are accepted")]
    TooLong(usize),
    #[error("the idempotency key may hold only visible ASCII characters (no spaces or control characters)")]
    Characters,
}

/// Check a key as a sender gave it.
pub fn check_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(KeyError::TooLong(key.len()));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyError::Characters);
    }
    Ok(())
}

/// The source an ingress sent under `key` is journaled with.
pub fn source_with_key(source: &str, key: &str) -> String {
    format!("{source}{MARK}{key}")
}

/// The source and key an ingress was sent under, if it was sent under one.
pub fn key_of(source: &str) -> Option<(&str, &str)> {
    source.rsplit_once(MARK)
}

/// The event a key was first used for.
#[derive(Debug, Clone, PartialEq)]
pub struct Remembered {
    pub seq: u64,
    pub agent: String,
    /// sha256 of its canonical WAVE text, as journaled.
    pub event: Digest,
    pub at_ms: u64,
}

/// A key as remembered: with the source that used it.
type Scoped = (String, String);

/// The keys of the last [`KEY_WINDOW_MS`].
#[derive(Debug, Default)]
pub struct IdempotencyKeys {
    by_key: HashMap<Scoped, Remembered>,
    /// Keys in the order they were first used (their events' logical times never decrease).
    order: VecDeque<Scoped>,
}

impl IdempotencyKeys {
    /// The keys of the ingresses of the last [`KEY_WINDOW_MS`] before `now_ms`, read from the
    /// journal's committed tail.
    pub fn recover(journal: &Journal, now_ms: u64) -> Result<IdempotencyKeys, JournalError> {
        let cutoff = now_ms.saturating_sub(KEY_WINDOW_MS);
        let mut found = Vec::new();
        let mut end = journal.len();
        'scan: while end > 0 {
            let start = end.saturating_sub(SCAN_CHUNK);
            for entry in journal.entries_in(start..end)?.into_iter().rev() {
                if let EntryBody::Ingress(ingress) = entry.body {
                    if ingress.at_ms < cutoff {
                        break 'scan;
                    }
                    if key_of(&ingress.source).is_some() {
                        found.push((entry.seq, ingress));
                    }
                }
            }
            end = start;
        }
        let mut keys = IdempotencyKeys::default();
        for (seq, ingress) in found.into_iter().rev() {
            keys.remember_ingress(seq, &ingress);
        }
        Ok(keys)
    }

    /// What `source` first sent under `key`.
    pub fn get(&self, source: &str, key: &str) -> Option<&Remembered> {
        self.by_key.get(&(source.to_string(), key.to_string()))
    }

    /// Remember the key of ingress `seq`, if it was sent under one.
    pub fn remember_ingress(&mut self, seq: u64, ingress: &Ingress) {
        let Some((source, key)) = key_of(&ingress.source) else {
            return;
        };
        let remembered = Remembered {
            seq,
            agent: ingress.agent.clone(),
            event: sha256(ingress.event.as_bytes()),
            at_ms: ingress.at_ms,
        };
        let scoped = (source.to_string(), key.to_string());
        if self.by_key.insert(scoped.clone(), remembered).is_none() {
            self.order.push_back(scoped);
        }
    }

    /// Forget the keys whose events are older than the window before `now_ms`.
    pub fn forget_before(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(KEY_WINDOW_MS);
        while let Some(oldest) = self.order.front() {
            if self.by_key.get(oldest).is_some_and(|r| r.at_ms >= cutoff) {
                break;
            }
            let oldest = self.order.pop_front().expect("a front key");
            self.by_key.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(source: &str, at_ms: u64) -> Ingress {
        Ingress {
            agent: "counter".into(),
            event: "increment(1)".into(),
            at_ms,
            source: source.into(),
        }
    }

    #[test]
    fn a_key_is_read_back_from_the_source_it_was_journaled_with() {
        let source = source_with_key("http:ops", "hook-7/a b");
        assert_eq!(key_of(&source), Some(("http:ops", "hook-7/a b")));
        assert_eq!(key_of("http:ops"), None);
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(check_key(""), Err(KeyError::Empty));
        assert_eq!(check_key("a b"), Err(KeyError::Characters));
        assert_eq!(check_key("a\u{7f}"), Err(KeyError::Characters));
        assert_eq!(check_key("é"), Err(KeyError::Characters));
        assert_eq!(
            check_key(&"k".repeat(KEY_BYTES_MAX + 1)),
            Err(KeyError::TooLong(KEY_BYTES_MAX + 1))
        );
        assert_eq!(check_key("order-42:retry"), Ok(()));
    }

    #[test]
    fn keys_older_than_the_window_are_forgotten_and_others_kept() {
        let mut keys = IdempotencyKeys::default();
        keys.remember_ingress(1, &ingress(&source_with_key("http", "old"), 1_000));
        keys.remember_ingress(2, &ingress("http", 2_000));
        keys.remember_ingress(3, &ingress(&source_with_key("http", "new"), 5_000));
        assert_eq!(keys.len(), 2);
        keys.forget_before(KEY_WINDOW_MS + 4_000);
        assert!(keys.get("http", "old").is_none());
        assert_eq!(keys.get("http", "new").map(|r| r.seq), Some(3));
        assert!(keys.get("http:another", "new").is_none(), "keys are per source");
    }
}
