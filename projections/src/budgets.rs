//! Budgets and spend: per-tenant [`SpendView`] (snapshot `budgets`, sealed with the
//! tenant's DEK) and the global [`BudgetConfigView`] (snapshot `budget-config` in `_system`).
//!
//! Spend is keyed by the UTC calendar day of each cost's `occurred_at`, in integer
//! micro-USD; a month's spend is the sum of its days, so day and month totals can never
//! disagree. Global spend is the sum of the tenants' views (computed by the caller).

use std::collections::{BTreeMap, BTreeSet};

use custos_domain::budget::{utc_day, BudgetScope, BudgetSet, Limits, Thresholds};
use custos_domain::checkpoint::ApprovalsConfigSet;
use custos_domain::kinds::CostRecorded;
use custos_domain::{Category, Timestamp};
use custos_eventlog::Event;
use serde::{Deserialize, Serialize};

use crate::freezes::FreezesView;
use crate::snapshot::Folded;
use crate::Projection;

/// Spend of one provider/model on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// Total, micro-USD.
    pub usd_micros: i64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost events.
    pub events: u64,
}

impl Spend {
    /// Adds one cost.
    pub fn add(&mut self, c: &CostRecorded) {
        self.usd_micros = self.usd_micros.saturating_add(c.usd_micros);
        self.tokens_in = self.tokens_in.saturating_add(c.tokens_in);
        self.tokens_out = self.tokens_out.saturating_add(c.tokens_out);
        self.events += 1;
    }
    /// Adds another total.
    pub fn merge(&mut self, o: &Spend) {
        self.usd_micros = self.usd_micros.saturating_add(o.usd_micros);
        self.tokens_in = self.tokens_in.saturating_add(o.tokens_in);
        self.tokens_out = self.tokens_out.saturating_add(o.tokens_out);
        self.events += o.events;
    }
}

/// One UTC day of a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySpend {
    /// Day total.
    pub total: Spend,
    /// provider → model → spend.
    pub by_model: BTreeMap<String, BTreeMap<String, Spend>>,
}

/// A tenant's spend by day, its own budget, and the anomaly days already recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendView {
    /// UTC day number → spend.
    pub days: BTreeMap<i64, DaySpend>,
    /// Tenant-specific limits (`budget_set` scope tenant).
    pub limits: Limits,
    /// Days (YYYY-MM-DD) with a recorded `cost_anomaly`.
    pub anomalies: BTreeSet<String>,
}

impl SpendView {
    /// Folds the parts of an event (also used for events just appended in a transaction).
    pub fn apply_parts(&mut self, category: Category, kind: &str, occurred_at: i64, data: &serde_json::Value) {
        match (category, kind) {
            (Category::Costs, "cost_recorded") => {
                let Ok(c) = CostRecorded::deserialize(data) else { return };
                let d = self.days.entry(utc_day(occurred_at)).or_default();
                d.total.add(&c);
                d.by_model.entry(c.provider.clone()).or_default().entry(c.model.clone()).or_default().add(&c);
            }
            (_, "budget_set") => {
                if let Ok(b) = BudgetSet::deserialize(data) {
                    if b.scope == BudgetScope::Tenant {
                        self.limits.merge(&b.limits);
                    }
                }
            }
            (_, "cost_anomaly") => {
                if let Some(day) = data.get("day").and_then(|v| v.as_str()) {
                    self.anomalies.insert(day.to_string());
                }
            }
            _ => {}
        }
    }

    /// Spend on one day.
    pub fn day(&self, day: i64) -> i64 {
        self.days.get(&day).map(|d| d.total.usd_micros).unwrap_or(0)
    }

    /// Spend in the days `[from, to]`.
    pub fn range(&self, from: i64, to: i64) -> Spend {
        let mut s = Spend::default();
        for d in self.days.range(from..=to).map(|(_, d)| &d.total) {
            s.merge(d);
        }
        s
    }
}

impl Projection for SpendView {
    fn apply(&mut self, ev: &Event) {
        if ev.header.tenant.is_system() {
            return;
        }
        if let Some(d) = &ev.data {
            self.apply_parts(ev.header.category, &ev.header.kind, ev.header.occurred_at, d);
        }
    }
}

impl Folded for SpendView {
    const NAME: &'static str = "budgets";
}

/// Global budget configuration, from `_system`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetConfigView {
    /// Global limits.
    pub global: Limits,
    /// Default limits of tenants without their own.
    pub tenant_default: Limits,
    /// Thresholds (default 80 % / 100 %).
    pub thresholds: Thresholds,
    /// Default checkpoint expiry, seconds (None = 72 h).
    pub default_expiry_secs: Option<i64>,
    /// Active emergency freezes: here because the budget check must honour them with the
    /// one snapshot it already loads. `default` so snapshots written before freezes load.
    #[serde(default)]
    pub freezes: FreezesView,
}

