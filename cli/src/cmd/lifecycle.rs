//! `custos lifecycle ...`: artifact storage tiers by age (issue 8).

use clap::Subcommand;
use custos_domain::{now_micros, parse_ts, Tier};
use custos_platform::{PlatformError, TierCounts};
use serde_json::json;

use super::Ctx;
use crate::confirm::Confirm;

/// `lifecycle ...`.
#[derive(Debug, Subcommand)]
pub enum LifecycleCmd {
    /// Move artifacts to colder tiers by age and purge those past the cold window, skipping
    /// tenants under legal hold (Compliance+). Purging asks for typed confirmation.
    Run {
        /// Report what would be moved and purged; change and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Measure ages at this time instead of now (RFC 3339 or YYYY-MM-DD; may be in the future to preview).
        #[arg(long, value_name = "TIME")]
        now: Option<String>,
    },
    /// Tier windows in days of age.
    #[command(subcommand)]
    Policy(LifecyclePolicyCmd),
    /// Artifacts and bytes per tier and tenant, purged apart (Auditor+).
    Summary {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `lifecycle policy ...`.
#[derive(Debug, Subcommand)]
pub enum LifecyclePolicyCmd {
    /// Set the age at which a tier's window ends: hot → warm, warm → cold, cold → purge (Compliance+).
    Set {
        /// hot, warm or cold.
        #[arg(long)]
        tier: String,
        /// Age in days (1..36500); the windows must grow: hot < warm < cold.
        #[arg(long, allow_hyphen_values = true)]
        days: String,
    },
    /// The windows in force (Viewer+).
    Show,
}

pub(crate) fn tier(s: &str) -> Result<Tier, PlatformError> {
    s.parse().map_err(PlatformError::from)
}

fn counts_line(name: &str, c: &TierCounts) -> String {
    let mut s = format!("{name:<20}");
    // Coldest last, purged after: the order an operator reads a lifecycle in.
    for k in ["hot", "warm", "cold", "purged"] {
        let v = c.get(k).copied().unwrap_or_default();
        s += &format!(" {k}: {} ({} B)", v.count, v.bytes);
    }
    s + "\n"
}

pub fn run(ctx: &Ctx, c: LifecycleCmd) -> anyhow::Result<()> {
    match c {
        LifecycleCmd::Run { dry_run, now } => {
            // One time for the confirmation's dry run and the run itself, so nothing ages into
            // a purge between the question and the answer.
            let as_of = Some(now.as_deref().map(parse_ts).transpose().map_err(PlatformError::from)?.unwrap_or_else(now_micros));
            let (mut p, who) = ctx.authorized("lifecycle run", None)?;
            // Moves only change recorded state; a purge destroys content, so only then ask.
            // With --yes (cron) nobody is asked, so the planning dry run is skipped.
            if !dry_run && !ctx.yes {
                let n = p.lifecycle_would_purge(&who, as_of)?;
                if n > 0 {
                    Confirm {
                        command: "lifecycle run",
                        consequences: format!(
                            "This lifecycle run purges the content of {n} artifact(s) past the cold window, for every tenant not \
                             under a legal hold; purged content cannot be recovered. (`custos lifecycle run --dry-run` lists them.)"
                        ),
                        word: "purge",
                        word_is: "the word",
                    }
                    .ask(ctx.yes)?;
                }
            }
            let pb = ctx.out.progress(Some(0), "lifecycle (artifacts)");
            let r = p.lifecycle_run(&who, as_of, dry_run, &mut |done, total| {
                pb.set_length(total);
                pb.set_position(done);
            })?;
            pb.finish_and_clear();
            ctx.out.emit(&r, || {
                let (title, moved, purged) =
                    if r.dry_run { ("lifecycle dry run", "would move", "would purge") } else { ("lifecycle run", "moved", "purged") };
                let mut s = format!(
                    "{title} as of {}: {moved} {} to warm and {} to cold, {purged} {} ({} B)\n",
                    r.as_of,
                    r.moved.get("warm").copied().unwrap_or(0),
                    r.moved.get("cold").copied().unwrap_or(0),
                    r.purged,
                    r.purged_bytes,
                );
                for i in r.items.iter().filter(|i| i.action != "held") {
                    s += &format!("  {} {:<12} {} -> {}  {}\n", i.artifact_id, i.tenant, i.from, i.to, i.name);
                }
                for (t, n) in &r.held {
                    s += &format!("  held: {t} ({n} artifact(s) due, kept under legal hold)\n");
                }
                s
            })
        }
        LifecycleCmd::Policy(LifecyclePolicyCmd::Set { tier: t, days }) => {
            let t = tier(&t)?;
            let days: i64 = days
                .trim()
                .parse()
                .map_err(|_| PlatformError::Input(format!("invalid --days {days:?}: use a whole number of days from 1 to 36500")))?;
            let (mut p, who) = ctx.authorized("lifecycle policy set", None)?;
            let v = p.lifecycle_policy_set(&who, t, days)?;
            ctx.out.emit(&v, || format!("{t} window set to {days} days\n"))
        }
        LifecycleCmd::Policy(LifecyclePolicyCmd::Show) => {
            let (p, _) = ctx.authorized("lifecycle policy show", None)?;
            let v = p.lifecycle_policy_show()?;
            ctx.out.emit(&v, || {
                let mut s = format!("{:<6} {:>6} {:<6} {:<8} {}\n", "TIER", "DAYS", "THEN", "SOURCE", "SET BY");
                for r in v["policies"].as_array().into_iter().flatten() {
                    s += &format!(
                        "{:<6} {:>6} {:<6} {:<8} {}\n",
                        r["tier"].as_str().unwrap_or_default(),
                        r["days"],
                        r["then"].as_str().unwrap_or_default(),
                        r["source"].as_str().unwrap_or_default(),
                        r["set_by"].as_str().unwrap_or_default()
                    );
                }
                s
            })
        }
        LifecycleCmd::Summary { tenant } => {
            let (p, _) = ctx.authorized("lifecycle summary", tenant.as_deref())?;
            let sm = p.lifecycle_summary(tenant.as_deref())?;
            ctx.out.emit(&json!(sm), || {
                let mut s = counts_line("all tenants", &sm.total);
                for (t, c) in &sm.tenants {
                    s += &counts_line(t, c);
                }
                s
            })
        }
    }
}
