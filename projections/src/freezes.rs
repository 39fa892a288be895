//! Active emergency freezes, folded from `freeze_applied` / `freeze_lifted` in `_system`.
//!
//! Kept inside the `budget-config` snapshot (see [`crate::budgets::BudgetConfigView`])
//! because the budget check is what a freeze changes: the check already loads that
//! snapshot, so honouring a freeze costs no extra read.

use std::collections::BTreeMap;

use custos_domain::format_ts;
use custos_domain::freeze::{FreezeApplied, FreezeInfo, FreezeLifted, FreezeScope};
use custos_domain::Timestamp;
use serde::{Deserialize, Serialize};

/// Map key of the global freeze (tenant ids cannot contain `*`).
pub const GLOBAL_KEY: &str = "*";

/// One active freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeState {
    /// Global or tenant.
    pub scope: FreezeScope,
    /// The tenant, for scope `tenant`.
    pub tenant: Option<String>,
    /// Why.
    pub reason: String,
    /// Actor who froze.
    pub frozen_by: String,
    /// When (µs).
    pub frozen_at: Timestamp,
}

impl FreezeState {
    /// As commands print it.
    pub fn info(&self) -> FreezeInfo {
        FreezeInfo {
            scope: self.scope,
            tenant: self.tenant.clone(),
            reason: self.reason.clone(),
            frozen_by: self.frozen_by.clone(),
            frozen_at: format_ts(self.frozen_at),
        }
    }
}

/// Active freezes by scope key ([`GLOBAL_KEY`] or the tenant id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezesView {
    /// Scope key → freeze.
    pub active: BTreeMap<String, FreezeState>,
}

/// The map key of a scope; None for a tenant scope without a tenant (a malformed payload).
pub fn scope_key(scope: FreezeScope, tenant: Option<&str>) -> Option<String> {
    match (scope, tenant) {
        (FreezeScope::Global, _) => Some(GLOBAL_KEY.to_string()),
        (FreezeScope::Tenant, Some(t)) => Some(t.to_string()),
        (FreezeScope::Tenant, None) => None,
    }
}

impl FreezesView {
    /// Folds one `_system` event's parts; other kinds and malformed payloads are ignored.
    pub fn apply_parts(&mut self, kind: &str, data: &serde_json::Value, actor: Option<&str>, at: Timestamp) {
        match kind {
            "freeze_applied" => {
                let Ok(f) = FreezeApplied::deserialize(data) else { return };
                let Some(key) = scope_key(f.scope, f.tenant.as_deref()) else { return };
                // The first freeze of a scope stands: re-freezing is refused before it is recorded,
                // and the fold must agree with that answer whatever the log holds.
                self.active.entry(key).or_insert(FreezeState {
                    scope: f.scope,
                    tenant: if f.scope == FreezeScope::Tenant { f.tenant } else { None },
                    reason: f.reason,
                    frozen_by: actor.unwrap_or_default().to_string(),
                    frozen_at: at,
                });
            }
            "freeze_lifted" => {
                let Ok(l) = FreezeLifted::deserialize(data) else { return };
                if let Some(key) = scope_key(l.scope, l.tenant.as_deref()) {
                    self.active.remove(&key);
                }
            }
            _ => {}
        }
    }

    /// The freeze that stops `tenant`: the global one first, else the tenant's own.
    pub fn covering(&self, tenant: &str) -> Option<&FreezeState> {
        self.active.get(GLOBAL_KEY).or_else(|| self.active.get(tenant))
    }

    /// The freeze of exactly this scope (`None` = global).
    pub fn of_scope(&self, tenant: Option<&str>) -> Option<&FreezeState> {
        self.active.get(tenant.unwrap_or(GLOBAL_KEY))
    }

