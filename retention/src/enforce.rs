//! A retention run: purge what has outlived its window, skip held tenants, record it.

use std::collections::BTreeMap;

use custos_domain::{format_ts, now_micros, Category, NewEvent, TenantId, Timestamp, MAX_FUTURE_SKEW_MICROS, SYSTEM_TENANT};
use custos_eventlog::{EventLog, Pending};
use custos_projections::{HoldsView, RetentionPolicies};
use serde::Serialize;
use serde_json::json;

use crate::policy::effective_days;
use crate::RetentionError;

/// One day in microseconds.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The answer of `retention run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// When the run happened (RFC 3339).
    pub enforced_at: String,
    /// The time windows were measured back from (RFC 3339).
    pub as_of: String,
    /// True when nothing was changed.
    pub dry_run: bool,
    /// Bodies purged (or, in a dry run, that would be) per category.
    pub counts: BTreeMap<String, u64>,
    /// Held tenants and how many bodies each would have lost.
    pub held: BTreeMap<String, u64>,
    /// Sum of counts.
    pub total_purged: u64,
    /// Tenants examined.
    pub tenants: u64,
    /// Global seq of the `retention_enforced` event (live runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<u64>,
    /// False when a concurrent reader kept purged ciphertext from leaving the WAL (it
    /// goes at the next checkpoint); true otherwise and for dry runs.
    pub storage_reclaimed: bool,
}

struct Plan {
    tenants: Vec<String>,
    /// Store-wide cutoff per category (µs).
    default: BTreeMap<Category, Timestamp>,
    /// Cutoffs of tenants with overrides (only the overridden categories).
    overrides: BTreeMap<String, BTreeMap<Category, Timestamp>>,
}

impl Plan {
    fn cutoff(&self, tenant: &str, c: Category) -> Timestamp {
        self.overrides.get(tenant).and_then(|m| m.get(&c)).or_else(|| self.default.get(&c)).copied().unwrap_or(Timestamp::MIN)
    }

