//! Threshold alerts (`custos alerts`): the threshold table and one pure rule per
//! alert over figures the platform computes from projections and log reads.
//!
//! Kept free of I/O so every rule and its boundary is unit-tested without a store.
//! Thresholds are integers in the unit of their alert (rates in parts per million,
//! money in micro-USD, hours), so comparisons at the boundary are exact: a rate of
//! exactly the threshold does not fire, one event more does.

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::{format_ts, Timestamp, UsdMicros};

const HOUR_MICROS: i64 = 3_600_000_000;
const DAY_MICROS: i64 = 24 * HOUR_MICROS;
const PPM: i64 = 1_000_000;

/// Why an alert threshold cannot be set.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AlertError {
    /// Not a settable threshold.
    #[error("unknown alert threshold {0:?}: expected one of {names}", names = settable_names())]
    UnknownName(String),
    /// The value does not parse or is out of range.
    #[error("bad value {value:?} for alert threshold {name}: {expect}")]
    BadValue {
        /// Threshold name.
        name: String,
        /// What was given.
        value: String,
        /// What is accepted.
        expect: &'static str,
    },
}

/// How a threshold or observed value is expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// A fraction 0..1 (stored as parts per million).
    Ratio,
    /// US dollars (stored as micro-USD).
    Usd,
    /// Hours.
    Hours,
    /// Days.
    Days,
    /// A number of items.
    Count,
}

impl Unit {
    /// The stored integer as the number JSON and `/metrics` show.
    pub fn as_f64(self, v: i64) -> f64 {
        match self {
            Unit::Ratio | Unit::Usd => v as f64 / PPM as f64,
            Unit::Hours | Unit::Days | Unit::Count => v as f64,
        }
    }

    /// The stored integer as a human (and `alerts set`-parsable) string.
    pub fn format(self, v: i64) -> String {
        match self {
            Unit::Ratio => {
                let s = format!("{}.{:06}", v / PPM, (v % PPM).abs());
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
            Unit::Usd => UsdMicros(v).to_string(),
            Unit::Hours => format!("{v}h"),
            Unit::Days => format!("{v}d"),
            Unit::Count => v.to_string(),
        }
    }
}

/// One settable threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThresholdSpec {
    /// Name (`alerts set NAME VALUE`, `[alerts] NAME = VALUE`); also the alert's name.
    pub name: &'static str,
    /// Unit of the value.
    pub unit: Unit,
    /// Built-in default, in stored units.
    pub default: i64,
    /// What the alert fires on.
    pub help: &'static str,
}

/// The built-in defaults: the legacy `alerts.py` figures (10 % redacted, $0.01 per run,
/// 20 % failures), 48 h for a pending checkpoint (the legacy expiry job), 6 h before
/// expiry (the legacy dashboard's warning) and 26 h for a daily retention cron (a day
/// plus slack for a slow or delayed run).
pub const THRESHOLDS: &[ThresholdSpec] = &[
    ThresholdSpec {
        name: "redacted_rate",
        unit: Unit::Ratio,
        default: 100_000,
        help: "share of run_completed in the window with redactions > 0 is above",
    },
    ThresholdSpec {
        name: "avg_cost_per_run",
        unit: Unit::Usd,
        default: 10_000,
        help: "average cost_recorded total per run in the window is above",
    },
    ThresholdSpec {
        name: "failure_rate",
        unit: Unit::Ratio,
        default: 200_000,
        help: "share of run_completed in the window with status failed/error is above",
    },
    ThresholdSpec { name: "checkpoint_pending", unit: Unit::Hours, default: 48, help: "a pending checkpoint is older than" },
    ThresholdSpec { name: "checkpoint_expiring", unit: Unit::Hours, default: 6, help: "a pending checkpoint expires within" },
    ThresholdSpec {
        name: "retention_overdue",
        unit: Unit::Hours,
        default: 26,
        help: "no retention run (dry runs excluded) within the last",
    },
];

