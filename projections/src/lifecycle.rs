//! Artifact lifecycle windows folded from `lifecycle_policy_set` in `_system`.
//!
//! Only windows somebody set are stored; the defaults (7 / 30 / 90 days) apply otherwise.

use std::collections::BTreeMap;

use custos_domain::{Tier, Timestamp};
use custos_eventlog::Event;
use serde::{Deserialize, Serialize};

use crate::Projection;

/// Payload of `lifecycle_policy_set` (`_system`, governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePolicySet {
    /// Tier whose window ends: `hot` (→ warm), `warm` (→ cold) or `cold` (→ purge).
    pub tier: Tier,
    /// Age in days, since stored or last restored, at which the window ends.
    pub days: u32,
}

/// One window somebody set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleWindow {
    /// Days.
    pub days: u32,
    /// Actor who set it.
    pub set_by: String,
    /// When (µs).
    pub set_at: Timestamp,
}

/// Windows by tier name; the latest event wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePolicies {
    /// tier name → window.
    pub set: BTreeMap<String, LifecycleWindow>,
}

impl LifecyclePolicies {
    /// The window set for `tier`, if any.
    pub fn get(&self, tier: Tier) -> Option<&LifecycleWindow> {
        self.set.get(tier.as_str())
    }
}

impl Projection for LifecyclePolicies {
    fn apply(&mut self, ev: &Event) {
        if !ev.header.tenant.is_system() || ev.header.kind != "lifecycle_policy_set" {
            return;
        }
        let Some(data) = &ev.data else { return };
        let Ok(p) = serde_json::from_value::<LifecyclePolicySet>(data.clone()) else { return };
        self.set.insert(
            p.tier.as_str().to_string(),
            LifecycleWindow { days: p.days, set_by: ev.actor.clone().unwrap_or_default(), set_at: ev.header.occurred_at },
        );
    }
}
