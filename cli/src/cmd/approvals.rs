//! `custos approvals ...`: human-in-the-loop checkpoints of paused DAG runs.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use custos_domain::{parse_duration_secs, Role};
use custos_platform::{parse_checkpoint_status, CheckpointInfo, CheckpointList, Decide, ExpiredList, NewCheckpoint, PlatformError};

use super::Ctx;

/// `approvals ...`.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCmd {
    /// Create a pending checkpoint for a paused DAG run (Operator+).
    Create(CreateArgs),
    /// List checkpoints with their effective status (Viewer+).
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// pending, approved, rejected or expired.
        #[arg(long)]
        status: Option<String>,
    },
    /// One checkpoint (Viewer+).
    Show {
        /// Checkpoint id.
        id: String,
    },
    /// Approve (role ≥ the checkpoint's required role), with optional key=value inputs.
    Approve {
        /// Checkpoint id.
        id: String,
        /// Inputs, `key=value`; repeatable.
        #[arg(long = "kv", value_name = "KEY=VALUE", num_args = 1..)]
        kv: Vec<String>,
    },
    /// Reject (role ≥ the checkpoint's required role) with a reason.
    Reject {
        /// Checkpoint id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Cron step: record `checkpoint_expired` for every pending checkpoint past expiry (Operator+).
    Expire,
    /// Counts, approvals by actor and role, median time to decision; CSV of decisions (Auditor+).
    Report(ReportArgs),
    /// Set the default expiry of new checkpoints (Compliance+), recorded as `approvals_config_set`.
    Config {
        /// Default expiry, e.g. 48h or 3d.
        #[arg(long)]
        default_expiry: String,
    },
}

/// `approvals create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Tenant.
    #[arg(long)]
    pub tenant: String,
    /// The paused DAG run.
    #[arg(long)]
    pub dag_run: String,
    /// What the approver is asked.
    #[arg(long)]
    pub prompt: String,
    /// Minimum role to decide.
    #[arg(long, default_value = "Operator")]
    pub role: String,
    /// Expiry: 90s, 45m, 72h, 3d (default: the recorded default, else 72h).
    #[arg(long)]
    pub expires_in: Option<String>,
    /// Id (default: generated `ckpt-…`).
    #[arg(long)]
    pub id: Option<String>,
}

/// `approvals report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Window in days.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Write every decision as CSV to FILE.
    #[arg(long)]
    pub csv: Option<std::path::PathBuf>,
}

fn human(c: &CheckpointInfo) -> String {
    let mut s = format!(
        "{}  [{}]\n  Tenant: {}\n  Prompt: {}\n  Required Role: {}\n  Created: {} by {}\n  Expires: {}\n  DAG Run: {}\n",
        c.checkpoint_id,
        c.status.as_str(),
        c.tenant,
        c.prompt,
        c.required_role,
        c.created_at,
        c.created_by,
        c.expires_at,
        c.dag_run_id
    );
    if let (Some(by), Some(at)) = (&c.decided_by, &c.decided_at) {
        s.push_str(&format!("  Decided: {at} by {by} ({})\n", c.decided_role.map(|r| r.to_string()).unwrap_or_default()));
    }
    if let Some(r) = &c.reason {
        s.push_str(&format!("  Reason: {r}\n"));
    }
    for (k, v) in &c.kv {
        s.push_str(&format!("  {k} = {v}\n"));
    }
    s
}

