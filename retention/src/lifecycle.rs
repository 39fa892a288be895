//! Artifact lifecycle (issue 8): age artifacts through the tiers hot → warm → cold and
//! purge them after the cold window, never touching a tenant under legal hold.
//!
//! One age clock per artifact, started when it is stored and reset by `artifacts restore`:
//! an artifact is warm once its age reaches the hot window, cold once it reaches the warm
//! window and purged once it reaches the cold window. Tiers only get colder here, so a run
//! is idempotent: a second run at the same time finds nothing to do.

use std::collections::{BTreeMap, BTreeSet};

use custos_domain::{format_ts, now_micros, Category, NewEvent, TenantId, Tier, Timestamp, SYSTEM_TENANT};
use custos_eventlog::{ArtifactRow, EventLog, Pending};
use custos_projections::lifecycle::LifecyclePolicySet;
use custos_projections::{HoldsView, LifecyclePolicies};
use serde::Serialize;
use serde_json::json;

use crate::{validate_days, RetentionError, MICROS_PER_DAY};

/// Built-in windows in days: hot → warm at 7, warm → cold at 30, purge at 90.
pub const DEFAULT_WINDOWS: Windows = Windows { hot: 7, warm: 30, cold: 90 };

/// The windows in force, in days of age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Windows {
    /// Age at which a hot artifact becomes warm.
    pub hot: u32,
    /// Age at which it becomes cold.
    pub warm: u32,
    /// Age at which its content is purged.
    pub cold: u32,
}

impl Windows {
    /// Recorded windows over the defaults.
    pub fn of(p: &LifecyclePolicies) -> Self {
        let d = |t: Tier, def: u32| p.get(t).map_or(def, |w| w.days);
        Self {
            hot: d(Tier::Hot, DEFAULT_WINDOWS.hot),
            warm: d(Tier::Warm, DEFAULT_WINDOWS.warm),
            cold: d(Tier::Cold, DEFAULT_WINDOWS.cold),
        }
    }

    /// Days of `tier`'s window.
    pub fn days(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Hot => self.hot,
            Tier::Warm => self.warm,
            Tier::Cold => self.cold,
        }
    }

    fn with(mut self, tier: Tier, days: u32) -> Self {
        match tier {
            Tier::Hot => self.hot = days,
            Tier::Warm => self.warm = days,
            Tier::Cold => self.cold = days,
        }
        self
    }

    /// Where an artifact of `age` µs belongs: a tier, or None once past the cold window.
    pub fn place(&self, age: i64) -> Option<Tier> {
        let days = |d: u32| i64::from(d).saturating_mul(MICROS_PER_DAY);
        if age >= days(self.cold) {
            None
        } else if age >= days(self.warm) {
            Some(Tier::Cold)
        } else if age >= days(self.hot) {
            Some(Tier::Warm)
        } else {
            Some(Tier::Hot)
        }
    }
}

/// Validates `lifecycle policy set`: days in 1..=36500 and, with the other windows in
/// force, hot < warm < cold. Returns the event payload.
pub fn plan_policy_set(current: &LifecyclePolicies, tier: Tier, days: i64) -> Result<LifecyclePolicySet, RetentionError> {
    let d = validate_days(days)?;
    let w = Windows::of(current).with(tier, d);
    if !(w.hot < w.warm && w.warm < w.cold) {
        return Err(RetentionError::Input(format!(
            "--tier {tier} --days {d} would give hot {} / warm {} / cold {} days; the windows must grow: hot < warm < cold \
             (change the neighbouring window first)",
            w.hot, w.warm, w.cold
        )));
    }
    Ok(LifecyclePolicySet { tier, days: d })
}

/// One artifact a run moved, purged or kept because of a hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleItem {
    /// Artifact id.
    pub artifact_id: String,
    /// Tenant.
    pub tenant: String,
    /// Name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Tier before the run.
    pub from: Tier,
    /// `warm`, `cold` or `purged`.
    pub to: String,
    /// `move`, `purge`, or `held` (the tenant is under legal hold: nothing done).
    pub action: &'static str,
}

