//! Threshold alerts (`custos alerts`): reads the figures the rules of
//! `custos_domain::alerts` look at from projections and the log, resolves the
//! thresholds (recorded > config file > built-in) and records `alert_threshold_set`.

use std::collections::{BTreeMap, BTreeSet};

use custos_domain::alerts::{
    self, evaluate, parse_threshold, threshold_spec, Alert, BudgetUse, Figures, HoldReview, KeyAge, PendingCheckpoint, Source, Thresholds,
    Unit, THRESHOLDS,
};
use custos_domain::budget::{month_start, utc_day};
use custos_domain::checkpoint::Status;
use custos_domain::{format_ts, now_micros, TenantId, Timestamp, SYSTEM_TENANT};
use custos_eventlog::Query;
use custos_projections::budgets::SpendView;
use serde::Serialize;
use serde_json::{json, Value};

use crate::{Platform, PlatformError, Principal};

/// What `custos alerts` evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertOptions {
    /// Window of the rate and cost alerts, seconds back from `at`.
    pub window_secs: i64,
    /// Only this tenant (key and retention alerts stay store-wide).
    pub tenant: Option<String>,
    /// Evaluation time; now when absent.
    pub at: Option<Timestamp>,
}

impl Default for AlertOptions {
    fn default() -> Self {
        Self { window_secs: 7 * 86_400, tenant: None, at: None }
    }
}

/// The answer of `custos alerts` (also the webhook body).
#[derive(Debug, Clone, Serialize)]
pub struct AlertReport {
    /// Evaluation time, RFC 3339.
    pub at: String,
    /// Start of the window, RFC 3339.
    pub since: String,
    /// Tenant filter, if any.
    pub tenant: Option<String>,
    /// How many alerts fire.
    pub firing: usize,
    /// Every alert, in a fixed order.
    pub alerts: Vec<Alert>,
}

/// One effective threshold, for `alerts thresholds` and `alerts set`.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdRow {
    /// Name.
    pub name: &'static str,
    /// Value in `unit` (ratio 0..1, USD, hours).
    pub value: f64,
    /// Human form, accepted by `alerts set`.
    pub display: String,
    /// Unit.
    pub unit: Unit,
    /// `recorded`, `config_file` or `default`.
    pub source: Source,
    /// The built-in default, human form.
    pub default: String,
    /// What fires.
    pub fires_when: String,
}

impl Platform {
    /// Thresholds recorded with `alerts set` (the last per name).
    fn recorded_thresholds(&self) -> Result<BTreeMap<String, i64>, PlatformError> {
        let mut m = BTreeMap::new();
        for (_, _, d) in self.system_events_of("alert_threshold_set")? {
            let (Some(name), Some(value)) = (d.get("name").and_then(Value::as_str), d.get("value").and_then(Value::as_str)) else {
                continue;
            };
            // A recorded value that no longer parses is skipped rather than failing every evaluation.
            if let Ok(v) = parse_threshold(name, value) {
                m.insert(name.to_string(), v);
            }
        }
        Ok(m)
    }

    /// Effective thresholds: recorded, else the config file, else built-in.
    pub fn alert_thresholds(&self) -> Result<Thresholds, PlatformError> {
        Ok(Thresholds::resolve(&self.defaults().alerts, &self.recorded_thresholds()?))
    }

    /// `alerts thresholds`: every settable threshold with its source.
    pub fn alert_threshold_rows(&self) -> Result<Vec<ThresholdRow>, PlatformError> {
        let t = self.alert_thresholds()?;
        Ok(THRESHOLDS
            .iter()
            .map(|s| {
                let (v, source) = t.0.get(s.name).copied().unwrap_or((s.default, Source::Default));
                ThresholdRow {
                    name: s.name,
                    value: s.unit.as_f64(v),
                    display: s.unit.format(v),
                    unit: s.unit,
                    source,
                    default: s.unit.format(s.default),
                    fires_when: format!("{} {}", s.help, s.unit.format(v)),
                }
            })
            .collect())
    }

    /// `alerts set NAME VALUE`: validates and records `alert_threshold_set` in `_system`.
    pub fn alert_set(&mut self, p: &Principal, name: &str, value: &str) -> Result<ThresholdRow, PlatformError> {
        let spec = threshold_spec(name).map_err(|e| PlatformError::Input(e.to_string()))?;
        let v = parse_threshold(name, value).map_err(|e| PlatformError::Input(e.to_string()))?;
        let previous = self.alert_thresholds()?.get(name);
        let data = json!({"name": spec.name, "value": spec.unit.format(v), "previous": spec.unit.format(previous)});
        self.append_system("alert_threshold_set", data, &p.name)?;
        self.alert_threshold_rows()?
            .into_iter()
            .find(|r| r.name == spec.name)
            .ok_or_else(|| PlatformError::NotFound(format!("threshold {name} vanished")))
    }

