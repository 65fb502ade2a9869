//! `agentos-journal`: a world's journal and everything needed to check one — what an auditor
//! builds alone, without wasmtime, an HTTP client or an async runtime.
//!
//! The journal is an append-only, hash-chained log of entries in one redb file. It owns the redb
//! tables (see [`tables`]), assigns sequence numbers, chains hashes and batches appends: entries
//! and blobs are buffered by [`Journal::append`] / [`Journal::put_blob`] and written in one
//! fsynced transaction by [`Journal::commit`]. An entry may be appended before its body is
//! finished ([`Journal::append_deferred`], for receipts still being signed): its seq is fixed at
//! once, its bytes and hash when the batch is sealed. Every commit that adds entries ends with a
//! checkpoint signed by the host key: the journal log over every entry before it and the receipt
//! log (see [`transparency`]). The journal knows nothing of wasm or effects; it stores what it is
//! given and checks its own invariants.
//!
//! Beside it: entry bodies ([`entry`]), the governance ledger folded from them ([`ledger`]),
//! receipts and the host key ([`receipts`]), key rotations ([`rotation`]), the transparency
//! logs and checkpoints ([`transparency`]), proofs a verifier checks offline ([`proofs`]), the
//! stepper's state as snapshots store it ([`stepper`]), the host's record of how far it signed
//! each journal ([`witness`]), private files ([`private`]), text safe to show ([`text`]) and
//! [`verify`], which checks a whole journal relative to what the verifier trusts.

pub mod entry;
pub mod ledger;
pub mod private;
pub mod proofs;
pub mod receipts;
pub mod rotation;
pub mod stepper;
pub mod tables;
pub mod text;
pub mod transparency;
pub mod verify;
pub mod witness;

use crate::receipts::HostKey;
use crate::transparency::{Frontier, JournalState, SignedCheckpoint, receipt_leaf};
use ed25519_dalek::VerifyingKey;
use entry::{Digest, Entry, EntryBody, FORMAT_VERSION, OLDEST_READABLE_FORMAT, entry_hash, sha256};
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tables::{
    BLOBS, JOURNAL, META, META_BUNDLE, META_FORMAT_VERSION, META_HEAD, META_LATEST_SNAPSHOT, META_MANIFEST_CHANGES,
    META_ROTATED_KEYS,
};

/// Operating errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the world journal {path} is open in another process; stop it or wait for it to finish")]
    Locked { path: PathBuf },
    // The causes below are part of the message, not linked as sources, so a chain printer
    // (the CLI's `{:#}`) shows each once.
    #[error("journal {path}: {error}")]
    Storage { path: PathBuf, error: redb::Error },
    #[error(
        "journal {path} has format version {found}, this host reads versions \
         {OLDEST_READABLE_FORMAT} to {FORMAT_VERSION}; use a host release that reads version {found}"
    )]
    Version { path: PathBuf, found: u32 },
    #[error(
        "journal {path} cannot be trusted to write to: {reason}; nothing was changed (`agentos-host verify` \
         names what was altered)"
    )]
    Unauthentic { path: PathBuf, reason: String },
    #[error("journal {path}: blob sha256:{digest} no longer matches its digest (its bytes were altered)")]
    BlobAltered { path: PathBuf, digest: String },
    #[error(
        "journal {path}: committed, but the host's record of how far it signed the journal could not be \
         written: {error}"
    )]
    Witness {
        path: PathBuf,
        error: crate::private::PrivateError,
    },
    #[error("journal {path}: entry #{seq} is missing (entries were removed)")]
    Missing { path: PathBuf, seq: u64 },
    #[error("journal {path}: entry #{seq} does not decode: {error}")]
    Decode {
        path: PathBuf,
        seq: u64,
        error: postcard::Error,
    },
}

/// An appended entry body: finished, or finished by a closure when the batch is sealed.
enum PendingBody {
    Ready(EntryBody),
    Deferred(Box<dyn FnOnce() -> EntryBody + Send>),
}