    /// The coverage data `verify` reads back: `cutoffs.default[CAT]`, `cutoffs.tenants[T][CAT]` (µs).
    fn cutoffs_json(&self) -> serde_json::Value {
        let m = |x: &BTreeMap<Category, Timestamp>| {
            x.iter().map(|(c, t)| (c.as_str().to_string(), json!(t))).collect::<serde_json::Map<_, _>>()
        };
        json!({
            "default": m(&self.default),
            "tenants": self.overrides.iter().map(|(t, x)| (t.clone(), json!(m(x)))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

fn plan(log: &EventLog, policies: &RetentionPolicies, as_of: Timestamp) -> Result<Plan, RetentionError> {
    let cut = |days: u32| as_of.saturating_sub(i64::from(days).saturating_mul(MICROS_PER_DAY));
    // A placeholder tenant name that can never exist resolves store-wide windows only.
    let default = Category::ALL.iter().map(|&c| (c, cut(effective_days(policies, "\0", c)))).collect();
    let overrides = policies
        .tenants_with_overrides()
        .map(|t| {
            let m =
                Category::ALL.iter().filter(|&&c| policies.get(Some(t), c).is_some()).map(|&c| (c, cut(effective_days(policies, t, c))));
            (t.to_string(), m.collect())
        })
        .collect();
    let tenants = log
        .backend()
        .tenant_heads()?
        .into_iter()
        .filter(|h| h.tenant != SYSTEM_TENANT && h.deleted_at.is_none())
        .map(|h| h.tenant)
        .collect();
    Ok(Plan { tenants, default, overrides })
}

/// Runs retention as of `as_of` (or reports, with `dry_run`).
///
/// `policies` and `holds` must be folded up to `_system` tenant_seq `system_seq`; the
/// write transaction re-checks it, so a hold applied concurrently always wins
/// ([`RetentionError::Conflict`], retry). `progress(done, total)` counts tenants.
#[allow(clippy::too_many_arguments)]
pub fn enforce(
    log: &mut EventLog,
    policies: &RetentionPolicies,
    holds: &HoldsView,
    system_seq: u64,
    as_of: Timestamp,
    dry_run: bool,
    actor: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RetentionReport, RetentionError> {
    let now = now_micros();
    if as_of > now.saturating_add(MAX_FUTURE_SKEW_MICROS) {
        return Err(RetentionError::Input(format!(
            "--as-of {} is in the future; retention may only look back from now or an earlier time",
            format_ts(as_of)
        )));
    }
    let plan = plan(log, policies, as_of)?;
    let total = plan.tenants.len() as u64;
    let mut counts: BTreeMap<String, u64> = Category::ALL.iter().map(|c| (c.as_str().to_string(), 0)).collect();
    let mut held: BTreeMap<String, u64> = BTreeMap::new();

    if dry_run {
        for (i, t) in plan.tenants.iter().enumerate() {
            for c in Category::ALL {
                let n = log.backend().count_live(t, Some(c), Some(plan.cutoff(t, c)))?;
                if holds.is_held(t) {
                    *held.entry(t.clone()).or_default() += n;
                } else {
                    *counts.entry(c.as_str().into()).or_default() += n;
                }
            }
            progress(i as u64 + 1, total);
        }
        let total_purged = counts.values().sum();
        return Ok(RetentionReport {
            enforced_at: format_ts(now),
            as_of: format_ts(as_of),
            dry_run,
            counts,
            held,
            total_purged,
            tenants: total,
            event_seq: None,
            storage_reclaimed: true,
        });
    }

    let mut a = log.appender()?;
    let sys = a.tx().tenant_head(SYSTEM_TENANT)?.map(|h| h.last_seq).unwrap_or(0);
    if sys != system_seq {
        return Err(RetentionError::Conflict(format!("_system moved from {system_seq} to {sys}")));
    }
    // The purge names the event recorded below, in this same transaction: its seq is the next one.
    let event_seq = a.head().size + 1;
    for (i, t) in plan.tenants.iter().enumerate() {
        let is_held = holds.is_held(t);
        let cutoffs: Vec<(Category, Timestamp)> = Category::ALL.iter().map(|&c| (c, plan.cutoff(t, c))).collect();
        // A held tenant is only counted (reported under `held`), never purged.
        let per_cat = a.tx().purge_before_cutoffs(t, &cutoffs, (!is_held).then_some(event_seq))?;
        for (c, n) in per_cat {
            if is_held {
                *held.entry(t.clone()).or_default() += n;
            } else {
                *counts.entry(c.as_str().into()).or_default() += n;
            }
        }
        if is_held {
            held.entry(t.clone()).or_default();
        }
        progress(i as u64 + 1, total);
    }
    let total_purged: u64 = counts.values().sum();
    let data = json!({
        "as_of": format_ts(as_of),
        "cutoffs": plan.cutoffs_json(),
        "held": held,
        "counts": counts,
        "total_purged": total_purged,
    });
    let ev = NewEvent {
        tenant: TenantId::system(),
        category: Category::Governance,
        kind: "retention_enforced".into(),
        occurred_at: Some(now),
        label: None,
        data,
    };
    let seqs = a.push(&[Pending { event: ev, actor: actor.into() }])?;
    if seqs.first() != Some(&event_seq) {
        return Err(RetentionError::Conflict("the retention event did not get the sequence number its purge names".into()));
    }
    a.commit()?;
    // The tenants' DEKs still exist, so purged ciphertext must not linger in old WAL frames
    // (the database file itself is covered by `secure_delete`).
    let storage_reclaimed = if total_purged > 0 { log.backend().reclaim()? } else { true };
    Ok(RetentionReport {
        enforced_at: format_ts(now),
        as_of: format_ts(as_of),
        dry_run,
        counts,
        held,
        total_purged,
        tenants: total,
        event_seq: Some(event_seq),
        storage_reclaimed,
    })
}
