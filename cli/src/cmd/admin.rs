//! Keys, actors, whoami.

use custos_domain::{Clearance, Role};
use serde_json::json;

use super::Ctx;
use crate::args::{ActorsCmd, KeysCmd};

pub fn keys(ctx: &Ctx, c: KeysCmd) -> anyhow::Result<()> {
    match c {
        KeysCmd::List => {
            let (p, _) = ctx.authorized("keys list", None)?;
            let keys = p.keys_list()?;
            ctx.out.emit(&json!({"keys": keys}), || {
                let mut s = format!("{:<10} {:<13} {:<22} {:>8} {:>6}\n", "KEY", "STATUS", "CREATED", "AGE(d)", "DEKS");
                for k in &keys {
                    s += &format!("{:<10} {:<13} {:<22} {:>8} {:>6}\n", k.key_id, k.status, k.created_at, k.age_days, k.wraps_deks);
                }
                s
            })
        }
        KeysCmd::Active => {
            let (p, _) = ctx.authorized("keys active", None)?;
            let k = p.keys_active()?;
            let v = json!({"key_id": k.key_id, "alg": k.alg, "status": k.status, "created_at": k.created_at});
            ctx.out.emit(&v, || format!("{} ({}) active since {} ({} days)\n", k.key_id, k.alg, k.created_at, k.age_days))
        }
        KeysCmd::Rotate => {
            let (mut p, who) = ctx.authorized("keys rotate", None)?;
            let k = p.keys_rotate(&who)?;
            let v = json!({"event": "key_rotated", "new_key": {"key_id": k.key_id, "alg": k.alg, "status": k.status, "created_at": k.created_at}});
            ctx.out.emit(&v, || format!("rotated: {} is now the active key; older keys are decrypt-only\n", k.key_id))
        }
        KeysCmd::Public => {
            let (p, _) = ctx.authorized("keys public", None)?;
            let pk = p.public_key()?;
            ctx.out.emit(&json!({"alg": "Ed25519", "public_key": pk}), || format!("{pk}\n"))
        }
        other => super::keys_lifecycle::run(ctx, other),
    }
}

pub fn actors(ctx: &Ctx, c: ActorsCmd) -> anyhow::Result<()> {
    match c {
        ActorsCmd::Add { name, role, clearance } => {
            let role: Role = role.parse().map_err(custos_platform::PlatformError::from)?;
            let clearance: Clearance = clearance.parse().map_err(custos_platform::PlatformError::from)?;
            let (mut p, who) = ctx.authorized("actors add", None)?;
            let a = p.actors_add(&who, &name, role, clearance)?;
            ctx.out.emit(&a, || {
                format!("added {} ({}, clearance {})\ntoken {}\n(shown once: store it now)\n", a.name, a.role, a.clearance, a.token)
            })
        }
        ActorsCmd::List => {
            let (p, _) = ctx.authorized("actors list", None)?;
            let list = p.actors_list()?;
            ctx.out.emit(&json!({"actors": list}), || {
                let mut s = format!("{:<24} {:<11} {:<13} {}\n", "NAME", "ROLE", "CLEARANCE", "STATE");
                for a in &list {
                    s +=
                        &format!("{:<24} {:<11} {:<13} {}\n", a.name, a.role, a.clearance, if a.disabled { "disabled" } else { "enabled" });
                }
                s
            })
        }
        ActorsCmd::Disable { name } => {
            let (mut p, who) = ctx.authorized("actors disable", None)?;
            let a = p.actors_disable(&who, &name)?;
            ctx.out.emit(&a, || format!("disabled {}\n", a.name))
        }
    }
}

pub fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let (_, who) = ctx.authorized("whoami", None)?;
    ctx.out.emit(&who, || format!("{} (role {}, clearance {})\n", who.name, who.role, who.clearance))
}
