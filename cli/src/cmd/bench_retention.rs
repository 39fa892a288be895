//! `custos bench --suite retention`: a retention run purging half of a store, the
//! deletion of a large tenant and a backup of the whole store, each beside what raw
//! SQLite does on same-shape rows in the same run, with peak RSS.

use std::io::{BufWriter, Write};
use std::time::Instant;

use custos_domain::{format_ts, now_micros};
use custos_eventlog::{rawbench, VerifyOptions};
use custos_platform::{IngestOptions, Platform};
use serde_json::{json, Value};

use super::bench::peak_rss_kib;
use super::Ctx;
use crate::args::BenchArgs;

fn rate(n: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        n / secs
    } else {
        0.0
    }
}

pub fn run(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<()> {
    let base = match &a.dir {
        Some(d) => tempfile::Builder::new().prefix("custos-bench-ret-").tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("custos-bench-ret-").tempdir()?,
    };
    let n = a.events;
    let note = |s: &str| ctx.out.note(s);
    let mut rows: Vec<(String, f64, String)> = vec![];
    let now = now_micros();
    let old = format_ts(now - 200 * 86_400_000_000);
    let recent = format_ts(now - 86_400_000_000);
    let pad: String = "x".repeat(a.payload.saturating_sub(120));

    note(&format!("generating {n} run events (half older than the 90-day window, 20% in tenant `big`) ..."));
    let input = base.path().join("events.jsonl");
    {
        let mut w = BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..n {
            let tenant = if i % 5 == 0 { "big".to_string() } else { format!("t{:03}", i % a.tenants.max(1)) };
            let at = if i % 2 == 0 { &old } else { &recent };
            let l = json!({"tenant": tenant, "category": "runs", "kind": "job_done", "occurred_at": at,
                "data": {"job_id": format!("job-{i}"), "note": pad}});
            writeln!(w, "{l}")?;
        }
        w.flush()?;
    }
    let store = base.path().join("bench.db").display().to_string();
    let (mut p, init) = Platform::init(&store, &base.path().join("bench.key"), "admin")?;
    let admin = p.authenticate(Some(&init.admin.token), "bench")?;
    note("ingest ...");
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&input)?);
    let t0 = Instant::now();
    let receipt = p.ingest(&admin, &mut f, &IngestOptions::default(), &mut |_| {})?;
    rows.push(("custos ingest (setup)".into(), rate(receipt.appended as f64, t0.elapsed().as_secs_f64()), "events/s".into()));
    let mut body_len = 0usize;
    p.log().backend().scan(&custos_eventlog::Query { limit: Some(1), from_seq: Some(10), ..Default::default() }, &mut |r| {
        body_len = r.body.map(|b| b.len()).unwrap_or(0);
        Ok(false)
    })?;

    note("backup of the whole store ...");
    let store_bytes = p.log().backend().size_bytes()? as f64;
    let out = base.path().join("bench.backup.gz");
    let t0 = Instant::now();
    let b = p.backup(&admin, &out)?;
    let backup_s = t0.elapsed().as_secs_f64();
    rows.push(("custos backup (online copy + gzip + fsync + rename), store MB/s".into(), rate(store_bytes / 1e6, backup_s), "MB/s".into()));
    let (raw_bytes, raw_b_s) = rawbench::raw_backup(std::path::Path::new(&store), &base.path().join("raw-copy.db"))?;
    rows.push((
        "raw SQLite online backup API of the same store (no compression)".into(),
        rate(raw_bytes as f64 / 1e6, raw_b_s),
        "MB/s".into(),
    ));

    note("retention run purging half ...");
    let t0 = Instant::now();
    let r = p.retention_run(&admin, None, false, &mut |_, _| {})?;
    let ret_s = t0.elapsed().as_secs_f64();
    rows.push(("custos retention run (purge half, record, one transaction)".into(), rate(r.total_purged as f64, ret_s), "purged/s".into()));

    note("delete of the large tenant ...");
    let big_total = p.log().counts(Some("big"))?.get("big").map(|m| m.values().sum::<u64>()).unwrap_or(0);
    let t0 = Instant::now();
    let d = p.tenant_delete(&admin, "big", false)?;
    let del_s = t0.elapsed().as_secs_f64();
    rows.push((
        format!("custos delete tenant `big` ({big_total} records, {} live bodies) incl. WAL truncate", d.counts.bodies()),
        rate(big_total as f64, del_s),
        "records/s".into(),
    ));
    let t0 = Instant::now();
    let rep = p.verify(&VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
    rows.push((
        "custos verify with keys afterwards (purge coverage included)".into(),
        rate(rep.events as f64, t0.elapsed().as_secs_f64()),
        "events/s".into(),
    ));
    let peak = peak_rss_kib().unwrap_or(0);
    drop(p);

    note("raw SQLite baselines ...");
    let raw = base.path().join("raw.db");
    rawbench::raw_insert(&raw, n, body_len, a.tenants)?;
    let (rn, rp_s) = rawbench::raw_purge_half(&raw)?;
    rows.push((
        "raw SQLite UPDATE body=NULL of half the rows, one transaction, secure_delete".into(),
        rate(rn as f64, rp_s),
        "purged/s".into(),
    ));
    let (tn, rt_s) = rawbench::raw_purge_tenant(&raw, "t001")?;
    rows.push((format!("raw SQLite UPDATE body=NULL of one tenant ({tn} rows) + WAL truncate"), rate(tn as f64, rt_s), "rows/s".into()));

    let v = json!({
        "suite": "retention", "events": n, "tenants": a.tenants, "payload_bytes": a.payload, "stored_body_bytes": body_len,
        "store_bytes": store_bytes, "backup_bytes": b.bytes, "purged": r.total_purged, "deleted_records": big_total,
        "verify_ok": rep.ok, "peak_rss_kib": peak,
        "results": rows.iter().map(|(k, r, u)| json!({"what": k, "rate": r.round(), "unit": u})).collect::<Vec<Value>>(),
    });
    ctx.out.emit(&v, || {
        let mut s = format!("custos bench --suite retention: {n} events, {} tenants + `big`, {body_len} B sealed bodies\n\n", a.tenants);
        s += &format!(
            "| {:<80} | {:>12} | {:<9} |\n|{}|{}|{}|\n",
            "operation",
            "rate",
            "unit",
            "-".repeat(82),
            "-".repeat(14),
            "-".repeat(11)
        );
        for (k, r, u) in &rows {
            s += &format!("| {k:<80} | {r:>12.1} | {u:<9} |\n");
        }
        s += &format!(
            "\nstore {:.1} MB, backup {:.1} MB (gzip), peak RSS {:.1} MiB, verify after: {}\n",
            store_bytes / 1e6,
            b.bytes as f64 / 1e6,
            peak as f64 / 1024.0,
            if rep.ok { "OK" } else { "FAILED" }
        );
        s
    })
}
