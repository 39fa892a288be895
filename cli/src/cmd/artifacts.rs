//! `custos artifacts ...`: encrypted artifact storage with labels.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use custos_domain::Clearance;
use custos_platform::PlatformError;
use serde_json::json;

use super::Ctx;

/// `artifacts ...`.
#[derive(Debug, Subcommand)]
pub enum ArtifactsCmd {
    /// Store a file encrypted with the tenant's key, in sealed 1 MiB chunks (Operator+).
    Put(PutArgs),
    /// Write an artifact's content to a file, if your clearance covers its label (Operator+).
    Get {
        /// Artifact id.
        id: String,
        /// Destination file (written as FILE.tmp, renamed after the SHA-256 check).
        #[arg(long)]
        out: PathBuf,
    },
    /// List artifacts (metadata only) (Viewer+).
    List {
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one artifact's metadata (Viewer+).
    Show {
        /// Artifact id.
        id: String,
    },
    /// Bring an artifact back to a hotter tier and restart its lifecycle age (Compliance+).
    Restore {
        /// Artifact id.
        id: String,
        /// hot or warm.
        #[arg(long)]
        to: String,
    },
    /// Set an artifact's classification label (Compliance+).
    Label {
        /// Artifact id.
        id: String,
        /// Public, Internal, Confidential or Restricted.
        #[arg(long)]
        label: String,
    },
    /// Set the label unlabeled artifacts and events of a tenant take (default Internal) (Compliance+).
    DefaultLabel {
        /// Tenant.
        #[arg(long)]
        tenant: String,
        /// Public, Internal, Confidential or Restricted.
        #[arg(long)]
        label: String,
    },
}

/// `artifacts put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// Tenant that owns it.
    #[arg(long)]
    pub tenant: String,
    /// File to store (streamed; any size).
    pub file: PathBuf,
    /// Display name (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Classification label (default: the tenant's default label applies).
    #[arg(long)]
    pub label: Option<String>,
}

fn label(s: &str) -> Result<Clearance, PlatformError> {
    s.parse().map_err(|_| PlatformError::Input(format!("invalid label {s:?}: use Public, Internal, Confidential or Restricted")))
}

pub fn run(ctx: &Ctx, c: ArtifactsCmd) -> anyhow::Result<()> {
    match c {
        ArtifactsCmd::Put(a) => {
            let l = a.label.as_deref().map(label).transpose()?;
            let (mut p, who) = ctx.authorized("artifacts put", Some(&a.tenant))?;
            let len = std::fs::metadata(&a.file).ok().map(|m| m.len());
            let pb = ctx.out.progress(len, "artifact (bytes)");
            let info = p.artifact_put(&who, &a.tenant, &a.file, a.name.as_deref(), l, &mut |n| pb.set_position(n))?;
            pb.finish_and_clear();
            ctx.out.emit(&info, || {
                format!(
                    "stored {} ({} bytes, sha256 {}) as {} [{}]\n",
                    info.name, info.size, info.sha256, info.artifact_id, info.effective_label
                )
            })
        }
        ArtifactsCmd::Get { id, out } => {
            let (mut p, who) = ctx.authorized("artifacts get", None)?;
            let pb = ctx.out.progress(p.artifact_show(&id).ok().map(|i| i.size), "artifact (bytes)");
            let info = p.artifact_get(&who, &id, &out, &mut |n| pb.set_position(n))?;
            pb.finish_and_clear();
            let v = json!({"artifact": info, "out": out.display().to_string(), "sha256_verified": true});
            ctx.out.emit(&v, || format!("wrote {} ({} bytes, sha256 verified) to {}\n", info.artifact_id, info.size, out.display()))
        }
        ArtifactsCmd::List { tenant } => {
            let (p, _) = ctx.authorized("artifacts list", tenant.as_deref())?;
            let list = p.artifacts_list(tenant.as_deref())?;
            ctx.out.emit(&json!({"artifacts": list}), || {
                let mut s = String::new();
                for a in &list {
                    let tier = if a.purged_at.is_some() { "purged" } else { a.tier.as_str() };
                    s += &format!(
                        "{}  {:<12} {:<12} {:<6} {:>12} B  {}\n",
                        a.artifact_id, a.tenant, a.effective_label, tier, a.size, a.name
                    );
                }
                if list.is_empty() {
                    s += "no artifacts\n";
                }
                s
            })
        }
        ArtifactsCmd::Show { id } => {
            let (p, _) = ctx.authorized("artifacts show", None)?;
            let info = p.artifact_show(&id)?;
            ctx.out.emit(&info, || serde_json::to_string_pretty(&info).unwrap_or_default())
        }
        ArtifactsCmd::Restore { id, to } => {
            let to = super::lifecycle::tier(&to)?;
            let (mut p, who) = ctx.authorized("artifacts restore", None)?;
            let v = p.artifact_restore(&who, &id, to)?;
            ctx.out.emit(&v, || format!("{id}: tier {} -> {}, age restarted\n", v["from"].as_str().unwrap_or_default(), to))
        }
        ArtifactsCmd::Label { id, label: l } => {
            let l = label(&l)?;
            let (mut p, who) = ctx.authorized("artifacts label", None)?;
            let v = p.artifact_label(&who, &id, l)?;
            ctx.out.emit(&v, || format!("{id}: label {} -> {}\n", v["old"], v["new"]))
        }
        ArtifactsCmd::DefaultLabel { tenant, label: l } => {
            let l = label(&l)?;
            let (mut p, who) = ctx.authorized("artifacts default-label", Some(&tenant))?;
            let v = p.set_default_label(&who, &tenant, l)?;
            ctx.out.emit(&v, || format!("{tenant}: default label {} (was {})\n", v["label"], v["previous"]))
        }
    }
}