pub fn run(ctx: &Ctx, c: ApprovalsCmd) -> anyhow::Result<()> {
    match c {
        ApprovalsCmd::Create(a) => {
            let role: Role = a.role.parse().map_err(PlatformError::from)?;
            let secs = a.expires_in.as_deref().map(parse_duration_secs).transpose().map_err(PlatformError::from)?;
            let (mut p, who) = ctx.authorized("approvals create", Some(&a.tenant))?;
            let cp = p.approvals_create(
                &who,
                NewCheckpoint {
                    tenant: a.tenant,
                    dag_run_id: a.dag_run,
                    prompt: a.prompt,
                    required_role: role,
                    expires_in_secs: secs,
                    id: a.id,
                },
            )?;
            ctx.out.emit(&cp, || format!("created checkpoint\n{}", human(&cp)))
        }
        ApprovalsCmd::List { tenant, status } => {
            let st = status.as_deref().map(|s| parse_checkpoint_status(s, "--status")).transpose()?;
            let (mut p, _) = ctx.authorized("approvals list", tenant.as_deref())?;
            let r = CheckpointList::from(p.approvals_list(tenant.as_deref(), st)?);
            let l = &r.checkpoints;
            ctx.out.emit(&r, || {
                let title = format!("{} Checkpoints", st.map(|s| capitalize(s.as_str())).unwrap_or_else(|| "All".into()));
                let mut s = format!("{title}\n{}\n", "=".repeat(title.len()));
                for c in l {
                    s.push_str(&human(c));
                }
                if l.is_empty() {
                    s.push_str("(none)\n");
                }
                s
            })
        }
        ApprovalsCmd::Show { id } => {
            let (mut p, _) = ctx.authorized("approvals show", None)?;
            let c = p.approvals_show(&id)?;
            ctx.out.emit(&c, || human(&c))
        }
        ApprovalsCmd::Approve { id, kv } => {
            let mut m = BTreeMap::new();
            for item in kv {
                let (k, v) = item
                    .split_once('=')
                    .filter(|(k, _)| !k.trim().is_empty())
                    .ok_or_else(|| PlatformError::Input(format!("invalid --kv {item:?}: use key=value")))?;
                m.insert(k.trim().to_string(), v.to_string());
            }
            let (mut p, who) = ctx.authorized("approvals approve", None)?;
            let c = p.approvals_decide(&who, &id, Decide::Approve(m))?;
            ctx.out.emit(&c, || format!("approved\n{}", human(&c)))
        }
        ApprovalsCmd::Reject { id, reason } => {
            let (mut p, who) = ctx.authorized("approvals reject", None)?;
            let c = p.approvals_decide(&who, &id, Decide::Reject(reason))?;
            ctx.out.emit(&c, || format!("rejected\n{}", human(&c)))
        }
        ApprovalsCmd::Expire => {
            let (mut p, _) = ctx.authorized("approvals expire", None)?;
            let r = ExpiredList::from(p.approvals_expire()?);
            ctx.out.emit(&r, || {
                let mut s = format!("Expired {} checkpoints:\n", r.expired);
                for c in &r.checkpoints {
                    s.push_str(&format!("  - {} ({}, expired at {})\n", c.checkpoint_id, c.tenant, c.expires_at));
                }
                s
            })
        }
        ApprovalsCmd::Report(a) => {
            let (mut p, _) = ctx.authorized("approvals report", None)?;
            let r = p.approvals_report(a.days)?;
            if let Some(path) = &a.csv {
                let mut w = csv::Writer::from_path(path).map_err(|e| PlatformError::Io(format!("cannot write {}: {e}", path.display())))?;
                for d in &r.decisions {
                    w.serialize(d).map_err(|e| PlatformError::Io(format!("writing {}: {e}", path.display())))?;
                }
                w.flush().map_err(|e| PlatformError::Io(format!("writing {}: {e}", path.display())))?;
            }
            ctx.out.emit(&r, || {
                let mut s = format!(
                    "Checkpoint Audit Report (Last {} Days)\n  Approved: {}\n  Rejected: {}\n  Expired: {}\n  Pending: {}\n  Median time to decision: {}\n",
                    r.days,
                    r.approved,
                    r.rejected,
                    r.expired,
                    r.pending,
                    r.median_secs_to_decision.map(|x| format!("{x}s")).unwrap_or_else(|| "-".into())
                );
                s.push_str("Approvals by Actor:\n");
                for (k, v) in &r.approvals_by_actor {
                    s.push_str(&format!("  {k}: {v}\n"));
                }
                s.push_str("Approvals by Role:\n");
                for (k, v) in &r.approvals_by_role {
                    s.push_str(&format!("  {k}: {v}\n"));
                }
                if let Some(p) = &a.csv {
                    s.push_str(&format!("Exported {} decisions to {}\n", r.decisions.len(), p.display()));
                }
                s
            })
        }
        ApprovalsCmd::Config { default_expiry } => {
            let secs = parse_duration_secs(&default_expiry).map_err(PlatformError::from)?;
            let (mut p, who) = ctx.authorized("approvals config", None)?;
            let v = p.approvals_config(&who, secs)?;
            ctx.out.emit(&v, || format!("default checkpoint expiry: {default_expiry} ({secs} s)"))
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}