/// Every alert, in report order. Those not in [`THRESHOLDS`] take their threshold from
/// state custos already records: the budget soft threshold, the key rotation policy,
/// each hold's review date.
pub const ALERTS: &[&str] = &[
    "redacted_rate",
    "avg_cost_per_run",
    "failure_rate",
    "budget_utilisation",
    "checkpoint_pending",
    "checkpoint_expiring",
    "key_rotation_overdue",
    "retention_overdue",
    "hold_review_overdue",
];

fn settable_names() -> String {
    THRESHOLDS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// The spec of a settable threshold.
pub fn threshold_spec(name: &str) -> Result<&'static ThresholdSpec, AlertError> {
    THRESHOLDS.iter().find(|t| t.name == name).ok_or_else(|| AlertError::UnknownName(name.to_string()))
}

/// Parses a threshold value in its unit: ratios `0.1` (or `10%`), dollars `0.01` / `$0.01`,
/// hours `48` / `48h`. Returns the stored integer.
pub fn parse_threshold(name: &str, value: &str) -> Result<i64, AlertError> {
    let spec = threshold_spec(name)?;
    let bad = |expect| AlertError::BadValue { name: name.to_string(), value: value.to_string(), expect };
    let v = value.trim();
    match spec.unit {
        Unit::Ratio => {
            let (num, scale) = match v.strip_suffix('%') {
                Some(p) => (p.trim(), 100),
                None => (v, 1),
            };
            // Reuse the exact decimal parser of money: "0.1" → 100000 millionths.
            let m = UsdMicros::parse_usd(num).map_err(|_| bad("a fraction from 0 to 1, e.g. 0.1 or 10%"))?.0;
            if num.starts_with('$') || m > PPM * scale {
                return Err(bad("a fraction from 0 to 1, e.g. 0.1 or 10%"));
            }
            Ok(m / scale)
        }
        Unit::Usd => {
            let m = UsdMicros::parse_usd(v).map_err(|_| bad("a dollar amount, e.g. 0.01"))?.0;
            if m <= 0 {
                return Err(bad("a positive dollar amount, e.g. 0.01"));
            }
            Ok(m)
        }
        Unit::Hours | Unit::Days | Unit::Count => {
            let n: i64 = v.strip_suffix('h').unwrap_or(v).parse().map_err(|_| bad("whole hours from 1 to 8760, e.g. 48"))?;
            if !(1..=8760).contains(&n) {
                return Err(bad("whole hours from 1 to 8760, e.g. 48"));
            }
            Ok(n)
        }
    }
}

/// Where an effective threshold comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `alert_threshold_set` in the log (wins: shared by every machine).
    Recorded,
    /// `[alerts]` in custos.toml.
    ConfigFile,
    /// [`THRESHOLDS`].
    Default,
}

/// Effective thresholds in stored units, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thresholds(pub BTreeMap<String, (i64, Source)>);

impl Thresholds {
    /// Built-in defaults, overridden by the config file, overridden by what was recorded.
    pub fn resolve(file: &BTreeMap<String, i64>, recorded: &BTreeMap<String, i64>) -> Self {
        let mut m = BTreeMap::new();
        for s in THRESHOLDS {
            let v = match (recorded.get(s.name), file.get(s.name)) {
                (Some(v), _) => (*v, Source::Recorded),
                (None, Some(v)) => (*v, Source::ConfigFile),
                (None, None) => (s.default, Source::Default),
            };
            m.insert(s.name.to_string(), v);
        }
        Self(m)
    }

    /// The value of `name` (its built-in default if absent).
    pub fn get(&self, name: &str) -> i64 {
        self.0.get(name).map(|v| v.0).or_else(|| threshold_spec(name).ok().map(|s| s.default)).unwrap_or(0)
    }
}