    /// Active freezes, global first, then tenants oldest first.
    pub fn list(&self) -> Vec<FreezeInfo> {
        let mut v: Vec<_> = self.active.values().collect();
        v.sort_by_key(|f| (f.scope, f.frozen_at, f.tenant.clone()));
        v.into_iter().map(FreezeState::info).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn applied(tenant: Option<&str>, reason: &str) -> serde_json::Value {
        match tenant {
            Some(t) => json!({"scope": "tenant", "tenant": t, "reason": reason}),
            None => json!({"scope": "global", "reason": reason}),
        }
    }

    fn lifted(tenant: Option<&str>) -> serde_json::Value {
        let mut v = json!({"scope": if tenant.is_some() {"tenant"} else {"global"}, "reason": "r", "frozen_by": "a", "frozen_at": "x"});
        if let Some(t) = tenant {
            v["tenant"] = json!(t);
        }
        v
    }

    #[test]
    fn fold_apply_cover_and_lift() {
        let mut v = FreezesView::default();
        v.apply_parts("freeze_applied", &applied(Some("acme"), "INC-1"), Some("alice"), 5);
        assert_eq!(v.covering("acme").map(|f| f.frozen_by.as_str()), Some("alice"));
        assert!(v.covering("globex").is_none(), "a tenant freeze covers only its tenant");
        v.apply_parts("freeze_applied", &applied(None, "INC-2"), Some("bob"), 6);
        assert_eq!(v.covering("globex").map(|f| f.reason.as_str()), Some("INC-2"));
        assert_eq!(v.covering("acme").map(|f| f.scope), Some(FreezeScope::Global), "global is named first");
        assert_eq!(v.list()[0].scope, FreezeScope::Global, "global listed first");
        // A second freeze of the same scope does not replace the first.
        v.apply_parts("freeze_applied", &applied(Some("acme"), "later"), Some("carol"), 7);
        assert_eq!(v.of_scope(Some("acme")).map(|f| f.reason.as_str()), Some("INC-1"));
        v.apply_parts("freeze_lifted", &lifted(None), Some("bob"), 8);
        assert!(v.covering("globex").is_none());
        assert!(v.covering("acme").is_some());
        // Malformed payloads and purged bodies are ignored, never a panic.
        v.apply_parts("freeze_applied", &json!({"scope": "tenant", "reason": "no tenant"}), None, 9);
        v.apply_parts("freeze_lifted", &json!({}), None, 9);
        assert_eq!(v.active.len(), 1);
        v.apply_parts("freeze_lifted", &lifted(Some("acme")), Some("bob"), 10);
        assert!(v.active.is_empty());
    }

    proptest! {
        /// Whatever the sequence, a scope is frozen exactly when its last event was an
        /// apply, and the freeze in force is the first apply since the last lift.
        #[test]
        fn fold_matches_a_naive_model(ops in proptest::collection::vec((any::<bool>(), 0u8..3), 0..40)) {
            let mut v = FreezesView::default();
            let mut model: BTreeMap<Option<String>, i64> = BTreeMap::new();
            for (i, (apply, s)) in ops.iter().enumerate() {
                let tenant = match s { 0 => None, 1 => Some("a".to_string()), _ => Some("b".to_string()) };
                let at = i as i64;
                if *apply {
                    v.apply_parts("freeze_applied", &applied(tenant.as_deref(), "r"), Some("x"), at);
                    model.entry(tenant).or_insert(at);
                } else {
                    v.apply_parts("freeze_lifted", &lifted(tenant.as_deref()), Some("x"), at);
                    model.remove(&tenant);
                }
            }
            prop_assert_eq!(v.active.len(), model.len());
            for (t, at) in &model {
                prop_assert_eq!(v.of_scope(t.as_deref()).map(|f| f.frozen_at), Some(*at));
            }
            for t in ["a", "b"] {
                let expect = model.get(&None).or_else(|| model.get(&Some(t.to_string())));
                prop_assert_eq!(v.covering(t).map(|f| f.frozen_at), expect.copied());
            }
        }
    }
}
