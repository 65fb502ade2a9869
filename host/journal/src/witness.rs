//! The host's own record of how far it has signed a journal, kept outside the world directory
//! (in the user's state directory, one small file per journal path), so that the host that
//! wrote a journal refuses it when it has been cut back to an earlier checkpoint (to have
//! effects made again) or stripped of its checkpoints and relabelled as an older format (to
//! have the host sign a rewritten history). Signatures alone cannot tell: every earlier
//! checkpoint is as genuine as the last.
//!
//! The record is written after each commit without a sync — made whole by rename the first
//! time, then overwritten in place at a fixed length, one write per commit: after a power cut it
//! may lag behind the journal (which is then taken as extending it), never lead. A journal at a
//! path the host has no record of (a world copied or moved here) is taken as it is; so is one
//! whose record does not parse.

use crate::entry::Digest;
use std::path::{Path, PathBuf};

/// What the host signed last: checkpoint entry #`checkpoint` of world `world_id`, whose entry
/// hash is `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    pub world_id: [u8; 16],
    pub checkpoint: u64,
    pub hash: Digest,
}

/// The file's content.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    world: String,
    checkpoint: u64,
    hash: String,
    journal: String,
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
    /// The record of the journal at `journal` (an existing file). `None` when the user has no
    /// state directory to keep it in.
    pub fn of(journal: &Path) -> Option<Witness> {
        let journal = std::fs::canonicalize(journal).ok()?;
        let dir = crate::private::user_state(&["signed"])?;
        let name = hex::encode(&crate::entry::sha256(journal.as_os_str().as_encoded_bytes())[..16]);
        Some(Witness {
            file: dir.join(name),
            journal,
            written: None,
        })
    }

    /// The file the record is kept in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The last checkpoint recorded, if any (a record that does not parse is none).
    pub fn last(&self) -> Option<Signed> {
        let record: Record = serde_json::from_slice(&crate::private::read(&self.file).ok()?).ok()?;
        if record.journal != self.journal.to_string_lossy() {
            return None;
        }
        Some(Signed {
            world_id: hex::decode(record.world).ok()?.try_into().ok()?,
            checkpoint: record.checkpoint,
            hash: hex::decode(record.hash).ok()?.try_into().ok()?,
        })
    }

    /// Record `signed` as the last checkpoint. The first record of a journal also clears
    /// records of journals that no longer exist.
    pub fn record(&mut self, signed: &Signed) -> Result<(), crate::private::PrivateError> {
        let record = |checkpoint| Record {
            world: hex::encode(signed.world_id),
            checkpoint,
            hash: hex::encode(signed.hash),
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
        if !self.file.exists() {
            self.forget_vanished();
        }
        crate::private::replace(&self.file, &bytes)?;
        self.written = Some(crate::private::open_to_overwrite(&self.file)?);
        Ok(())
    }

    fn forget_vanished(&self) {
        let Some(dir) = self.file.parent() else { return };
        let Ok(records) = std::fs::read_dir(dir) else { return };
        for record in records.flatten() {
            let vanished = crate::private::read(&record.path())
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
                .map(|record| !Path::new(&record.journal).exists());
            if vanished == Some(true) {
                let _ = std::fs::remove_file(record.path());
            }
        }
    }
}
