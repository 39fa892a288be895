//! Artifact storage tiers and their lifecycle (issue 8), over `custos-retention`:
//! policy, runs, restore and the per-tier summary.

use std::collections::BTreeMap;

use custos_domain::{format_ts, now_micros, Category, NewEvent, TenantId, Tier, Timestamp};
use custos_eventlog::Pending;
use custos_retention::lifecycle::{plan_policy_set, run};
use custos_retention::{LifecycleReport, Windows};
use serde::Serialize;
use serde_json::{json, Value};

use crate::{Platform, PlatformError, Principal};

/// Artifacts and plaintext bytes in one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TierCount {
    /// Artifacts.
    pub count: u64,
    /// Plaintext bytes (purged: bytes whose content is gone).
    pub bytes: u64,
}

/// Counts per tier (`hot`, `warm`, `cold`) plus `purged`.
pub type TierCounts = BTreeMap<String, TierCount>;

/// The answer of `lifecycle summary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleSummary {
    /// Windows in force.
    pub windows: Windows,
    /// All tenants (or the one asked for) together.
    pub total: TierCounts,
    /// Per tenant.
    pub tenants: BTreeMap<String, TierCounts>,
}

fn empty_counts() -> TierCounts {
    Tier::ALL.iter().map(|t| t.as_str()).chain(["purged"]).map(|k| (k.to_string(), TierCount::default())).collect()
}

impl Platform {
    /// The windows in force (recorded over the defaults).
    pub fn lifecycle_windows(&self) -> Result<Windows, PlatformError> {
        Ok(Windows::of(&self.compliance_views()?.lifecycle))
    }

    /// `lifecycle policy show`: each window, and who set it (or `default`).
    pub fn lifecycle_policy_show(&self) -> Result<Value, PlatformError> {
        let v = self.compliance_views()?.lifecycle;
        let w = Windows::of(&v);
        let rows: Vec<Value> = Tier::ALL
            .iter()
            .map(|&t| {
                let set = v.get(t);
                json!({
                    "tier": t, "days": w.days(t), "then": match t { Tier::Hot => "warm", Tier::Warm => "cold", Tier::Cold => "purge" },
                    "source": if set.is_some() { "set" } else { "default" },
                    "set_by": set.map(|s| s.set_by.clone()), "set_at": set.map(|s| format_ts(s.set_at)),
                })
            })
            .collect();
        Ok(json!({"windows": w, "policies": rows}))
    }

    /// `lifecycle policy set`: records `lifecycle_policy_set {tier, days}` in `_system`
    /// after checking that the windows keep growing (hot < warm < cold).
    pub fn lifecycle_policy_set(&mut self, p: &Principal, tier: Tier, days: i64) -> Result<Value, PlatformError> {
        let plan = plan_policy_set(&self.compliance_views()?.lifecycle, tier, days)?;
        let data = serde_json::to_value(&plan).map_err(|e| PlatformError::Input(e.to_string()))?;
        let now = now_micros();
        let ev = custos_compliance::holds::system_event("lifecycle_policy_set", data, Some(now));
        self.log.append(&[Pending { event: ev, actor: p.name.clone() }])?;
        self.refresh_governance_snapshot();
        Ok(json!({"event": "lifecycle_policy_set", "tier": tier, "days": plan.days, "set_by": p.name, "set_at": format_ts(now),
                  "windows": self.lifecycle_windows()?}))
    }

    /// `lifecycle run`: moves and purges artifacts by age as of `as_of` (default now),
    /// skipping tenants under legal hold; one transaction with its `lifecycle_run` event.
    pub fn lifecycle_run(
        &mut self,
        p: &Principal,
        as_of: Option<Timestamp>,
        dry_run: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<LifecycleReport, PlatformError> {
        let as_of = as_of.unwrap_or_else(now_micros);
        self.retrying_on_governance(dry_run, |log, v| run(log, &v.lifecycle, &v.holds, v.system_seq, as_of, dry_run, &p.name, progress))
    }

    /// `lifecycle run --dry-run` as a count: whether a live run would purge anything
    /// (the CLI asks for typed confirmation only then).
    pub fn lifecycle_would_purge(&mut self, p: &Principal, as_of: Option<Timestamp>) -> Result<u64, PlatformError> {
        Ok(self.lifecycle_run(p, as_of, true, &mut |_, _| {})?.purged)
    }

    /// `artifacts restore ID --to hot|warm`: records `artifact_tier_changed {reason: restore}`
    /// and restarts the artifact's age clock. A purged artifact cannot come back.
    pub fn artifact_restore(&mut self, who: &Principal, id: &str, to: Tier) -> Result<Value, PlatformError> {
        if to == Tier::Cold {
            return Err(PlatformError::Input("--to cold is not a restore; use --to hot or --to warm".into()));
        }
        let a = self
            .log
            .backend()
            .artifact(id)?
            .ok_or_else(|| PlatformError::NotFound(format!("no artifact {id}; `custos artifacts list` shows the ids")))?;
        if let Some(at) = a.purged_at {
            return Err(PlatformError::Input(format!(
                "artifact {id} was purged by lifecycle on {}: its content is gone and cannot be restored (metadata and SHA-256 remain)",
                format_ts(at)
            )));
        }
        if to > a.tier {
            return Err(PlatformError::Input(format!(
                "artifact {id} is {}; restore only brings an artifact to a hotter tier (or restarts its age in the same tier)",
                a.tier
            )));
        }
        let t = TenantId::parse(&a.tenant)?;
        let data = json!({"artifact_id": id, "from": a.tier, "to": to, "reason": "restore"});
        let now = now_micros();
        let mut ap = self.log.appender()?;
        let seqs = ap.push(&[Pending {
            event: NewEvent {
                tenant: t,
                category: Category::Artifacts,
                kind: "artifact_tier_changed".into(),
                occurred_at: None,
                label: a.label,
                data,
            },
            actor: who.name.clone(),
        }])?;
        // Re-checked under the write lock: a run that purged it meanwhile wins.
        if ap.tx().set_artifact_tier(id, to, now, true)? == 0 {
            return Err(PlatformError::Input(format!("artifact {id} was purged meanwhile; nothing was restored")));
        }
        ap.commit()?;
        Ok(json!({"artifact_id": id, "tenant": a.tenant, "from": a.tier, "to": to, "age_from": format_ts(now), "seq": seqs.first()}))
    }

    /// `lifecycle summary`: artifacts and bytes per tier, overall and per tenant; purged apart.
    pub fn lifecycle_summary(&self, tenant: Option<&str>) -> Result<LifecycleSummary, PlatformError> {
        let mut total = empty_counts();
        let mut tenants: BTreeMap<String, TierCounts> = BTreeMap::new();
        for a in self.log.backend().artifacts(tenant)? {
            let key = if a.purged_at.is_some() { "purged" } else { a.tier.as_str() };
            for c in [&mut total, tenants.entry(a.tenant.clone()).or_insert_with(empty_counts)] {
                let e = c.entry(key.to_string()).or_default();
                e.count += 1;
                e.bytes += a.size;
            }
        }
        Ok(LifecycleSummary { windows: self.lifecycle_windows()?, total, tenants })
    }
}
