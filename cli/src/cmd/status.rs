//! `custos status`: freezes first, then store, checkpoint, holds, approvals, keys,
//! retention and backup — the first command of an incident.

use custos_platform::{LastRun, StatusReport};

use super::Ctx;

fn last(r: &Option<LastRun>, detail: impl Fn(&LastRun) -> String) -> String {
    match r {
        Some(x) => format!("{} by {} ({})", x.at, x.by.as_deref().unwrap_or("?"), detail(x)),
        None => "never".into(),
    }
}

fn field(v: &serde_json::Value, k: &str) -> String {
    match &v[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "?".into(),
        x => x.to_string(),
    }
}

/// Human text: a `FREEZES` block first (the one thing that changes every answer), then
/// one aligned `label: value` line per item.
pub fn human(s: &StatusReport) -> String {
    let mut o = format!("FREEZES ({})\n", s.freezes.len());
    for l in super::freeze::human_freezes(&s.freezes).lines() {
        o += &format!("  {l}\n");
    }
    let row = |o: &mut String, k: &str, v: String| *o += &format!("{k:<20} {v}\n");
    o += "\n";
    row(&mut o, "store", s.store.location.clone());
    row(&mut o, "size", format!("{} bytes", s.store.bytes));
    row(&mut o, "events", format!("{} (head seq {}, {})", s.store.events, s.store.events, s.store.global_head));
    row(
        &mut o,
        "last checkpoint",
        match &s.last_checkpoint {
            Some(c) => format!("seq {} at {} ({} events since)", c.seq, c.signed_at, c.events_since),
            None => "none (run `custos checkpoint`)".into(),
        },
    );
    row(&mut o, "legal holds", s.holds.count.to_string());
    for h in &s.holds.active {
        o += &format!("{:<20}   {} on {} by {} at {}: {}\n", "", h.hold_id, h.tenant, h.applied_by, h.applied_at, h.reason);
    }
    row(
        &mut o,
        "pending approvals",
        match &s.approvals.oldest {
            Some(c) => format!(
                "{} (oldest {} of {}, created {}, expires {})",
                s.approvals.pending, c.checkpoint_id, c.tenant, c.created_at, c.expires_at
            ),
            None => "0".into(),
        },
    );
    let k = &s.keys;
    row(
        &mut o,
        "active key",
        format!(
            "{} age {} days, rotation every {} days{}",
            k.active_key_id,
            k.active_key_age_days,
            k.rotation_days,
            if k.rotation_overdue { " — OVERDUE" } else { "" }
        ),
    );
    for w in &k.warnings {
        o += &format!("{:<20}   warning: {w}\n", "");
    }
    row(
        &mut o,
        "last retention run",
        last(&s.last_retention_run, |r| format!("as of {}, {} purged", field(&r.details, "as_of"), field(&r.details, "total_purged"))),
    );
    row(&mut o, "last backup", last(&s.last_backup, |r| field(&r.details, "file")));
    o
}

pub fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let (mut p, _) = ctx.authorized("status", None)?;
    let s = p.status()?;
    ctx.out.emit(&s, || human(&s))
}
