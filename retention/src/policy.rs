//! Retention windows: built-in defaults, and how set policies override them.

use custos_domain::{Category, TenantId};
use custos_projections::retention::RetentionPolicySet;
use custos_projections::RetentionPolicies;
use serde::Serialize;

use crate::RetentionError;

/// Built-in windows in days (DESIGN §7). Artifacts and custom events have no
/// regulatory default in the design; they keep a year, like governance, so that
/// nothing unclassified disappears sooner than the audit trail about it.
pub const DEFAULT_DAYS: [(Category, u32); 8] = [
    (Category::Runs, 90),
    (Category::Costs, 180),
    (Category::Approvals, 90),
    (Category::Artifacts, 365),
    (Category::Queue, 60),
    (Category::Dlq, 30),
    (Category::Governance, 365),
    (Category::Custom, 365),
];

/// Longest window accepted (100 years).
pub const MAX_DAYS: u32 = 36_500;

/// The built-in window of a category.
pub fn default_days(c: Category) -> u32 {
    DEFAULT_DAYS.iter().find(|(k, _)| *k == c).map(|(_, d)| *d).unwrap_or(365)
}

/// The window in force for (tenant, category): tenant override, else store-wide policy, else default.
pub fn effective_days(p: &RetentionPolicies, tenant: &str, c: Category) -> u32 {
    p.days_set(tenant, c).unwrap_or_else(|| default_days(c))
}

/// Checks a `--days` value.
pub fn validate_days(days: i64) -> Result<u32, RetentionError> {
    match u32::try_from(days) {
        Ok(d) if (1..=MAX_DAYS).contains(&d) => Ok(d),
        _ => Err(RetentionError::Input(format!("invalid --days {days}: use a whole number of days from 1 to {MAX_DAYS}"))),
    }
}

/// The payload of a policy change.
pub fn plan_set(tenant: Option<&TenantId>, category: Category, days: i64) -> Result<RetentionPolicySet, RetentionError> {
    if tenant.is_some_and(|t| t.is_system()) {
        return Err(RetentionError::Input("_system is never purged; it cannot have a retention policy".into()));
    }
    Ok(RetentionPolicySet { category, days: validate_days(days)?, tenant: tenant.map(|t| t.to_string()) })
}

/// One line of `retention policy list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRow {
    /// Category.
    pub category: Category,
    /// Window in days.
    pub days: u32,
    /// Tenant override, or null for store-wide.
    pub tenant: Option<String>,
    /// `default` (built in), `store` (set for every tenant) or `tenant` (override).
    pub source: &'static str,
    /// Who set it (null for defaults).
    pub set_by: Option<String>,
    /// When (RFC 3339; null for defaults).
    pub set_at: Option<String>,
}

/// Store-wide windows for every category, then each tenant override.
pub fn list(p: &RetentionPolicies) -> Vec<PolicyRow> {
    let mut out = vec![];
    for c in Category::ALL {
        out.push(match p.get(None, c) {
            Some(s) => PolicyRow {
                category: c,
                days: s.days,
                tenant: None,
                source: "store",
                set_by: Some(s.set_by.clone()),
                set_at: Some(custos_domain::format_ts(s.set_at)),
            },
            None => PolicyRow { category: c, days: default_days(c), tenant: None, source: "default", set_by: None, set_at: None },
        });
    }
    for t in p.tenants_with_overrides() {
        for c in Category::ALL {
            if let Some(s) = p.get(Some(t), c) {
                out.push(PolicyRow {
                    category: c,
                    days: s.days,
                    tenant: Some(t.to_string()),
                    source: "tenant",
                    set_by: Some(s.set_by.clone()),
                    set_at: Some(custos_domain::format_ts(s.set_at)),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_projections::PolicyState;

    #[test]
    fn overrides_win_over_defaults() {
        let mut p = RetentionPolicies::default();
        assert_eq!(effective_days(&p, "acme", Category::Runs), 90);
        assert_eq!(effective_days(&p, "acme", Category::Dlq), 30);
        let st = |days, tenant: Option<&str>| PolicyState {
            category: Category::Runs,
            days,
            tenant: tenant.map(str::to_string),
            set_by: "c".into(),
            set_at: 0,
            seq: 1,
        };
        p.set.entry("*".into()).or_default().insert("runs".into(), st(40, None));
        assert_eq!(effective_days(&p, "acme", Category::Runs), 40);
        p.set.entry("acme".into()).or_default().insert("runs".into(), st(7, Some("acme")));
        assert_eq!(effective_days(&p, "acme", Category::Runs), 7);
        assert_eq!(effective_days(&p, "globex", Category::Runs), 40);
        let rows = list(&p);
        assert_eq!(rows.len(), 9);
        assert_eq!(rows[8].source, "tenant");
    }

    #[test]
    fn days_bounds() {
        assert!(validate_days(0).is_err());
        assert!(validate_days(-1).is_err());
        assert!(validate_days(36_501).is_err());
        assert_eq!(validate_days(1).ok(), Some(1));
        assert!(plan_set(Some(&TenantId::system()), Category::Runs, 5).is_err());
    }
}
