//! The `policy` form: who may approve changes to the world and what they must see first.
//!
//! ```toml
//! [policy]
//! approvers = { ada = "<ed25519 public key, hex>", bob = "<...>" }
//! quorum = 2                      # approvals needed
//! require_clean_shadow = true     # a shadow run without divergences or denials first
//! rules = [                       # first match decides, per effect a change grants
//!   { effect = "governance", decision = "deny" },
//!   { effect = "http", decision = "require-approval" },
//!   { effect = "*", decision = "allow" },
//! ]
//! ```
//!
//! The governance loop reads it; this module only defines and checks it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Named ed25519 public keys (64 hex digits) whose signatures count as approvals.
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
            let bytes = hex::decode(key).ok().filter(|b| b.len() == 32);
            if bytes.is_none() {
                problems.push((
                    format!("policy.approvers.{name}"),
                    format!("`{key}` is not an ed25519 public key (64 hex digits)"),
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
