//! The governance ledger: every manifest a world has run and every proposal with its verdicts,
//! shadow runs and outcome, folded from the journal in order.
//!
//! One fold serves `apply` (is this proposal ready?), `history` and `verify` (was every applied
//! manifest approved as the policy in force required?), so the rules live in one place.

use crate::entry::governance::{ManifestApplied, Proposal, ShadowRecord, SignedVerdict, Verdict};
use crate::entry::{Digest, EntryBody, Genesis};
use crate::{Journal, JournalError};
use agentos_air::{Approver, Manifest, Patch};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why a ledger (or the configuration in force) could not be read.
/// A governance entry that contradicts the ones before it.
#[derive(Debug, thiserror::Error)]
pub enum Contradiction {
    #[error(
        "proposal is written against manifest sha256:{base}, but sha256:{in_force} was in force when it was journaled"
    )]
    WrongBase { base: String, in_force: String },
    /// A verdict, shadow report or manifest change of an entry that is no proposal.
    #[error("{what} of entry #{seq}, which is not a proposal")]
    NotAProposal { what: &'static str, seq: u64 },
    #[error("{what} names proposal #{seq} with a different hash")]
    OtherHash { what: &'static str, seq: u64 },
    #[error("refuses entry #{seq}, which is not a proposal")]
    RefusesNonProposal { seq: u64 },
    #[error("{0}")]
    Unreadable(Box<LedgerError>),
    #[error("applies proposal #{proposal} although {}", blockers.join("; "))]
    NotReady { proposal: u64, blockers: Vec<String> },
    #[error("records manifest sha256:{digest}, the digest of the different manifest in force from entry #{since}")]
    DigestReused { digest: String, since: u64 },
    #[error("says it replaces manifest sha256:{named}, but sha256:{in_force} was in force")]
    WrongPrevious { named: String, in_force: String },
    #[error("puts in force other components than proposal #{proposal} named")]
    OtherComponents { proposal: u64 },
    #[error("proposal #{proposal}'s patch does not apply to the manifest in force: {reason}")]
    PatchDoesNotApply { proposal: u64, reason: String },
    #[error(
        "puts in force a manifest other than proposal #{proposal}'s patch makes of the one in force (they differ in {})",
        differing.join(", ")
    )]
    NotAsProposed { proposal: u64, differing: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Manifest(#[from] agentos_air::AirError),
    #[error(transparent)]
    Patch(#[from] agentos_air::PatchError),
    #[error("journal {}: entry #0 is {kind}, not genesis", path.display())]
    NotGenesis { path: PathBuf, kind: &'static str },
    #[error("journal {} is empty", path.display())]
    Empty { path: PathBuf },
    #[error("journal {}: entry #{seq} is listed as a manifest change but is not one", path.display())]
    NotAChange { path: PathBuf, seq: u64 },
    /// An entry that contradicts the ones before it.
    #[error("entry #{seq}: {problem}")]
    Contradiction { seq: u64, problem: Contradiction },
    #[error("entry #{seq} is not a proposal; open proposals: {open}")]
    NotAProposal { seq: u64, open: String },
}

type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// The genesis entry of a journal.
pub fn genesis(journal: &Journal) -> Result<Genesis> {
    match journal.entry(0)?.map(|e| e.body) {
        Some(EntryBody::Genesis(genesis)) => Ok(genesis),
        Some(other) => Err(LedgerError::NotGenesis {
            path: journal.path().to_path_buf(),
            kind: other.kind(),
        }),
        None => Err(LedgerError::Empty {
            path: journal.path().to_path_buf(),
        }),
    }
}

/// The manifest of record in force at entry `seq`: genesis, or the last manifest change before it.
pub fn configuration_at(journal: &Journal, genesis: &Genesis, seq: u64) -> Result<Configuration> {
    let Some(&change) = journal.manifest_changes().iter().rev().find(|&&c| c < seq) else {
        return Configuration::of_genesis(genesis);
    };
    match journal.entry(change)?.map(|e| e.body) {
        Some(EntryBody::ManifestApplied(applied)) => Configuration::of_applied(change, &applied),
        _ => Err(LedgerError::NotAChange {
            path: journal.path().to_path_buf(),
            seq: change,
        }),
    }
}

/// A manifest the world ran from entry `since` on.
#[derive(Debug, Clone)]
pub struct Configuration {
    /// Entry that put it in force (0: genesis).
    pub since: u64,
    pub manifest: Manifest,
    pub digest: Digest,
    /// Component bytes of each module (sha256, in the blob table).
    pub modules: Vec<(String, Digest)>,
    /// The proposal applied (`None`: genesis).
    pub proposal: Option<u64>,
    /// When it came into force (logical ms: the world's creation, or the migration's time).
    pub at_ms: u64,
}

impl Configuration {
    pub fn of_genesis(genesis: &Genesis) -> Result<Configuration> {
        Ok(Configuration {
            since: 0,
            manifest: Manifest::parse_json(&genesis.manifest_json, "the journal's genesis entry")?,
            digest: genesis.manifest_digest,
            modules: genesis.modules.clone(),
            proposal: None,
            at_ms: genesis.created_ms,
        })
    }

    pub fn of_applied(seq: u64, applied: &ManifestApplied) -> Result<Configuration> {
        Ok(Configuration {
            since: seq,
            manifest: Manifest::parse_json(&applied.manifest_json, &format!("manifest-applied entry #{seq}"))?,
            digest: applied.manifest_digest,
            modules: applied.modules.clone(),
            proposal: Some(applied.proposal),
            at_ms: applied.at_ms,
        })
    }

    /// The same manifest with the same components.
    pub fn same_as(&self, other: &Configuration) -> bool {
        self.digest == other.digest && self.modules == other.modules
    }

    /// The component digest of `module`.
    pub fn module_digest(&self, module: &str) -> Option<Digest> {
        self.modules.iter().find(|(m, _)| m == module).map(|(_, d)| *d)
    }
}

/// A proposal and everything journaled about it.
#[derive(Debug, Clone)]
pub struct ProposalState {
    pub seq: u64,
    pub proposal: Proposal,
    pub hash: Digest,
    pub verdicts: Vec<(u64, SignedVerdict)>,
    pub shadows: Vec<(u64, ShadowRecord)>,
    pub applied: Option<u64>,
    pub refusals: Vec<(u64, String)>,
}

impl ProposalState {
    /// The patch, decoded.
    pub fn patch(&self) -> Result<Patch> {
        Ok(Patch::parse_json(
            &self.proposal.body.patch_json,
            &format!("proposal #{}", self.seq),
        )?)
    }

    /// One word for where it stands (ignoring whether it could be applied now).
    pub fn status(&self) -> &'static str {
        if self.applied.is_some() {
            "applied"
        } else if self.verdicts.iter().any(|(_, v)| v.body.verdict == Verdict::Reject) {
            "rejected"
        } else {
            "open"
        }
    }
}

/// Whether a proposal can be applied now.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// Names of the approvers whose approvals count.
    pub approved_by: Vec<String>,
    /// Everything that stands in the way (empty: it may be applied).
    pub blockers: Vec<String>,
}

/// The fold.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub world_id: [u8; 16],
    /// Every manifest the world has run, the one in force last.
    pub configurations: Vec<Configuration>,
    pub proposals: BTreeMap<u64, ProposalState>,
    /// The entry it takes in next.
    next: u64,
}

