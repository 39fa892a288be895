//! `custos cost ...` and `custos budget ...`: record costs, set and show budgets,
//! the pre-flight check (exit 4 on deny) and the cost report.

use clap::{Args, Subcommand};
use custos_domain::budget::{parse_permille, AnomalyRule, BudgetScope, Decision, Limits, Thresholds};
use custos_domain::kinds::CostRecorded;
use custos_domain::{parse_ts, UsdMicros};
use custos_platform::{BudgetShow, CostReport, PlatformError};

use super::Ctx;
use crate::Exit;

#[path = "bench_budgets.rs"]
mod bench_suite;
pub use bench_suite::run as bench;

/// `cost ...`.
#[derive(Debug, Subcommand)]
pub enum CostCmd {
    /// Record the cost of a run (Operator+). Dollars are parsed exactly into micro-USD.
    Record(CostRecordArgs),
    /// Spend per day and provider/model, budgets and anomalies (Viewer+).
    Report(CostReportArgs),
}

/// `cost record`.
#[derive(Debug, Args)]
pub struct CostRecordArgs {
    /// Tenant.
    #[arg(long)]
    pub tenant: String,
    /// Run id.
    #[arg(long)]
    pub run: String,
    /// LLM provider.
    #[arg(long)]
    pub provider: String,
    /// Model.
    #[arg(long)]
    pub model: String,
    /// Prompt tokens.
    #[arg(long, default_value_t = 0)]
    pub tokens_in: u64,
    /// Completion tokens.
    #[arg(long, default_value_t = 0)]
    pub tokens_out: u64,
    /// Cost in dollars, e.g. 0.0021 (at most 6 decimals).
    #[arg(long)]
    pub usd: String,
    /// When it happened (RFC 3339; default now). Older times import history.
    #[arg(long)]
    pub occurred_at: Option<String>,
}

/// `cost report`.
#[derive(Debug, Args)]
pub struct CostReportArgs {
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Window: the last N UTC days including today.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Anomaly threshold in standard deviations (exact, up to 3 decimals).
    #[arg(long, default_value = "3.0")]
    pub sigma: String,
    /// A day must spend at least this many dollars to be flagged.
    #[arg(long, default_value = "3.00")]
    pub min_usd: String,
    /// Baseline days needed before anything is flagged.
    #[arg(long, default_value_t = 10)]
    pub min_days: u32,
}

