//! The `policy` form: who may approve changes to the world and what they must see first.
//!
//! ```toml
//! [policy]
//! approvers = { ada = "<ed25519 public key, hex>", bob = "<...>", reviewer = "agent:reviewer" }
//! quorum = 2                      # approvals needed
//! require_clean_shadow = true     # a shadow run without divergences or denials first
//! rules = [                       # first match decides, per effect a change grants
//!   { effect = "governance", decision = "deny" },
//!   { effect = "http", decision = "require-approval" },
//!   { effect = "*", decision = "allow" },
//! ]
//! ```
//!
//! Every change needs `quorum` approvals, except one that only grants capabilities whose
//! effects the rules `allow`. A change that grants an effect the rules `deny` is refused; an
//! effect no rule matches needs approval. [`judge`] applies this to a (current, proposed) pair.

use crate::{EffectKind, Manifest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Who may approve, by name: a person's ed25519 public key (64 hex digits), or
    /// `agent:<name>` for an agent of the world, approving through the `governance` effect.
    #[serde(default)]
    pub approvers: BTreeMap<String, String>,
    /// Approvals a change needs.
    #[serde(default = "one")]
    pub quorum: u32,
    /// Whether a change needs a clean shadow run before it may be applied.
    #[serde(default)]
    pub require_clean_shadow: bool,
    /// Ordered rules over the effects a change would grant; the first that matches decides.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// An effect name (`http`, `llm`, ...) or `*` for every effect.
    pub effect: String,
    pub decision: Decision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Allow,
    Deny,
    RequireApproval,
}

impl Policy {
    /// Every problem, as (definition path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, key) in &self.approvers {
            let valid = match Approver::parse(key) {
                Some(Approver::Agent(agent)) => crate::schema::is_identifier(agent),
                Some(Approver::Person(_)) => true,
                None => false,
            };
            if !valid {
                problems.push((
                    format!("policy.approvers.{name}"),
                    format!("`{key}` is neither an ed25519 public key (64 hex digits) nor `agent:<agent name>`"),
                ));
            }
        }
        let approvers = self.approvers.len() as u32;
        if self.quorum == 0 || (approvers > 0 && self.quorum > approvers) {
            problems.push((
                "policy.quorum".into(),
                format!("quorum {} cannot be met by {approvers} approvers", self.quorum),
            ));
        }
        let mut decided: BTreeMap<&str, usize> = BTreeMap::new();
        for (n, rule) in self.rules.iter().enumerate() {
            let at = format!("policy.rules[{}]", n + 1);
            if rule.effect != "*" && crate::EffectKind::from_name(&rule.effect).is_none() {
                problems.push((at.clone(), format!("`{}` is not an effect", rule.effect)));
            }
            if let Some(first) = decided.get("*").or_else(|| decided.get(rule.effect.as_str())) {
                problems.push((
                    at,
                    format!(
                        "can never apply: rule {first} already decides every `{}` change",
                        rule.effect
                    ),
                ));
            }
            decided.entry(rule.effect.as_str()).or_insert(n + 1);
        }
        problems
    }
}

/// An entry of `approvers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approver<'a> {
    /// A person, by the ed25519 public key their verdicts are signed with.
    Person([u8; 32]),
    /// An agent of the world, approving through the `governance` effect.
    Agent(&'a str),
}

impl Approver<'_> {
    pub fn parse(text: &str) -> Option<Approver<'_>> {
        if let Some(agent) = text.strip_prefix("agent:") {
            return Some(Approver::Agent(agent));
        }
        hex::decode(text).ok()?.try_into().ok().map(Approver::Person)
    }
}

impl Policy {
    /// The name under which the policy lists `who`, if it does.
    pub fn approver_named(&self, who: Approver<'_>) -> Option<&str> {
        self.approvers
            .iter()
            .find(|(_, entry)| Approver::parse(entry) == Some(who))
            .map(|(name, _)| name.as_str())
    }

    /// What the rules decide for a change that grants `effect` (the first match; approval
    /// when none matches).
    pub fn decide(&self, effect: EffectKind) -> Decision {
        self.rules
            .iter()
            .find(|rule| rule.effect == "*" || rule.effect == effect.name())
            .map_or(Decision::RequireApproval, |rule| rule.decision)
    }
}

/// What holds grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Agent(String),
    Plan(String),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Agent(name) => write!(f, "agent `{name}`"),
            Holder::Plan(name) => write!(f, "plan `{name}`"),
        }
    }
}

/// A capability a change grants to an agent or plan that did not hold it (or held it narrower).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    pub holder: Holder,
    pub cap: String,
    pub effect: EffectKind,
    pub decision: Decision,
}

impl std::fmt::Display for Widening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} gains cap `{}` ({} effect; policy: {})",
            self.holder,
            self.cap,
            self.effect.name(),
            match self.decision {
                Decision::Allow => "allow",
                Decision::Deny => "deny",
                Decision::RequireApproval => "require-approval",
            }
        )
    }
}

/// What the policy of `current` says about changing it to `proposed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Capabilities the change grants, each with the rules' decision.
    pub widenings: Vec<Widening>,
    /// Approvals the change needs (0 for a change that only grants allowed effects).
    pub approvals_needed: u32,
}

impl Judgement {
    /// The widenings the policy refuses.
    pub fn denied(&self) -> impl Iterator<Item = &Widening> {
        self.widenings.iter().filter(|w| w.decision == Decision::Deny)
    }
}

