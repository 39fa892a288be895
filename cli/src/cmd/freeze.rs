//! `custos freeze`, `custos unfreeze`, `custos freeze status`: the emergency brake on
//! spending. While a freeze covers a tenant every `budget check` of it exits 4.

use clap::{Args, Subcommand};
use custos_domain::budget::Decision;
use custos_domain::freeze::FreezeInfo;
use custos_platform::{Platform, PlatformError, Principal};

use super::Ctx;

/// `freeze`: apply a freeze, or (with a subcommand) list the active ones.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct FreezeArgs {
    /// List active freezes instead of applying one.
    #[command(subcommand)]
    pub cmd: Option<FreezeCmd>,
    /// Why (incident reference); quoted to every denied budget check.
    #[arg(long, required = true)]
    pub reason: Option<String>,
    /// Freeze only this tenant (default: every tenant).
    #[arg(long)]
    pub tenant: Option<String>,
}

/// `freeze status`.
#[derive(Debug, Subcommand)]
pub enum FreezeCmd {
    /// Active freezes, global first (Auditor+).
    #[command(alias = "list")]
    Status,
}

/// `unfreeze`.
#[derive(Debug, Args)]
pub struct UnfreezeArgs {
    /// Lift this tenant's freeze (default: the global freeze).
    #[arg(long)]
    pub tenant: Option<String>,
}

/// One line per freeze, aligned; shared with `custos status`.
pub fn human_freezes(fs: &[FreezeInfo]) -> String {
    if fs.is_empty() {
        return "no active freeze\n".into();
    }
    fs.iter()
        .map(|f| {
            format!(
                "FROZEN  {:<22} since {}  by {:<12} reason: {}\n",
                f.tenant.as_deref().map(|t| format!("tenant {t}")).unwrap_or_else(|| "global (all tenants)".into()),
                f.frozen_at,
                f.frozen_by,
                f.reason
            )
        })
        .collect()
}

pub fn freeze(ctx: &Ctx, a: FreezeArgs) -> anyhow::Result<()> {
    if let Some(FreezeCmd::Status) = a.cmd {
        let (mut p, _) = ctx.authorized("freeze status", None)?;
        let fs = p.freezes()?;
        return ctx.out.emit(&fs, || human_freezes(&fs));
    }
    let reason = a.reason.unwrap_or_default();
    let (mut p, who) = ctx.authorized("freeze", a.tenant.as_deref())?;
    let r = p.freeze(&who, a.tenant.as_deref(), &reason)?;
    ctx.out.emit(&r, || {
        let what = r.freeze.describe_scope();
        if r.already_frozen {
            format!(
                "already frozen: {what} by {} since {} ({:?}); nothing recorded",
                r.freeze.frozen_by, r.freeze.frozen_at, r.freeze.reason
            )
        } else {
            format!(
                "freeze_applied: {what} by {} at {}; every budget check it covers now answers deny (exit 4)",
                who.name, r.freeze.frozen_at
            )
        }
    })
}

pub fn unfreeze(ctx: &Ctx, a: UnfreezeArgs) -> anyhow::Result<()> {
    let (mut p, who) = ctx.authorized("unfreeze", a.tenant.as_deref())?;
    let r = p.unfreeze(&who, a.tenant.as_deref())?;
    ctx.out.emit(&r, || {
        format!(
            "freeze_lifted: {} (applied by {} at {}, {:?}) lifted by {} at {}",
            r.freeze.describe_scope(),
            r.freeze.frozen_by,
            r.freeze.frozen_at,
            r.freeze.reason,
            r.lifted_by,
            r.lifted_at
        )
    })
}

/// The quickstart's emergency-brake step: a global freeze denies a check, unfreeze restores it.
pub fn quickstart_step(p: &mut Platform, admin: &Principal, say: &dyn Fn(&str)) -> anyhow::Result<()> {
    let tenant = custos_platform::sample::SAMPLE_TENANTS[1];
    say("\n== 8. emergency freeze: every budget check is denied until unfreeze (custos freeze / unfreeze)");
    let f = p.freeze(admin, None, "quickstart: INC-0 suspected runaway agent")?;
    say(&format!("   freeze --reason {:?} -> {}", f.freeze.reason, f.freeze.describe_scope()));
    let o = p.budget_check(admin, tenant, 1)?;
    if o.decision != Decision::Deny {
        return Err(PlatformError::Integrity("a budget check passed during a global freeze".into()).into());
    }
    say(&format!("   budget check --tenant {tenant} --usd 0.000001 -> exit 4: {}", o.reason));
    let u = p.unfreeze(admin, None)?;
    let o = p.budget_check(admin, tenant, 1)?;
    say(&format!("   unfreeze by {} -> budget check: {}", u.lifted_by, o.decision.as_str()));
    Ok(())
}