impl BudgetConfigView {
    /// Folds the parts of a `_system` event (`actor` and `at` are the event's; freezes quote them).
    pub fn apply_parts(&mut self, kind: &str, data: &serde_json::Value, actor: Option<&str>, at: Timestamp) {
        match kind {
            "freeze_applied" | "freeze_lifted" => self.freezes.apply_parts(kind, data, actor, at),
            "budget_set" => {
                if let Ok(b) = BudgetSet::deserialize(data) {
                    match b.scope {
                        BudgetScope::Global => self.global.merge(&b.limits),
                        BudgetScope::TenantDefault => self.tenant_default.merge(&b.limits),
                        BudgetScope::Tenant => {}
                    }
                }
            }
            "budget_thresholds_set" => {
                if let Ok(t) = Thresholds::deserialize(data) {
                    self.thresholds = t;
                }
            }
            "approvals_config_set" => {
                if let Ok(c) = ApprovalsConfigSet::deserialize(data) {
                    self.default_expiry_secs = Some(c.default_expiry_secs);
                }
            }
            _ => {}
        }
    }

    /// Effective limits of a tenant: each of daily/monthly from the tenant, else the default.
    pub fn effective(&self, tenant: &Limits) -> Limits {
        Limits {
            daily_usd_micros: tenant.daily_usd_micros.or(self.tenant_default.daily_usd_micros),
            monthly_usd_micros: tenant.monthly_usd_micros.or(self.tenant_default.monthly_usd_micros),
        }
    }
}

impl Projection for BudgetConfigView {
    fn apply(&mut self, ev: &Event) {
        if !ev.header.tenant.is_system() {
            return;
        }
        if let Some(d) = &ev.data {
            self.apply_parts(&ev.header.kind, d, ev.actor.as_deref(), ev.header.occurred_at);
        }
    }
}

impl Folded for BudgetConfigView {
    const NAME: &'static str = "budget-config";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cost(usd: i64, provider: &str) -> serde_json::Value {
        json!({"run_id": "r", "provider": provider, "model": "m", "tokens_in": 1, "tokens_out": 2, "usd_micros": usd})
    }

    #[test]
    fn given_costs_around_midnight_when_folded_then_split_by_utc_day() {
        let midnight = custos_domain::parse_ts("2026-03-01T00:00:00Z").unwrap_or(0);
        let mut v = SpendView::default();
        v.apply_parts(Category::Costs, "cost_recorded", midnight - 1, &cost(10, "a"));
        v.apply_parts(Category::Costs, "cost_recorded", midnight, &cost(20, "b"));
        v.apply_parts(Category::Costs, "cost_recorded", midnight + 1, &cost(40, "b"));
        let d = utc_day(midnight);
        assert_eq!(v.day(d - 1), 10);
        assert_eq!(v.day(d), 60);
        // February ends the day before: March-to-date excludes it.
        assert_eq!(v.range(custos_domain::budget::month_start(d), d).usd_micros, 60);
        assert_eq!(v.days[&d].by_model["b"]["m"].events, 2);
        // A cost under another category or a malformed payload is not spend.
        v.apply_parts(Category::Runs, "cost_recorded", midnight, &cost(1000, "a"));
        v.apply_parts(Category::Costs, "cost_recorded", midnight, &json!({"usd_micros": 5}));
        assert_eq!(v.day(d), 60);
    }

    #[test]
    fn given_budget_events_when_folded_then_fields_merge_and_defaults_apply() {
        let mut c = BudgetConfigView::default();
        c.apply_parts("budget_set", &json!({"scope": "tenant_default", "daily_usd_micros": 5}), None, 0);
        c.apply_parts("budget_set", &json!({"scope": "tenant_default", "monthly_usd_micros": 100}), None, 0);
        c.apply_parts("budget_set", &json!({"scope": "global", "daily_usd_micros": 25}), None, 0);
        c.apply_parts("budget_thresholds_set", &json!({"soft_permille": 500, "hard_permille": 900}), None, 0);
        c.apply_parts("freeze_applied", &json!({"scope": "global", "reason": "INC"}), Some("alice"), 3);
        assert_eq!(c.freezes.covering("t").map(|f| f.frozen_by.as_str()), Some("alice"));
        assert_eq!(c.tenant_default, Limits { daily_usd_micros: Some(5), monthly_usd_micros: Some(100) });
        assert_eq!(c.global.daily_usd_micros, Some(25));
        assert_eq!(c.thresholds.soft_permille, 500);
        let own = Limits { daily_usd_micros: Some(1), monthly_usd_micros: None };
        assert_eq!(c.effective(&own), Limits { daily_usd_micros: Some(1), monthly_usd_micros: Some(100) });
        let mut v = SpendView::default();
        v.apply_parts(Category::Governance, "budget_set", 0, &json!({"scope": "tenant", "tenant": "t", "daily_usd_micros": 7}));
        v.apply_parts(Category::Governance, "budget_set", 0, &json!({"scope": "global", "daily_usd_micros": 9}));
        assert_eq!(v.limits.daily_usd_micros, Some(7));
    }

    #[test]
    fn a_snapshot_written_before_freezes_existed_still_loads() {
        let old = json!({"global": {}, "tenant_default": {}, "thresholds": {"soft_permille": 800, "hard_permille": 1000}, "default_expiry_secs": null});
        let c: BudgetConfigView = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.freezes.active.is_empty());
    }
}