/// Spend against one budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetUse {
    /// Tenant.
    pub tenant: String,
    /// `daily` or `monthly`.
    pub period: &'static str,
    /// Spent in the period, micro-USD.
    pub spent: i64,
    /// The budget, micro-USD.
    pub budget: i64,
}

/// A checkpoint that is pending at the evaluation time (not decided, not past expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCheckpoint {
    /// Id.
    pub checkpoint_id: String,
    /// Tenant.
    pub tenant: String,
    /// Created, µs.
    pub created_at: Timestamp,
    /// Expires, µs.
    pub expires_at: Timestamp,
}

/// An active hold with a review date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldReview {
    /// Hold id.
    pub hold_id: String,
    /// Tenant.
    pub tenant: String,
    /// Review date, µs.
    pub review_by: Timestamp,
}

/// The active KEK and the rotation policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAge {
    /// Active KEK id.
    pub key_id: String,
    /// Its creation time, µs.
    pub created_at: Timestamp,
    /// Policy period, days.
    pub rotation_days: u32,
}

/// Everything the rules look at, as of `at`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Evaluation time.
    pub at: Timestamp,
    /// `run_completed` events in the window.
    pub runs: u64,
    /// Of those, with `redactions > 0`.
    pub runs_redacted: u64,
    /// Of those, failed ([`is_failure`]).
    pub runs_failed: u64,
    /// Distinct runs with `cost_recorded` in the window.
    pub cost_runs: u64,
    /// Their total, micro-USD.
    pub cost_total: i64,
    /// Budgets with their spend as of `at`.
    pub budgets: Vec<BudgetUse>,
    /// Budget soft threshold, permille.
    pub soft_permille: u32,
    /// Pending checkpoints.
    pub pending: Vec<PendingCheckpoint>,
    /// The active key, if the store has one.
    pub key: Option<KeyAge>,
    /// `recorded_at` of the last `retention_enforced`, if any.
    pub last_retention: Option<Timestamp>,
    /// Active holds that have a review date.
    pub holds: Vec<HoldReview>,
}

/// One evaluated alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Alert name ([`ALERTS`]).
    pub name: &'static str,
    /// Whether it fires.
    pub firing: bool,
    /// What was observed, in `unit` (null when there was nothing to observe).
    pub value: Option<f64>,
    /// The threshold, in `unit`.
    pub threshold: f64,
    /// Unit of value and threshold.
    pub unit: Unit,
    /// One line for a human: what fired and where (tenant, checkpoint, hold ids).
    pub detail: String,
}

/// Statuses of `run_completed` counted as failures (case-insensitive).
pub fn is_failure(status: &str) -> bool {
    ["failed", "failure", "error"].iter().any(|s| status.eq_ignore_ascii_case(s))
}

/// When a KEK created at `created_at` is due for rotation under a `rotation_days` policy.
pub fn rotation_due(created_at: Timestamp, rotation_days: u32) -> Timestamp {
    created_at.saturating_add(i64::from(rotation_days).saturating_mul(DAY_MICROS))
}

fn spec_alert(name: &'static str, t: &Thresholds) -> (i64, Unit) {
    let unit = threshold_spec(name).map(|s| s.unit).unwrap_or(Unit::Count);
    (t.get(name), unit)
}

fn rate_alert(name: &'static str, part: u64, whole: u64, t: &Thresholds, what: &str) -> Alert {
    let (thr, unit) = spec_alert(name, t);
    let base = Alert { name, firing: false, value: None, threshold: unit.as_f64(thr), unit, detail: String::new() };
    if whole == 0 {
        return Alert { detail: "no run_completed events in the window".into(), ..base };
    }
    // part/whole > thr/1e6, exactly, without division.
    let firing = i128::from(part) * i128::from(PPM) > i128::from(thr) * i128::from(whole);
    let value = part as f64 / whole as f64;
    Alert {
        firing,
        value: Some(value),
        detail: format!("{part} of {whole} runs {what} ({:.1}%; threshold {})", value * 100.0, unit.format(thr)),
        ..base
    }
}

