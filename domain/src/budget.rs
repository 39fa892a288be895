//! Cost budgets: payloads of the budget events, UTC calendar arithmetic, and the
//! pure pre-flight decision (`allow` / `throttle` / `deny`).
//!
//! Everything here is integer arithmetic: money in micro-USD, thresholds in
//! per-mille, comparisons widened to `i128` so no product can overflow. The only
//! floating point in the budget feature is the anomaly *statistic* (mean and
//! standard deviation of daily spend), which never becomes stored money.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::freeze::FreezeInfo;
use crate::{Timestamp, UsdMicros};

/// Microseconds in one UTC day.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// Why a budget input was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BudgetError {
    /// A threshold that is not an exact ratio like `0.8`, `1`, `80%`.
    #[error("invalid threshold {0:?}: use a ratio with at most 3 decimals (0.8, 1.0) or a percentage (80%)")]
    BadRatio(String),
    /// Soft above hard, or out of range.
    #[error("invalid thresholds: soft {soft} must be > 0 and ≤ hard {hard}, and hard ≤ 10.0")]
    BadThresholds {
        /// Soft, per-mille.
        soft: u32,
        /// Hard, per-mille.
        hard: u32,
    },
    /// `budget set` with neither `--daily` nor `--monthly`.
    #[error("nothing to set: give --daily USD and/or --monthly USD")]
    NothingToSet,
}

/// UTC calendar day number (days since 1970-01-01) of a timestamp.
pub fn utc_day(ts: Timestamp) -> i64 {
    ts.div_euclid(DAY_MICROS)
}

fn date_of(day: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::try_days(day)?)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_string(day: i64) -> String {
    date_of(day).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_else(|| format!("day{day}"))
}

/// `YYYY-MM` of a day number.
pub fn month_string(day: i64) -> String {
    date_of(day).map(|d| d.format("%Y-%m").to_string()).unwrap_or_else(|| format!("day{day}"))
}

/// First day number of the UTC calendar month containing `day`.
pub fn month_start(day: i64) -> i64 {
    date_of(day).map(|d| day - i64::from(d.day0())).unwrap_or(day)
}

/// Where a budget applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// One tenant (recorded in that tenant's stream).
    Tenant,
    /// Every tenant without its own budget (recorded in `_system`).
    TenantDefault,
    /// The sum over all tenants (recorded in `_system`).
    Global,
}

impl BudgetScope {
    /// Name in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Tenant => "tenant",
            BudgetScope::TenantDefault => "tenant_default",
            BudgetScope::Global => "global",
        }
    }
}

/// Daily and monthly limits; `None` = no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Per UTC calendar day.
    pub daily_usd_micros: Option<i64>,
    /// Per UTC calendar month.
    pub monthly_usd_micros: Option<i64>,
}

impl Limits {
    /// Overlays the fields a `budget_set` carries (absent fields keep their value).
    pub fn merge(&mut self, o: &Limits) {
        if o.daily_usd_micros.is_some() {
            self.daily_usd_micros = o.daily_usd_micros;
        }
        if o.monthly_usd_micros.is_some() {
            self.monthly_usd_micros = o.monthly_usd_micros;
        }
    }
    /// True when neither limit is set.
    pub fn is_empty(&self) -> bool {
        self.daily_usd_micros.is_none() && self.monthly_usd_micros.is_none()
    }
}

/// `budget_set`: tenant scope in the tenant's stream, other scopes in `_system`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSet {
    /// Scope.
    pub scope: BudgetScope,
    /// Tenant, for scope `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// New limits (absent = unchanged).
    #[serde(flatten)]
    pub limits: Limits,
}

/// Soft and hard thresholds as per-mille of a budget (800 = 80 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Throttle at or above this.
    pub soft_permille: u32,
    /// Deny at or above this.
    pub hard_permille: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { soft_permille: 800, hard_permille: 1000 }
    }
}

impl Thresholds {
    /// Checks soft ≤ hard, both in (0, 10 000].
    pub fn validate(self) -> Result<Self, BudgetError> {
        if self.soft_permille == 0 || self.soft_permille > self.hard_permille || self.hard_permille > 10_000 {
            return Err(BudgetError::BadThresholds { soft: self.soft_permille, hard: self.hard_permille });
        }
        Ok(self)
    }
}

/// `budget_thresholds_set` (`_system`).
pub type BudgetThresholdsSet = Thresholds;

