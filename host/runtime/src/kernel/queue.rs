//! The inputs journaled and not yet started: all of them in journal order (what a snapshot lists
//! as unprocessed), and a mailbox per holder (an agent, or a plan as `plan:<name>`) in that
//! holder's order, so the stepper finds the next input of every idle holder without walking the
//! inputs of busy ones.

use crate::journal::entry::Ingress;
use std::collections::{BTreeMap, HashMap, VecDeque};

#[derive(Default)]
pub(super) struct Queue {
    all: BTreeMap<u64, Ingress>,
    mailboxes: HashMap<String, VecDeque<u64>>,
}

impl Queue {
    /// Queue input `seq`, journaled after every input queued so far.
    pub fn push(&mut self, seq: u64, ingress: Ingress) {
        debug_assert!(self.all.last_key_value().is_none_or(|(last, _)| *last < seq));
        self.mailboxes.entry(ingress.agent.clone()).or_default().push_back(seq);
        self.all.insert(seq, ingress);
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// The inputs in journal order.
    pub fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.all.keys().copied()
    }

    pub fn queued_for(&self, holder: &str) -> usize {
        self.mailboxes.get(holder).map_or(0, VecDeque::len)
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.all.contains_key(&seq)
    }

    pub fn first(&self) -> Option<u64> {
        self.all.keys().next().copied()
    }

    pub fn last(&self) -> Option<u64> {
        self.all.keys().next_back().copied()
    }

    pub fn get(&self, seq: u64) -> &Ingress {
        &self.all[&seq]
    }

    /// Whether `holder` has input waiting.
    pub fn holds_for(&self, holder: &str) -> bool {
        self.mailboxes.contains_key(holder)
    }

    /// Whether input is waiting for a holder other than `holder`.
    pub fn holds_for_others_than(&self, holder: &str) -> bool {
        self.mailboxes.len() > usize::from(self.holds_for(holder))
    }

    /// Each holder's next input, in journal order.
    pub fn heads(&self) -> Vec<u64> {
        let mut heads: Vec<u64> = self
            .mailboxes
            .values()
            .filter_map(|mailbox| mailbox.front().copied())
            .collect();
        heads.sort_unstable();
        heads
    }

    /// Take input `seq`, the next of its holder.
    pub fn take(&mut self, seq: u64) -> (u64, Ingress) {
        let ingress = self.all.remove(&seq).expect("a queued input");
        let mailbox = self.mailboxes.get_mut(&ingress.agent).expect("its holder's mailbox");
        assert_eq!(mailbox.pop_front(), Some(seq), "a holder's inputs are taken in order");
        if mailbox.is_empty() {
            self.mailboxes.remove(&ingress.agent);
        }
        (seq, ingress)
    }

    /// Take the first input of all.
    pub fn take_first(&mut self) -> Option<(u64, Ingress)> {
        let seq = self.first()?;
        Some(self.take(seq))
    }
}