/// An open world journal (holds the file lock for as long as it lives).
pub struct Journal {
    db: Arc<Database>,
    path: PathBuf,
    next_seq: u64,
    last_hash: Digest,
    /// Appended since the last seal, in seq order; `last_hash` chains up to the sealed ones.
    pending: Vec<(u64, PendingBody)>,
    /// Encoded and chained, waiting to be written.
    sealed: Vec<(u64, Vec<u8>, Digest)>,
    pending_blobs: HashMap<Digest, Vec<u8>>,
    /// The logs every checkpoint signs, as of the sealed entries: every entry's hash, and every
    /// receipt's leaf. Known only once the journal is open for appends.
    entry_log: Frontier,
    receipt_log: Frontier,
    /// The hash of entry #0, and the entry that put the manifest in force with its hash (`None`:
    /// genesis), as the next checkpoint states them.
    genesis_hash: Option<Digest>,
    configuration: Option<(u64, Digest)>,
    /// Entries a writer did not check when it opened (those before the first it reads), and
    /// the journal log's right edge after them, which the checks proved the last checkpoint
    /// grew from ([`Journal::check_history`]).
    unchecked: Option<(u64, Frontier)>,
    /// Seq of the last snapshot entry, sealed entries included.
    latest_snapshot: Option<u64>,
    /// Public keys put in force by key-rotation entries, sealed entries included.
    rotated_keys: Vec<[u8; 32]>,
    /// Entry numbers of manifest-applied entries, sealed entries included.
    manifest_changes: Vec<u64>,
    /// Who signs the checkpoint that ends each commit; set only once the journal's end has been
    /// checked ([`Journal::open_for_appends`]).
    checkpoint_signer: Option<([u8; 16], Arc<HostKey>)>,
    /// The host's record of the last checkpoint it signed here (see [`witness`]).
    witness: Option<witness::Witness>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl Journal {
    /// Open (or create) the journal file at `path`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let storage = |source: redb::Error| JournalError::Storage {
            path: path.to_path_buf(),
            error: source,
        };
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(JournalError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(storage(e.into())),
        };
        let mut journal = Journal {
            db: Arc::new(db),
            path: path.to_path_buf(),
            next_seq: 0,
            last_hash: [0; 32],
            pending: Vec::new(),
            sealed: Vec::new(),
            pending_blobs: HashMap::new(),
            entry_log: Frontier::default(),
            receipt_log: Frontier::default(),
            genesis_hash: None,
            configuration: None,
            unchecked: None,
            latest_snapshot: None,
            rotated_keys: Vec::new(),
            manifest_changes: Vec::new(),
            checkpoint_signer: None,
            witness: None,
        };
        let txn = journal.db.begin_write().map_err(|e| storage(e.into()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| storage(e.into()))?;
            let version = meta
                .get(META_FORMAT_VERSION)
                .map_err(|e| storage(e.into()))?
                .map(|v| v.value().to_vec());
            let found = version.map(|bytes| u32::from_le_bytes(bytes.as_slice().try_into().unwrap_or([0xff; 4])));
            match found {
                Some(found) if !(OLDEST_READABLE_FORMAT..=FORMAT_VERSION).contains(&found) => {
                    return Err(JournalError::Version {
                        path: path.to_path_buf(),
                        found,
                    });
                }
                Some(FORMAT_VERSION) => {}
                // New, or older and upgraded in place: later formats only add entry kinds, variants
                // and meta keys.
                _ => {
                    meta.insert(META_FORMAT_VERSION, FORMAT_VERSION.to_le_bytes().as_slice())
                        .map_err(|e| storage(e.into()))?;
                }
            }
            txn.open_table(JOURNAL).map_err(|e| storage(e.into()))?;
            txn.open_table(BLOBS).map_err(|e| storage(e.into()))?;
        }
        txn.commit().map_err(|e| storage(e.into()))?;
        // Where the entries end is read from the entries, not from `meta`.
        if let Some((seq, stored)) = journal.last_stored()? {
            journal.next_seq = seq + 1;
            journal.last_hash = entry_hash(&stored);
        }
        journal.latest_snapshot = journal
            .meta(META_LATEST_SNAPSHOT)?
            .and_then(|bytes| bytes.try_into().ok().map(u64::from_le_bytes));
        journal.rotated_keys = journal
            .meta(META_ROTATED_KEYS)?
            .and_then(|bytes| postcard::from_bytes(&bytes).ok())
            .unwrap_or_default();
        journal.manifest_changes = journal
            .meta(META_MANIFEST_CHANGES)?
            .and_then(|bytes| postcard::from_bytes(&bytes).ok())
            .unwrap_or_default();
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read-only view of what is committed now, over the same open file: for readers beside
    /// the writer (a server's handlers), which then read without holding up its appends and
    /// commits. redb gives each read its own snapshot. The view must not be appended to.
    pub fn read_view(&self) -> Journal {
        let uncommitted = (self.pending.len() + self.sealed.len()) as u64;
        Journal {
            db: self.db.clone(),
            path: self.path.clone(),
            next_seq: self.next_seq - uncommitted,
            last_hash: self.last_hash,
            pending: Vec::new(),
            sealed: Vec::new(),
            pending_blobs: HashMap::new(),
            entry_log: self.entry_log.clone(),
            receipt_log: self.receipt_log.clone(),
            genesis_hash: self.genesis_hash,
            configuration: self.configuration,
            unchecked: self.unchecked.clone(),
            latest_snapshot: self.latest_snapshot,
            rotated_keys: self.rotated_keys.clone(),
            manifest_changes: self.manifest_changes.clone(),
            checkpoint_signer: None,
            witness: None,
        }
    }

    fn storage_error(&self, source: impl Into<redb::Error>) -> JournalError {
        JournalError::Storage {
            path: self.path.clone(),
            error: source.into(),
        }
    }