/// Parses `0.8`, `1`, `1.0`, `.75`, `80%`, `87.5%` exactly into per-mille.
pub fn parse_permille(s: &str) -> Result<u32, BudgetError> {
    let bad = || BudgetError::BadRatio(s.to_string());
    let t = s.trim();
    let (num, scale_digits) = match t.strip_suffix('%') {
        Some(p) => (p, 1usize), // percent: 1 decimal of percent = per-mille
        None => (t, 3usize),
    };
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if (whole.is_empty() && frac.is_empty())
        || frac.len() > scale_digits
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || whole.len() > 6
    {
        return Err(bad());
    }
    let w: u32 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let mut f: u32 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
    for _ in frac.len()..scale_digits {
        f *= 10;
    }
    let unit = 10u32.pow(scale_digits as u32);
    w.checked_mul(unit).and_then(|w| w.checked_add(f)).ok_or_else(bad)
}

/// Formats per-mille as a ratio string (`800` → `0.8`).
pub fn format_permille(p: u32) -> String {
    let s = format!("{}.{:03}", p / 1000, p % 1000);
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').map(|x| format!("{x}.0")).unwrap_or_else(|| s.to_string())
}

/// `allow` < `throttle` < `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Under the soft threshold everywhere.
    Allow,
    /// At or above a soft threshold somewhere.
    Throttle,
    /// At or above a hard threshold somewhere.
    Deny,
}

impl Decision {
    /// Name in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Throttle => "throttle",
            Decision::Deny => "deny",
        }
    }
}

/// `daily` or `monthly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// UTC calendar day.
    Daily,
    /// UTC calendar month.
    Monthly,
}

impl Period {
    /// Name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Monthly => "monthly",
        }
    }
}

/// One limit to check: what has been spent in its period and its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitCheck {
    /// Tenant (tenant or tenant-default budget) or global.
    pub scope: BudgetScope,
    /// Day or month.
    pub period: Period,
    /// Spend so far in the period.
    pub spent_usd_micros: i64,
    /// The budget.
    pub budget_usd_micros: i64,
}

impl LimitCheck {
    /// Decision for a request of `usd` against this limit.
    pub fn decide(&self, usd: i64, t: Thresholds) -> Decision {
        let projected = i128::from(self.spent_usd_micros) + i128::from(usd);
        let budget = i128::from(self.budget_usd_micros);
        // projected / budget ≥ p / 1000  ⇔  projected · 1000 ≥ budget · p   (exact, no division)
        if projected * 1000 >= budget * i128::from(t.hard_permille) {
            Decision::Deny
        } else if projected * 1000 >= budget * i128::from(t.soft_permille) {
            Decision::Throttle
        } else {
            Decision::Allow
        }
    }
}

/// The pre-flight command: may `tenant` spend `usd_micros` more now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckBudget {
    /// Tenant asking.
    pub tenant: String,
    /// Requested spend.
    pub usd_micros: i64,
}

/// The outcome of a budget check, also the payload of `budget_throttled` / `budget_denied`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetOutcome {
    /// allow / throttle / deny.
    pub decision: Decision,
    /// Tenant.
    pub tenant: String,
    /// Requested spend.
    pub usd_micros: i64,
    /// Tenant's spend today + request.
    pub projected_daily_usd_micros: i64,
    /// Tenant's spend this month + request.
    pub projected_monthly_usd_micros: i64,
    /// Tenant's effective daily budget (tenant-specific, else tenant-default).
    #[serde(default)]
    pub daily_budget_usd_micros: Option<i64>,
    /// Tenant's effective monthly budget.
    #[serde(default)]
    pub monthly_budget_usd_micros: Option<i64>,
    /// Global spend today + request (when a global daily budget exists).
    #[serde(default)]
    pub projected_global_daily_usd_micros: Option<i64>,
    /// Global spend this month + request (when a global monthly budget exists).
    #[serde(default)]
    pub projected_global_monthly_usd_micros: Option<i64>,
    /// Global daily budget.
    #[serde(default)]
    pub global_daily_budget_usd_micros: Option<i64>,
    /// Global monthly budget.
    #[serde(default)]
    pub global_monthly_budget_usd_micros: Option<i64>,
    /// Soft threshold used.
    pub soft_permille: u32,
    /// Hard threshold used.
    pub hard_permille: u32,
    /// The limit that decided (absent on allow without any near limit).
    #[serde(default)]
    pub limit: Option<LimitCheck>,
    /// Human reason.
    pub reason: String,
    /// UTC day checked (YYYY-MM-DD).
    pub day: String,
    /// The freeze that decided, when one applies (then the decision is `deny` whatever the spend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<FreezeInfo>,
}

