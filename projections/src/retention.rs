//! Retention policies folded from `retention_policy_set` in `_system`.
//!
//! Only policies somebody set are stored here; the built-in defaults live in
//! `custos-retention`, which resolves the effective window per tenant and category.

use std::collections::BTreeMap;

use custos_domain::{Category, Timestamp};
use custos_eventlog::Event;
use serde::{Deserialize, Serialize};

use crate::Projection;

/// Payload of `retention_policy_set` (`_system`, governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicySet {
    /// Category the window applies to.
    pub category: Category,
    /// Window in days: bodies whose `occurred_at` is older are purged.
    pub days: u32,
    /// Only this tenant (overrides the store-wide policy), or every tenant when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// One policy somebody set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyState {
    /// Category.
    pub category: Category,
    /// Window in days.
    pub days: u32,
    /// Tenant override, or store-wide when None.
    pub tenant: Option<String>,
    /// Actor who set it.
    pub set_by: String,
    /// When (µs).
    pub set_at: Timestamp,
    /// Global seq of the event.
    pub seq: u64,
}

/// Policies by scope (`*` for store-wide, else the tenant) and category; the latest wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicies {
    /// scope → category name → policy.
    pub set: BTreeMap<String, BTreeMap<String, PolicyState>>,
}

/// Scope key of store-wide policies.
pub const ALL_TENANTS: &str = "*";

impl RetentionPolicies {
    /// The window somebody set for (tenant, category): a tenant override first, then store-wide.
    pub fn days_set(&self, tenant: &str, category: Category) -> Option<u32> {
        self.get(Some(tenant), category).or_else(|| self.get(None, category)).map(|p| p.days)
    }

    /// The policy set exactly at this scope.
    pub fn get(&self, tenant: Option<&str>, category: Category) -> Option<&PolicyState> {
        self.set.get(tenant.unwrap_or(ALL_TENANTS))?.get(category.as_str())
    }

    /// Tenants with at least one override.
    pub fn tenants_with_overrides(&self) -> impl Iterator<Item = &str> {
        self.set.keys().map(String::as_str).filter(|k| *k != ALL_TENANTS)
    }
}

impl Projection for RetentionPolicies {
    fn apply(&mut self, ev: &Event) {
        if !ev.header.tenant.is_system() || ev.header.kind != "retention_policy_set" {
            return;
        }
        let Some(data) = &ev.data else { return };
        let Ok(p) = serde_json::from_value::<RetentionPolicySet>(data.clone()) else { return };
        let scope = p.tenant.clone().unwrap_or_else(|| ALL_TENANTS.to_string());
        self.set.entry(scope).or_default().insert(
            p.category.as_str().to_string(),
            PolicyState {
                category: p.category,
                days: p.days,
                tenant: p.tenant,
                set_by: ev.actor.clone().unwrap_or_default(),
                set_at: ev.header.occurred_at,
                seq: ev.header.global_seq,
            },
        );
    }
}