/// The answer of `lifecycle run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleReport {
    /// Time ages were measured at (RFC 3339).
    pub as_of: String,
    /// True when nothing was changed or recorded.
    pub dry_run: bool,
    /// Windows applied.
    pub windows: Windows,
    /// Artifacts moved (or that would be) per destination tier.
    pub moved: BTreeMap<String, u64>,
    /// Artifacts purged (or that would be).
    pub purged: u64,
    /// Bytes of content purged (or that would be).
    pub purged_bytes: u64,
    /// Held tenants and how many of their artifacts were due but left alone.
    pub held: BTreeMap<String, u64>,
    /// What happened to each artifact that was due.
    pub items: Vec<LifecycleItem>,
    /// Global seq of the `lifecycle_run` event (live runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<u64>,
    /// False when a concurrent reader kept purged ciphertext from leaving the WAL (it goes
    /// at the next checkpoint); true otherwise and for dry runs.
    pub storage_reclaimed: bool,
}

/// Decides every live artifact's fate as of `as_of`.
fn decide(rows: &[ArtifactRow], w: &Windows, holds: &HoldsView, deleted: &BTreeSet<String>, as_of: Timestamp) -> Vec<LifecycleItem> {
    let mut items = vec![];
    for a in rows.iter().filter(|a| a.purged_at.is_none() && !deleted.contains(&a.tenant)) {
        let to = match w.place(as_of.saturating_sub(a.age_from)) {
            None => "purged".to_string(),
            // Tiers only get colder here; coming back is `artifacts restore`.
            Some(t) if t > a.tier => t.as_str().to_string(),
            Some(_) => continue,
        };
        let action = if holds.is_held(&a.tenant) {
            "held"
        } else if to == "purged" {
            "purge"
        } else {
            "move"
        };
        items.push(LifecycleItem {
            artifact_id: a.id.clone(),
            tenant: a.tenant.clone(),
            name: a.name.clone(),
            size: a.size,
            from: a.tier,
            to,
            action,
        });
    }
    items
}

fn report(
    w: Windows,
    as_of: Timestamp,
    dry_run: bool,
    holds: &HoldsView,
    rows: &[ArtifactRow],
    items: Vec<LifecycleItem>,
) -> LifecycleReport {
    let mut moved: BTreeMap<String, u64> = [(Tier::Warm.as_str().to_string(), 0), (Tier::Cold.as_str().to_string(), 0)].into();
    let mut held: BTreeMap<String, u64> = BTreeMap::new();
    // Every held tenant with live artifacts is listed, even with nothing due.
    for a in rows.iter().filter(|a| a.purged_at.is_none() && holds.is_held(&a.tenant)) {
        held.entry(a.tenant.clone()).or_default();
    }
    let (mut purged, mut purged_bytes) = (0, 0);
    for i in &items {
        match i.action {
            "held" => *held.entry(i.tenant.clone()).or_default() += 1,
            "purge" => {
                purged += 1;
                purged_bytes += i.size;
            }
            _ => *moved.entry(i.to.clone()).or_default() += 1,
        }
    }
    LifecycleReport {
        as_of: format_ts(as_of),
        dry_run,
        windows: w,
        moved,
        purged,
        purged_bytes,
        held,
        items,
        event_seq: None,
        storage_reclaimed: true,
    }
}

fn tenant_event(a: &ArtifactRow, kind: &str, data: serde_json::Value, actor: &str) -> Result<Pending, RetentionError> {
    let tenant = TenantId::parse(&a.tenant).map_err(|e| RetentionError::Input(e.to_string()))?;
    Ok(Pending {
        event: NewEvent { tenant, category: Category::Artifacts, kind: kind.into(), occurred_at: None, label: a.label, data },
        actor: actor.into(),
    })
}