/// Share of runs with redacted content above the threshold.
pub fn redacted_rate(f: &Figures, t: &Thresholds) -> Alert {
    rate_alert("redacted_rate", f.runs_redacted, f.runs, t, "had redactions")
}

/// Share of failed runs above the threshold.
pub fn failure_rate(f: &Figures, t: &Thresholds) -> Alert {
    rate_alert("failure_rate", f.runs_failed, f.runs, t, "failed")
}

/// Average cost per run above the threshold.
pub fn avg_cost_per_run(f: &Figures, t: &Thresholds) -> Alert {
    let (thr, unit) = spec_alert("avg_cost_per_run", t);
    let base = Alert { name: "avg_cost_per_run", firing: false, value: None, threshold: unit.as_f64(thr), unit, detail: String::new() };
    if f.cost_runs == 0 {
        return Alert { detail: "no cost_recorded events in the window".into(), ..base };
    }
    // total/runs > thr, exactly: total > thr·runs.
    let firing = i128::from(f.cost_total) > i128::from(thr) * i128::from(f.cost_runs);
    let avg = f.cost_total / i64::try_from(f.cost_runs).unwrap_or(i64::MAX);
    Alert {
        firing,
        value: Some(f.cost_total as f64 / f.cost_runs as f64 / PPM as f64),
        detail: format!(
            "{} over {} runs, {} per run (threshold {})",
            UsdMicros(f.cost_total),
            f.cost_runs,
            UsdMicros(avg),
            unit.format(thr)
        ),
        ..base
    }
}

/// A budget whose spend reached the budget soft threshold (as `budget check` throttles).
pub fn budget_utilisation(f: &Figures) -> Alert {
    let soft = i64::from(f.soft_permille);
    let base = Alert {
        name: "budget_utilisation",
        firing: false,
        value: None,
        threshold: soft as f64 / 1000.0,
        unit: Unit::Ratio,
        detail: "no budgets set".into(),
    };
    let used: Vec<_> = f.budgets.iter().filter(|b| b.budget > 0).collect();
    if used.is_empty() {
        return base;
    }
    let over: Vec<String> = used
        .iter()
        .filter(|b| i128::from(b.spent) * 1000 >= i128::from(soft) * i128::from(b.budget))
        .map(|b| format!("{} {} {} of {}", b.tenant, b.period, UsdMicros(b.spent), UsdMicros(b.budget)))
        .collect();
    let max = used.iter().map(|b| b.spent as f64 / b.budget as f64).fold(0.0, f64::max);
    let detail = if over.is_empty() {
        format!("highest utilisation {:.1}% (soft threshold {:.1}%)", max * 100.0, soft as f64 / 10.0)
    } else {
        format!("at or above the {:.1}% soft threshold: {}", soft as f64 / 10.0, over.join("; "))
    };
    Alert { firing: !over.is_empty(), value: Some(max), detail, ..base }
}

fn hours(micros: i64) -> f64 {
    micros as f64 / HOUR_MICROS as f64
}

/// A pending checkpoint older than the threshold.
pub fn checkpoint_pending(f: &Figures, t: &Thresholds) -> Alert {
    let (thr, unit) = spec_alert("checkpoint_pending", t);
    let limit = thr.saturating_mul(HOUR_MICROS);
    let old: Vec<String> = f
        .pending
        .iter()
        .filter(|c| f.at.saturating_sub(c.created_at) > limit)
        .map(|c| format!("{} ({}, {:.1}h)", c.checkpoint_id, c.tenant, hours(f.at - c.created_at)))
        .collect();
    let oldest = f.pending.iter().map(|c| f.at.saturating_sub(c.created_at)).max();
    let detail = match (old.is_empty(), oldest) {
        (_, None) => "no pending checkpoints".into(),
        (true, Some(o)) => format!("{} pending, oldest {:.1}h", f.pending.len(), hours(o)),
        (false, _) => format!("pending longer than {thr}h: {}", old.join(", ")),
    };
    Alert { name: "checkpoint_pending", firing: !old.is_empty(), value: oldest.map(hours), threshold: thr as f64, unit, detail }
}

