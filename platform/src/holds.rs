//! Legal holds and tenant deletion (DESIGN §7), over `custos-compliance`.
//!
//! Holds and retention policies are global state folded from `_system`
//! ([`ComplianceViews`]); they are cached in one snapshot sealed with the `_system`
//! DEK and read as snapshot + tail, so incremental state always equals a rebuild.
//! Every decision taken on them is re-checked inside the write transaction
//! (the `_system` head must not have moved), and retried a few times otherwise.

use custos_compliance::deletion::{delete_tenant, DeletionReport};
use custos_compliance::holds::{append_guarded, plan_apply, plan_release, ApplyPlan, ReleaseTarget};
use custos_compliance::ComplianceError;
use custos_domain::{format_ts, now_micros, TenantId, Timestamp, SYSTEM_TENANT};
use custos_eventlog::backend::TenantHead;
use custos_eventlog::Query;
use custos_projections::{snapshot, HoldsView, LifecyclePolicies, Projection, RetentionPolicies};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Platform, PlatformError, Principal};

/// Name of the `_system` snapshot holding [`ComplianceViews`].
pub const SNAPSHOT_NAME: &str = "governance";

/// How often an operation is retried when another process changed `_system` under it.
const RETRIES: usize = 5;

/// Holds and retention policies, folded from `_system` up to `system_seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceViews {
    /// Active legal holds.
    pub holds: HoldsView,
    /// Retention policies somebody set.
    pub policies: RetentionPolicies,
    /// Artifact lifecycle windows somebody set (absent from snapshots older than issue 8).
    #[serde(default)]
    pub lifecycle: LifecyclePolicies,
    /// `_system` tenant_seq folded up to.
    pub system_seq: u64,
}

/// A hold as shown by `compliance hold` / `compliance holds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HoldInfo {
    /// Case id.
    pub hold_id: String,
    /// Tenant.
    pub tenant: String,
    /// Why.
    pub reason: String,
    /// Actor who applied it.
    pub applied_by: String,
    /// RFC 3339.
    pub applied_at: String,
    /// Review date (RFC 3339), if one was given (`compliance hold --review-by`).
    pub review_by: Option<String>,
}

/// The answer of `compliance release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseInfo {
    /// Always `hold_released`.
    pub event: &'static str,
    /// Holds released.
    pub hold_ids: Vec<String>,
    /// Tenant.
    pub tenant: String,
    /// Actor.
    pub released_by: String,
    /// RFC 3339.
    pub released_at: String,
}

impl From<ComplianceError> for PlatformError {
    fn from(e: ComplianceError) -> Self {
        match e {
            ComplianceError::Input(m) => PlatformError::Input(m),
            ComplianceError::NotFound(m) => PlatformError::NotFound(m),
            e @ ComplianceError::Held { .. } => PlatformError::Held(e.to_string()),
            ComplianceError::Conflict(m) => PlatformError::Log(custos_eventlog::LogError::Conflict(m)),
            ComplianceError::Log(e) => e.into(),
        }
    }
}

fn is_conflict(e: &ComplianceError) -> bool {
    matches!(e, ComplianceError::Conflict(_))
}

impl ComplianceViews {
    fn apply(&mut self, e: &custos_eventlog::Event) {
        self.holds.apply(e);
        self.policies.apply(e);
        self.lifecycle.apply(e);
        self.system_seq = e.header.tenant_seq;
    }
}

impl Platform {
    /// Holds and policies as of now: the `_system` snapshot plus the events after it.
    pub fn compliance_views(&self) -> Result<ComplianceViews, PlatformError> {
        let mut v: ComplianceViews =
            snapshot::load::<ComplianceViews>(&self.log, SYSTEM_TENANT, SNAPSHOT_NAME)?.map(|(_, v)| v).unwrap_or_default();
        self.fold_system(&mut v)?;
        Ok(v)
    }

    /// Holds and policies folded from the whole `_system` stream, ignoring the snapshot.
    pub fn compliance_views_rebuilt(&self) -> Result<ComplianceViews, PlatformError> {
        let mut v = ComplianceViews::default();
        self.fold_system(&mut v)?;
        Ok(v)
    }

