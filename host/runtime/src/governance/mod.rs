//! Governed change of a world's configuration: propose → shadow-run → approve → apply, and
//! revert, every step a signed journal entry (DESIGN.md §7).
//!
//! `record` (in `agentos-journal`) defines the entries, `ledger` folds them into the state of every proposal and the
//! manifests the world has run, `propose` drafts and journals proposals, `apply` switches the
//! running world to an approved manifest.

pub mod apply;
pub mod desk;
pub mod error;
pub mod propose;
pub mod shadow;
pub mod verdict;

pub use agentos_journal::entry::governance as record;
pub use agentos_journal::ledger;
pub use error::GovernanceError;

type Result<T, E = GovernanceError> = std::result::Result<T, E>;
