//! `custos bench --suite postgres --store postgres://...`: custos ingest, decrypting scan
//! and verify on PostgreSQL, beside a raw batched INSERT and a raw cursor scan of
//! same-size rows into the same server in the same run. Everything happens in a
//! scratch schema of the given database, dropped at the end.

use custos_eventlog::postgres::{is_postgres_url, redact};
use custos_eventlog::rawbench;
use custos_platform::PlatformError;
use serde_json::{json, Value};

use super::bench::{bench_dir, measure_log, rate, write_input, LogRun};
use super::Ctx;
use crate::args::BenchArgs;

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
    let base = bench_dir(a)?;
    let n = a.events;
    let note = |s: &str| ctx.out.note(s);
    let mut rows: Vec<(String, f64, String)> = vec![];

    note(&format!("generating {n} events of ~{} B over {} tenants ...", a.payload, a.tenants));
    let input = base.path().join("events.jsonl");
    write_input(a, &input)?;
    let run = measure_log(ctx, url, &base.path().join("bench.key"), &input, " on PostgreSQL", &mut rows)?;
    let LogRun {
        appended,
        ingest_s,
        ingest_rss_kib: ingest_rss,
        body_len,
        verified,
        verify_keys_s: vk_s,
        verify_nokeys_s: vn_s,
        store_bytes,
        ..
    } = run;

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
            "ingest_vs_raw_insert": rate(appended, ingest_s) / raw_insert,
            "verify_with_keys_events_per_s": rate(verified, vk_s),
            "verify_without_keys_events_per_s": rate(verified, vn_s),
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
            100.0 * rate(appended, ingest_s) / raw_insert,
            store_bytes as f64 / 1048576.0
        );
        s
    })
}
