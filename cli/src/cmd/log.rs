//! Log commands: init, ingest, events, verify, checkpoint, rebuild.

use std::io::{BufRead, BufReader, Write};

use custos_domain::parse_ts;
use custos_eventlog::VerifyOptions;
use custos_platform::{parse_expect, EventFilter, IngestOptions, Platform, PlatformError};
use serde_json::json;

use super::Ctx;
use crate::args::{EventsCmd, IngestArgs, InitArgs, VerifyArgs};
use crate::Exit;

pub fn init(ctx: &Ctx, a: InitArgs) -> anyhow::Result<()> {
    let (_, res) = Platform::init(&ctx.store, &ctx.root_key, &a.admin)?;
    ctx.out.emit(&res, || {
        format!(
            "created store      {}\nroot key file      {} (mode 0600)\nadmin actor        {} (Admin)\nadmin token        {}\n\n\
             The token is shown once: store it now (e.g. in a file for --token-file).\n\
             WARNING: the root key file is the only way to decrypt this store. Losing it loses the data;\n\
             keep a copy offline and never store it beside backups of the store.\n",
            res.store, res.root_key_file, res.admin.name, res.admin.token
        )
    })
}

pub fn ingest(ctx: &Ctx, a: IngestArgs) -> anyhow::Result<()> {
    let (mut p, who) = ctx.authorized("ingest", None)?;
    let (mut input, len): (Box<dyn BufRead + Send>, Option<u64>) = if a.file == "-" {
        (Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())), None)
    } else {
        let f = std::fs::File::open(&a.file).map_err(|e| PlatformError::Input(format!("cannot open {}: {e}", a.file)))?;
        let n = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, f)), n)
    };
    let _ = len;
    let pb = ctx.out.progress(None, "ingest (lines)");
    let redactor = if a.redact { Some(super::redact::redactor(a.strategy.as_deref(), a.rules.as_ref())?) } else { None };
    let opts = IngestOptions { redactor, ..Default::default() };
    let (receipt, redacted) = p.ingest_with_report(&who, &mut *input, &opts, &mut |n| pb.set_position(n))?;
    pb.finish_and_clear();
    if let Some(r) = redacted {
        let mut v = serde_json::to_value(&receipt)?;
        v["redaction"] = serde_json::to_value(&r)?;
        let summary: Vec<String> = r.counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
        return ctx.out.emit(&v, || {
            format!(
                "appended {} events (seq {}..{}) across {} tenants\nredacted {} matches in {} events ({}); recorded as ingest_redacted (seq {})\nreceipt  {}:{}\n",
                receipt.appended, receipt.first_seq, receipt.last_seq, receipt.tenants, r.total, r.events_redacted, summary.join(", "), r.recorded_seq, receipt.last_seq, receipt.global_head
            )
        });
    }
    ctx.out.emit(&receipt, || {
        format!(
            "appended {} events (seq {}..{}) across {} tenants\nreceipt  {}:{}\n(keep the receipt: `custos verify --expect {}:{}` proves the log still holds them)\n",
            receipt.appended, receipt.first_seq, receipt.last_seq, receipt.tenants, receipt.last_seq, receipt.global_head, receipt.last_seq, receipt.global_head
        )
    })
}

pub fn events(ctx: &Ctx, c: EventsCmd) -> anyhow::Result<()> {
    match c {
        EventsCmd::List(l) => {
            let filter = EventFilter {
                tenant: l.tenant.clone(),
                category: l.category.as_deref().map(str::parse).transpose().map_err(PlatformError::from)?,
                kind: l.kind,
                since: l.since.as_deref().map(parse_ts).transpose().map_err(PlatformError::from)?,
                until: l.until.as_deref().map(parse_ts).transpose().map_err(PlatformError::from)?,
                limit: l.limit,
            };
            let (p, who) = ctx.authorized("events list", l.tenant.as_deref())?;
            let stdout = std::io::stdout();
            let mut o = std::io::BufWriter::new(stdout.lock());
            p.events_visible(&who, &filter, &mut |e| {
                match e.write_json(&mut o).and_then(|_| writeln!(o)) {
                    Ok(()) => Ok(true),
                    // A closed pipe (`| head`) ends the listing quietly.
                    Err(_) => Ok(false),
                }
            })?;
            let _ = o.flush();
            Ok(())
        }
        EventsCmd::Show { seq } => {
            let (p, who) = ctx.authorized("events show", None)?;
            let e = p.event_visible(&who, seq)?;
            ctx.out.emit(&e.to_json(), || serde_json::to_string_pretty(&e.to_json()).unwrap_or_default())
        }
    }
}

pub fn verify(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    let expect = a.expect.iter().map(|s| parse_expect(s)).collect::<Result<Vec<_>, _>>()?;
    // Without keys an auditor needs no root key at all: chains and signatures are public.
    let (p, _) = if a.no_keys && !ctx.root_key.exists() {
        let mut p = Platform::open_locked(&ctx.store)?;
        let who = p.authorize(ctx.token()?.as_deref(), "verify", None)?;
        (p, who)
    } else {
        ctx.authorized("verify", None)?
    };
    let pb = ctx.out.progress(p.log().head().ok().map(|h| h.size), "verify");
    let rep = p.verify(&VerifyOptions { with_keys: !a.no_keys, expect }, &mut |n| pb.set_position(n))?;
    pb.finish_and_clear();
    ctx.out.emit(&rep, || {
        if rep.ok {
            format!(
                "OK: {} events in {} streams; {} bodies decrypted and matched their commitments; {} purged bodies covered; {} signed checkpoints\n",
                rep.events, rep.tenants, rep.bodies_checked, rep.purged, rep.checkpoints
            )
        } else {
            format!(
                "FAILED at seq {}: {}\n",
                rep.first_bad_seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                rep.error.clone().unwrap_or_default()
            )
        }
    })?;
    if rep.ok {
        Ok(())
    } else {
        Err(Exit(
            5,
            format!(
                "integrity failure at seq {}: {}",
                rep.first_bad_seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                rep.error.unwrap_or_default()
            ),
        )
        .into())
    }
}

pub fn checkpoint(ctx: &Ctx) -> anyhow::Result<()> {
    let (mut p, _) = ctx.authorized("checkpoint", None)?;
    let cp = p.log_mut().checkpoint().map_err(PlatformError::from)?;
    ctx.out.emit(&cp, || format!("signed checkpoint: size {} head {}\nsignature {}\n", cp.size, cp.global_head, cp.signature))
}

pub fn rebuild(ctx: &Ctx) -> anyhow::Result<()> {
    let (mut p, _) = ctx.authorized("rebuild", None)?;
    let (actors, drifted) = p.rebuild_actors()?;
    let (holds, policies, comp_drifted) = p.rebuild_compliance()?;
    let pb = ctx.out.progress(p.log().head().ok().map(|h| h.size), "rebuild");
    let gov = p.rebuild_governance(&mut |n| pb.set_position(n))?;
    pb.finish_and_clear();
    let drifted = drifted || comp_drifted || !gov.drift.is_empty();
    let v = json!({"actors": actors, "holds": holds, "retention_policies": policies, "repaired": drifted, "governance": gov});
    ctx.out.emit(&v, || {
        format!(
            "rebuilt projections: {actors} actors, {holds} active holds, {policies} retention policies; {} governance snapshots of {} tenants from {} events ({:.0} events/s){}\n",
            gov.snapshots,
            gov.tenants,
            gov.events,
            gov.events_per_sec,
            if drifted { " (drift repaired)" } else { "" }
        )
    })
}