/// A pending checkpoint that expires within the threshold.
pub fn checkpoint_expiring(f: &Figures, t: &Thresholds) -> Alert {
    let (thr, unit) = spec_alert("checkpoint_expiring", t);
    let limit = thr.saturating_mul(HOUR_MICROS);
    let left = |c: &PendingCheckpoint| c.expires_at.saturating_sub(f.at);
    let soon: Vec<String> = f
        .pending
        .iter()
        .filter(|c| left(c) > 0 && left(c) <= limit)
        .map(|c| format!("{} ({}, expires {})", c.checkpoint_id, c.tenant, format_ts(c.expires_at)))
        .collect();
    let soonest = f.pending.iter().map(left).filter(|l| *l > 0).min();
    let detail = match (soon.is_empty(), soonest) {
        (_, None) => "no pending checkpoints".into(),
        (true, Some(s)) => format!("soonest expiry in {:.1}h", hours(s)),
        (false, _) => format!("expiring within {thr}h: {}", soon.join(", ")),
    };
    Alert { name: "checkpoint_expiring", firing: !soon.is_empty(), value: soonest.map(hours), threshold: thr as f64, unit, detail }
}

/// The active KEK is older than the rotation policy allows (as `keys status` reports).
pub fn key_rotation_overdue(f: &Figures) -> Alert {
    let Some(k) = &f.key else {
        return Alert {
            name: "key_rotation_overdue",
            firing: false,
            value: None,
            threshold: 0.0,
            unit: Unit::Days,
            detail: "no active key".into(),
        };
    };
    let due = rotation_due(k.created_at, k.rotation_days);
    let firing = f.at >= due;
    let age = f.at.saturating_sub(k.created_at) as f64 / DAY_MICROS as f64;
    let detail = if firing {
        format!("{} is {age:.1} days old; rotation was due {} (`custos keys rotate`)", k.key_id, format_ts(due))
    } else {
        format!("{} is {age:.1} days old; rotation due {}", k.key_id, format_ts(due))
    };
    Alert { name: "key_rotation_overdue", firing, value: Some(age), threshold: f64::from(k.rotation_days), unit: Unit::Days, detail }
}

/// Retention has not run within the threshold (or never ran).
pub fn retention_overdue(f: &Figures, t: &Thresholds) -> Alert {
    let (thr, unit) = spec_alert("retention_overdue", t);
    let base = Alert { name: "retention_overdue", firing: true, value: None, threshold: thr as f64, unit, detail: String::new() };
    let Some(last) = f.last_retention else {
        return Alert { detail: "retention has never run on this store (`custos retention run`)".into(), ..base };
    };
    let since = f.at.saturating_sub(last);
    let firing = since > thr.saturating_mul(HOUR_MICROS);
    Alert {
        firing,
        value: Some(hours(since)),
        detail: format!("last retention run {} ({:.1}h ago)", format_ts(last), hours(since)),
        ..base
    }
}

/// Active holds past their review date.
pub fn hold_review_overdue(f: &Figures) -> Alert {
    let due: Vec<String> = f
        .holds
        .iter()
        .filter(|h| f.at > h.review_by)
        .map(|h| format!("{} ({}, review by {})", h.hold_id, h.tenant, format_ts(h.review_by)))
        .collect();
    let detail = if due.is_empty() {
        format!("{} active hold(s) with a review date, none past it", f.holds.len())
    } else {
        format!("past their review date: {}", due.join(", "))
    };
    Alert { name: "hold_review_overdue", firing: !due.is_empty(), value: Some(due.len() as f64), threshold: 0.0, unit: Unit::Count, detail }
}

