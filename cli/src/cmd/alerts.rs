//! `custos alerts`: evaluate thresholds (exit 10 when any fires, optionally POST the
//! report to a webhook), `alerts set NAME VALUE`, `alerts thresholds`.

use std::time::Duration;

use clap::{Args, Subcommand};
use custos_domain::{parse_duration_secs, parse_ts};
use custos_platform::{AlertOptions, AlertReport, PlatformError};
use serde_json::json;

use super::Ctx;
use crate::Exit;

/// Exit code when at least one alert fires. DESIGN §8 has none for this; 10 stays clear
/// of the codes it does define (1–5, 64) so a cron wrapper can tell "fired" from "broke".
pub const EXIT_FIRING: u8 = 10;

/// How long a webhook POST may take in all (connect, send, answer).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// `alerts`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    /// Set or list thresholds (without one: evaluate every alert, Auditor+).
    #[command(subcommand)]
    pub cmd: Option<AlertsCmd>,
    /// Window of the rate and cost alerts, back from --at (e.g. 24h, 7d).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub since: String,
    /// Only this tenant (key rotation and retention stay store-wide).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Evaluate as of this time (RFC 3339 or YYYY-MM-DD; default now), for post-mortems and tests.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// POST the JSON report here when an alert fires (http or https only).
    // Webhook URLs often embed a secret (Slack, Teams): never echo the env value in --help.
    #[arg(long, env = "CUSTOS_ALERT_WEBHOOK", hide_env_values = true, value_name = "URL")]
    pub webhook: Option<String>,
}

/// `alerts ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum AlertsCmd {
    /// Record a threshold (`alert_threshold_set`); it then wins over custos.toml and the default (Compliance+).
    Set {
        /// Threshold name (see `custos alerts thresholds`).
        name: String,
        /// Value in the threshold's unit: a fraction (0.1 or 10%), dollars (0.01) or hours (48).
        /// (Hyphen values are let through so `-1` is refused with the threshold's message, exit 1.)
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// The effective thresholds and where each comes from (Auditor+).
    Thresholds,
}

pub fn run(ctx: &Ctx, a: AlertsArgs) -> anyhow::Result<()> {
    match a.cmd {
        Some(AlertsCmd::Set { name, value }) => {
            let (mut p, who) = ctx.authorized("alerts set", None)?;
            let r = p.alert_set(&who, &name, &value)?;
            ctx.out.emit(&r, || format!("alert threshold {} = {} (recorded); fires when {}\n", r.name, r.display, r.fires_when))
        }
        Some(AlertsCmd::Thresholds) => {
            let (p, _) = ctx.authorized("alerts thresholds", None)?;
            let rows = p.alert_threshold_rows()?;
            ctx.out.emit(&json!({ "thresholds": rows }), || {
                let mut s = format!("{:<22} {:<12} {:<12} {:<12} {}\n", "NAME", "VALUE", "SOURCE", "DEFAULT", "FIRES WHEN");
                for r in &rows {
                    s += &format!("{:<22} {:<12} {:<12} {:<12} {}\n", r.name, r.display, label(r.source), r.default, r.fires_when);
                }
                s
            })
        }
        None => evaluate(ctx, a),
    }
}

fn evaluate(ctx: &Ctx, a: AlertsArgs) -> anyhow::Result<()> {
    // Checked before any work so a typo in a cron line fails loudly, not only when something fires.
    let webhook = a.webhook.filter(|w| !w.trim().is_empty());
    if let Some(w) = &webhook {
        check_webhook_url(w)?;
    }
    let window_secs = parse_duration_secs(&a.since).map_err(|e| PlatformError::Input(format!("--since: {e}")))?;
    let at = a.at.as_deref().map(parse_ts).transpose().map_err(|e| PlatformError::Input(format!("--at: {e}")))?;
    let (mut p, _) = ctx.authorized("alerts", a.tenant.as_deref())?;
    let report = p.alerts_evaluate(&AlertOptions { window_secs, tenant: a.tenant, at })?;
    ctx.out.emit(&report, || human(&report))?;
    if report.firing == 0 {
        return Ok(());
    }
    if let Some(url) = &webhook {
        post(url, &report).map_err(|e| PlatformError::Io(format!("alert webhook POST to {url} failed: {e}")))?;
        ctx.out.note(&format!("alert report posted to {url}"));
    }
    Err(Exit(EXIT_FIRING, format!("{} alert(s) firing", report.firing)).into())
}

fn check_webhook_url(url: &str) -> Result<(), PlatformError> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.len() <= "https://".len() {
        return Err(PlatformError::Input(format!(
            "--webhook / CUSTOS_ALERT_WEBHOOK {url:?} is not an http(s) URL; give e.g. https://hooks.example.com/custos"
        )));
    }
    Ok(())
}

fn post(url: &str, report: &AlertReport) -> Result<(), String> {
    let body = serde_json::to_string(report).map_err(|e| e.to_string())?;
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(WEBHOOK_TIMEOUT)).build().into();
    // A non-2xx answer is an error (ureq's default), so a rejected delivery is not silent.
    agent.post(url).content_type("application/json").send(body.as_str()).map(|_| ()).map_err(|e| e.to_string())
}

/// Quickstart step: what `custos alerts` says about the sample store (the tight budget
/// set earlier in the tour is expected to fire).
pub fn quickstart_step(p: &mut custos_platform::Platform, say: &dyn Fn(&str)) -> anyhow::Result<()> {
    say("\n== 9. alerts: thresholds evaluated over the last 7 days (custos alerts; exit 10 when any fires)");
    let r = p.alerts_evaluate(&custos_platform::AlertOptions::default())?;
    say(&format!("   {} of {} alerts firing", r.firing, r.alerts.len()));
    for a in r.alerts.iter().filter(|a| a.firing) {
        say(&format!("   FIRING {:<22} {}", a.name, a.detail));
    }
    Ok(())
}

/// Firing alerts first, then the rest, one line each plus its detail.
fn human(r: &AlertReport) -> String {
    let mut s = format!("alerts as of {} (window since {}): {} firing\n", r.at, r.since, r.firing);
    let mut rows: Vec<_> = r.alerts.iter().collect();
    rows.sort_by_key(|a| !a.firing);
    for a in rows {
        let value = a.value.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
        let tag = if a.firing { "FIRING" } else { "ok" };
        s += &format!("{tag:<7} {:<22} value {value:<12} threshold {:<10} {}\n        {}\n", a.name, a.threshold, label(a.unit), a.detail);
    }
    s
}

/// The serde name of a unit-like enum (`hours`, `config_file`), as `--json` shows it.
fn label(v: impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
