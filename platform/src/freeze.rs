//! Emergency freeze: `freeze`, `unfreeze`, `freeze status`.
//!
//! A freeze is a governance event in `_system` folded into the `budget-config`
//! snapshot ([`BudgetConfigView`]), so the budget check honours it with the read it
//! already does, and `rebuild` reconstructs it like any other budget setting. Both
//! changes decide on the state read under the write lock, so two operators freezing
//! at once record one freeze.

use custos_domain::freeze::{FreezeApplied, FreezeInfo, FreezeLifted, FreezeScope};
use custos_domain::{format_ts, now_micros, TenantId, SYSTEM_TENANT};
use custos_projections::budgets::BudgetConfigView;
use custos_projections::snapshot::load_folded_in;
use serde::Serialize;

use crate::budgets::push_config;
use crate::{Platform, PlatformError, Principal};

/// The answer of `freeze`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreezeResult {
    /// `freeze_applied`, or None when the scope was already frozen (nothing recorded).
    pub event: Option<&'static str>,
    /// True when the scope was already frozen; `freeze` is then the existing one.
    pub already_frozen: bool,
    /// The freeze in force.
    pub freeze: FreezeInfo,
}

/// The answer of `unfreeze`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnfreezeResult {
    /// Always `freeze_lifted`.
    pub event: &'static str,
    /// Actor who lifted it.
    pub lifted_by: String,
    /// RFC 3339.
    pub lifted_at: String,
    /// The freeze that was lifted.
    pub freeze: FreezeInfo,
}

fn scope_of(tenant: Option<&str>) -> FreezeScope {
    if tenant.is_some() {
        FreezeScope::Tenant
    } else {
        FreezeScope::Global
    }
}

fn scope_name(tenant: Option<&str>) -> String {
    tenant.map(|t| format!("tenant {t}")).unwrap_or_else(|| "the store (global scope)".into())
}

impl Platform {
    /// A tenant to freeze must exist and be live: a misspelt id would otherwise freeze
    /// nothing while the operator believes the incident contained.
    fn freeze_target(&self, tenant: Option<&str>) -> Result<Option<String>, PlatformError> {
        let Some(t) = tenant else { return Ok(None) };
        let t = TenantId::parse(t)?.to_string();
        if !self.live_tenants()?.contains(&t) {
            return Err(PlatformError::NotFound(format!(
                "unknown tenant {t}: it has no events in this store or was deleted (check the spelling; \
                 `custos freeze` without --tenant freezes every tenant)"
            )));
        }
        Ok(Some(t))
    }

    /// `freeze`: records `freeze_applied`, or reports the existing freeze of that scope.
    pub fn freeze(&mut self, p: &Principal, tenant: Option<&str>, reason: &str) -> Result<FreezeResult, PlatformError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(PlatformError::Input("--reason must say why (an incident reference), it is quoted to every denied check".into()));
        }
        let tenant = self.freeze_target(tenant)?;
        // Folds a long `_system` tail outside the lock, so the fold under it stays short.
        self.config()?;
        let mut a = self.log.appender()?;
        let l = load_folded_in::<BudgetConfigView>(&mut a, SYSTEM_TENANT)?;
        if let Some(f) = l.state.freezes.of_scope(tenant.as_deref()) {
            // Dropping the appender rolls back: nothing is recorded.
            return Ok(FreezeResult { event: None, already_frozen: true, freeze: f.info() });
        }
        let now = now_micros();
        let ev = FreezeApplied { scope: scope_of(tenant.as_deref()), tenant: tenant.clone(), reason: reason.to_string() };
        let data = serde_json::to_value(&ev).map_err(|e| PlatformError::Input(e.to_string()))?;
        push_config(&mut a, l, "freeze_applied", now, &data, &p.name)?;
        a.commit()?;
        Ok(FreezeResult {
            event: Some("freeze_applied"),
            already_frozen: false,
            freeze: FreezeInfo { scope: ev.scope, tenant, reason: ev.reason, frozen_by: p.name.clone(), frozen_at: format_ts(now) },
        })
    }

    /// `unfreeze`: records `freeze_lifted`; not frozen is an error (exit 1), so a script
    /// that believes it lifted something learns it did not.
    pub fn unfreeze(&mut self, p: &Principal, tenant: Option<&str>) -> Result<UnfreezeResult, PlatformError> {
        // No liveness check: a freeze of a tenant deleted meanwhile must still be liftable.
        let tenant = tenant.map(|t| TenantId::parse(t).map(|t| t.to_string())).transpose()?;
        self.config()?;
        let mut a = self.log.appender()?;
        let l = load_folded_in::<BudgetConfigView>(&mut a, SYSTEM_TENANT)?;
        let Some(f) = l.state.freezes.of_scope(tenant.as_deref()).map(|f| f.info()) else {
            let others = l.state.freezes.list().len();
            return Err(PlatformError::NotFound(format!(
                "{} is not frozen; nothing lifted ({others} other active freeze(s): see `custos freeze status`)",
                scope_name(tenant.as_deref())
            )));
        };
        let now = now_micros();
        let ev = FreezeLifted {
            scope: f.scope,
            tenant: f.tenant.clone(),
            reason: f.reason.clone(),
            frozen_by: f.frozen_by.clone(),
            frozen_at: f.frozen_at.clone(),
        };
        let data = serde_json::to_value(&ev).map_err(|e| PlatformError::Input(e.to_string()))?;
        push_config(&mut a, l, "freeze_lifted", now, &data, &p.name)?;
        a.commit()?;
        Ok(UnfreezeResult { event: "freeze_lifted", lifted_by: p.name.clone(), lifted_at: format_ts(now), freeze: f })
    }

    /// `freeze status`: active freezes, global first.
    pub fn freezes(&mut self) -> Result<Vec<FreezeInfo>, PlatformError> {
        Ok(self.config()?.freezes.list())
    }
}