impl Ledger {
    pub fn new(genesis: &Genesis) -> Result<Ledger> {
        Ok(Ledger {
            world_id: genesis.world_id,
            configurations: vec![Configuration::of_genesis(genesis)?],
            proposals: BTreeMap::new(),
            next: 1,
        })
    }

    /// A ledger of the present only: the configuration in force, no history (enough to draft
    /// a proposal without reading the whole journal).
    pub fn present(world_id: [u8; 16], in_force: Configuration) -> Ledger {
        Ledger {
            world_id,
            next: in_force.since + 1,
            configurations: vec![in_force],
            proposals: BTreeMap::new(),
        }
    }

    /// The ledger of a journal: one pass over its entries.
    pub fn read(journal: &Journal) -> Result<Ledger> {
        let genesis = genesis(journal)?;
        let mut ledger = Ledger::new(&genesis)?;
        ledger.update(journal)?;
        Ok(ledger)
    }

    /// Take in the entries `journal` holds that this ledger has not (a ledger kept between
    /// reads of a growing journal).
    pub fn update(&mut self, journal: &Journal) -> Result<()> {
        if self.next < journal.len() {
            self.take_in(&journal.entries_in(self.next..journal.len())?)?;
        }
        Ok(())
    }

    /// The ledger including what was appended but not committed yet (a step's view of its
    /// own journal); seals the journal first. The whole history is read, so a writer checks
    /// all of it against its checkpoints first.
    pub fn read_uncommitted(journal: &mut Journal) -> Result<Ledger> {
        journal.check_history()?;
        journal.seal();
        let mut ledger = Ledger::read(journal)?;
        ledger.take_in(&journal.sealed_entries())?;
        Ok(ledger)
    }

