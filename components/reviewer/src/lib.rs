//! The `reviewer` agent: files the proposals and approves the proposals it is asked to, through
//! the `governance` effect. The host lets it approve only where the world's policy lists it as an
//! approver (`agent:<name>`), and never a proposal it made itself; proposing needs a grant with
//! `may_propose`, and the policy decides what a proposal may grant. Refusals are logged and
//! counted.

use agentos_sdk::{Agent, governance, log};
use bindings::Event;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Reviewer {
    approved: Vec<String>,
    proposed: Vec<String>,
    refused: u32,
}

impl Agent for Reviewer {
    type Event = Event;

    fn handle(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Approve(proposal) => match governance::approve(&proposal, "reviewed by the reviewer agent") {
                Ok(()) => {
                    log::info(format!("approved proposal #{proposal}"));
                    self.approved.push(proposal);
                }
                Err(error) => {
                    self.refused += 1;
                    log::warn(format!("could not approve proposal #{proposal}: {error:?}"));
                }
            },
            Event::Propose(change) => match governance::propose(&change, "filed by the reviewer agent") {
                Ok(id) => {
                    log::info(format!("proposed #{id}"));
                    self.proposed.push(id);
                }
                Err(error) => {
                    self.refused += 1;
                    log::warn(format!("could not propose: {error:?}"));
                }
            },
        }
        Ok(())
    }
}

agentos_sdk::export_agent!(Reviewer, world: "reviewer");