    fn fold_system(&self, v: &mut ComplianceViews) -> Result<(), PlatformError> {
        let q = Query { tenant: Some(SYSTEM_TENANT.into()), after_tenant_seq: Some(v.system_seq), ..Default::default() };
        self.log.read(&q, &mut |e| {
            v.apply(&e);
            Ok(true)
        })?;
        Ok(())
    }

    /// Rewrites the governance snapshot from a full fold; returns (holds, policies, whether the snapshot had drifted).
    pub fn rebuild_compliance(&mut self) -> Result<(usize, usize, bool), PlatformError> {
        let fresh = self.compliance_views_rebuilt()?;
        let cached = snapshot::load::<ComplianceViews>(&self.log, SYSTEM_TENANT, SNAPSHOT_NAME)?.map(|(_, v)| v);
        // The snapshot may legitimately lag (the tail covers it); drift is a snapshot that
        // disagrees with the log once its tail is folded in.
        let drifted = match cached {
            Some(mut c) => {
                self.fold_system(&mut c)?;
                c != fresh
            }
            None => false,
        };
        self.save_views(&fresh)?;
        let policies = fresh.policies.set.values().map(|m| m.len()).sum();
        Ok((fresh.holds.active.len(), policies, drifted))
    }

    /// Caches `v` as the governance snapshot, unless `_system` moved on meanwhile
    /// (then the next reader simply folds a longer tail).
    fn save_views(&mut self, v: &ComplianceViews) -> Result<(), PlatformError> {
        let (backend, keys) = self.log.parts_mut()?;
        let mut tx = backend.begin()?;
        let cur = tx.tenant_head(SYSTEM_TENANT)?.map(|h| h.last_seq).unwrap_or(0);
        if cur != v.system_seq {
            return Ok(());
        }
        snapshot::save_with_keys(keys, tx.as_mut(), SYSTEM_TENANT, SNAPSHOT_NAME, v.system_seq, v)?;
        tx.commit()?;
        Ok(())
    }

    /// Best-effort snapshot refresh after a governance change: a failure only means a longer tail later.
    pub(crate) fn refresh_governance_snapshot(&mut self) {
        match self.compliance_views() {
            Ok(v) => {
                if let Err(e) = self.save_views(&v) {
                    tracing::warn!("could not refresh the governance snapshot: {e}");
                }
            }
            Err(e) => tracing::warn!("could not fold governance state: {e}"),
        }
    }

    fn tenant_head(&self, t: &TenantId) -> Result<Option<TenantHead>, PlatformError> {
        Ok(self.log.backend().tenant_heads()?.into_iter().find(|h| h.tenant == t.as_str()))
    }

