//! Retention policies and runs (DESIGN §7), over `custos-retention`.

use custos_domain::{format_ts, now_micros, Category, TenantId, Timestamp};
use custos_retention::{enforce, list, plan_set, PolicyRow, RetentionError, RetentionReport};
use serde_json::json;

use crate::{Platform, PlatformError, Principal};

const RETRIES: usize = 5;

impl From<RetentionError> for PlatformError {
    fn from(e: RetentionError) -> Self {
        match e {
            RetentionError::Input(m) => PlatformError::Input(m),
            RetentionError::Conflict(m) => PlatformError::Log(custos_eventlog::LogError::Conflict(m)),
            RetentionError::Log(e) => e.into(),
        }
    }
}

impl Platform {
    /// `retention policy set`: a store-wide window for a category, or a tenant override.
    pub fn retention_policy_set(
        &mut self,
        p: &Principal,
        tenant: Option<&str>,
        category: Category,
        days: i64,
    ) -> Result<serde_json::Value, PlatformError> {
        let t = tenant.map(TenantId::parse).transpose()?;
        if let Some(t) = &t {
            if !self.log.backend().tenant_heads()?.iter().any(|h| h.tenant == t.as_str()) {
                return Err(PlatformError::NotFound(format!(
                    "unknown tenant {t}: it has no events in this store (check the spelling, or set a store-wide policy without --tenant)"
                )));
            }
        }
        let plan = plan_set(t.as_ref(), category, days)?;
        let data = serde_json::to_value(&plan).map_err(|e| PlatformError::Input(e.to_string()))?;
        let now = now_micros();
        // A policy change never depends on other governance state, so it needs no guard.
        let ev = custos_compliance::holds::system_event("retention_policy_set", data, Some(now));
        self.log.append(&[custos_eventlog::Pending { event: ev, actor: p.name.clone() }])?;
        self.refresh_governance_snapshot();
        Ok(json!({
            "event": "retention_policy_set", "category": category, "days": plan.days, "tenant": plan.tenant,
            "set_by": p.name, "set_at": format_ts(now),
        }))
    }

    /// `retention policy list`: the window in force for every category, then tenant overrides.
    pub fn retention_policy_list(&self) -> Result<Vec<PolicyRow>, PlatformError> {
        Ok(list(&self.compliance_views()?.policies))
    }

    /// `retention run`: purges what is past its window as of `as_of` (default now),
    /// skipping held tenants; records `retention_enforced` in the same transaction.
    pub fn retention_run(
        &mut self,
        p: &Principal,
        as_of: Option<Timestamp>,
        dry_run: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RetentionReport, PlatformError> {
        let as_of = as_of.unwrap_or_else(now_micros);
        self.retrying_on_governance(dry_run, |log, v| enforce(log, &v.policies, &v.holds, v.system_seq, as_of, dry_run, &p.name, progress))
    }

    /// Runs `f` on the current governance views; when another process changed `_system`
    /// meanwhile (`Conflict` from the re-check inside `f`'s transaction) folds again and
    /// retries a few times. A live run refreshes the governance snapshot afterwards.
    pub(crate) fn retrying_on_governance<T>(
        &mut self,
        dry_run: bool,
        mut f: impl FnMut(&mut custos_eventlog::EventLog, &crate::ComplianceViews) -> Result<T, RetentionError>,
    ) -> Result<T, PlatformError> {
        for attempt in 0..RETRIES {
            let v = self.compliance_views()?;
            match f(&mut self.log, &v) {
                Ok(r) => {
                    if !dry_run {
                        self.refresh_governance_snapshot();
                    }
                    return Ok(r);
                }
                Err(RetentionError::Conflict(_)) if attempt + 1 < RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PlatformError::Input("governance state kept changing; retry".into()))
    }
}
