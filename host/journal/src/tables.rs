//! The redb tables of a world file, in one place.
//!
//! `journal`: seq → stored entry bytes. `blobs`: sha256 → bytes (component artifacts and large
//! payloads). `meta`: format version, world id, and the head of the chain (`head` = seq ‖ hash),
//! which lets `verify` notice a removed or altered last entry; `transparency` = the receipt
//! log's right edge and last checkpointed size, so a reopened journal goes on without rereading
//! every receipt; `journal_log` = the journal log's right edge (every entry's hash), so the
//! next checkpoint covers the whole journal without rehashing it; `latest_snapshot` = seq of
//! the last snapshot entry, where reopening starts). Everything in `meta` is a cache or a
//! label: `verify` trusts none of it.

use redb::TableDefinition;

pub const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
pub const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub const META_FORMAT_VERSION: &str = "format_version";
pub const META_HEAD: &str = "head";
pub const META_TRANSPARENCY: &str = "transparency";
pub const META_LATEST_SNAPSHOT: &str = "latest_snapshot";
/// The journal log's right edge (postcard `Frontier` over every entry's hash), format 5.
pub const META_JOURNAL_LOG: &str = "journal_log";
/// Public keys put in force by key rotations, in order (postcard `Vec<[u8; 32]>`).
pub const META_ROTATED_KEYS: &str = "rotated_keys";
/// Entry numbers of the manifest-applied entries, in order (postcard `Vec<u64>`).
pub const META_MANIFEST_CHANGES: &str = "manifest_changes";
/// Present only in audit bundles (`agentos-host export`): JSON describing the export.
pub const META_BUNDLE: &str = "bundle";