/// What a check reads: spends and limits, already resolved by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetInputs {
    /// Tenant spend today / this month.
    pub tenant_day: i64,
    /// Tenant spend this month.
    pub tenant_month: i64,
    /// Effective tenant limits.
    pub tenant_limits: Limits,
    /// Global spend today (only needed when a global daily limit exists).
    pub global_day: i64,
    /// Global spend this month.
    pub global_month: i64,
    /// Global limits.
    pub global_limits: Limits,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Day checked.
    pub day: i64,
    /// The active freeze covering the tenant (global first), if any.
    pub freeze: Option<FreezeInfo>,
}

/// `decide(state, command) -> events`: the budget pre-flight. Returns the outcome and
/// the governance events to record (`budget_throttled` / `budget_denied`, none on allow).
pub fn decide_check(s: &BudgetInputs, cmd: &CheckBudget) -> (BudgetOutcome, Vec<(&'static str, BudgetOutcome)>) {
    let usd = cmd.usd_micros;
    let mut checks = vec![];
    let push = |checks: &mut Vec<LimitCheck>, scope, period, spent, lim: Option<i64>| {
        if let Some(b) = lim {
            checks.push(LimitCheck { scope, period, spent_usd_micros: spent, budget_usd_micros: b });
        }
    };
    push(&mut checks, BudgetScope::Tenant, Period::Daily, s.tenant_day, s.tenant_limits.daily_usd_micros);
    push(&mut checks, BudgetScope::Tenant, Period::Monthly, s.tenant_month, s.tenant_limits.monthly_usd_micros);
    push(&mut checks, BudgetScope::Global, Period::Daily, s.global_day, s.global_limits.daily_usd_micros);
    push(&mut checks, BudgetScope::Global, Period::Monthly, s.global_month, s.global_limits.monthly_usd_micros);
    // The first limit with the worst decision names the reason (tenant before global, day before month).
    let mut worst: Option<(Decision, LimitCheck)> = None;
    for c in &checks {
        let d = c.decide(usd, s.thresholds);
        if worst.is_none_or(|(w, _)| d > w) {
            worst = Some((d, *c));
        }
    }
    let decision = worst.map(|(d, _)| d).unwrap_or(Decision::Allow);
    let limit = worst.filter(|(d, _)| *d != Decision::Allow).map(|(_, c)| c);
    // An emergency freeze denies whatever the spend; the projections stay in the answer
    // so an operator sees what the check would otherwise have said.
    let (decision, limit, frozen_reason) = match &s.freeze {
        Some(f) => (Decision::Deny, None, Some(f.denial_reason())),
        None => (decision, limit, None),
    };
    let reason = if let Some(r) = frozen_reason {
        r
    } else {
        match (decision, limit) {
            (Decision::Deny, Some(c)) => {
                let p = UsdMicros(c.spent_usd_micros.saturating_add(usd));
                let b = UsdMicros(c.budget_usd_micros);
                let period = c.period.as_str();
                // The tenant form is quoted verbatim by workflows and the runbook, so it stays
                // byte for byte; the global form names no tenant because the spend is everyone's.
                match c.scope {
                    BudgetScope::Global => format!("budget exceeded: projected {p} exceeds the global {period} budget {b}"),
                    _ => format!("budget exceeded: projected {p} exceeds {period} budget {b} for tenant {}", cmd.tenant),
                }
            }
            (Decision::Throttle, Some(c)) => {
                let p = UsdMicros(c.spent_usd_micros.saturating_add(usd));
                let b = UsdMicros(c.budget_usd_micros);
                let period = c.period.as_str();
                let pct = format_permille(s.thresholds.soft_permille * 100);
                let pct = pct.trim_end_matches(".0");
                match c.scope {
                    BudgetScope::Global => {
                        format!("throttle: projected {p} is at or above {pct}% of the global {period} budget {b}")
                    }
                    _ => format!("throttle: projected {p} is at or above {pct}% of the {period} budget {b} for tenant {}", cmd.tenant),
                }
            }
            _ if checks.is_empty() => format!("allow: no budget applies to tenant {}", cmd.tenant),
            _ => "allow: projected spend is under every soft threshold".to_string(),
        }
    };
    let g = |lim: Option<i64>, spent: i64| lim.map(|_| spent.saturating_add(usd));
    let out = BudgetOutcome {
        decision,
        tenant: cmd.tenant.clone(),
        usd_micros: usd,
        projected_daily_usd_micros: s.tenant_day.saturating_add(usd),
        projected_monthly_usd_micros: s.tenant_month.saturating_add(usd),
        daily_budget_usd_micros: s.tenant_limits.daily_usd_micros,
        monthly_budget_usd_micros: s.tenant_limits.monthly_usd_micros,
        projected_global_daily_usd_micros: g(s.global_limits.daily_usd_micros, s.global_day),
        projected_global_monthly_usd_micros: g(s.global_limits.monthly_usd_micros, s.global_month),
        global_daily_budget_usd_micros: s.global_limits.daily_usd_micros,
        global_monthly_budget_usd_micros: s.global_limits.monthly_usd_micros,
        soft_permille: s.thresholds.soft_permille,
        hard_permille: s.thresholds.hard_permille,
        limit,
        reason,
        day: day_string(s.day),
        freeze: s.freeze.clone(),
    };
    let events = match decision {
        Decision::Allow => vec![],
        Decision::Throttle => vec![("budget_throttled", out.clone())],
        Decision::Deny => vec![("budget_denied", out.clone())],
    };
    (out, events)
}

/// `cost_anomaly` (tenant stream, governance): a day whose spend is far above the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostAnomaly {
    /// The anomalous UTC day.
    pub day: String,
    /// Its spend.
    pub spend_usd_micros: i64,
    /// Baseline mean (rounded to a micro-USD, for display only).
    pub baseline_mean_usd_micros: i64,
    /// Baseline standard deviation (rounded, for display only).
    pub baseline_stddev_usd_micros: i64,
    /// Days in the baseline.
    pub baseline_days: u32,
    /// Sigma used, in thousandths.
    pub sigma_milli: u32,
}

