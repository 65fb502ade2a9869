//! The `blob` effect's adapter: content-addressed bytes in the world's journal.
//!
//! Blobs live in the journal's blob table under their sha256, written in the same transaction
//! as the receipt that records them; digests are spelled `sha256:<64 hex digits>`.

use super::{EffectFailure, EffectOutcome, EffectResponse};
use crate::journal::Journal;
use crate::receipts::Usage;

/// Largest blob any grant may allow in one call.
pub const BLOB_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Parse `sha256:<hex>`.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex_digits = text.strip_prefix("sha256:")?;
    hex::decode(hex_digits).ok()?.try_into().ok()
}

/// Store the bytes of a put.
pub fn put(journal: &mut Journal, contents: &[u8]) -> (EffectOutcome, Usage) {
    let digest = journal.put_blob(contents);
    let usage = Usage {
        bytes_sent: contents.len() as u64,
        ..Usage::default()
    };
    (
        Ok(EffectResponse::Digest(format!("sha256:{}", hex::encode(digest)))),
        usage,
    )
}

/// The stored bytes a get names, looked up before the grant is decided (the size limit
/// applies to them).
pub fn lookup(journal: &Journal, digest: &str) -> Result<Vec<u8>, EffectFailure> {
    let Some(key) = parse_digest(digest) else {
        return Err(EffectFailure::Failed(format!(
            "`{digest}` is not a blob digest (sha256:<64 hex digits>)"
        )));
    };
    match journal.blob(&key) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(EffectFailure::Failed(format!("blob {digest} not found"))),
        Err(e) => Err(EffectFailure::Failed(format!("blob store: {e}"))),
    }
}

/// Answer a get with the bytes looked up.
pub fn got(bytes: Vec<u8>) -> (EffectOutcome, Usage) {
    let usage = Usage {
        bytes_received: bytes.len() as u64,
        ..Usage::default()
    };
    (Ok(EffectResponse::Bytes(bytes)), usage)
}
