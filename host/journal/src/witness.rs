//! The host's own record of how far it has signed a journal, kept outside the world directory
//! (in the user's state directory, one small file per journal path), so that the host that
//! wrote a journal refuses it when it has been cut back to an earlier checkpoint (to have
//! effects made again) or stripped of its checkpoints and relabelled as an older format (to
//! have the host sign a rewritten history). Signatures alone cannot tell: every earlier
//! checkpoint is as genuine as the last.
//!
//! The record is written after each commit without a sync — made whole by rename the first
//! time, then overwritten in place at a fixed length, one write per commit: after a power cut it
//! may lag behind the journal (which is then taken as extending it), never lead. It names the
//! world and the key that signed, so a journal relabelled as another world, or signed by a key
//! the recorded one did not hand over to, is refused too. A journal at a path the host has no
//! record of (a world copied or moved here) is taken as it is. Records are never removed by the
//! host: one whose journal is gone costs a few hundred bytes, and one removed while its world was
//! out of sight would let that world come back cut.

use crate::entry::Digest;
use std::path::{Path, PathBuf};

/// What the host signed last: checkpoint entry #`checkpoint` of world `world_id`, whose entry
/// hash is `hash`, with the host key whose public half is `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    pub world_id: [u8; 16],
    pub checkpoint: u64,
    pub hash: Digest,
    pub key: [u8; 32],
}

/// The file's content.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    world: String,
    checkpoint: u64,
    hash: String,
    key: String,
    journal: String,
}

/// Why the record of a journal cannot be consulted.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("cannot resolve its path to find this host's record of it: {0}")]
    Path(std::io::Error),
    #[error("this host's record of it, {0}, cannot be read or does not parse; remove it to take the journal as it is")]
    Unreadable(PathBuf),
}

/// Where the record of one journal lives.
#[derive(Debug)]
pub struct Witness {
    file: PathBuf,
    journal: PathBuf,
    /// The record, open for overwriting once this host has written it whole.
    written: Option<std::fs::File>,
}

impl Witness {
    /// The record of the journal at `journal` (an existing file, just opened: a path that no
    /// longer resolves is an error, not a journal without a record). `None` when the user has
    /// no state directory to keep it in.
    pub fn of(journal: &Path) -> Result<Option<Witness>, WitnessError> {
        let Some(dir) = crate::private::user_state(&["signed"]) else {
            return Ok(None);
        };
        let journal = std::fs::canonicalize(journal).map_err(WitnessError::Path)?;
        let name = hex::encode(&crate::entry::sha256(journal.as_os_str().as_encoded_bytes())[..16]);
        Ok(Some(Witness {
            file: dir.join(name),
            journal,
            written: None,
        }))
    }

    /// The file the record is kept in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The last checkpoint recorded, if there is a record.
    pub fn last(&self) -> Result<Option<Signed>, WitnessError> {
        let bytes = match crate::private::read_at_most(&self.file, 64 * 1024) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(_) => return Err(WitnessError::Unreadable(self.file.clone())),
        };
        let unreadable = || WitnessError::Unreadable(self.file.clone());
        let record: Record = serde_json::from_slice(&bytes).map_err(|_| unreadable())?;
        if record.journal != self.journal.to_string_lossy() {
            // Two paths whose digests collide in 128 bits: not a record of this journal.
            return Ok(None);
        }
        let decode = |text: &str| hex::decode(text).ok();
        Ok(Some(Signed {
            world_id: decode(&record.world)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(unreadable)?,
            checkpoint: record.checkpoint,
            hash: decode(&record.hash)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(unreadable)?,
            key: decode(&record.key)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(unreadable)?,
        }))
    }

    /// Record `signed` as the last checkpoint.
    pub fn record(&mut self, signed: &Signed) -> Result<(), crate::private::PrivateError> {
        let record = |checkpoint| Record {
            world: hex::encode(signed.world_id),
            checkpoint,
            hash: hex::encode(signed.hash),
            key: hex::encode(signed.key),
            journal: self.journal.to_string_lossy().into_owned(),
        };
        let encode = |record: &Record| serde_json::to_vec(record).expect("a record always encodes");
        // Every record of this journal is as long as the longest one can be (JSON allows the
        // trailing spaces), so overwriting one never leaves a tail of the last.
        let mut bytes = encode(&record(signed.checkpoint));
        bytes.resize(encode(&record(u64::MAX)).len(), b' ');
        if let Some(file) = &self.written {
            use std::os::unix::fs::FileExt as _;
            return file
                .write_all_at(&bytes, 0)
                .map_err(|source| crate::private::PrivateError::Io {
                    path: self.file.display().to_string(),
                    source,
                });
        }
        crate::private::replace(&self.file, &bytes)?;
        self.written = Some(crate::private::open_to_overwrite(&self.file)?);
        Ok(())
    }
}