    fn take_in<'a>(&mut self, entries: impl IntoIterator<Item = &'a crate::entry::Entry>) -> Result<()> {
        for entry in entries {
            self.observe(entry.seq, &entry.body)
                .map_err(|problem| LedgerError::Contradiction {
                    seq: entry.seq,
                    problem,
                })?;
        }
        Ok(())
    }

    pub fn in_force(&self) -> &Configuration {
        self.configurations.last().expect("genesis is always there")
    }

    /// The configuration in force at entry `seq`.
    pub fn at(&self, seq: u64) -> &Configuration {
        self.configurations
            .iter()
            .rev()
            .find(|c| c.since <= seq)
            .expect("genesis is in force from entry 0")
    }

    pub fn proposal(&self, seq: u64) -> Result<&ProposalState> {
        self.proposals.get(&seq).ok_or_else(|| {
            let open: Vec<String> = self
                .proposals
                .values()
                .filter(|p| p.status() == "open")
                .map(|p| format!("#{}", p.seq))
                .collect();
            LedgerError::NotAProposal {
                seq,
                open: if open.is_empty() {
                    "none".into()
                } else {
                    open.join(", ")
                },
            }
        })
    }

    /// Take in one entry. Errors describe an entry that contradicts the ones before it.
    pub fn observe(&mut self, seq: u64, body: &EntryBody) -> Result<(), Contradiction> {
        self.next = self.next.max(seq + 1);
        match body {
            EntryBody::Proposal(proposal) => {
                if proposal.body.base != self.in_force().digest {
                    return Err(Contradiction::WrongBase {
                        base: hex::encode(proposal.body.base),
                        in_force: hex::encode(self.in_force().digest),
                    });
                }
                self.proposals.insert(
                    seq,
                    ProposalState {
                        seq,
                        hash: proposal.body.hash(),
                        proposal: proposal.clone(),
                        verdicts: Vec::new(),
                        shadows: Vec::new(),
                        applied: None,
                        refusals: Vec::new(),
                    },
                );
            }
            EntryBody::Verdict(verdict) => {
                let state = self.judged(verdict.body.proposal, &verdict.body.proposal_hash, "verdict")?;
                state.verdicts.push((seq, verdict.clone()));
            }
            EntryBody::ShadowReport(shadow) => {
                let state = self.judged(shadow.proposal, &shadow.proposal_hash, "shadow report")?;
                state.shadows.push((seq, shadow.clone()));
            }
            EntryBody::ApplyRefused(refused) => {
                let state = self
                    .proposals
                    .get_mut(&refused.proposal)
                    .ok_or(Contradiction::RefusesNonProposal { seq: refused.proposal })?;
                state.refusals.push((seq, refused.reason.clone()));
            }
            EntryBody::ManifestApplied(applied) => {
                let state = self
                    .judged(applied.proposal, &applied.proposal_hash, "manifest change")?
                    .clone();
                let configuration =
                    Configuration::of_applied(seq, applied).map_err(|e| Contradiction::Unreadable(Box::new(e)))?;
                self.check_applied_as_proposed(&state, applied, &configuration)?;
                let readiness = self.readiness_for(applied.proposal, Ok(configuration.manifest.clone()));
                if !readiness.blockers.is_empty() {
                    return Err(Contradiction::NotReady {
                        proposal: applied.proposal,
                        blockers: readiness.blockers,
                    });
                }
                self.proposals
                    .get_mut(&applied.proposal)
                    .expect("checked above")
                    .applied = Some(seq);
                self.configurations.push(configuration);
            }
            _ => {}
        }
        Ok(())
    }

    /// A manifest change must be what its proposal asked for: its patch applied to the
    /// manifest in force (compared as typed models, since a later host may encode and so hash
    /// the same manifests differently), with the components the proposal named, replacing the
    /// manifest it says it replaced.
    fn check_applied_as_proposed(
        &self,
        state: &ProposalState,
        applied: &ManifestApplied,
        recorded: &Configuration,
    ) -> Result<(), Contradiction> {
        let current = self.in_force();
        // Digests label manifests; what identifies one is its content. A digest the record
        // gives two different manifests would let a change pass for another.
        if let Some(other) = self
            .configurations
            .iter()
            .find(|c| c.digest == recorded.digest && c.manifest != recorded.manifest)
        {
            return Err(Contradiction::DigestReused {
                digest: hex::encode(recorded.digest),
                since: other.since,
            });
        }
        if applied.previous != current.digest {
            return Err(Contradiction::WrongPrevious {
                named: hex::encode(applied.previous),
                in_force: hex::encode(current.digest),
            });
        }
        if applied.modules != state.proposal.body.modules {
            return Err(Contradiction::OtherComponents {
                proposal: applied.proposal,
            });
        }
        let proposed = state
            .patch()
            .and_then(|patch| Ok(agentos_air::apply_recorded(&patch, &current.manifest)?))
            .map_err(|e| Contradiction::PatchDoesNotApply {
                proposal: applied.proposal,
                reason: format!("{e:#}"),
            })?;
        if proposed != recorded.manifest {
            let differing: Vec<String> = agentos_air::diff(&proposed, &recorded.manifest)
                .changes
                .iter()
                .map(|c| format!("{} `{}`", c.kind.label(), c.name))
                .collect();
            return Err(Contradiction::NotAsProposed {
                proposal: applied.proposal,
                differing,
            });
        }
        Ok(())
    }

    fn judged(
        &mut self,
        proposal: u64,
        hash: &Digest,
        what: &'static str,
    ) -> Result<&mut ProposalState, Contradiction> {
        let state = self
            .proposals
            .get_mut(&proposal)
            .ok_or(Contradiction::NotAProposal { what, seq: proposal })?;
        if state.hash != *hash {
            return Err(Contradiction::OtherHash { what, seq: proposal });
        }
        Ok(state)
    }

    /// Why `state` can no longer be judged, shadow-run or applied, whatever its verdicts: it
    /// was applied, or the manifest it was written against is no longer in force.
    pub fn closed(&self, state: &ProposalState) -> Option<String> {
        let current = self.in_force();
        if let Some(at) = state.applied {
            Some(format!("it was already applied (entry #{at})"))
        } else if state.proposal.body.base != current.digest || self.at(state.seq).manifest != current.manifest {
            Some(format!(
                "it was written against manifest sha256:{}, but the world now runs sha256:{} (propose the change again)",
                hex::encode(state.proposal.body.base),
                hex::encode(current.digest)
            ))
        } else {
            None
        }
    }

    /// Whether proposal `seq` may be applied to the manifest in force now, under its policy.
    pub fn readiness(&self, seq: u64) -> Readiness {
        let proposed = self.proposals.get(&seq).map(|state| {
            state
                .patch()
                .and_then(|patch| Ok(agentos_air::apply(&patch, &self.in_force().manifest)?))
        });
        self.readiness_for(
            seq,
            proposed.unwrap_or_else(|| {
                Err(LedgerError::NotAProposal {
                    seq,
                    open: String::new(),
                })
            }),
        )
    }

    /// [`Ledger::readiness`], given the manifest the proposal leads to.
    fn readiness_for(&self, seq: u64, proposed: Result<Manifest>) -> Readiness {
        let mut readiness = Readiness {
            approved_by: Vec::new(),
            blockers: Vec::new(),
        };
        let Some(state) = self.proposals.get(&seq) else {
            readiness.blockers.push(format!("entry #{seq} is not a proposal"));
            return readiness;
        };
        let blockers = &mut readiness.blockers;
        let current = self.in_force();
        let policy = current.manifest.policy.clone().unwrap_or_default();
        if let Some(reason) = self.closed(state) {
            blockers.push(reason);
            return readiness;
        }
        // Verdicts count only from approvers the policy in force names under the name they give:
        // a person by their key, an agent by its name, and never an agent on its own proposal.
        let author = match &state.proposal.body.author {
            crate::entry::governance::Author::Agent { name } => Some(name.as_str()),
            crate::entry::governance::Author::Person { .. } => None,
        };
        let counted = |verdict: &SignedVerdict| {
            let listed = policy
                .approvers
                .get(&verdict.body.approver)
                .and_then(|e| Approver::parse(e));
            match (listed, &verdict.body.by_agent) {
                (Some(Approver::Person(key)), None) => key == verdict.public_key,
                (Some(Approver::Agent(agent)), Some(by)) => agent == by && author != Some(by.as_str()),
                _ => false,
            }
        };
        for (at, verdict) in &state.verdicts {
            if counted(verdict) && verdict.body.verdict == Verdict::Reject {
                blockers.push(format!("{} rejected it (entry #{at})", verdict.body.approver));
            }
        }
        let proposed = match proposed {
            Ok(proposed) => proposed,
            Err(error) => {
                blockers.push(format!("its patch does not apply: {error:#}"));
                return readiness;
            }
        };
        let judgement = agentos_air::judge(
            &current.manifest,
            &proposed,
            state.proposal.body.modules != current.modules,
        );
        for denied in judgement.denied() {
            blockers.push(format!("the policy denies it: {denied}"));
        }
        let mut approved_by: Vec<String> = state
            .verdicts
            .iter()
            .filter(|(_, v)| counted(v) && v.body.verdict == Verdict::Approve)
            .map(|(_, v)| v.body.approver.clone())
            .collect();
        approved_by.sort();
        approved_by.dedup();
        let needed = judgement.approvals_needed as usize;
        if approved_by.len() < needed {
            let missing: Vec<&str> = policy
                .approvers
                .keys()
                .filter(|name| !approved_by.contains(name))
                .map(String::as_str)
                .collect();
            blockers.push(if policy.approvers.is_empty() {
                "the manifest in force names no approvers ([policy] approvers), so no change to it can be approved"
                    .into()
            } else {
                format!(
                    "it needs {needed} approval(s) and has {}; can approve: {}",
                    approved_by.len(),
                    missing.join(", ")
                )
            });
        }
        if policy.require_clean_shadow {
            match state.shadows.last() {
                None => blockers.push(format!(
                    "the policy requires a clean shadow run first (`agentos-host shadow <dir> {seq}`)"
                )),
                Some((at, shadow)) if !shadow.clean => blockers.push(format!(
                    "the policy requires a clean shadow run, and the last one (entry #{at}) found: {}",
                    shadow.summary
                )),
                Some(_) => {}
            }
        }
        readiness.approved_by = approved_by;
        readiness
    }
}