    /// `compliance hold`: applies a legal hold to an existing, not deleted tenant, with an
    /// optional review date (which must lie in the future) that `custos alerts` watches.
    /// Applying an active hold again (same id, tenant and reason) answers that hold with
    /// `already_active: true` and records nothing.
    pub fn hold_apply(
        &mut self,
        p: &Principal,
        tenant: &str,
        reason: &str,
        id: Option<&str>,
        review_by: Option<Timestamp>,
    ) -> Result<serde_json::Value, PlatformError> {
        let t = TenantId::parse(tenant)?;
        if let Some(r) = review_by.filter(|r| *r <= now_micros()) {
            return Err(PlatformError::Input(format!("--review-by {} is not in the future; give a later date", format_ts(r))));
        }
        match self.tenant_head(&t)? {
            None => {
                return Err(PlatformError::NotFound(format!("unknown tenant {t}: it has no events in this store (check the spelling)")))
            }
            Some(h) if h.deleted_at.is_some() => {
                return Err(PlatformError::Input(format!("tenant {t} was deleted (crypto-shredded); there is nothing left to hold")))
            }
            Some(_) => {}
        }
        for attempt in 0..RETRIES {
            let v = self.compliance_views()?;
            let plan = match plan_apply(&v.holds, &t, reason, id, review_by)? {
                ApplyPlan::New(plan) => plan,
                // A re-run of the same hold: answer the hold on record and append nothing,
                // so the log keeps exactly one hold_applied per hold.
                ApplyPlan::AlreadyActive(h) => {
                    return Ok(json!({
                        "event": "hold_applied", "hold_id": h.hold_id, "tenant": h.tenant, "reason": h.reason,
                        "applied_by": h.applied_by, "applied_at": format_ts(h.applied_at),
                        "review_by": h.review_by.map(format_ts), "already_active": true,
                    }))
                }
            };
            let now = now_micros();
            let data = serde_json::to_value(&plan).map_err(|e| PlatformError::Input(e.to_string()))?;
            match append_guarded(&mut self.log, v.system_seq, "hold_applied", data, now, &p.name) {
                Ok(_) => {
                    self.refresh_governance_snapshot();
                    return Ok(json!({
                        "event": "hold_applied", "hold_id": plan.hold_id, "tenant": plan.tenant, "reason": plan.reason,
                        "applied_by": p.name, "applied_at": format_ts(now),
                        "review_by": plan.review_by_micros.map(format_ts), "already_active": false,
                    }));
                }
                Err(e) if is_conflict(&e) && attempt + 1 < RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PlatformError::Input("governance state kept changing; retry".into()))
    }

    /// `compliance release`: releases one hold of the tenant, or all of them.
    pub fn hold_release(&mut self, p: &Principal, tenant: &str, target: &ReleaseTarget) -> Result<ReleaseInfo, PlatformError> {
        let t = TenantId::parse(tenant)?;
        if let ReleaseTarget::One(id) = target {
            custos_compliance::holds::validate_hold_id(id)?;
        }
        for attempt in 0..RETRIES {
            let v = self.compliance_views()?;
            let plan = plan_release(&v.holds, &t, target)?;
            let now = now_micros();
            let data = serde_json::to_value(&plan).map_err(|e| PlatformError::Input(e.to_string()))?;
            match append_guarded(&mut self.log, v.system_seq, "hold_released", data, now, &p.name) {
                Ok(_) => {
                    self.refresh_governance_snapshot();
                    return Ok(ReleaseInfo {
                        event: "hold_released",
                        hold_ids: plan.hold_ids,
                        tenant: plan.tenant,
                        released_by: p.name.clone(),
                        released_at: format_ts(now),
                    });
                }
                Err(e) if is_conflict(&e) && attempt + 1 < RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PlatformError::Input("governance state kept changing; retry".into()))
    }

    /// `compliance holds`: active holds, of one tenant or all, oldest first.
    pub fn holds_list(&self, tenant: Option<&str>) -> Result<Vec<HoldInfo>, PlatformError> {
        if let Some(t) = tenant {
            TenantId::parse(t)?;
        }
        let v = self.compliance_views()?;
        let mut hs: Vec<_> = v.holds.active.values().filter(|h| tenant.is_none_or(|t| h.tenant == t)).collect();
        hs.sort_by_key(|h| h.applied_seq);
        Ok(hs
            .into_iter()
            .map(|h| HoldInfo {
                hold_id: h.hold_id.clone(),
                tenant: h.tenant.clone(),
                reason: h.reason.clone(),
                applied_by: h.applied_by.clone(),
                applied_at: format_ts(h.applied_at),
                review_by: h.review_by.map(format_ts),
            })
            .collect())
    }

    /// `compliance delete`: crypto-shreds a tenant (or reports what would go, with `dry_run`).
    /// A held tenant is refused (exit 3) and the attempt is recorded as `deletion_blocked`.
    pub fn tenant_delete(&mut self, p: &Principal, tenant: &str, dry_run: bool) -> Result<DeletionReport, PlatformError> {
        let t = TenantId::parse(tenant)?;
        for attempt in 0..RETRIES {
            let v = self.compliance_views()?;
            match delete_tenant(&mut self.log, &v.holds, v.system_seq, &t, &p.name, dry_run) {
                Ok(r) => return Ok(r),
                Err(ComplianceError::Held { tenant, hold_ids }) => {
                    let data = json!({"tenant": tenant, "hold_ids": hold_ids, "dry_run": dry_run});
                    self.append_system("deletion_blocked", data, &p.name)?;
                    return Err(ComplianceError::Held { tenant, hold_ids }.into());
                }
                Err(e) if is_conflict(&e) && attempt + 1 < RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PlatformError::Input("governance state kept changing; retry".into()))
    }
}