/// Anomaly detection settings (defaults: 3.0 sigma, $3.00 minimum, 10 baseline days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyRule {
    /// Sigma in thousandths (3000 = 3.0).
    pub sigma_milli: u32,
    /// A day must spend at least this to be flagged.
    pub min_usd_micros: i64,
    /// Baseline days needed before anything is flagged.
    pub min_baseline_days: u32,
}

impl Default for AnomalyRule {
    fn default() -> Self {
        Self { sigma_milli: 3000, min_usd_micros: 3_000_000, min_baseline_days: 10 }
    }
}

/// Days that are anomalous: for each day `d` with spend, the baseline is every
/// earlier UTC day of the tenant's history from its first spend day up to `d-1`
/// (days without spend count as 0). `d` is flagged when spend ≥ min, the baseline has
/// ≥ `min_baseline_days` days, and `spend − mean > sigma · stddev`.
///
/// The test is evaluated exactly in integers: with n days, S = Σx, Q = Σx²,
/// `x − S/n > σ·sqrt(Q/n − (S/n)²)` ⇔ `n·x − S > 0 ∧ (n·x − S)² · 10⁶ > σ_milli² · (n·Q − S²)`.
/// The mean and stddev in the payload are rounded f64, for people only.
pub fn detect_anomalies(daily: &BTreeMap<i64, i64>, rule: AnomalyRule) -> Vec<CostAnomaly> {
    let Some((&first, _)) = daily.iter().next() else { return vec![] };
    let Some((&last, _)) = daily.iter().next_back() else { return vec![] };
    let mut out = vec![];
    let (mut n, mut s, mut q) = (0i128, 0i128, 0i128);
    for day in first..=last {
        let x = i128::from(daily.get(&day).copied().unwrap_or(0));
        if x >= i128::from(rule.min_usd_micros) && n >= i128::from(rule.min_baseline_days) && n > 0 {
            let dev = n * x - s;
            let var_n2 = n * q - s * s; // n² · variance ≥ 0
            let sig = i128::from(rule.sigma_milli);
            if dev > 0 && dev.saturating_mul(dev).saturating_mul(1_000_000) > sig * sig * var_n2 {
                let mean = s as f64 / n as f64;
                let sd = (var_n2.max(0) as f64).sqrt() / n as f64;
                out.push(CostAnomaly {
                    day: day_string(day),
                    spend_usd_micros: x as i64,
                    baseline_mean_usd_micros: mean.round() as i64,
                    baseline_stddev_usd_micros: sd.round() as i64,
                    baseline_days: n as u32,
                    sigma_milli: rule.sigma_milli,
                });
            }
        }
        n += 1;
        s += x;
        q += x * x;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(day_spent: i64, daily: i64) -> BudgetInputs {
        BudgetInputs {
            tenant_day: day_spent,
            tenant_month: day_spent,
            tenant_limits: Limits { daily_usd_micros: Some(daily), monthly_usd_micros: None },
            ..Default::default()
        }
    }

    fn check(usd: i64) -> CheckBudget {
        CheckBudget { tenant: "acme-corp".into(), usd_micros: usd }
    }

    #[test]
    fn given_daily_budget_when_projected_below_soft_then_allow() {
        let (o, ev) = decide_check(&inputs(0, 10_000), &check(7_999));
        assert_eq!(o.decision, Decision::Allow);
        assert!(ev.is_empty());
    }

    #[test]
    fn given_daily_budget_when_projected_exactly_soft_then_throttle() {
        let (o, ev) = decide_check(&inputs(3_000, 10_000), &check(5_000));
        assert_eq!(o.decision, Decision::Throttle);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, "budget_throttled");
        assert_eq!(o.projected_daily_usd_micros, 8_000);
    }

    #[test]
    fn given_daily_budget_when_projected_one_micro_below_hard_then_throttle() {
        let (o, _) = decide_check(&inputs(0, 10_000), &check(9_999));
        assert_eq!(o.decision, Decision::Throttle);
    }

    #[test]
    fn given_daily_budget_when_projected_exactly_hard_then_deny() {
        let (o, ev) = decide_check(&inputs(5_000, 10_000), &check(5_000));
        assert_eq!(o.decision, Decision::Deny);
        assert_eq!(ev[0].0, "budget_denied");
    }

    #[test]
    fn given_spend_when_over_then_deny_message_names_amounts() {
        let (o, _) = decide_check(&inputs(0, 10_000), &check(15_000));
        assert_eq!(o.reason, "budget exceeded: projected $0.015000 exceeds daily budget $0.010000 for tenant acme-corp");
    }

    #[test]
    fn given_a_freeze_when_checked_then_deny_names_it_and_is_recorded() {
        let f = crate::freeze::FreezeInfo {
            scope: crate::freeze::FreezeScope::Global,
            tenant: None,
            reason: "INC-1".into(),
            frozen_by: "alice".into(),
            frozen_at: "2026-01-01T00:00:00Z".into(),
        };
        // No budget at all and a tiny request: still denied.
        let s = BudgetInputs { freeze: Some(f.clone()), ..Default::default() };
        let (o, ev) = decide_check(&s, &check(1));
        assert_eq!(o.decision, Decision::Deny);
        assert_eq!(o.freeze.as_ref(), Some(&f));
        assert!(o.reason.contains("global freeze by alice") && o.reason.contains("INC-1"), "{}", o.reason);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, "budget_denied");
        let (o, _) = decide_check(&BudgetInputs::default(), &check(1));
        assert!(o.freeze.is_none() && o.decision == Decision::Allow);
    }

    #[test]
    fn given_no_budget_then_allow() {
        let (o, ev) = decide_check(&BudgetInputs::default(), &check(1_000_000_000));
        assert_eq!(o.decision, Decision::Allow);
        assert!(ev.is_empty() && o.limit.is_none());
    }

    #[test]
    fn given_global_monthly_when_tenant_fine_then_global_denies() {
        let s = BudgetInputs {
            tenant_limits: Limits { daily_usd_micros: Some(10_000_000), monthly_usd_micros: None },
            global_month: 99_000_000,
            global_limits: Limits { daily_usd_micros: None, monthly_usd_micros: Some(100_000_000) },
            ..Default::default()
        };
        let (o, _) = decide_check(&s, &check(1_000_000));
        assert_eq!(o.decision, Decision::Deny);
        assert_eq!(o.limit.map(|l| l.scope), Some(BudgetScope::Global));
        assert!(o.reason.contains("global monthly budget $100.000000"), "{}", o.reason);
    }

    fn global_monthly(month_spent: i64, monthly: i64) -> BudgetInputs {
        BudgetInputs {
            global_month: month_spent,
            global_limits: Limits { daily_usd_micros: None, monthly_usd_micros: Some(monthly) },
            ..Default::default()
        }
    }

    #[test]
    fn given_global_monthly_when_near_then_throttle_message_names_no_tenant() {
        let (o, _) = decide_check(&global_monthly(1_000, 5_000), &check(3_000));
        assert_eq!(o.decision, Decision::Throttle);
        assert_eq!(o.reason, "throttle: projected $0.004000 is at or above 80% of the global monthly budget $0.005000");
    }

    #[test]
    fn given_global_monthly_when_over_then_deny_message_names_no_tenant() {
        let (o, _) = decide_check(&global_monthly(1_000, 5_000), &check(5_000));
        assert_eq!(o.decision, Decision::Deny);
        assert_eq!(o.reason, "budget exceeded: projected $0.006000 exceeds the global monthly budget $0.005000");
    }

    #[test]
    fn given_tenant_daily_when_near_then_throttle_message_names_the_tenant() {
        let (o, _) = decide_check(&inputs(3_000, 10_000), &check(5_000));
        assert_eq!(o.reason, "throttle: projected $0.008000 is at or above 80% of the daily budget $0.010000 for tenant acme-corp");
    }

    #[test]
    fn given_custom_thresholds_then_applied_exactly() {
        let mut s = inputs(0, 1_000);
        s.thresholds = Thresholds { soft_permille: 500, hard_permille: 1200 };
        assert_eq!(decide_check(&s, &check(499)).0.decision, Decision::Allow);
        assert_eq!(decide_check(&s, &check(500)).0.decision, Decision::Throttle);
        assert_eq!(decide_check(&s, &check(1_199)).0.decision, Decision::Throttle);
        assert_eq!(decide_check(&s, &check(1_200)).0.decision, Decision::Deny);
    }

    #[test]
    fn permille_parses_exactly() {
        assert_eq!(parse_permille("0.8"), Ok(800));
        assert_eq!(parse_permille("1"), Ok(1000));
        assert_eq!(parse_permille("1.0"), Ok(1000));
        assert_eq!(parse_permille(".875"), Ok(875));
        assert_eq!(parse_permille("80%"), Ok(800));
        assert_eq!(parse_permille("87.5%"), Ok(875));
        for bad in ["", "0.8001", "-1", "1e0", "abc", "80.25%", "%"] {
            assert!(parse_permille(bad).is_err(), "{bad}");
        }
        assert_eq!(format_permille(800), "0.8");
        assert_eq!(format_permille(1000), "1.0");
        assert!(Thresholds { soft_permille: 900, hard_permille: 800 }.validate().is_err());
    }

    #[test]
    fn calendar_boundaries_are_utc() {
        let midnight = crate::parse_ts("2025-03-01T00:00:00Z").unwrap_or(0);
        assert_eq!(day_string(utc_day(midnight)), "2025-03-01");
        assert_eq!(day_string(utc_day(midnight - 1)), "2025-02-28");
        assert_eq!(month_string(utc_day(midnight - 1)), "2025-02");
        assert_eq!(month_start(utc_day(midnight - 1)), utc_day(crate::parse_ts("2025-02-01").unwrap_or(0)));
        assert_eq!(month_start(utc_day(midnight)), utc_day(midnight));
        assert_eq!(utc_day(-1), -1);
    }

    #[test]
    fn anomaly_needs_baseline_and_minimum() {
        let mut d: BTreeMap<i64, i64> = (0..10).map(|i| (i, 1_000_000 + (i % 2) * 100_000)).collect();
        d.insert(10, 5_000_000);
        let a = detect_anomalies(&d, AnomalyRule::default());
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].day, "1970-01-11");
        assert_eq!(a[0].baseline_days, 10);
        // Only 9 baseline days: nothing.
        let d9: BTreeMap<i64, i64> = d.iter().filter(|(k, _)| **k >= 1).map(|(k, v)| (*k, *v)).collect();
        assert!(detect_anomalies(&d9, AnomalyRule::default()).is_empty());
        // Under the $3 minimum: nothing.
        let mut small: BTreeMap<i64, i64> = (0..10).map(|i| (i, 1_000)).collect();
        small.insert(10, 2_999_999);
        assert!(detect_anomalies(&small, AnomalyRule::default()).is_empty());
        // Constant baseline (stddev 0): any higher day of ≥ $3 is anomalous.
        let mut flat: BTreeMap<i64, i64> = (0..10).map(|i| (i, 1_000_000)).collect();
        flat.insert(10, 3_000_000);
        assert_eq!(detect_anomalies(&flat, AnomalyRule::default()).len(), 1);
    }
}
