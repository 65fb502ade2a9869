//! The redb tables of a world file, in one place.
//!
//! `journal`: seq → stored entry bytes. `blobs`: sha256 → bytes (component artifacts and large
//! payloads). `meta`: format version, world id, and the head of the chain (`head` = seq ‖ hash),
//! which lets `verify` notice a removed or altered last entry.

use redb::TableDefinition;

pub const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
pub const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub const META_FORMAT_VERSION: &str = "format_version";
pub const META_HEAD: &str = "head";