    /// The last committed entry's sequence number and hash, as recorded in `meta`.
    pub fn stored_head(&self) -> Result<Option<(u64, Digest)>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let meta = txn.open_table(META).map_err(|e| self.storage_error(e))?;
        let Some(head) = meta.get(META_HEAD).map_err(|e| self.storage_error(e))? else {
            return Ok(None);
        };
        let bytes = head.value();
        if bytes.len() != 40 {
            return Ok(None);
        }
        let seq = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let hash: Digest = bytes[8..].try_into().expect("32 bytes");
        Ok(Some((seq, hash)))
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let meta = txn.open_table(META).map_err(|e| self.storage_error(e))?;
        Ok(meta
            .get(key)
            .map_err(|e| self.storage_error(e))?
            .map(|v| v.value().to_vec()))
    }

    /// The last stored entry, with its seq.
    fn last_stored(&self) -> Result<Option<(u64, Vec<u8>)>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(JOURNAL).map_err(|e| self.storage_error(e))?;
        Ok(table
            .last()
            .map_err(|e| self.storage_error(e))?
            .map(|(seq, bytes)| (seq.value(), bytes.value().to_vec())))
    }

    /// The stored bytes of the entries `range`, in order.
    fn raw_range(&self, range: std::ops::Range<u64>) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(JOURNAL).map_err(|e| self.storage_error(e))?;
        let mut out = Vec::new();
        for row in table.range(range).map_err(|e| self.storage_error(e))? {
            let (seq, bytes) = row.map_err(|e| self.storage_error(e))?;
            out.push((seq.value(), bytes.value().to_vec()));
        }
        Ok(out)
    }

    fn decode_stored(&self, seq: u64, stored: &[u8]) -> Result<Entry, JournalError> {
        Entry::decode(stored).map_err(|source| JournalError::Decode {
            path: self.path.clone(),
            seq,
            error: source,
        })
    }

    fn unauthentic(&self, reason: String) -> JournalError {
        JournalError::Unauthentic {
            path: self.path.clone(),
            reason,
        }
    }

    /// The checkpoint the journal ends with, checked: for `world_id`, signed by `key` (the host
    /// key in force), over every entry before it, its logs' right edges those of its signed
    /// roots, and genesis the entry it names. `None`: a journal of format 4 or earlier that no
    /// format-5 checkpoint has signed yet. Refuses a journal whose last entries no checkpoint
    /// signs.
    pub fn signed_end(&self, world_id: [u8; 16], key: &VerifyingKey) -> Result<Option<SignedCheckpoint>, JournalError> {
        let Some((last, stored)) = self.last_stored()? else {
            return Ok(None);
        };
        if let EntryBody::Checkpoint(end) = self.decode_stored(last, &stored)?.body {
            if end.body.world_id != world_id || end.body.entries != last {
                return Err(self.unauthentic(format!(
                    "its last entry, checkpoint #{last}, is not this world's checkpoint of the entries before it"
                )));
            }
            end.verify(key).map_err(|e| {
                self.unauthentic(format!(
                    "its last checkpoint (#{last}) is not signed by the host key in force: {e}"
                ))
            })?;
            if end.entry_frontier().is_none() || end.receipt_frontier().is_none() {
                return Err(self.unauthentic(format!("checkpoint #{last} carries logs other than the ones it signs")));
            }
            let genesis = self.raw_range(0..1)?;
            if genesis.first().map(|(_, bytes)| entry_hash(bytes)) != Some(end.body.genesis) {
                return Err(self.unauthentic(format!(
                    "entry #0 is not the genesis checkpoint #{last} signs: the world's origin was changed"
                )));
            }
            return Ok(Some(end));
        }
        // Unsigned entries at the end: written by a host that signed none (format 4 or earlier),
        // or added by someone else.
        let mut signed = None;
        let mut genesis_format = FORMAT_VERSION;
        // A receipt only a host that signs every entry writes, in a journal that claims to be
        // older and holds no checkpoint: relabelled, its checkpoints removed.
        let mut newer_receipt = None;
        for (seq, bytes) in self.raw_entries()? {
            match self.decode_stored(seq, &bytes)?.body {
                EntryBody::Checkpoint(_) => signed = Some(seq),
                EntryBody::Genesis(genesis) => genesis_format = genesis.format_version,
                EntryBody::EffectReceipt(r) if r.receipt.body.version >= crate::receipts::RECEIPT_VERSION => {
                    newer_receipt.get_or_insert(seq);
                }
                _ => {}
            }
        }
        match signed {
            None if let Some(receipt) = newer_receipt => Err(self.unauthentic(format!(
                "its receipt #{receipt} was written by a host that checkpoints every commit, yet it holds no \
                 checkpoint: it was relabelled as an older format and its checkpoints removed"
            ))),
            None if genesis_format < entry::SIGNED_JOURNAL_FORMAT => Ok(None),
            _ => {
                let first = signed.map_or(0, |at| at + 1);
                let which = match first == last {
                    true => format!("its entry #{last} comes"),
                    false => format!("its entries #{first} to #{last} come"),
                };
                Err(self.unauthentic(format!(
                    "{which} after its last checkpoint, and no signature covers them"
                )))
            }
        }
    }

    /// Accept appends signed by `key` (the host key in force) for world `world_id`, after
    /// checking what the journal holds: every entry from the last checkpoint at or before
    /// entry `from` to `end` (see [`Journal::signed_end`]) must hash into the root `end` signs —
    /// the caller reads nothing before `from` but genesis, which `end` names — and the logs go
    /// on from `end`'s right edges, never from a cache. A journal of format 4 or earlier
    /// (`end` = `None`) is taken as its format allows (receipts signed, the rest hash-chained):
    /// its logs are rebuilt from every entry, and its next commit signs them all. Either way,
    /// the journal must reach the last checkpoint this host recorded signing here.
    pub fn open_for_appends(
        &mut self,
        end: Option<&SignedCheckpoint>,
        from: u64,
        world_id: [u8; 16],
        key: Arc<HostKey>,
    ) -> Result<(), JournalError> {
        let witness = witness::Witness::of(&self.path).map_err(|e| self.unauthentic(e.to_string()))?;
        if let Some(witness) = &witness
            && let Some(signed) = witness.last().map_err(|e| self.unauthentic(e.to_string()))?
        {
            self.check_reaches(end, &signed, world_id, &key.public())
                .map_err(|e| match e {
                    JournalError::Unauthentic { path, reason } => JournalError::Unauthentic {
                        path,
                        reason: format!(
                            "{reason}; if it is a copy restored on purpose, remove {} to take it as it is",
                            witness.file().display()
                        ),
                    },
                    other => other,
                })?;
        }
        match end {
            Some(end) => self.authenticate_from(end, from)?,
            None => self.rebuild_logs()?,
        }
        self.checkpoint_signer = Some((world_id, key));
        self.witness = witness;
        Ok(())
    }

    /// Whether the journal is the one this host signed last here: the same world, holding at or
    /// before its end the checkpoint it signed, and signed now by that checkpoint's key or one
    /// the journal's rotations hand over to from it.
    fn check_reaches(
        &self,
        end: Option<&SignedCheckpoint>,
        signed: &witness::Signed,
        world_id: [u8; 16],
        key_in_force: &VerifyingKey,
    ) -> Result<(), JournalError> {
        let at = signed.checkpoint;
        if signed.world_id != world_id {
            return Err(self.unauthentic(format!(
                "this host last signed world {} here, and this journal names world {}: it was replaced",
                hex::encode(signed.world_id),
                hex::encode(world_id)
            )));
        }
        let Some(end) = end else {
            return Err(self.unauthentic(format!(
                "this host signed it up to checkpoint #{at}, but it holds no checkpoint now: its checkpoints were \
                 removed"
            )));
        };
        if end.body.entries < at {
            return Err(self.unauthentic(format!(
                "it ends with checkpoint #{}, but this host signed it up to checkpoint #{at}: it was cut back \
                 (and what was journaled since would be done again)",
                end.body.entries
            )));
        }
        match self.raw_range(at..at + 1)?.first() {
            Some((_, bytes)) if entry_hash(bytes) == signed.hash => {}
            _ => {
                return Err(self.unauthentic(format!(
                    "its entry #{at} is not the checkpoint this host signed there: its history was replaced"
                )));
            }
        }
        if signed.key != key_in_force.to_bytes() {
            // Only a rotation after that checkpoint, signed by its key, hands over to another.
            let mut in_force = VerifyingKey::from_bytes(&signed.key).map_err(|e| self.unauthentic(e.to_string()))?;
            for (seq, bytes) in self.raw_range(at + 1..end.body.entries)? {
                if let Ok(Entry {
                    body: EntryBody::KeyRotation(rotation),
                    ..
                }) = Entry::decode(&bytes)
                {
                    in_force = rotation.verify(&in_force).map_err(|reason| {
                        self.unauthentic(format!(
                            "its key rotation at entry #{seq} does not hand over from the key this host signed \
                             with: {reason}"
                        ))
                    })?;
                }
            }
            if in_force != *key_in_force {
                return Err(self.unauthentic(format!(
                    "this host signed it up to checkpoint #{at} with key {}, and no rotation since hands over to \
                     the key it is signed with now: its key was replaced",
                    hex::encode(signed.key)
                )));
            }
        }
        Ok(())
    }

    fn authenticate_from(&mut self, end: &SignedCheckpoint, from: u64) -> Result<(), JournalError> {
        let last = end.body.entries;
        if from == 0 {
            // Every entry is read: the caches are rebuilt from them, then checked like the logs.
            self.rebuild_logs()?;
        }
        // The last checkpoint at or before `from`: its right edge stands for everything before.
        let mut start = from.min(last);
        let mut log = loop {
            if start == 0 {
                break Frontier::default();
            }
            if let Some((_, bytes)) = self.raw_range(start..start + 1)?.first()
                && let EntryBody::Checkpoint(c) = self.decode_stored(start, bytes)?.body
            {
                break c
                    .entry_frontier()
                    .filter(|f| f.size == start)
                    .ok_or_else(|| self.unauthentic(format!("checkpoint #{start} carries a log it does not sign")))?;
            }
            start -= 1;
        };
        self.unchecked = (start > 0).then(|| (start, log.clone()));
        for (_, bytes) in self.raw_range(start..last)? {
            log.push(&entry_hash(&bytes));
        }
        if (log.size, log.root()) != (end.body.entries, end.body.entries_root) {
            return Err(self.unauthentic(format!(
                "entries #{start} to #{} are not what checkpoint #{last} signed",
                last.saturating_sub(1)
            )));
        }
        let cached = self.manifest_changes.last().copied().unwrap_or(0);
        if cached != end.body.configuration {
            return Err(self.unauthentic(format!(
                "its cached manifest changes end at #{cached}, but checkpoint #{last} signs the manifest of #{} as in force",
                end.body.configuration
            )));
        }
        self.check_entry_hash(end.body.configuration, end.body.configuration_hash, last)?;
        let end_bytes = self.raw_range(last..last + 1)?;
        let (_, end_bytes) = end_bytes.first().expect("signed_end read this entry");
        self.entry_log = end.entry_frontier().expect("checked by signed_end");
        self.entry_log.push(&entry_hash(end_bytes));
        self.receipt_log = end.receipt_frontier().expect("checked by signed_end");
        self.genesis_hash = Some(end.body.genesis);
        self.configuration =
            (end.body.configuration > 0).then_some((end.body.configuration, end.body.configuration_hash));
        Ok(())
    }

    /// Check the entries [`Journal::open_for_appends`] left unchecked, for a writer about to act
    /// on the whole history (governance reads every proposal and verdict).
    pub fn check_history(&mut self) -> Result<(), JournalError> {
        let Some((before, edge)) = &self.unchecked else {
            return Ok(());
        };
        let mut log = Frontier::default();
        for (_, bytes) in self.raw_range(0..*before)? {
            log.push(&entry_hash(&bytes));
        }
        if log != *edge {
            return Err(self.unauthentic(format!(
                "entries #0 to #{} are not what its checkpoints signed",
                before - 1
            )));
        }
        self.unchecked = None;
        Ok(())
    }

    /// Check that entry `seq` is the one whose hash checkpoint #`checkpoint` signs, for a
    /// writer that reads it without checking the entries around it.
    pub fn check_entry_hash(&self, seq: u64, expected: Digest, checkpoint: u64) -> Result<(), JournalError> {
        let stored = self.raw_range(seq..seq + 1)?;
        match stored.first() {
            Some((_, bytes)) if entry_hash(bytes) == expected => Ok(()),
            _ => Err(self.unauthentic(format!(
                "entry #{seq} is not the manifest change checkpoint #{checkpoint} signs as in force"
            ))),
        }
    }

    /// The logs and caches of a journal of format 4 or earlier, from every entry.
    fn rebuild_logs(&mut self) -> Result<(), JournalError> {
        let (mut entries, mut receipts) = (Frontier::default(), Frontier::default());
        let (mut snapshot, mut keys, mut changes) = (None, Vec::new(), Vec::new());
        self.configuration = None;
        for (seq, stored) in self.raw_entries()? {
            let hash = entry_hash(&stored);
            entries.push(&hash);
            if seq == 0 {
                self.genesis_hash = Some(hash);
            }
            match self.decode_stored(seq, &stored)?.body {
                EntryBody::EffectReceipt(r) => receipts.push(&receipt_leaf(&r.receipt)),
                EntryBody::Snapshot(_) => snapshot = Some(seq),
                EntryBody::KeyRotation(r) => keys.push(r.body.new_public_key),
                EntryBody::ManifestApplied(_) => {
                    changes.push(seq);
                    self.configuration = Some((seq, hash));
                }
                _ => {}
            }
        }
        (self.entry_log, self.receipt_log) = (entries, receipts);
        (self.latest_snapshot, self.rotated_keys, self.manifest_changes) = (snapshot, keys, changes);
        Ok(())
    }

    /// Accept appends to a journal none of whose entries are committed yet (a new world),
    /// signed by `key`.
    pub fn open_new_for_appends(&mut self, world_id: [u8; 16], key: Arc<HostKey>) {
        assert!(
            self.sealed.is_empty() && self.pending.first().is_none_or(|(seq, _)| *seq == 0),
            "journal {} already holds committed entries",
            self.path.display()
        );
        // Caches an emptied file may still hold describe nothing here.
        (self.latest_snapshot, self.rotated_keys, self.manifest_changes) = (None, Vec::new(), Vec::new());
        self.checkpoint_signer = Some((world_id, key));
        // A new journal that cannot be resolved keeps no record (nothing was signed yet).
        self.witness = witness::Witness::of(&self.path).ok().flatten();
    }

    /// From the next checkpoint on, sign with `key` (after a key rotation hands over to it).
    pub fn hand_over_to(&mut self, key: Arc<HostKey>) {
        let (world_id, _) = self.checkpoint_signer.take().expect("the journal is open for appends");
        self.checkpoint_signer = Some((world_id, key));
    }

    /// Seq of the last snapshot entry, if any (sealed entries included).
    pub fn latest_snapshot(&self) -> Option<u64> {
        self.latest_snapshot
    }

    /// The public key in force: the last one a key rotation introduced, if any.
    pub fn rotated_key(&self) -> Option<[u8; 32]> {
        self.rotated_keys.last().copied()
    }

    /// Entry numbers of the manifest-applied entries (sealed ones included), in order.
    pub fn manifest_changes(&self) -> &[u64] {
        &self.manifest_changes
    }

    /// Number of entries, committed or pending.
    pub fn len(&self) -> u64 {
        self.next_seq
    }

    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }

    /// Buffer an entry; it becomes durable at the next [`Journal::commit`]. Returns its seq.
    pub fn append(&mut self, body: EntryBody) -> u64 {
        self.push(PendingBody::Ready(body))
    }

    /// Buffer an entry whose body `finish` produces when the batch is sealed (it may block, e.g.
    /// on a signature being computed elsewhere). Its seq is fixed now and returned.
    pub fn append_deferred(&mut self, finish: impl FnOnce() -> EntryBody + Send + 'static) -> u64 {
        self.push(PendingBody::Deferred(Box::new(finish)))
    }

    fn push(&mut self, body: PendingBody) -> u64 {
        let seq = self.next_seq;
        self.pending.push((seq, body));
        self.next_seq += 1;
        seq
    }

    /// Finish, encode and chain every buffered entry, in seq order, without writing anything.
    pub fn seal(&mut self) {
        // Finished last to first: deferred bodies come from a FIFO (the receipt signer), so
        // waiting for the last one once leaves every earlier one ready, with no wait of its own.
        let mut finished: Vec<(u64, EntryBody)> = std::mem::take(&mut self.pending)
            .into_iter()
            .rev()
            .map(|(seq, body)| match body {
                PendingBody::Ready(body) => (seq, body),
                PendingBody::Deferred(finish) => (seq, finish()),
            })
            .collect();
        finished.reverse();
        for (seq, body) in finished {
            let entry = Entry {
                seq,
                prev_hash: self.last_hash,
                body,
            };
            let stored = entry.encode();
            let hash = entry_hash(&stored);
            // Pair assertion: what we store decodes to what we meant to store.
            debug_assert_eq!(Entry::decode(&stored).ok().as_ref(), Some(&entry));
            self.entry_log.push(&hash);
            if seq == 0 {
                self.genesis_hash = Some(hash);
            }
            match &entry.body {
                EntryBody::EffectReceipt(r) => self.receipt_log.push(&receipt_leaf(&r.receipt)),
                EntryBody::Snapshot(_) => self.latest_snapshot = Some(seq),
                EntryBody::KeyRotation(r) => self.rotated_keys.push(r.body.new_public_key),
                EntryBody::ManifestApplied(_) => {
                    self.manifest_changes.push(seq);
                    self.configuration = Some((seq, hash));
                }
                _ => {}
            }
            self.sealed.push((seq, stored, hash));
            self.last_hash = hash;
        }
    }

    /// Bytes of blobs buffered for the next commit.
    pub fn pending_blob_bytes(&self) -> u64 {
        self.pending_blobs.values().map(|b| b.len() as u64).sum()
    }

    /// Buffer a blob; returns its sha256.
    pub fn put_blob(&mut self, bytes: &[u8]) -> Digest {
        let digest = sha256(bytes);
        self.pending_blobs.entry(digest).or_insert_with(|| bytes.to_vec());
        digest
    }

    /// Write every buffered entry and blob in one fsynced transaction.
    pub fn commit(&mut self) -> Result<(), JournalError> {
        self.seal();
        assert!(
            self.checkpoint_signer.is_some() || self.sealed.is_empty(),
            "journal {}: entries committed with no key to sign their checkpoint",
            self.path.display()
        );
        if let Some((world_id, key)) = &self.checkpoint_signer
            && !self.sealed.is_empty()
        {
            let genesis = self.genesis_hash.expect("a journal open for appends has its genesis");
            let (configuration, configuration_hash) = self.configuration.unwrap_or((0, genesis));
            let state = JournalState {
                entries: &self.entry_log,
                receipts: &self.receipt_log,
                genesis,
                configuration,
                configuration_hash,
            };
            let checkpoint = SignedCheckpoint::sign(key, *world_id, state);
            assert_eq!(
                checkpoint.body.entries, self.next_seq,
                "a checkpoint covers every entry before it"
            );
            self.append(EntryBody::Checkpoint(checkpoint));
            self.seal();
        }
        if self.sealed.is_empty() && self.pending_blobs.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(|e| self.storage_error(e))?;
        {
            let mut journal = txn.open_table(JOURNAL).map_err(|e| self.storage_error(e))?;
            let mut blobs = txn.open_table(BLOBS).map_err(|e| self.storage_error(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.storage_error(e))?;
            for (digest, bytes) in &self.pending_blobs {
                blobs
                    .insert(digest.as_slice(), bytes.as_slice())
                    .map_err(|e| self.storage_error(e))?;
            }
            for (seq, stored, _) in &self.sealed {
                let previous = journal
                    .insert(*seq, stored.as_slice())
                    .map_err(|e| self.storage_error(e))?;
                assert!(previous.is_none(), "journal entry #{seq} written twice");
            }
            if let Some((seq, _, hash)) = self.sealed.last() {
                let mut head = seq.to_le_bytes().to_vec();
                head.extend_from_slice(hash);
                meta.insert(META_HEAD, head.as_slice())
                    .map_err(|e| self.storage_error(e))?;
            }
            // The caches are written whole on every commit, so that logs rebuilt from the
            // entries replace whatever the file held.
            let keys = postcard::to_allocvec(&self.rotated_keys).expect("keys always encode");
            meta.insert(META_ROTATED_KEYS, keys.as_slice())
                .map_err(|e| self.storage_error(e))?;
            let changes = postcard::to_allocvec(&self.manifest_changes).expect("entry numbers always encode");
            meta.insert(META_MANIFEST_CHANGES, changes.as_slice())
                .map_err(|e| self.storage_error(e))?;
            match self.latest_snapshot {
                Some(seq) => meta
                    .insert(META_LATEST_SNAPSHOT, seq.to_le_bytes().as_slice())
                    .map(drop),
                None => meta.remove(META_LATEST_SNAPSHOT).map(drop),
            }
            .map_err(|e| self.storage_error(e))?;
        }
        txn.commit().map_err(|e| self.storage_error(e))?;
        let end = self.sealed.last().map(|(seq, _, hash)| (*seq, *hash));
        self.sealed.clear();
        self.pending_blobs.clear();
        if let (Some(witness), Some((world_id, key)), Some((checkpoint, hash))) =
            (&mut self.witness, &self.checkpoint_signer, end)
        {
            let signed = witness::Signed {
                world_id: *world_id,
                checkpoint,
                hash,
                key: key.public().to_bytes(),
            };
            witness.record(&signed).map_err(|source| JournalError::Witness {
                path: self.path.clone(),
                error: source,
            })?;
        }
        Ok(())
    }

    /// Every committed entry's stored bytes, in order (for `verify`, which must see raw bytes).
    pub fn raw_entries(&self) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
        self.raw_entries_in(..)
    }

    /// The committed entries of `range` as stored (see [`Journal::raw_entries`]).
    pub fn raw_entries_in(&self, range: impl std::ops::RangeBounds<u64>) -> Result<Vec<(u64, Vec<u8>)>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(JOURNAL).map_err(|e| self.storage_error(e))?;
        let mut out = Vec::new();
        for row in table.range(range).map_err(|e| self.storage_error(e))? {
            let (seq, bytes) = row.map_err(|e| self.storage_error(e))?;
            out.push((seq.value(), bytes.value().to_vec()));
        }
        Ok(out)
    }

    /// The latest committed snapshot entry at or before entry `at`, read backwards from it.
    pub fn snapshot_at_or_before(&self, at: u64) -> Result<Option<u64>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(JOURNAL).map_err(|e| self.storage_error(e))?;
        for row in table.range(..=at).map_err(|e| self.storage_error(e))?.rev() {
            let (seq, bytes) = row.map_err(|e| self.storage_error(e))?;
            let entry = Entry::decode(bytes.value()).map_err(|error| JournalError::Decode {
                path: self.path.clone(),
                seq: seq.value(),
                error,
            })?;
            if matches!(entry.body, EntryBody::Snapshot(_)) {
                return Ok(Some(seq.value()));
            }
        }
        Ok(None)
    }

    /// One committed entry as stored.
    pub fn raw_entry(&self, seq: u64) -> Result<Option<Vec<u8>>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(JOURNAL).map_err(|e| self.storage_error(e))?;
        let bytes = table.get(seq).map_err(|e| self.storage_error(e))?;
        Ok(bytes.map(|bytes| bytes.value().to_vec()))
    }

    /// One committed entry, decoded.
    pub fn entry(&self, seq: u64) -> Result<Option<Entry>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(JOURNAL).map_err(|e| self.storage_error(e))?;
        let Some(bytes) = table.get(seq).map_err(|e| self.storage_error(e))? else {
            return Ok(None);
        };
        Entry::decode(bytes.value())
            .map(Some)
            .map_err(|source| JournalError::Decode {
                path: self.path.clone(),
                seq,
                error: source,
            })
    }

    /// Every committed entry, decoded, in order.
    pub fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        self.entries_from(0)
    }

    /// The entries sealed but not yet committed, decoded, in order (`seal` first to include
    /// everything appended).
    pub fn sealed_entries(&self) -> Vec<Entry> {
        self.sealed
            .iter()
            .map(|(_, stored, _)| Entry::decode(stored).expect("sealed entries decode (asserted when sealed)"))
            .collect()
    }

    /// The committed entries from `first` on, decoded, in order.
    pub fn entries_from(&self, first: u64) -> Result<Vec<Entry>, JournalError> {
        self.entries_in(first..)
    }

    /// The committed entries numbered in `range`, decoded, in order.
    pub fn entries_in(&self, range: impl std::ops::RangeBounds<u64>) -> Result<Vec<Entry>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(JOURNAL).map_err(|e| self.storage_error(e))?;
        let mut out = Vec::new();
        for row in table.range(range).map_err(|e| self.storage_error(e))? {
            let (seq, bytes) = row.map_err(|e| self.storage_error(e))?;
            let entry = Entry::decode(bytes.value()).map_err(|source| JournalError::Decode {
                path: self.path.clone(),
                seq: seq.value(),
                error: source,
            })?;
            out.push(entry);
        }
        Ok(out)
    }

    /// Copy every committed entry and blob and the `meta` table into a new file at `path` (which
    /// must not exist), marked as an audit bundle with `description`. Returns (entries, blobs).
    pub fn export(&self, path: &Path, description: &str) -> Result<(u64, u64), JournalError> {
        let target_error = |source: redb::Error| JournalError::Storage {
            path: path.to_path_buf(),
            error: source,
        };
        if path.exists() {
            return Err(target_error(redb::Error::Io(std::io::ErrorKind::AlreadyExists.into())));
        }
        let copy = || -> Result<(u64, u64), redb::Error> {
            let source = self.db.begin_read()?;
            let target = Database::create(path)?;
            let txn = target.begin_write()?;
            let entries = copy_table(&source, &txn, JOURNAL)?;
            let blobs = copy_table(&source, &txn, BLOBS)?;
            copy_table(&source, &txn, META)?;
            txn.open_table(META)?.insert(META_BUNDLE, description.as_bytes())?;
            txn.commit()?;
            Ok((entries, blobs))
        };
        copy().map_err(target_error)
    }

    /// The description of the audit bundle this journal was exported as, if it is one.
    pub fn bundle_description(&self) -> Result<Option<String>, JournalError> {
        Ok(self
            .meta(META_BUNDLE)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Digests of committed blobs whose bytes no longer hash to their key.
    pub fn mismatched_blobs(&self) -> Result<Vec<Digest>, JournalError> {
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(BLOBS).map_err(|e| self.storage_error(e))?;
        let mut bad = Vec::new();
        for row in table.iter().map_err(|e| self.storage_error(e))? {
            let (key, bytes) = row.map_err(|e| self.storage_error(e))?;
            if sha256(bytes.value()).as_slice() != key.value() {
                bad.push(key.value().try_into().unwrap_or([0; 32]));
            }
        }
        Ok(bad)
    }

    /// A blob by digest (pending blobs included), checked to still have that digest.
    pub fn blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, JournalError> {
        if let Some(bytes) = self.pending_blobs.get(digest) {
            return Ok(Some(bytes.clone()));
        }
        let txn = self.db.begin_read().map_err(|e| self.storage_error(e))?;
        let table = txn.open_table(BLOBS).map_err(|e| self.storage_error(e))?;
        let Some(bytes) = table.get(digest.as_slice()).map_err(|e| self.storage_error(e))? else {
            return Ok(None);
        };
        let bytes = bytes.value().to_vec();
        if sha256(&bytes) != *digest {
            return Err(JournalError::BlobAltered {
                path: self.path.clone(),
                digest: hex::encode(digest),
            });
        }
        Ok(Some(bytes))
    }
}

/// Copy every row of `table` from one transaction to another; returns the number of rows.
fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    table: redb::TableDefinition<K, V>,
) -> Result<u64, redb::Error> {
    let source = from.open_table(table)?;
    let mut target = to.open_table(table)?;
    let mut rows = 0;
    for row in source.iter()? {
        let (key, value) = row?;
        target.insert(key.value(), value.value())?;
        rows += 1;
    }
    Ok(rows)
}