/// `budget ...`.
#[derive(Debug, Subcommand)]
pub enum BudgetCmd {
    /// Set daily and/or monthly budgets (Compliance+), recorded as `budget_set`.
    Set(BudgetSetArgs),
    /// Budgets, thresholds and spend today / this month (Viewer+).
    Show {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Pre-flight: allow, throttle or deny (exit 4) spending USD now (Operator+).
    Check {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// Amount about to be spent, in dollars.
        #[arg(long)]
        usd: String,
    },
    /// Set the soft (throttle) and hard (deny) thresholds (Compliance+).
    Thresholds {
        /// Soft threshold: ratio (0.8) or percent (80%).
        #[arg(long)]
        soft: String,
        /// Hard threshold: ratio (1.0) or percent (100%).
        #[arg(long)]
        hard: String,
    },
}

/// `budget set`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["tenant", "global", "tenant_default"])))]
pub struct BudgetSetArgs {
    /// This tenant's own budget.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The global budget (sum over all tenants).
    #[arg(long)]
    pub global: bool,
    /// The default of tenants without their own budget.
    #[arg(long)]
    pub tenant_default: bool,
    /// Daily budget in dollars (UTC calendar day).
    #[arg(long)]
    pub daily: Option<String>,
    /// Monthly budget in dollars (UTC calendar month).
    #[arg(long)]
    pub monthly: Option<String>,
}

use custos_platform::parse_usd as usd;

fn opt_usd(v: Option<i64>) -> String {
    v.map(|x| UsdMicros(x).to_string()).unwrap_or_else(|| "-".into())
}

pub fn cost(ctx: &Ctx, c: CostCmd) -> anyhow::Result<()> {
    match c {
        CostCmd::Record(a) => {
            let usd_micros = usd(&a.usd, "--usd")?;
            let at = a.occurred_at.as_deref().map(parse_ts).transpose().map_err(PlatformError::from)?;
            let (mut p, who) = ctx.authorized("cost record", Some(&a.tenant))?;
            let c = CostRecorded {
                run_id: a.run,
                provider: a.provider,
                model: a.model,
                tokens_in: a.tokens_in,
                tokens_out: a.tokens_out,
                usd_micros,
            };
            let r = p.cost_record(&who, &a.tenant, c, at)?;
            ctx.out.emit(&r, || {
                format!(
                    "recorded {} for {} on {} (seq {}); spend that day {}",
                    UsdMicros(r.usd_micros),
                    r.tenant,
                    r.day,
                    r.seq,
                    UsdMicros(r.day_total_usd_micros)
                )
            })
        }
        CostCmd::Report(a) => {
            let rule = AnomalyRule {
                sigma_milli: parse_permille(&a.sigma).map_err(|e| PlatformError::Input(format!("--sigma: {e}")))?,
                min_usd_micros: usd(&a.min_usd, "--min-usd")?,
                min_baseline_days: a.min_days,
            };
            let (mut p, _) = ctx.authorized("cost report", a.tenant.as_deref())?;
            let r = p.cost_report(a.tenant.as_deref(), a.days, rule)?;
            ctx.out.emit(&r, || human_report(&r))
        }
    }
}

fn human_report(r: &CostReport) -> String {
    let mut s = format!(
        "Cost report {} .. {} ({} days)\n  total {}  tokens in {} out {}  events {}\n  global today {} (budget {})  this month {} (budget {})\n",
        r.from,
        r.to,
        r.days,
        UsdMicros(r.total_usd_micros),
        r.tokens_in,
        r.tokens_out,
        r.events,
        UsdMicros(r.global_today_usd_micros),
        opt_usd(r.global_daily_budget_usd_micros),
        UsdMicros(r.global_month_usd_micros),
        opt_usd(r.global_monthly_budget_usd_micros),
    );
    for t in &r.tenants {
        s.push_str(&format!(
            "\n{}: {}  today {} / {}  month {} / {}\n",
            t.tenant,
            UsdMicros(t.total_usd_micros),
            UsdMicros(t.today_usd_micros),
            opt_usd(t.daily_budget_usd_micros),
            UsdMicros(t.month_usd_micros),
            opt_usd(t.monthly_budget_usd_micros)
        ));
        for m in &t.providers {
            s.push_str(&format!(
                "  {:<12} {:<20} {:>14}  in {:>10} out {:>10}\n",
                m.provider,
                m.model,
                UsdMicros(m.total_usd_micros).to_string(),
                m.tokens_in,
                m.tokens_out
            ));
        }
        for d in &t.days {
            s.push_str(&format!("  {}  {:>14}\n", d.day, UsdMicros(d.total_usd_micros).to_string()));
        }
        for an in &t.anomalies {
            s.push_str(&format!(
                "  Cost Anomaly {}: {} vs baseline mean {} (stddev {}, {} days)\n",
                an.day,
                UsdMicros(an.spend_usd_micros),
                UsdMicros(an.baseline_mean_usd_micros),
                UsdMicros(an.baseline_stddev_usd_micros),
                an.baseline_days
            ));
        }
    }
    if r.anomalies_recorded > 0 {
        s.push_str(&format!("\nrecorded {} new cost_anomaly events\n", r.anomalies_recorded));
    }
    s
}

pub fn budget(ctx: &Ctx, c: BudgetCmd) -> anyhow::Result<()> {
    match c {
        BudgetCmd::Set(a) => {
            let limits = Limits {
                daily_usd_micros: a.daily.as_deref().map(|s| usd(s, "--daily")).transpose()?,
                monthly_usd_micros: a.monthly.as_deref().map(|s| usd(s, "--monthly")).transpose()?,
            };
            let scope = if a.global {
                BudgetScope::Global
            } else if a.tenant_default {
                BudgetScope::TenantDefault
            } else {
                BudgetScope::Tenant
            };
            let (mut p, who) = ctx.authorized("budget set", a.tenant.as_deref())?;
            let v = p.budget_set(&who, scope, a.tenant.as_deref(), limits)?;
            ctx.out.emit(&v, || {
                format!(
                    "budget set ({}{}): daily {} monthly {}",
                    scope.as_str(),
                    a.tenant.as_deref().map(|t| format!(" {t}")).unwrap_or_default(),
                    limits.daily_usd_micros.map(|x| UsdMicros(x).to_string()).unwrap_or_else(|| "unchanged".into()),
                    limits.monthly_usd_micros.map(|x| UsdMicros(x).to_string()).unwrap_or_else(|| "unchanged".into()),
                )
            })
        }
        BudgetCmd::Show { tenant } => {
            let (mut p, _) = ctx.authorized("budget show", tenant.as_deref())?;
            let s = p.budget_show(tenant.as_deref())?;
            ctx.out.emit(&s, || human_show(&s))
        }
        BudgetCmd::Check { tenant, usd: amount } => {
            let usd_micros = usd(&amount, "--usd")?;
            let (mut p, who) = ctx.authorized("budget check", Some(&tenant))?;
            let o = p.budget_check(&who, &tenant, usd_micros)?;
            if o.decision == Decision::Deny {
                if ctx.out.json {
                    ctx.out.emit(&o, String::new)?;
                }
                return Err(Exit(4, o.reason).into());
            }
            ctx.out.emit(&o, || o.reason.clone())
        }
        BudgetCmd::Thresholds { soft, hard } => {
            let t = Thresholds {
                soft_permille: parse_permille(&soft).map_err(|e| PlatformError::Input(format!("--soft: {e}")))?,
                hard_permille: parse_permille(&hard).map_err(|e| PlatformError::Input(format!("--hard: {e}")))?,
            };
            let (mut p, who) = ctx.authorized("budget thresholds", None)?;
            let t = p.budget_thresholds(&who, t)?;
            ctx.out.emit(&t, || format!("thresholds: throttle at {}‰, deny at {}‰ of a budget", t.soft_permille, t.hard_permille))
        }
    }
}

fn human_show(s: &BudgetShow) -> String {
    let mut o = format!(
        "global          daily {:>14}  monthly {:>14}   spent today {} this month {}\ntenant default  daily {:>14}  monthly {:>14}\nthresholds      throttle ≥ {}‰, deny ≥ {}‰\n",
        opt_usd(s.global.daily_usd_micros),
        opt_usd(s.global.monthly_usd_micros),
        UsdMicros(s.global_today_usd_micros),
        UsdMicros(s.global_month_usd_micros),
        opt_usd(s.tenant_default.daily_usd_micros),
        opt_usd(s.tenant_default.monthly_usd_micros),
        s.soft_permille,
        s.hard_permille
    );
    for t in &s.tenants {
        o.push_str(&format!(
            "{:<15} today {:>14} / {:<14} month {:>14} / {}\n",
            t.tenant,
            UsdMicros(t.today_usd_micros).to_string(),
            opt_usd(t.daily_budget_usd_micros),
            UsdMicros(t.month_usd_micros).to_string(),
            opt_usd(t.monthly_budget_usd_micros)
        ));
    }
    o
}

/// The quickstart's governance tour: budgets with a throttle and a deny, checkpoints
/// decided and expired, and the cost report. Runs on the quickstart's fresh store.
pub fn quickstart_step(p: &mut custos_platform::Platform, admin: &custos_platform::Principal, say: &dyn Fn(&str)) -> anyhow::Result<()> {
    use custos_platform::{Decide, NewCheckpoint};

    say("\n== 5. budgets: tenant default, global, and a tight daily budget for acme-corp (custos budget set/check)");
    p.budget_set(
        admin,
        BudgetScope::TenantDefault,
        None,
        Limits { daily_usd_micros: Some(50_000_000), monthly_usd_micros: Some(1_000_000_000) },
    )?;
    p.budget_set(admin, BudgetScope::Global, None, Limits { daily_usd_micros: Some(500_000_000), monthly_usd_micros: None })?;
    let today = p.budget_show(Some("acme-corp"))?.tenants.first().map(|t| t.today_usd_micros).unwrap_or(0);
    let daily = today + 1_000_000;
    p.budget_set(admin, BudgetScope::Tenant, Some("acme-corp"), Limits { daily_usd_micros: Some(daily), monthly_usd_micros: None })?;
    say(&format!("   acme-corp spent {} today; daily budget set to {}", UsdMicros(today), UsdMicros(daily)));
    for usd in [10_000i64, 850_000, 2_000_000] {
        let o = p.budget_check(admin, "acme-corp", usd)?;
        say(&format!(
            "   budget check --usd {:<10} → {:<8} {}",
            UsdMicros(usd).to_string(),
            o.decision.as_str(),
            if o.decision == Decision::Allow { String::new() } else { o.reason.clone() }
        ));
    }

    say("\n== 6. approvals: a paused DAG waits for a human (custos approvals ...)");
    let mk = |id: &str, secs: i64| NewCheckpoint {
        tenant: "acme-corp".into(),
        dag_run_id: format!("{id}-run"),
        prompt: "Approve weekly report draft?".into(),
        required_role: custos_domain::Role::Operator,
        expires_in_secs: Some(secs),
        id: Some(id.into()),
    };
    let a = p.approvals_create(admin, mk("weekly-report", 72 * 3600))?;
    p.approvals_create(admin, mk("stale-request", 1))?;
    say(&format!("   created {} (expires {}) and stale-request (expires in 1 s)", a.checkpoint_id, a.expires_at));
    let kv = [("signoff_text".to_string(), "Approved by manager".to_string())].into_iter().collect();
    let d = p.approvals_decide(admin, "weekly-report", Decide::Approve(kv))?;
    say(&format!("   approved weekly-report as {} ({})", d.decided_by.unwrap_or_default(), d.decided_at.unwrap_or_default()));
    if let Err(e) = p.approvals_decide(admin, "weekly-report", Decide::Reject("second thoughts".into())) {
        say(&format!("   a second decision is refused: {e}"));
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let expired = p.approvals_expire()?;
    say(&format!("   approvals expire (cron step): {} expired", expired.len()));
    for c in p.approvals_list(Some("acme-corp"), None)? {
        say(&format!("   {:<15} {}", c.checkpoint_id, c.status.as_str()));
    }

    say("\n== 7. cost report: last 7 days (custos cost report --days 7)");
    let r = p.cost_report(None, 7, AnomalyRule::default())?;
    say(&format!(
        "   total {} over {} cost events; global today {} of {}",
        UsdMicros(r.total_usd_micros),
        r.events,
        UsdMicros(r.global_today_usd_micros),
        opt_usd(r.global_daily_budget_usd_micros)
    ));
    for t in &r.tenants {
        say(&format!(
            "   {:<12} {:>14}  ({} providers/models, {} anomalies)",
            t.tenant,
            UsdMicros(t.total_usd_micros).to_string(),
            t.providers.len(),
            t.anomalies.len()
        ));
    }
    // One tenant's breakdown shows what the report is made of without flooding the tour;
    // acme-corp is the tenant the steps above budgeted, any tenant stands in otherwise.
    const SHOWN: usize = 3;
    if let Some(t) = r.tenants.iter().find(|t| t.tenant == "acme-corp").or(r.tenants.first()) {
        say(&format!("   {} by provider/model:", t.tenant));
        for m in t.providers.iter().take(SHOWN) {
            say(&format!(
                "     {:<10} {:<18} {:>14}  tokens in {} out {}",
                m.provider,
                m.model,
                UsdMicros(m.total_usd_micros).to_string(),
                m.tokens_in,
                m.tokens_out
            ));
        }
        say(&format!("   {} by day (latest {SHOWN}):", t.tenant));
        for d in t.days.iter().rev().take(SHOWN) {
            say(&format!("     {}  {:>14}  ({} cost events)", d.day, UsdMicros(d.total_usd_micros).to_string(), d.events));
        }
    }
    Ok(())
}