/// Judge a change from `current` to `proposed` under `current`'s policy (a world without one
/// needs one approval, which nobody can give). `components_changed` says whether any module's
/// bytes differ, which the manifests alone do not show.
pub fn judge(current: &Manifest, proposed: &Manifest, components_changed: bool) -> Judgement {
    let policy = current.policy.clone().unwrap_or_default();
    let mut widenings = Vec::new();
    // An `mcp` grant widens when a server it names is new or changed (another command, URL or
    // environment behind the same tool names).
    let servers_changed = |cap: &crate::Cap| match cap {
        crate::Cap::Mcp(mcp) => mcp
            .servers()
            .any(|server| current.mcp.get(server) != proposed.mcp.get(server)),
        _ => false,
    };
    let mut widen = |holder: Holder, old: Option<&Vec<String>>, new: &Vec<String>| {
        let held: BTreeMap<&str, &crate::Cap> = current.caps_named(old.into_iter().flatten()).collect();
        for (cap, granted) in proposed.caps_named(new) {
            if held.get(cap) != Some(&granted) || servers_changed(granted) {
                widenings.push(Widening {
                    holder: holder.clone(),
                    cap: cap.to_string(),
                    effect: granted.effect(),
                    decision: policy.decide(granted.effect()),
                });
            }
        }
    };
    for (agent, def) in &proposed.agents {
        let old = current.agents.get(agent).map(|old| &old.grants);
        widen(Holder::Agent(agent.clone()), old, &def.grants);
    }
    for (plan, def) in &proposed.plans {
        let old = current.plans.get(plan).map(|old| &old.grants);
        widen(Holder::Plan(plan.clone()), old, &def.grants);
    }
    // Everything but grants and capability definitions, as it was.
    let mut rest = proposed.clone();
    rest.caps = current.caps.clone();
    for (agent, def) in rest.agents.iter_mut() {
        if let Some(old) = current.agents.get(agent) {
            def.grants = old.grants.clone();
        }
    }
    for (plan, def) in rest.plans.iter_mut() {
        if let Some(old) = current.plans.get(plan) {
            def.grants = old.grants.clone();
        }
    }
    let grants_only = !components_changed && rest == *current;
    let all_allowed = widenings.iter().all(|w| w.decision == Decision::Allow);
    Judgement {
        approvals_needed: if grants_only && all_allowed && !widenings.is_empty() {
            0
        } else {
            policy.quorum
        },
        widenings,
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            approvers: BTreeMap::new(),
            quorum: 1,
            require_clean_shadow: false,
            rules: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(grants: &str, rules: &str, component: &str) -> Manifest {
        let text = format!(
            r#"
            [world]
            name = "w"
            [modules.m]
            component = "{component}"
            [caps.out]
            effect = "http"
            urls = ["https://example.org/*"]
            [caps.notes]
            effect = "timer"
            [caps.store]
            effect = "blob"
            [agents.a]
            module = "m"
            grants = [{grants}]
            [policy]
            approvers = {{ ada = "{key}" }}
            rules = [{rules}]
            "#,
            key = "11".repeat(32)
        );
        Manifest::parse_toml(&text, "w.toml").unwrap()
    }

    #[test]
    fn only_grants_of_allowed_effects_skip_approval_and_denied_effects_are_named() {
        let rules = r#"{ effect = "http", decision = "deny" }, { effect = "blob", decision = "allow" }"#;
        let base = world("", rules, "m.wasm");
        let allowed = judge(&base, &world(r#""store""#, rules, "m.wasm"), false);
        assert_eq!((allowed.approvals_needed, allowed.denied().count()), (0, 0));
        // The same grant with new component bytes, or with another change, needs the quorum.
        assert_eq!(
            judge(&base, &world(r#""store""#, rules, "m.wasm"), true).approvals_needed,
            1
        );
        assert_eq!(
            judge(&base, &world(r#""store""#, rules, "n.wasm"), false).approvals_needed,
            1
        );
        // No rule for `timer`: approval.
        assert_eq!(
            judge(&base, &world(r#""notes""#, rules, "m.wasm"), false).approvals_needed,
            1
        );
        let denied = judge(&base, &world(r#""out", "store""#, rules, "m.wasm"), false);
        let names: Vec<String> = denied.denied().map(|w| w.to_string()).collect();
        assert_eq!(names, ["agent `a` gains cap `out` (http effect; policy: deny)"]);
        // Nothing granted: not a grants-only change, so approval.
        assert_eq!(judge(&base, &base, false).approvals_needed, 1);
    }

    fn mcp_world(grants: &str, command: &str) -> Manifest {
        let text = format!(
            r#"
            [world]
            name = "w"
            [modules.m]
            component = "m.wasm"
            [mcp.files]
            command = "{command}"
            [caps.tools]
            effect = "mcp"
            tools = ["files/read_*"]
            [agents.a]
            module = "m"
            grants = [{grants}]
            "#
        );
        Manifest::parse_toml(&text, "w.toml").unwrap()
    }

    #[test]
    fn a_new_mcp_grant_and_a_changed_server_behind_one_are_widenings() {
        let base = mcp_world("", "mcp-files");
        let granted = mcp_world(r#""tools""#, "mcp-files");
        let names = |j: Judgement| j.widenings.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(judge(&base, &granted, false)),
            ["agent `a` gains cap `tools` (mcp effect; policy: require-approval)"]
        );
        // The same grant, its server now another program.
        assert_eq!(
            names(judge(&granted, &mcp_world(r#""tools""#, "other-server"), false)).len(),
            1
        );
        assert!(judge(&granted, &granted, false).widenings.is_empty());
    }
}