/// The journal as shared by the stepper and the live effect backend (one world, one writer).
pub type SharedJournal = std::sync::Arc<std::sync::Mutex<Journal>>;

/// Payloads up to this size are stored inline in their entry; larger ones in the blob table.
pub const INLINE_PAYLOAD_MAX_BYTES: usize = 1024;

impl Journal {
    /// Store `bytes` as a payload: inline when small, as a blob otherwise.
    pub fn payload(&mut self, bytes: &[u8]) -> entry::Payload {
        if bytes.len() <= INLINE_PAYLOAD_MAX_BYTES {
            entry::Payload::Inline(bytes.to_vec())
        } else {
            entry::Payload::Blob(self.put_blob(bytes))
        }
    }

    /// The bytes of a payload; `None` when its blob is missing.
    pub fn payload_bytes(&self, payload: &entry::Payload) -> Result<Option<Vec<u8>>, JournalError> {
        match payload {
            entry::Payload::Inline(bytes) => Ok(Some(bytes.clone())),
            entry::Payload::Blob(digest) => self.blob(digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entry::{Ingress, Output, Stream};

    fn ingress(n: u64) -> EntryBody {
        EntryBody::Ingress(Ingress {
            agent: "a".into(),
            event: format!("e({n})"),
            at_ms: n,
            source: "test".into(),
        })
    }

    const WORLD: [u8; 16] = [9; 16];

    /// The journal at `path` open for appends signed by `key`, as a writer opens it.
    fn signed_by(path: &Path, key: &Arc<HostKey>) -> Result<Journal, JournalError> {
        let mut journal = Journal::open(path)?;
        match journal.signed_end(WORLD, &key.public())? {
            None if journal.is_empty() => journal.open_new_for_appends(WORLD, key.clone()),
            end => journal.open_for_appends(end.as_ref(), 0, WORLD, key.clone())?,
        }
        Ok(journal)
    }

    #[test]
    fn a_file_that_is_no_journal_is_named_with_its_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.redb");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let Err(error) = Journal::open(&path) else {
            panic!("a file of 0x5a bytes opened as a journal")
        };
        assert!(matches!(error, JournalError::Storage { .. }), "{error:?}");
        let text = crate::text::chain(&error);
        let JournalError::Storage { error: cause, .. } = &error else {
            unreachable!()
        };
        assert_eq!(text.matches(&cause.to_string()).count(), 1, "{text}");
        assert!(text.starts_with(&format!("journal {}: ", path.display())), "{text}");
    }

    /// A journal whose commits are signed by a fresh key.
    fn signed(path: &Path) -> Journal {
        signed_by(path, &Arc::new(HostKey::ephemeral().unwrap())).unwrap()
    }

    fn body(journal: &Journal, seq: u64) -> EntryBody {
        journal.entry(seq).unwrap().unwrap().body
    }

    fn rewrite(path: &Path, seq: u64, body: EntryBody, prev_hash: Digest) {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        let entry = Entry { seq, prev_hash, body };
        txn.open_table(JOURNAL)
            .unwrap()
            .insert(seq, entry.encode().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn a_read_view_sees_what_is_committed_and_reads_beside_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(HostKey::ephemeral().unwrap());
        let mut journal = signed_by(&dir.path().join("j.redb"), &key).unwrap();
        for n in 0..3 {
            journal.append(ingress(n));
        }
        journal.commit().unwrap();
        journal.append(ingress(3));
        let view = journal.read_view();
        assert_eq!(
            view.len(),
            4,
            "three entries and their checkpoint; not the one appended since"
        );
        assert_eq!(view.entries().unwrap().len(), 4);
        // The writer commits while the view is open; the view's next read sees the new entries.
        journal.commit().unwrap();
        assert_eq!(view.entries_in(4..).unwrap().len(), 2);
        assert_eq!(view.entries().unwrap(), journal.entries().unwrap());
    }

    #[test]
    fn appends_chain_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        let key = Arc::new(HostKey::ephemeral().unwrap());
        {
            let mut journal = signed_by(&path, &key).unwrap();
            for n in 0..5 {
                assert_eq!(journal.append(ingress(n)), n);
            }
            let digest = journal.put_blob(b"payload");
            journal.commit().unwrap();
            assert_eq!(journal.blob(&digest).unwrap().as_deref(), Some(&b"payload"[..]));
        }
        let mut journal = signed_by(&path, &key).unwrap();
        assert_eq!(
            journal.len(),
            6,
            "five entries and the checkpoint that ends their commit"
        );
        let seq = journal.append(EntryBody::Output(Output {
            ingress: 0,
            agent: "a".into(),
            stream: Stream::Stdout,
            text: "hi".into(),
        }));
        assert_eq!(seq, 6);
        journal.commit().unwrap();
        let entries = journal.entries().unwrap();
        let raw = journal.raw_entries().unwrap();
        for window in raw.windows(2) {
            let next = Entry::decode(&window[1].1).unwrap();
            assert_eq!(next.prev_hash, entry_hash(&window[0].1));
        }
        assert_eq!(entries.len(), 8);
        assert_eq!(journal.stored_head().unwrap().unwrap(), (7, entry_hash(&raw[7].1)));
    }

    #[test]
    fn every_commit_ends_with_a_checkpoint_over_every_entry_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        let key = Arc::new(HostKey::ephemeral().unwrap());
        {
            let mut journal = signed_by(&path, &key).unwrap();
            journal.append(ingress(0));
            journal.commit().unwrap();
            // A commit that adds nothing signs nothing.
            journal.commit().unwrap();
            journal.append(ingress(2));
            journal.append(ingress(3));
            journal.commit().unwrap();
        }
        // Reopened, the logs go on from the last checkpoint's right edges.
        let mut journal = signed_by(&path, &key).unwrap();
        journal.append(ingress(5));
        journal.commit().unwrap();
        let raw = journal.raw_entries().unwrap();
        let checkpoints: Vec<u64> = (0..journal.len())
            .filter(|&seq| matches!(body(&journal, seq), EntryBody::Checkpoint(_)))
            .collect();
        assert_eq!(checkpoints, [1, 4, 6]);
        for &at in &checkpoints {
            let EntryBody::Checkpoint(c) = body(&journal, at) else {
                unreachable!()
            };
            c.verify(&key.public()).unwrap();
            let mut log = Frontier::default();
            for (_, stored) in &raw[..at as usize] {
                log.push(&entry_hash(stored));
            }
            assert_eq!(
                (c.body.entries, c.body.entries_root),
                (at, log.root()),
                "checkpoint #{at}"
            );
            assert_eq!(c.entry_frontier(), Some(log));
            assert_eq!(c.body.genesis, entry_hash(&raw[0].1));
        }
    }