/// Runs the lifecycle as of `as_of` (or reports, with `dry_run`: nothing changed or recorded,
/// as `retention run --dry-run`).
///
/// `policies` and `holds` must be folded up to `_system` tenant_seq `system_seq`; the write
/// transaction re-checks it, so a hold applied concurrently always wins
/// ([`RetentionError::Conflict`], retry). `progress(done, total)` counts due artifacts.
#[allow(clippy::too_many_arguments)]
pub fn run(
    log: &mut EventLog,
    policies: &LifecyclePolicies,
    holds: &HoldsView,
    system_seq: u64,
    as_of: Timestamp,
    dry_run: bool,
    actor: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<LifecycleReport, RetentionError> {
    let w = Windows::of(policies);
    let deleted: BTreeSet<String> =
        log.backend().tenant_heads()?.into_iter().filter(|h| h.deleted_at.is_some()).map(|h| h.tenant).collect();
    if dry_run {
        let rows = log.backend().artifacts(None)?;
        let items = decide(&rows, &w, holds, &deleted, as_of);
        return Ok(report(w, as_of, true, holds, &rows, items));
    }

    let mut ap = log.appender()?;
    let sys = ap.tx().tenant_head(SYSTEM_TENANT)?.map(|h| h.last_seq).unwrap_or(0);
    if sys != system_seq {
        return Err(RetentionError::Conflict(format!("_system moved from {system_seq} to {sys}")));
    }
    // Decided on the rows as seen under the write lock: a concurrent restore or run is never undone.
    let rows = ap.tx().artifacts(None)?;
    let items = decide(&rows, &w, holds, &deleted, as_of);
    let by_id: BTreeMap<&str, &ArtifactRow> = rows.iter().map(|a| (a.id.as_str(), a)).collect();
    let now = now_micros();
    let total = items.len() as u64;
    let mut events = Vec::with_capacity(items.len() + 1);
    for (n, i) in items.iter().enumerate() {
        let Some(a) = by_id.get(i.artifact_id.as_str()) else { continue };
        match i.action {
            "move" => {
                let to: Tier = i.to.parse().map_err(|e: custos_domain::DomainError| RetentionError::Input(e.to_string()))?;
                let data = json!({"artifact_id": a.id, "from": a.tier, "to": to, "reason": "lifecycle", "as_of": format_ts(as_of)});
                events.push(tenant_event(a, "artifact_tier_changed", data, actor)?);
                ap.tx().set_artifact_tier(&a.id, to, now, false)?;
            }
            "purge" => {
                let data = json!({
                    "artifact_id": a.id, "name": a.name, "size": a.size, "sha256": hex::encode(a.sha256), "tier": a.tier,
                    "reason": "lifecycle", "as_of": format_ts(as_of),
                });
                events.push(tenant_event(a, "artifact_purged", data, actor)?);
                ap.tx().purge_artifact(&a.id, now)?;
            }
            _ => {}
        }
        progress(n as u64 + 1, total);
    }
    let mut r = report(w, as_of, false, holds, &rows, items);
    let data = json!({
        "as_of": r.as_of, "dry_run": false, "windows": w, "moved": r.moved, "purged": r.purged,
        "purged_bytes": r.purged_bytes, "held": r.held,
    });
    events.push(Pending {
        event: NewEvent {
            tenant: TenantId::system(),
            category: Category::Governance,
            kind: "lifecycle_run".into(),
            occurred_at: Some(now),
            label: None,
            data,
        },
        actor: actor.into(),
    });
    let seqs = ap.push(&events)?;
    ap.commit()?;
    r.event_seq = seqs.last().copied();
    // The tenants' DEKs still exist, so purged ciphertext must not linger in old WAL frames
    // (the database file itself is covered by `secure_delete`).
    if r.purged > 0 {
        r.storage_reclaimed = log.backend().reclaim()?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = MICROS_PER_DAY;

    #[test]
    fn one_age_clock_places_every_tier() {
        let w = DEFAULT_WINDOWS;
        assert_eq!(w.place(0), Some(Tier::Hot));
        assert_eq!(w.place(7 * DAY - 1), Some(Tier::Hot));
        assert_eq!(w.place(7 * DAY), Some(Tier::Warm));
        assert_eq!(w.place(30 * DAY), Some(Tier::Cold));
        assert_eq!(w.place(90 * DAY - 1), Some(Tier::Cold));
        assert_eq!(w.place(90 * DAY), None);
    }

    #[test]
    fn policy_must_keep_windows_growing() {
        let p = LifecyclePolicies::default();
        assert!(plan_policy_set(&p, Tier::Hot, 10).is_ok());
        assert!(plan_policy_set(&p, Tier::Hot, 30).is_err());
        assert!(plan_policy_set(&p, Tier::Cold, 30).is_err());
        assert!(plan_policy_set(&p, Tier::Warm, 0).is_err());
        assert!(plan_policy_set(&p, Tier::Cold, 365).is_ok());
    }
}