/// Every alert, in [`ALERTS`] order.
pub fn evaluate(f: &Figures, t: &Thresholds) -> Vec<Alert> {
    vec![
        redacted_rate(f, t),
        avg_cost_per_run(f, t),
        failure_rate(f, t),
        budget_utilisation(f),
        checkpoint_pending(f, t),
        checkpoint_expiring(f, t),
        key_rotation_overdue(f),
        retention_overdue(f, t),
        hold_review_overdue(f),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Timestamp = 1_759_492_800_000_000;

    fn defaults() -> Thresholds {
        Thresholds::resolve(&BTreeMap::new(), &BTreeMap::new())
    }

    fn healthy() -> Figures {
        Figures {
            at: AT,
            soft_permille: 800,
            key: Some(KeyAge { key_id: "key-001".into(), created_at: AT - DAY_MICROS, rotation_days: 90 }),
            last_retention: Some(AT - HOUR_MICROS),
            ..Default::default()
        }
    }

    fn firing(a: &[Alert]) -> Vec<&'static str> {
        a.iter().filter(|a| a.firing).map(|a| a.name).collect()
    }

    #[test]
    fn healthy_store_fires_nothing_and_reports_every_alert() {
        let a = evaluate(&healthy(), &defaults());
        assert_eq!(a.iter().map(|a| a.name).collect::<Vec<_>>(), ALERTS);
        assert!(firing(&a).is_empty(), "{a:?}");
    }

    #[test]
    fn rates_fire_strictly_above_the_threshold() {
        let t = defaults();
        let mut f = healthy();
        f.runs = 10;
        f.runs_redacted = 1; // exactly 10 %
        f.runs_failed = 2; // exactly 20 %
        assert!(!redacted_rate(&f, &t).firing);
        assert!(!failure_rate(&f, &t).firing);
        f.runs_redacted = 2;
        f.runs_failed = 3;
        assert!(redacted_rate(&f, &t).firing);
        let fr = failure_rate(&f, &t);
        assert!(fr.firing && fr.value == Some(0.3), "{fr:?}");
        f.runs = 0;
        assert!(!failure_rate(&f, &t).firing && failure_rate(&f, &t).value.is_none());
    }

    #[test]
    fn average_cost_fires_strictly_above() {
        let t = defaults();
        let mut f = healthy();
        f.cost_runs = 3;
        f.cost_total = 30_000; // exactly $0.01 per run
        assert!(!avg_cost_per_run(&f, &t).firing);
        f.cost_total = 30_001;
        let a = avg_cost_per_run(&f, &t);
        assert!(a.firing && a.threshold == 0.01, "{a:?}");
        f.cost_runs = 0;
        assert!(!avg_cost_per_run(&f, &t).firing);
    }

    #[test]
    fn budget_fires_at_the_soft_threshold() {
        let mut f = healthy();
        f.budgets = vec![BudgetUse { tenant: "acme".into(), period: "daily", spent: 7_999, budget: 10_000 }];
        assert!(!budget_utilisation(&f).firing);
        f.budgets[0].spent = 8_000;
        let a = budget_utilisation(&f);
        assert!(a.firing && a.detail.contains("acme daily"), "{a:?}");
        f.budgets[0].budget = 0;
        assert!(!budget_utilisation(&f).firing, "a zero budget is not a utilisation");
    }

    #[test]
    fn checkpoint_age_and_expiry_boundaries() {
        let t = defaults();
        let mut f = healthy();
        let cp = |created, expires| PendingCheckpoint {
            checkpoint_id: "ckpt-1".into(),
            tenant: "acme".into(),
            created_at: created,
            expires_at: expires,
        };
        f.pending = vec![cp(AT - 48 * HOUR_MICROS, AT + 24 * HOUR_MICROS)];
        assert!(!checkpoint_pending(&f, &t).firing, "exactly 48h is not older than 48h");
        assert!(!checkpoint_expiring(&f, &t).firing);
        f.pending = vec![cp(AT - 48 * HOUR_MICROS - 1, AT + 6 * HOUR_MICROS)];
        let p = checkpoint_pending(&f, &t);
        assert!(p.firing && p.detail.contains("ckpt-1") && p.detail.contains("acme"), "{p:?}");
        assert!(checkpoint_expiring(&f, &t).firing, "expiring in exactly 6h");
        f.pending = vec![cp(AT, AT + 6 * HOUR_MICROS + 1)];
        assert!(!checkpoint_expiring(&f, &t).firing);
    }

    #[test]
    fn key_rotation_is_due_at_the_policy_age() {
        let mut f = healthy();
        f.key = Some(KeyAge { key_id: "key-001".into(), created_at: AT - 90 * DAY_MICROS + 1, rotation_days: 90 });
        assert!(!key_rotation_overdue(&f).firing);
        f.key = Some(KeyAge { key_id: "key-001".into(), created_at: AT - 90 * DAY_MICROS, rotation_days: 90 });
        let a = key_rotation_overdue(&f);
        assert!(a.firing && a.threshold == 90.0 && a.detail.contains("key-001"), "{a:?}");
    }

    #[test]
    fn retention_never_run_or_stale_fires() {
        let t = defaults();
        let mut f = healthy();
        f.last_retention = Some(AT - 26 * HOUR_MICROS);
        assert!(!retention_overdue(&f, &t).firing);
        f.last_retention = Some(AT - 26 * HOUR_MICROS - 1);
        assert!(retention_overdue(&f, &t).firing);
        f.last_retention = None;
        let a = retention_overdue(&f, &t);
        assert!(a.firing && a.value.is_none() && a.detail.contains("never"), "{a:?}");
    }

    #[test]
    fn holds_fire_after_their_review_date() {
        let mut f = healthy();
        f.holds = vec![HoldReview { hold_id: "CASE-1".into(), tenant: "acme".into(), review_by: AT }];
        assert!(!hold_review_overdue(&f).firing, "on the review instant it is not yet past");
        f.at += 1;
        let a = hold_review_overdue(&f);
        assert!(a.firing && a.value == Some(1.0) && a.detail.contains("CASE-1"), "{a:?}");
    }

    #[test]
    fn thresholds_parse_in_their_units_and_resolve_by_source() {
        assert_eq!(parse_threshold("failure_rate", "0.05"), Ok(50_000));
        assert_eq!(parse_threshold("failure_rate", "5%"), Ok(50_000));
        assert_eq!(parse_threshold("failure_rate", "1"), Ok(1_000_000));
        assert_eq!(parse_threshold("avg_cost_per_run", "$0.02"), Ok(20_000));
        assert_eq!(parse_threshold("checkpoint_pending", "12h"), Ok(12));
        assert!(matches!(parse_threshold("nope", "1"), Err(AlertError::UnknownName(_))));
        for (n, v) in [
            ("failure_rate", "1.1"),
            ("failure_rate", "-0.1"),
            ("failure_rate", "x"),
            ("avg_cost_per_run", "0"),
            ("checkpoint_pending", "0"),
            ("retention_overdue", "1.5"),
        ] {
            assert!(matches!(parse_threshold(n, v), Err(AlertError::BadValue { .. })), "{n}={v}");
        }
        for s in THRESHOLDS {
            assert_eq!(parse_threshold(s.name, &s.unit.format(s.default)), Ok(s.default), "{} round-trips", s.name);
        }
        let file = BTreeMap::from([("failure_rate".to_string(), 1), ("redacted_rate".to_string(), 2)]);
        let rec = BTreeMap::from([("failure_rate".to_string(), 3)]);
        let t = Thresholds::resolve(&file, &rec);
        assert_eq!(t.0["failure_rate"], (3, Source::Recorded));
        assert_eq!(t.0["redacted_rate"], (2, Source::ConfigFile));
        assert_eq!(t.0["checkpoint_pending"], (48, Source::Default));
    }
}