    /// A writer never signs what the journal's own checkpoints do not: an unsigned tail, an entry
    /// changed in what it reads, or a checkpoint by another key is refused before anything is
    /// appended.
    #[test]
    fn a_writer_refuses_a_journal_its_checkpoints_do_not_vouch_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        let key = Arc::new(HostKey::ephemeral().unwrap());
        {
            let mut journal = signed_by(&path, &key).unwrap();
            journal.append(ingress(0));
            journal.append(ingress(1));
            journal.commit().unwrap();
        }
        let raw = Journal::open(&path).unwrap().raw_entries().unwrap();
        let refused = |path: &Path, key: &Arc<HostKey>, expected: &str| {
            let error = signed_by(path, key).unwrap_err().to_string();
            assert!(
                error.contains("cannot be trusted to write to") && error.contains(expected),
                "{error}"
            );
        };
        // An input appended after the last checkpoint, chained as the host would.
        let copy = dir.path().join("tail.redb");
        std::fs::copy(&path, &copy).unwrap();
        rewrite(&copy, 3, ingress(99), entry_hash(&raw[2].1));
        refused(&copy, &key, "its entry #3 comes after its last checkpoint");
        // An entry changed before the last checkpoint, the chain rebuilt after it.
        let copy = dir.path().join("changed.redb");
        std::fs::copy(&path, &copy).unwrap();
        rewrite(&copy, 1, ingress(77), entry_hash(&raw[0].1));
        refused(&copy, &key, "are not what checkpoint #2 signed");
        // Another key.
        refused(
            &path,
            &Arc::new(HostKey::ephemeral().unwrap()),
            "is not signed by the host key in force",
        );
        // The genuine journal opens.
        signed_by(&path, &key).unwrap();
    }

    /// Every checkpoint before the one this host signed last is genuine, and so is a journal
    /// that goes on from it signed by another key: only the host's record tells it was cut
    /// back, or taken over by a key the recorded one never handed over to.
    #[test]
    fn a_writer_refuses_a_journal_cut_back_or_signed_on_by_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        let key = Arc::new(HostKey::ephemeral().unwrap());
        let earlier = dir.path().join("earlier.redb");
        {
            let mut journal = signed_by(&path, &key).unwrap();
            journal.append(ingress(0));
            journal.commit().unwrap();
            std::fs::copy(&path, &earlier).unwrap();
            journal.append(ingress(2));
            journal.commit().unwrap();
        }
        let refused = |expected: &str, key: &Arc<HostKey>| {
            let error = signed_by(&path, key).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        };
        let genuine = std::fs::read(&path).unwrap();
        std::fs::copy(&earlier, &path).unwrap();
        refused("it was cut back", &key);

        // Signed on by another key, where this host keeps no record, then put back.
        let elsewhere = dir.path().join("elsewhere.redb");
        std::fs::write(&elsewhere, &genuine).unwrap();
        let other = Arc::new(HostKey::ephemeral().unwrap());
        {
            let mut journal = Journal::open(&elsewhere).unwrap();
            let end = journal.signed_end(WORLD, &key.public()).unwrap();
            journal.open_for_appends(end.as_ref(), 0, WORLD, other.clone()).unwrap();
            journal.append(ingress(99));
            journal.commit().unwrap();
        }
        std::fs::copy(&elsewhere, &path).unwrap();
        refused("its key was replaced", &other);

        std::fs::write(&path, &genuine).unwrap();
        signed_by(&path, &key).unwrap();
    }

    #[test]
    #[should_panic(expected = "entries committed with no key to sign their checkpoint")]
    fn entries_are_never_committed_unsigned() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j.redb")).unwrap();
        journal.append(ingress(0));
        let _ = journal.commit();
    }

    #[test]
    fn deferred_entries_keep_their_seq_and_chain_when_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = signed(&dir.path().join("j.redb"));
        let (finish, finished) = std::sync::mpsc::channel();
        journal.append(ingress(0));
        let deferred = journal.append_deferred(move || finished.recv().unwrap());
        journal.append(ingress(2));
        assert_eq!((deferred, journal.len()), (1, 3));
        finish.send(ingress(1)).unwrap();
        journal.commit().unwrap();
        let raw = journal.raw_entries().unwrap();
        let entries = journal.entries().unwrap();
        assert_eq!(
            entries.iter().take(3).map(|e| e.body.clone()).collect::<Vec<_>>(),
            [ingress(0), ingress(1), ingress(2)]
        );
        for (window, entry) in raw.windows(2).zip(&entries[1..]) {
            assert_eq!(entry.prev_hash, entry_hash(&window[0].1));
        }
    }

    #[test]
    fn a_second_opener_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        let _first = Journal::open(&path).unwrap();
        let error = Journal::open(&path).unwrap_err().to_string();
        assert!(error.contains("open in another process"), "{error}");
    }
}
