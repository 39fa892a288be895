//! `keys status|policy|rewrap|retire|reencrypt|rotate-root` and the quickstart's key step.

use custos_eventlog::VerifyOptions;
use custos_platform::{LifecycleOpts, Platform, PlatformError, Principal};
use serde_json::json;

use super::Ctx;
use crate::args::KeysCmd;
use crate::confirm::Confirm;

pub fn run(ctx: &Ctx, c: KeysCmd) -> anyhow::Result<()> {
    match c {
        KeysCmd::Status { rotation_days } => {
            // Setting the policy from `status` must be indistinguishable from `keys policy`:
            // authorize under that action name (so audits and denials read the same) and go
            // through the same platform call, which validates and records `key_policy_set`.
            let p = match rotation_days {
                Some(d) => {
                    let (mut p, who) = ctx.authorized("keys policy", None)?;
                    p.keys_policy_set(&who, d)?;
                    p
                }
                None => ctx.authorized("keys status", None)?.0,
            };
            let s = p.keys_status()?;
            ctx.out.emit(&s, || {
                let mut o = String::new();
                for w in &s.warnings {
                    o += &format!("WARNING: {w}\n");
                }
                o += &format!(
                    "active key      {} (created {}, {} days old)\nrotation policy every {} days; next rotation due {}{}\n\
                     keys            {}\nDEKs            {} ({} pending rewrap)\n",
                    s.active_key_id,
                    s.active_key_created_at,
                    s.active_key_age_days,
                    s.rotation_days,
                    s.next_rotation_due,
                    if s.rotation_overdue { " (OVERDUE)" } else { "" },
                    s.keys.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "),
                    s.deks,
                    s.deks_pending_rewrap
                );
                if !s.retirable.is_empty() {
                    o += &format!("retirable       {} (`custos keys retire KEY_ID`)\n", s.retirable.join(", "));
                }
                o
            })
        }
        KeysCmd::Policy { rotation_days } => {
            let (mut p, who) = ctx.authorized("keys policy", None)?;
            let pol = match rotation_days {
                Some(d) => p.keys_policy_set(&who, d)?,
                None => p.keys_policy()?,
            };
            ctx.out.emit(&pol, || {
                format!("rotate the active key every {} days{}\n", pol.rotation_days, if pol.default { " (default)" } else { "" })
            })
        }
        KeysCmd::Rewrap => {
            let (mut p, who) = ctx.authorized("keys rewrap", None)?;
            // The bar is made at the first report, when the number of DEKs to move is known.
            let mut pb: Option<indicatif::ProgressBar> = None;
            let r = p.keys_rewrap(&who, LifecycleOpts::from_env(), &mut |done, total| {
                let b = pb.get_or_insert_with(|| ctx.out.progress(Some(total), "rewrap"));
                b.set_length(total);
                b.set_position(done);
            })?;
            if let Some(b) = pb {
                b.finish_and_clear();
            }
            ctx.out.emit(&r, || {
                format!(
                    "rewrapped {} DEK(s) under {} ({} already current, {} in total, {} transaction(s))\n",
                    r.rewrapped, r.key_id, r.already_current, r.deks, r.batches
                )
            })
        }
        KeysCmd::Retire { key_id } => {
            let (mut p, who) = ctx.authorized("keys retire", None)?;
            Confirm {
                command: "keys retire",
                consequences: format!(
                    "Retiring {key_id} destroys its key material for good: anything still wrapped by it (backups taken before \
                     the last rewrap included) can never be decrypted again."
                ),
                word: &key_id,
                word_is: "the key id",
            }
            .ask(ctx.yes)?;
            let r = p.keys_retire(&who, &key_id)?;
            if !r.wal_scrubbed {
                ctx.out.note("warning: another process kept the WAL open; run `custos keys retire` again later to truncate it");
            }
            ctx.out.emit(&r, || {
                if r.retired {
                    format!("retired {}: its key material is destroyed (database, free pages and WAL)\n", r.key_id)
                } else {
                    format!("{} was already retired; nothing to do\n", r.key_id)
                }
            })
        }
        KeysCmd::Reencrypt(a) => {
            let (mut p, who) = ctx.authorized("keys reencrypt", a.tenant.as_deref())?;
            // One bar per tenant, made when its body count is known (done == 0).
            let mut pb: Option<indicatif::ProgressBar> = None;
            let res = p.keys_reencrypt(&who, a.tenant.as_deref(), LifecycleOpts::from_env(), &mut |t, done, total| {
                if done == 0 {
                    if let Some(old) = pb.take() {
                        old.finish_and_clear();
                    }
                }
                let b = pb.get_or_insert_with(|| ctx.out.progress(Some(total), &format!("reencrypt {t}")));
                b.set_length(total);
                b.set_position(done);
            })?;
            if let Some(b) = pb {
                b.finish_and_clear();
            }
            let total: u64 = res.iter().map(|r| r.reencrypted).sum();
            let secs: f64 = res.iter().map(|r| r.seconds).sum();
            let eps = if secs > 0.0 { total as f64 / secs } else { 0.0 };
            let v = json!({"tenants": res, "reencrypted": total, "seconds": secs, "events_per_sec": eps});
            ctx.out.emit(&v, || {
                let mut s = String::new();
                for r in &res {
                    s += &format!(
                        "{}: {} bodies re-encrypted to DEK v{} ({} already current{}); destroyed DEK versions {:?}; {} snapshot(s) dropped\n",
                        r.tenant,
                        r.reencrypted,
                        r.new_version,
                        r.already_current,
                        if r.resumed { ", resumed an interrupted run" } else { "" },
                        r.destroyed_versions,
                        r.snapshots_dropped
                    );
                    if !r.kept_for_artifacts.is_empty() {
                        s += &format!(
                            "  kept DEK versions {:?}: artifacts stored under them meanwhile; run `custos keys reencrypt` again to re-seal them\n",
                            r.kept_for_artifacts
                        );
                    }
                }
                s += &format!("{total} bodies in {secs:.2} s ({eps:.0} events/s)\n");
                s
            })
        }
        KeysCmd::RotateRoot { new_root_key_file } => {
            let (mut p, who) = ctx.authorized("keys rotate-root", None)?;
            Confirm {
                command: "keys rotate-root",
                consequences: format!(
                    "Rotating the root key re-wraps every KEK and the signing key under a new root key at {}; afterwards the \
                     current root key file no longer opens this store.",
                    new_root_key_file.display()
                ),
                word: "rotate-root",
                word_is: "the word",
            }
            .ask(ctx.yes)?;
            let r = p.keys_rotate_root(&who, &new_root_key_file, LifecycleOpts::from_env())?;
            let old = ctx.root_key.display().to_string();
            let steps = vec![
                format!("1. point CUSTOS_ROOT_KEY_FILE (or --root-key-file) at {} everywhere custos runs", r.new_root_key_file),
                format!("2. the old root key in {old} no longer opens this store; destroy it securely (e.g. `shred -u {old}`)"),
                "3. backups taken before now still need the OLD root key: keep it (offline, access-controlled) until they expire, \
                 or destroy it to make them undecryptable — which also completes the erasure of tenants deleted since those backups \
                 (DESIGN §7)"
                    .to_string(),
                "4. take a fresh backup of the store now and keep it with the new key's escrow".to_string(),
            ];
            let v = json!({"event": "root_key_rotated", "result": r, "old_root_key_file": old, "next_steps": steps});
            ctx.out.emit(&v, || {
                format!(
                    "root key rotated: {} KEK(s) and the signing key are now wrapped by {}\n\n!!! DO THIS NOW !!!\n{}\n",
                    r.keks.len(),
                    r.new_root_key_file,
                    steps.join("\n")
                )
            })
        }
        KeysCmd::List | KeysCmd::Active | KeysCmd::Rotate | KeysCmd::Public => {
            Err(PlatformError::Input("internal: key command routed to the lifecycle handler".into()).into())
        }
    }
}

/// Quickstart: rotate, rewrap, retire the old KEK and verify again.
pub fn quickstart_step(p: &mut Platform, admin: &Principal, say: &dyn Fn(&str)) -> anyhow::Result<()> {
    say("\n== keys: rotate the KEK, rewrap every DEK under it, retire the old KEK, verify");
    let old = p.keys_active()?.key_id;
    let new = p.keys_rotate(admin)?;
    let rw = p.keys_rewrap(admin, LifecycleOpts::default(), &mut |_, _| {})?;
    let rt = p.keys_retire(admin, &old)?;
    let rep = p.verify(&VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
    say(&format!(
        "   {} is active; {} DEK(s) rewrapped; {} retired: {}; verify: {} ({} bodies checked)",
        new.key_id,
        rw.rewrapped,
        old,
        if rt.retired { "destroyed" } else { "already gone" },
        if rep.ok { "OK" } else { "FAILED" },
        rep.bodies_checked
    ));
    if !rep.ok {
        return Err(PlatformError::Integrity(rep.error.unwrap_or_default()).into());
    }
    Ok(())
}
