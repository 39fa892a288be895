//! Cost budgets: `cost record`, `budget set|thresholds|show|check`, `cost report`.
//!
//! Decisions are the pure functions of `custos_domain::budget`; this module reads
//! their inputs (snapshot + tail), appends their events and keeps the snapshots exact
//! by saving them in the same transaction as the events they cover.

use std::collections::BTreeMap;

use custos_domain::budget::{
    day_string, decide_check, detect_anomalies, month_start, utc_day, AnomalyRule, BudgetInputs, BudgetOutcome, BudgetScope, BudgetSet,
    CheckBudget, Limits, Thresholds,
};
use custos_domain::kinds::CostRecorded;
use custos_domain::{now_micros, Category, TenantId, Timestamp, SYSTEM_TENANT};
use custos_projections::budgets::{BudgetConfigView, Spend, SpendView};
use custos_projections::snapshot::{self, load_folded_in, Folded, Loaded};
use serde::Serialize;
use serde_json::{json, Value};

use crate::governance::{pending, sum_spend};
use crate::{Platform, PlatformError, Principal, SYSTEM_ACTOR};

/// What `cost record` answers.
#[derive(Debug, Clone, Serialize)]
pub struct CostRecordResult {
    /// Global seq of the event.
    pub seq: u64,
    /// Tenant.
    pub tenant: String,
    /// Amount recorded.
    pub usd_micros: i64,
    /// UTC day it counts on.
    pub day: String,
    /// Tenant spend that day, including it.
    pub day_total_usd_micros: i64,
}

/// Limits and spend of one tenant, as `budget show` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct TenantBudget {
    /// Tenant.
    pub tenant: String,
    /// Its own limits (absent = tenant default applies).
    pub own: Limits,
    /// Effective daily budget.
    pub daily_budget_usd_micros: Option<i64>,
    /// Effective monthly budget.
    pub monthly_budget_usd_micros: Option<i64>,
    /// Spend today (UTC).
    pub today_usd_micros: i64,
    /// Spend this UTC month.
    pub month_usd_micros: i64,
}

/// `budget show`.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetShow {
    /// Global limits.
    pub global: Limits,
    /// Tenant-default limits.
    pub tenant_default: Limits,
    /// Soft threshold, per-mille.
    pub soft_permille: u32,
    /// Hard threshold, per-mille.
    pub hard_permille: u32,
    /// Global spend today.
    pub global_today_usd_micros: i64,
    /// Global spend this month.
    pub global_month_usd_micros: i64,
    /// Tenants.
    pub tenants: Vec<TenantBudget>,
}

/// One provider/model line of a report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ModelLine {
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Spend in the window.
    pub total_usd_micros: i64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost events.
    pub events: u64,
}

/// One day of a report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DayLine {
    /// YYYY-MM-DD.
    pub day: String,
    /// Spend.
    pub total_usd_micros: i64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost events.
    pub events: u64,
}

/// A tenant's part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct TenantReport {
    /// Tenant.
    pub tenant: String,
    /// Spend in the window.
    pub total_usd_micros: i64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost events.
    pub events: u64,
    /// Spend today.
    pub today_usd_micros: i64,
    /// Spend this month.
    pub month_usd_micros: i64,
    /// Effective daily budget.
    pub daily_budget_usd_micros: Option<i64>,
    /// Effective monthly budget.
    pub monthly_budget_usd_micros: Option<i64>,
    /// Days with spend in the window.
    pub days: Vec<DayLine>,
    /// Provider/model lines (sum = `total_usd_micros`).
    pub providers: Vec<ModelLine>,
    /// Anomalous days in the window.
    pub anomalies: Vec<custos_domain::budget::CostAnomaly>,
}

/// `cost report`.
#[derive(Debug, Clone, Serialize)]
pub struct CostReport {
    /// Window: first day.
    pub from: String,
    /// Window: last day (today, UTC).
    pub to: String,
    /// Days in the window.
    pub days: u32,
    /// Sum over the tenants shown.
    pub total_usd_micros: i64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost events.
    pub events: u64,
    /// Global spend today (all tenants).
    pub global_today_usd_micros: i64,
    /// Global spend this month (all tenants).
    pub global_month_usd_micros: i64,
    /// Global daily budget.
    pub global_daily_budget_usd_micros: Option<i64>,
    /// Global monthly budget.
    pub global_monthly_budget_usd_micros: Option<i64>,
    /// Tenants.
    pub tenants: Vec<TenantReport>,
    /// `cost_anomaly` events newly recorded by this report.
    pub anomalies_recorded: u64,
}

fn tenant_arg(t: &str) -> Result<String, PlatformError> {
    Ok(TenantId::parse(t)?.to_string())
}

