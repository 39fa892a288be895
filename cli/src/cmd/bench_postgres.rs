//! `custos bench --suite postgres --store postgres://...`: custos ingest, decrypting scan
//! and verify on PostgreSQL, beside a raw batched INSERT and a raw cursor scan of
//! same-size rows into the same server in the same run. Everything happens in a
//! scratch schema of the given database, dropped at the end.

use std::io::{BufWriter, Write};
use std::time::Instant;

use custos_domain::now_micros;
use custos_eventlog::postgres::{is_postgres_url, redact};
use custos_eventlog::{rawbench, VerifyOptions};
use custos_platform::{sample, EventFilter, IngestOptions, Platform, PlatformError};
use serde_json::{json, Value};

use super::bench::peak_rss_kib;
use super::Ctx;
use crate::args::BenchArgs;

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Runs the suite (see the module doc).
pub fn run(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<()> {
    if !is_postgres_url(&ctx.store) {
        return Err(PlatformError::Input(
            "the postgres suite needs --store postgres://... (a database it may add and drop a scratch schema in); \
             docs/PERFORMANCE.md shows how to start a throwaway server"
                .into(),
        )
        .into());
    }
    let (url, schema) = rawbench::pg_scratch(&ctx.store)?;
    let res = measure(ctx, &a, &url);
    let dropped = rawbench::pg_drop_scratch(&ctx.store, &schema);
    res?;
    dropped?;
    Ok(())
}

fn measure(ctx: &Ctx, a: &BenchArgs, url: &str) -> anyhow::Result<()> {
    let base = match &a.dir {
        Some(d) => tempfile::Builder::new().prefix("custos-bench-").tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("custos-bench-").tempdir()?,
    };
    let n = a.events;
    let note = |s: &str| ctx.out.note(s);
    let mut rows: Vec<(String, f64, String)> = vec![];

    note(&format!("generating {n} events of ~{} B over {} tenants ...", a.payload, a.tenants));
    let input = base.path().join("events.jsonl");
    {
        let now = now_micros();
        let mut w = BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..n {
            writeln!(w, "{}", sample::bench_line(i, a.tenants, a.payload, now))?;
        }
        w.flush()?;
    }

    let key = base.path().join("bench.key");
    let (mut p, init) = Platform::init(url, &key, "admin")?;
    let admin = p.authenticate(Some(&init.admin.token), "bench")?;

    note("ingest into PostgreSQL ...");
    let t0 = Instant::now();
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&input)?);
    let receipt = p.ingest(&admin, &mut f, &IngestOptions::default(), &mut |_| {})?;
    let ingest_s = t0.elapsed().as_secs_f64();
    let ingest_rss = peak_rss_kib().unwrap_or(0);
    rows.push(("custos ingest on PostgreSQL (one transaction, advisory lock)".into(), rate(receipt.appended, ingest_s), "events/s".into()));

    let mut body_len = 0usize;
    p.log().backend().scan(&custos_eventlog::Query { limit: Some(1), from_seq: Some(10), ..Default::default() }, &mut |r| {
        body_len = r.body.map(|b| b.len()).unwrap_or(0);
        Ok(false)
    })?;

    note("decrypting scan ...");
    let t0 = Instant::now();
    let mut cnt = 0u64;
    p.events(&EventFilter::default(), &mut |e| {
        cnt += u64::from(e.data.is_some());
        Ok(true)
    })?;
    let scan_s = t0.elapsed().as_secs_f64();
    rows.push(("custos decrypting scan on PostgreSQL (cursor, 1000 rows/fetch)".into(), rate(cnt, scan_s), "events/s".into()));

    note("verify ...");
    let t0 = Instant::now();
    let rep = p.verify(&VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
    let vk_s = t0.elapsed().as_secs_f64();
    rows.push(("custos verify with keys on PostgreSQL".into(), rate(rep.events, vk_s), "events/s".into()));
    let t0 = Instant::now();
    let rep2 = p.verify(&VerifyOptions { with_keys: false, expect: vec![] }, &mut |_| {})?;
    let vn_s = t0.elapsed().as_secs_f64();
    rows.push(("custos verify without keys on PostgreSQL".into(), rate(rep2.events, vn_s), "events/s".into()));
    if !(rep.ok && rep2.ok) {
        return Err(PlatformError::Integrity("the benchmark store does not verify".into()).into());
    }
    let store_bytes = p.log().backend().size_bytes()?;
    drop(p);

    note("raw PostgreSQL baselines ...");
    let ri_s = rawbench::pg_raw_insert(url, n, body_len, a.tenants)?;
    let (rn, rs_s) = rawbench::pg_raw_scan(url)?;
    rows.push(("raw INSERT .. unnest, same row shape, 4096 rows/statement, one transaction".into(), rate(n, ri_s), "rows/s".into()));
    rows.push(("raw cursor scan touching every body".into(), rate(rn, rs_s), "rows/s".into()));

    let raw_insert = rate(n, ri_s);
    let v = json!({
        "suite": "postgres", "store": redact(&ctx.store),
        "events": n, "tenants": a.tenants, "payload_bytes": a.payload, "stored_body_bytes": body_len,
        "store_bytes": store_bytes, "peak_rss_after_ingest_kib": ingest_rss,
        "results": rows.iter().map(|(k, r, u)| json!({"what": k, "rate": r.round(), "unit": u})).collect::<Vec<Value>>(),
        "ratios": {
            "ingest_vs_raw_insert": rate(receipt.appended, ingest_s) / raw_insert,
            "verify_with_keys_events_per_s": rate(rep.events, vk_s),
            "verify_without_keys_events_per_s": rate(rep2.events, vn_s),
        },
    });
    ctx.out.emit(&v, || {
        let mut s = format!(
            "custos bench --suite postgres: {n} events, {} tenants, ~{} B data ({body_len} B sealed bodies), {}\n\n",
            a.tenants,
            a.payload,
            redact(&ctx.store)
        );
        s += &format!(
            "| {:<76} | {:>12} | {:<8} |\n|{}|{}|{}|\n",
            "operation",
            "rate",
            "unit",
            "-".repeat(78),
            "-".repeat(14),
            "-".repeat(10)
        );
        for (k, r, u) in &rows {
            s += &format!("| {k:<76} | {:>12.0} | {u:<8} |\n", r);
        }
        s += &format!(
            "\ningest / raw insert   {:.0}%\nstore size            {:.1} MiB\n",
            100.0 * rate(receipt.appended, ingest_s) / raw_insert,
            store_bytes as f64 / 1048576.0
        );
        s
    })
}