    /// Evaluates every alert as of `o.at` (default now).
    pub fn alerts_evaluate(&mut self, o: &AlertOptions) -> Result<AlertReport, PlatformError> {
        if o.window_secs <= 0 {
            return Err(PlatformError::Input("--since must be a positive duration, e.g. 7d or 24h".into()));
        }
        let tenant = o.tenant.as_deref().map(TenantId::parse).transpose()?.map(|t| t.to_string());
        let at = o.at.unwrap_or_else(now_micros);
        let since = at.saturating_sub(o.window_secs.saturating_mul(1_000_000));
        let figures = self.alert_figures(tenant.as_deref(), since, at)?;
        let alerts = evaluate(&figures, &self.alert_thresholds()?);
        Ok(AlertReport { at: format_ts(at), since: format_ts(since), tenant, firing: alerts.iter().filter(|a| a.firing).count(), alerts })
    }

    fn alert_figures(&mut self, tenant: Option<&str>, since: Timestamp, at: Timestamp) -> Result<Figures, PlatformError> {
        let mut f = Figures { at, ..Default::default() };
        let window = |kind: &str| Query {
            tenant: tenant.map(str::to_string),
            kind: Some(kind.into()),
            since: Some(since),
            until: Some(at),
            ..Default::default()
        };
        self.log.read(&window("run_completed"), &mut |e| {
            if e.header.tenant.is_system() {
                return Ok(true);
            }
            // Purged or shredded bodies carry no data: they are not counted as runs.
            let Some(d) = e.data else { return Ok(true) };
            f.runs += 1;
            if d.get("redactions").and_then(Value::as_u64).unwrap_or(0) > 0 {
                f.runs_redacted += 1;
            }
            if d.get("status").and_then(Value::as_str).is_some_and(alerts::is_failure) {
                f.runs_failed += 1;
            }
            Ok(true)
        })?;
        let mut runs = BTreeSet::new();
        self.log.read(&window("cost_recorded"), &mut |e| {
            let Some(d) = e.data else { return Ok(true) };
            let run = d.get("run_id").and_then(Value::as_str).unwrap_or_default().to_string();
            runs.insert((e.header.tenant.to_string(), run));
            f.cost_total = f.cost_total.saturating_add(d.get("usd_micros").and_then(Value::as_i64).unwrap_or(0));
            Ok(true)
        })?;
        f.cost_runs = runs.len() as u64;

        let tenants = match tenant {
            Some(t) => vec![t.to_string()],
            None => self.live_tenants()?,
        };
        let cfg = self.config()?;
        f.soft_permille = cfg.thresholds.soft_permille;
        let day = utc_day(at);
        for t in &tenants {
            let v = self.view::<SpendView>(t)?;
            let eff = cfg.effective(&v.limits);
            if let Some(b) = eff.daily_usd_micros {
                f.budgets.push(BudgetUse { tenant: t.clone(), period: "daily", spent: v.day(day), budget: b });
            }
            if let Some(b) = eff.monthly_usd_micros {
                f.budgets.push(BudgetUse {
                    tenant: t.clone(),
                    period: "monthly",
                    spent: v.range(month_start(day), day).usd_micros,
                    budget: b,
                });
            }
        }

        f.pending = self
            .all_checkpoints(tenant)?
            .into_iter()
            // Pending as of `at`: created by then, not decided, not yet past its expiry.
            .filter(|c| c.status == Status::Pending && c.created_at <= at && at < c.expires_at)
            .map(|c| PendingCheckpoint {
                checkpoint_id: c.checkpoint_id,
                tenant: c.tenant,
                created_at: c.created_at,
                expires_at: c.expires_at,
            })
            .collect();

        let policy = self.keys_policy()?;
        f.key = self.log.backend().keks()?.into_iter().find(|k| k.status == "active").map(|k| KeyAge {
            key_id: k.key_id,
            created_at: k.created_at,
            rotation_days: policy.rotation_days,
        });

        // Only the log's clock is needed: a header-only scan decrypts nothing.
        let q =
            Query { tenant: Some(SYSTEM_TENANT.into()), kind: Some("retention_enforced".into()), headers_only: true, ..Default::default() };
        self.log.backend().scan(&q, &mut |r| {
            if r.header.recorded_at <= at {
                f.last_retention = Some(r.header.recorded_at);
            }
            Ok(true)
        })?;

        f.holds = self
            .compliance_views()?
            .holds
            .active
            .into_values()
            .filter(|h| tenant.is_none_or(|t| h.tenant == t))
            .filter_map(|h| Some(HoldReview { review_by: h.review_by?, hold_id: h.hold_id, tenant: h.tenant }))
            .collect();
        Ok(f)
    }
}