impl Platform {
    /// Appends a `cost_recorded` event and updates the tenant's spend snapshot in the same transaction.
    pub fn cost_record(
        &mut self,
        who: &Principal,
        tenant: &str,
        c: CostRecorded,
        at: Option<Timestamp>,
    ) -> Result<CostRecordResult, PlatformError> {
        let tenant = tenant_arg(tenant)?;
        let data = serde_json::to_value(&c).map_err(|e| PlatformError::Input(e.to_string()))?;
        custos_domain::kinds::validate_ingest(Category::Costs, "cost_recorded", &data)?;
        let at = at.unwrap_or_else(now_micros);
        let mut a = self.log.appender()?;
        let mut l = load_folded_in::<SpendView>(&mut a, &tenant)?;
        let seqs = a.push(&[pending(&tenant, Category::Costs, "cost_recorded", at, data.clone(), &who.name)?])?;
        l.state.apply_parts(Category::Costs, "cost_recorded", at, &data);
        snapshot::save_in(&mut a, &tenant, SpendView::NAME, l.covers + 1, &l.state)?;
        a.commit()?;
        let day = utc_day(at);
        Ok(CostRecordResult {
            seq: seqs.first().copied().unwrap_or(0),
            tenant,
            usd_micros: c.usd_micros,
            day: day_string(day),
            day_total_usd_micros: l.state.day(day),
        })
    }

    /// Records a `budget_set`: tenant scope in the tenant's stream, others in `_system`.
    pub fn budget_set(
        &mut self,
        who: &Principal,
        scope: BudgetScope,
        tenant: Option<&str>,
        limits: Limits,
    ) -> Result<Value, PlatformError> {
        if limits.is_empty() {
            return Err(custos_domain::budget::BudgetError::NothingToSet.into());
        }
        let (stream, tenant) = match (scope, tenant) {
            (BudgetScope::Tenant, Some(t)) => {
                let t = tenant_arg(t)?;
                (t.clone(), Some(t))
            }
            (BudgetScope::Tenant, None) => return Err(PlatformError::Input("--tenant needs a tenant id".into())),
            _ => (SYSTEM_TENANT.to_string(), None),
        };
        let ev = BudgetSet { scope, tenant, limits };
        let data = serde_json::to_value(&ev).map_err(|e| PlatformError::Input(e.to_string()))?;
        let now = now_micros();
        // Refreshes a long `_system` tail outside the lock, so the fold under it stays short.
        self.config()?;
        let mut a = self.log.appender()?;
        if scope == BudgetScope::Tenant {
            let mut l = load_folded_in::<SpendView>(&mut a, &stream)?;
            a.push(&[pending(&stream, Category::Governance, "budget_set", now, data.clone(), &who.name)?])?;
            l.state.apply_parts(Category::Governance, "budget_set", now, &data);
            snapshot::save_in(&mut a, &stream, SpendView::NAME, l.covers + 1, &l.state)?;
        } else {
            self_config_append(&mut a, "budget_set", now, &data, &who.name)?;
        }
        a.commit()?;
        Ok(data)
    }

    /// Records `budget_thresholds_set`.
    pub fn budget_thresholds(&mut self, who: &Principal, t: Thresholds) -> Result<Thresholds, PlatformError> {
        let t = t.validate()?;
        let data = serde_json::to_value(t).map_err(|e| PlatformError::Input(e.to_string()))?;
        self.config()?;
        let mut a = self.log.appender()?;
        self_config_append(&mut a, "budget_thresholds_set", now_micros(), &data, &who.name)?;
        a.commit()?;
        Ok(t)
    }

    /// Records `approvals_config_set` (default checkpoint expiry).
    pub fn approvals_config(&mut self, who: &Principal, default_expiry_secs: i64) -> Result<Value, PlatformError> {
        if default_expiry_secs <= 0 {
            return Err(PlatformError::Input("--default-expiry must be positive, e.g. 72h".into()));
        }
        let data = json!({ "default_expiry_secs": default_expiry_secs });
        self.config()?;
        let mut a = self.log.appender()?;
        self_config_append(&mut a, "approvals_config_set", now_micros(), &data, &who.name)?;
        a.commit()?;
        Ok(data)
    }

    fn spend_views(&mut self, only: Option<&str>) -> Result<BTreeMap<String, SpendView>, PlatformError> {
        let tenants = match only {
            Some(t) => vec![tenant_arg(t)?],
            None => self.live_tenants()?,
        };
        let mut out = BTreeMap::new();
        for t in tenants {
            let v = self.view::<SpendView>(&t)?;
            out.insert(t, v);
        }
        Ok(out)
    }

