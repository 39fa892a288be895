//! Legal holds, tenant deletion, retention, backup and restore (issue 3).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use custos_compliance::holds::ReleaseTarget;
use custos_domain::parse_ts;
use custos_platform::{sample, HoldList, Platform, PlatformError, PolicyList, Principal};

use super::Ctx;
use crate::confirm::Confirm;

/// `compliance ...` (holds and deletion).
#[derive(Debug, Subcommand)]
pub enum ComplianceCmd {
    /// Apply a legal hold to a tenant: blocks its deletion and retention purge (Compliance+).
    Hold {
        /// Tenant to hold.
        #[arg(long)]
        tenant: String,
        /// Why (matter or case reference).
        #[arg(long)]
        reason: String,
        /// Hold id (case id); generated as hold-<8 hex> when absent.
        #[arg(long)]
        id: Option<String>,
        /// Date the hold is due for review (RFC 3339 or YYYY-MM-DD, in the future);
        /// `custos alerts` reports active holds past it.
        #[arg(long, value_name = "DATE")]
        review_by: Option<String>,
    },
    /// Release one hold of a tenant (--hold ID) or all of them (--all) (Compliance+).
    Release(ReleaseArgs),
    /// List active legal holds (Auditor+).
    Holds {
        /// Only this tenant's holds.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Delete a tenant by crypto-shredding its keys (GDPR erasure); refused while held (Compliance+).
    Delete {
        /// Tenant to delete.
        #[arg(long)]
        tenant: String,
        /// Report what would be destroyed and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export one tenant as a signed bundle an auditor can verify offline (Auditor+).
    Export(super::export::ExportArgs),
    /// Verify a bundle offline: signature, file hashes, chain, commitments, completeness (no store needed).
    VerifyBundle(super::export::VerifyBundleArgs),
}

/// `compliance release`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["hold", "all"]))]
pub struct ReleaseArgs {
    /// Tenant whose hold is released.
    #[arg(long)]
    pub tenant: String,
    /// The hold id to release.
    #[arg(long)]
    pub hold: Option<String>,
    /// Release every active hold of the tenant.
    #[arg(long)]
    pub all: bool,
}

/// `retention ...`.
#[derive(Debug, Subcommand)]
pub enum RetentionCmd {
    /// Retention windows per category (and per tenant).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Purge bodies past their window (headers and commitments stay), skipping held tenants (Compliance+).
    Run {
        /// Report what would be purged and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Measure windows back from this time instead of now (RFC 3339 or YYYY-MM-DD; not in the future).
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
    },
}

/// `retention policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Set the window of a category, store-wide or for one tenant (Compliance+).
    Set {
        /// runs, costs, approvals, artifacts, queue, dlq, governance or custom.
        #[arg(long)]
        category: String,
        /// Window in days (1..36500).
        #[arg(long, allow_hyphen_values = true)]
        days: String,
        /// Only this tenant (overrides the store-wide window).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// The windows in force (Viewer+).
    List,
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Backup file to create (gzip); refused if it exists. The root key is never in it.
    #[arg(long)]
    pub out: PathBuf,
}

/// `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup file written by `custos backup`.
    pub file: PathBuf,
}

pub fn compliance(ctx: &Ctx, c: ComplianceCmd) -> anyhow::Result<()> {
    match c {
        ComplianceCmd::Export(a) => super::export::export(ctx, a),
        ComplianceCmd::VerifyBundle(a) => super::export::verify(ctx, a),
        ComplianceCmd::Hold { tenant, reason, id, review_by } => {
            let review_by =
                review_by.as_deref().map(parse_ts).transpose().map_err(|e| PlatformError::Input(format!("--review-by: {e}")))?;
            let (mut p, who) = ctx.authorized("compliance hold", Some(&tenant))?;
            let v = p.hold_apply(&who, &tenant, &reason, id.as_deref(), review_by)?;
            ctx.out.emit(&v, || {
                let id = v["hold_id"].as_str().unwrap_or("");
                if v["already_active"].as_bool().unwrap_or(false) {
                    format!(
                        "hold {id} is already active on {tenant} (applied by {} at {}); nothing changed\n",
                        v["applied_by"].as_str().unwrap_or(""),
                        v["applied_at"].as_str().unwrap_or("")
                    )
                } else {
                    format!("hold {id} applied to {tenant}: deletion and retention purge of {tenant} are blocked\n")
                }
            })
        }
        ComplianceCmd::Release(a) => {
            let (mut p, who) = ctx.authorized("compliance release", Some(&a.tenant))?;
            let target = match a.hold {
                Some(h) => ReleaseTarget::One(h),
                None => ReleaseTarget::All,
            };
            let r = p.hold_release(&who, &a.tenant, &target)?;
            ctx.out.emit(&r, || format!("released {} on {}\n", r.hold_ids.join(", "), r.tenant))
        }
        ComplianceCmd::Holds { tenant } => {
            let (p, _) = ctx.authorized("compliance holds", tenant.as_deref())?;
            let r = HoldList::from(p.holds_list(tenant.as_deref())?);
            let hs = &r.holds;
            ctx.out.emit(&r, || {
                if hs.is_empty() {
                    return "no active legal holds\n".into();
                }
                let mut s = format!("{:<20} {:<20} {:<16} {:<22} {:<22} {}\n", "HOLD", "TENANT", "BY", "APPLIED", "REVIEW BY", "REASON");
                for h in hs {
                    let review = h.review_by.as_deref().unwrap_or("-");
                    s += &format!(
                        "{:<20} {:<20} {:<16} {:<22} {:<22} {}\n",
                        h.hold_id, h.tenant, h.applied_by, h.applied_at, review, h.reason
                    );
                }
                s
            })
        }
        ComplianceCmd::Delete { tenant, dry_run } => {
            let (mut p, who) = ctx.authorized("compliance delete", Some(&tenant))?;
            if !dry_run {
                Confirm {
                    command: "compliance delete",
                    consequences: format!(
                        "Deleting tenant {tenant} crypto-shreds it: its data keys, event bodies, snapshots and artifact contents \
                         become unrecoverable, in this store and in every backup once the root key of those backups is gone.\n\
                         (`custos compliance delete --tenant {tenant} --dry-run` shows the counts.)"
                    ),
                    word: &tenant,
                    word_is: "the tenant id",
                }
                .ask(ctx.yes)?;
            }
            let r = p.tenant_delete(&who, &tenant, dry_run)?;
            ctx.out.emit(&r, || {
                let c = &r.counts;
                let what = format!(
                    "{} bodies (runs {}, costs {}, approvals {}, artifacts {}, queue {}, dlq {}, governance {}, custom {}), {} artifact blobs, {} snapshots, {} data keys",
                    c.bodies(), c.runs, c.costs, c.approvals, c.artifacts, c.queue, c.dlq, c.governance, c.custom, c.artifact_blobs, c.snapshots, c.keys
                );
                if r.dry_run {
                    format!("dry run: deleting {} would destroy {what}\n", r.tenant)
                } else if r.already_deleted {
                    format!("{} was already deleted at {}; nothing left to destroy\n", r.tenant, r.deleted_at.clone().unwrap_or_default())
                } else {
                    format!("deleted {} (crypto-shredded): destroyed {what}\nheaders and commitments stay, so `custos verify` still passes\n", r.tenant)
                }
            })
        }
    }
}

pub fn retention(ctx: &Ctx, c: RetentionCmd) -> anyhow::Result<()> {
    match c {
        RetentionCmd::Policy(PolicyCmd::Set { category, days, tenant }) => {
            let cat = category.parse().map_err(PlatformError::from)?;
            let days: i64 = days
                .trim()
                .parse()
                .map_err(|_| PlatformError::Input(format!("invalid --days {days:?}: use a whole number of days from 1 to 36500")))?;
            let (mut p, who) = ctx.authorized("retention policy set", tenant.as_deref())?;
            let v = p.retention_policy_set(&who, tenant.as_deref(), cat, days)?;
            ctx.out.emit(&v, || {
                format!("retention of {category} set to {days} days for {}\n", tenant.clone().unwrap_or_else(|| "every tenant".into()))
            })
        }
        RetentionCmd::Policy(PolicyCmd::List) => {
            let (p, _) = ctx.authorized("retention policy list", None)?;
            let r = PolicyList::from(p.retention_policy_list()?);
            let rows = &r.policies;
            ctx.out.emit(&r, || {
                let mut s = format!("{:<12} {:>6} {:<20} {:<8} {}\n", "CATEGORY", "DAYS", "TENANT", "SOURCE", "SET BY");
                for r in rows {
                    s += &format!(
                        "{:<12} {:>6} {:<20} {:<8} {}\n",
                        r.category.as_str(),
                        r.days,
                        r.tenant.clone().unwrap_or_else(|| "*".into()),
                        r.source,
                        r.set_by.clone().unwrap_or_default()
                    );
                }
                s
            })
        }
        RetentionCmd::Run { dry_run, as_of } => {
            let as_of = as_of.as_deref().map(parse_ts).transpose().map_err(PlatformError::from)?;
            let (mut p, who) = ctx.authorized("retention run", None)?;
            if !dry_run {
                Confirm {
                    command: "retention run",
                    consequences: "A retention run purges every event body past its retention window, for every tenant not under a \
                                   legal hold; purged bodies cannot be recovered. (`custos retention run --dry-run` shows the counts.)"
                        .into(),
                    word: "purge",
                    word_is: "the word",
                }
                .ask(ctx.yes)?;
            }
            let pb = ctx.out.progress(Some(0), "retention (tenants)");
            let r = p.retention_run(&who, as_of, dry_run, &mut |done, total| {
                pb.set_length(total);
                pb.set_position(done);
            })?;
            pb.finish_and_clear();
            ctx.out.emit(&r, || {
                let mut s = format!(
                    "{} as of {}: {} bodies {} over {} tenants\n",
                    if r.dry_run { "retention dry run" } else { "retention run" },
                    r.as_of,
                    r.total_purged,
                    if r.dry_run { "would be purged" } else { "purged" },
                    r.tenants
                );
                for (c, n) in r.counts.iter().filter(|(_, n)| **n > 0) {
                    s += &format!("  {c:<12} {n}\n");
                }
                for (t, n) in &r.held {
                    s += &format!("  held: {t} ({n} bodies kept under legal hold)\n");
                }
                s
            })
        }
    }
}

pub fn backup(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<()> {
    let (mut p, who) = ctx.authorized("backup", None)?;
    let b = p.backup(&who, &a.out)?;
    ctx.out.emit(&b, || {
        format!(
            "backup {} ({} bytes, {} events, sha256 {})\nthe root key is NOT in it: keep {} safe and apart\n",
            b.file,
            b.bytes,
            b.events,
            b.sha256,
            ctx.root_key.display()
        )
    })
}

pub fn restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<()> {
    let r = custos_platform::restore(&a.file, &ctx.store)?;
    ctx.out.emit(&r, || {
        format!(
            "restored {} events into {} (chains verified); open it with the root key of the store it was taken from\n",
            r.events, r.store
        )
    })
}

/// The quickstart's compliance chapter: hold, blocked deletion, release, retention, deletion, verify.
pub fn quickstart_step(p: &mut Platform, admin: &Principal, say: &dyn Fn(&str)) -> anyhow::Result<()> {
    let victim = sample::SAMPLE_TENANTS[2];
    say(&format!("\n== 5. legal hold: {victim} is under hold, so its deletion is refused (exit 3)"));
    let h = p.hold_apply(admin, victim, "quickstart: pending litigation", Some("CASE-QS-1"), None)?;
    say(&format!("   hold {} applied by {}", h["hold_id"].as_str().unwrap_or(""), admin.name));
    match p.tenant_delete(admin, victim, false) {
        Err(e) if e.exit_code() == 3 => say(&format!("   delete --tenant {victim} -> exit 3: {e}")),
        Err(e) => return Err(e.into()),
        Ok(_) => return Err(PlatformError::Integrity("a held tenant was deleted".into()).into()),
    }
    let r = p.hold_release(admin, victim, &ReleaseTarget::All)?;
    say(&format!("   released {}", r.hold_ids.join(", ")));

    let as_of = custos_domain::now_micros();
    say("\n== 6. retention: keep queue traffic 14 days and dead letters 7 days, then run with --as-of now");
    p.retention_policy_set(admin, None, custos_domain::Category::Queue, 14)?;
    p.retention_policy_set(admin, None, custos_domain::Category::Dlq, 7)?;
    let rr = p.retention_run(admin, Some(as_of), false, &mut |_, _| {})?;
    say(&format!(
        "   retention_enforced as of {}: {} bodies purged ({} queue, {} dlq); headers and commitments stay",
        rr.as_of,
        rr.total_purged,
        rr.counts.get("queue").copied().unwrap_or(0),
        rr.counts.get("dlq").copied().unwrap_or(0)
    ));

    say(&format!("\n== 7. GDPR erasure: delete {victim} by crypto-shredding its data keys"));
    let d = p.tenant_delete(admin, victim, false)?;
    say(&format!("   tenant_deleted: {} bodies, {} data keys destroyed", d.counts.bodies(), d.counts.keys));
    let rep = p.verify(&custos_eventlog::VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
    say(&format!(
        "   verify: {} ({} events, {} bodies checked, {} purged bodies each covered by its retention run or deletion)",
        if rep.ok { "OK" } else { "FAILED" },
        rep.events,
        rep.bodies_checked,
        rep.purged
    ));
    if !rep.ok {
        return Err(PlatformError::Integrity(rep.error.unwrap_or_default()).into());
    }
    Ok(())
}