    /// `budget show`.
    pub fn budget_show(&mut self, tenant: Option<&str>) -> Result<BudgetShow, PlatformError> {
        let cfg = self.config()?;
        let day = utc_day(now_micros());
        let all = self.spend_views(None)?;
        let (gd, gm) = sum_spend(&all, day);
        let views = match tenant {
            Some(t) => self.spend_views(Some(t))?,
            None => all,
        };
        let m0 = month_start(day);
        let tenants = views
            .iter()
            .map(|(t, v)| {
                let eff = cfg.effective(&v.limits);
                TenantBudget {
                    tenant: t.clone(),
                    own: v.limits,
                    daily_budget_usd_micros: eff.daily_usd_micros,
                    monthly_budget_usd_micros: eff.monthly_usd_micros,
                    today_usd_micros: v.day(day),
                    month_usd_micros: v.range(m0, day).usd_micros,
                }
            })
            .collect();
        Ok(BudgetShow {
            global: cfg.global,
            tenant_default: cfg.tenant_default,
            soft_permille: cfg.thresholds.soft_permille,
            hard_permille: cfg.thresholds.hard_permille,
            global_today_usd_micros: gd,
            global_month_usd_micros: gm,
            tenants,
        })
    }

    /// The pre-flight: decides allow / throttle / deny and records throttles and denials
    /// in `_system`. A deny is returned as an outcome (the caller exits 4 after printing it).
    /// An active freeze covering the tenant (read from the same `budget-config` snapshot)
    /// denies whatever the spend.
    pub fn budget_check(&mut self, who: &Principal, tenant: &str, usd_micros: i64) -> Result<BudgetOutcome, PlatformError> {
        let tenant = tenant_arg(tenant)?;
        let now = now_micros();
        let day = utc_day(now);
        let m0 = month_start(day);
        let cfg = self.config()?;
        let own = self.view::<SpendView>(&tenant)?;
        let mut inputs = BudgetInputs {
            tenant_day: own.day(day),
            tenant_month: own.range(m0, day).usd_micros,
            tenant_limits: cfg.effective(&own.limits),
            global_limits: cfg.global,
            thresholds: cfg.thresholds,
            day,
            freeze: cfg.freezes.covering(&tenant).map(|f| f.info()),
            ..Default::default()
        };
        // Global spend only matters when no freeze already decided.
        if !cfg.global.is_empty() && inputs.freeze.is_none() {
            let all = self.spend_views(None)?;
            let (gd, gm) = sum_spend(&all, day);
            inputs.global_day = gd;
            inputs.global_month = gm;
        }
        let (out, events) = decide_check(&inputs, &CheckBudget { tenant: tenant.clone(), usd_micros });
        for (kind, payload) in events {
            let mut data = serde_json::to_value(&payload).map_err(|e| PlatformError::Input(e.to_string()))?;
            data["checked_by"] = json!(who.name);
            self.append_system(kind, data, &who.name)?;
        }
        Ok(out)
    }

    /// `cost report`: spend per day and provider/model in the last `days` UTC days,
    /// budgets, and anomalies (each newly found one recorded once as `cost_anomaly`).
    pub fn cost_report(&mut self, tenant: Option<&str>, days: u32, rule: AnomalyRule) -> Result<CostReport, PlatformError> {
        if days == 0 {
            return Err(PlatformError::Input("--days must be at least 1".into()));
        }
        let cfg = self.config()?;
        let now = now_micros();
        let today = utc_day(now);
        let from = today - i64::from(days) + 1;
        let m0 = month_start(today);
        let all = self.spend_views(None)?;
        let (gd, gm) = sum_spend(&all, today);
        let views = match tenant {
            Some(t) => self.spend_views(Some(t))?,
            None => all,
        };
        let mut rep = CostReport {
            from: day_string(from),
            to: day_string(today),
            days,
            total_usd_micros: 0,
            tokens_in: 0,
            tokens_out: 0,
            events: 0,
            global_today_usd_micros: gd,
            global_month_usd_micros: gm,
            global_daily_budget_usd_micros: cfg.global.daily_usd_micros,
            global_monthly_budget_usd_micros: cfg.global.monthly_usd_micros,
            tenants: vec![],
            anomalies_recorded: 0,
        };
        for (t, v) in &views {
            let tr = tenant_report(t, v, &cfg, from, today, m0, rule);
            let new: Vec<_> = tr.anomalies.iter().filter(|a| !v.anomalies.contains(&a.day)).cloned().collect();
            if !new.is_empty() {
                rep.anomalies_recorded += self.record_anomalies(t, &new, now)?;
            }
            rep.total_usd_micros = rep.total_usd_micros.saturating_add(tr.total_usd_micros);
            rep.tokens_in = rep.tokens_in.saturating_add(tr.tokens_in);
            rep.tokens_out = rep.tokens_out.saturating_add(tr.tokens_out);
            rep.events += tr.events;
            rep.tenants.push(tr);
        }
        Ok(rep)
    }

    /// Appends `cost_anomaly` for days not yet recorded, deduplicated under the write lock.
    fn record_anomalies(
        &mut self,
        tenant: &str,
        found: &[custos_domain::budget::CostAnomaly],
        now: Timestamp,
    ) -> Result<u64, PlatformError> {
        let mut a = self.log.appender()?;
        let mut l = load_folded_in::<SpendView>(&mut a, tenant)?;
        let mut n = 0u64;
        for an in found {
            if l.state.anomalies.contains(&an.day) {
                continue;
            }
            let data = serde_json::to_value(an).map_err(|e| PlatformError::Input(e.to_string()))?;
            a.push(&[pending(tenant, Category::Governance, "cost_anomaly", now, data.clone(), SYSTEM_ACTOR)?])?;
            l.state.apply_parts(Category::Governance, "cost_anomaly", now, &data);
            n += 1;
        }
        if n > 0 {
            snapshot::save_in(&mut a, tenant, SpendView::NAME, l.covers + n, &l.state)?;
            a.commit()?;
        }
        Ok(n)
    }
}

/// Appends a `_system` config event and keeps the `budget-config` snapshot exact.
fn self_config_append(
    a: &mut custos_eventlog::Appender<'_>,
    kind: &str,
    at: Timestamp,
    data: &Value,
    actor: &str,
) -> Result<(), PlatformError> {
    let l = load_folded_in::<BudgetConfigView>(a, SYSTEM_TENANT)?;
    push_config(a, l, kind, at, data, actor)
}

/// Appends a `_system` config event onto `l` (the config read under this appender's
/// lock, so a caller may decide on it first) and saves the snapshot it leads to.
pub(crate) fn push_config(
    a: &mut custos_eventlog::Appender<'_>,
    mut l: Loaded<BudgetConfigView>,
    kind: &str,
    at: Timestamp,
    data: &Value,
    actor: &str,
) -> Result<(), PlatformError> {
    a.push(&[pending(SYSTEM_TENANT, Category::Governance, kind, at, data.clone(), actor)?])?;
    l.state.apply_parts(kind, data, Some(actor), at);
    snapshot::save_in(a, SYSTEM_TENANT, BudgetConfigView::NAME, l.covers + 1, &l.state)?;
    Ok(())
}

/// One tenant's report over days `[from, to]`. Pure: used by the CLI and by tests that
/// recompute it naively.
pub fn tenant_report(t: &str, v: &SpendView, cfg: &BudgetConfigView, from: i64, to: i64, m0: i64, rule: AnomalyRule) -> TenantReport {
    let mut total = Spend::default();
    let mut days = vec![];
    let mut models: BTreeMap<(String, String), Spend> = BTreeMap::new();
    for (d, s) in v.days.range(from..=to) {
        total.merge(&s.total);
        days.push(DayLine {
            day: day_string(*d),
            total_usd_micros: s.total.usd_micros,
            tokens_in: s.total.tokens_in,
            tokens_out: s.total.tokens_out,
            events: s.total.events,
        });
        for (p, ms) in &s.by_model {
            for (m, x) in ms {
                models.entry((p.clone(), m.clone())).or_default().merge(x);
            }
        }
    }
    let daily: BTreeMap<i64, i64> = v.days.iter().map(|(d, s)| (*d, s.total.usd_micros)).collect();
    let from_s = day_string(from);
    let anomalies = detect_anomalies(&daily, rule).into_iter().filter(|a| a.day >= from_s).collect();
    let eff = cfg.effective(&v.limits);
    TenantReport {
        tenant: t.to_string(),
        total_usd_micros: total.usd_micros,
        tokens_in: total.tokens_in,
        tokens_out: total.tokens_out,
        events: total.events,
        today_usd_micros: v.day(to),
        month_usd_micros: v.range(m0, to).usd_micros,
        daily_budget_usd_micros: eff.daily_usd_micros,
        monthly_budget_usd_micros: eff.monthly_usd_micros,
        days,
        providers: models
            .into_iter()
            .map(|((provider, model), s)| ModelLine {
                provider,
                model,
                total_usd_micros: s.usd_micros,
                tokens_in: s.tokens_in,
                tokens_out: s.tokens_out,
                events: s.events,
            })
            .collect(),
        anomalies,
    }
}

impl From<custos_domain::budget::BudgetError> for PlatformError {
    fn from(e: custos_domain::budget::BudgetError) -> Self {
        PlatformError::Input(e.to_string())
    }
}
