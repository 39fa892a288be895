//! `custos bench`: throughput of custos next to the physical limits measured in
//! the same run (raw SQLite insert/scan of same-size rows, AES-GCM, SHA-256).

use std::io::{BufWriter, Write};
use std::time::Instant;

use custos_crypto::{open_in_place, seal_in_place, sha256, Aead, SecretKey};
use custos_domain::now_micros;
use custos_eventlog::rawbench;
use custos_eventlog::{VerifyOptions, VerifyReport};
use custos_platform::{sample, EventFilter, IngestOptions, Platform, PlatformError};
use serde_json::{json, Value};

use super::Ctx;
use crate::args::BenchArgs;

/// Peak resident set of this process so far (KiB), from /proc.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Items per second (0 when no time elapsed).
pub(crate) fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Dispatches `custos bench --suite NAME`. Each suite prints its own figures next to
/// the raw limits it measures in the same run.
/// Every suite `--suite` accepts.
const SUITES: &str = "core, budgets, retention, keys, export, server, postgres";

pub fn run(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<()> {
    match a.suite.as_str() {
        "core" => core(ctx, a),
        "budgets" => super::budgets::bench(ctx, a),
        "retention" => super::bench_retention::run(ctx, a),
        "keys" => super::bench_keys::run(ctx, a),
        "export" => super::export::bench(ctx, a),
        "server" => super::serve::bench(ctx, a),
        "postgres" => super::bench_postgres::run(ctx, a),
        other => Err(custos_platform::PlatformError::Input(format!("unknown bench suite {other:?}; available: {SUITES}")).into()),
    }
}

/// A temp dir for a bench run (under `--dir` when given).
pub(crate) fn bench_dir(a: &BenchArgs) -> anyhow::Result<tempfile::TempDir> {
    Ok(match &a.dir {
        Some(d) => tempfile::Builder::new().prefix("custos-bench-").tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("custos-bench-").tempdir()?,
    })
}

/// Writes the benchmark's JSONL input (streamed: the file is never held in memory).
pub(crate) fn write_input(a: &BenchArgs, path: &std::path::Path) -> anyhow::Result<()> {
    let now = now_micros();
    let mut w = BufWriter::new(std::fs::File::create(path)?);
    for i in 0..a.events {
        writeln!(w, "{}", sample::bench_line(i, a.tenants, a.payload, now))?;
    }
    w.flush()?;
    Ok(())
}

/// Reads (the decrypting scan, verify, the raw scan they are compared with) are timed
/// this many times and the best run kept: on a shared VM a neighbour's burst slows one
/// run by a third, and the best of a few is the figure that the code, not the neighbour,
/// decides. Ingest and raw insert run once (each writes a whole store).
pub(crate) const READ_RUNS: usize = 3;

/// Runs `f` `runs` times; the shortest wall time in seconds.
pub(crate) fn best_of(runs: usize, mut f: impl FnMut() -> Result<(), PlatformError>) -> Result<f64, PlatformError> {
    let mut best = f64::INFINITY;
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        f()?;
        best = best.min(t0.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// What [`measure_log`] measured on one store.
pub(crate) struct LogRun {
    pub appended: u64,
    pub ingest_s: f64,
    pub ingest_rss_kib: u64,
    pub body_len: usize,
    pub scanned: u64,
    pub scan_s: f64,
    pub verified: u64,
    pub verify_keys_s: f64,
    pub verify_nokeys_s: f64,
    pub store_bytes: u64,
}

/// Creates a store at `store` (SQLite path or PostgreSQL URL), ingests `input`, then
/// times a decrypting scan and verify with and without keys. `label` names the backend
/// in the rows it appends.
pub(crate) fn measure_log(
    ctx: &Ctx,
    store: &str,
    key: &std::path::Path,
    input: &std::path::Path,
    label: &str,
    rows: &mut Vec<(String, f64, String)>,
) -> anyhow::Result<LogRun> {
    let note = |s: &str| ctx.out.note(s);
    let (mut p, init) = Platform::init(store, key, "admin")?;
    let admin = p.authenticate(Some(&init.admin.token), "bench")?;

    note("ingest ...");
    let t0 = Instant::now();
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(input)?);
    let receipt = p.ingest(&admin, &mut f, &IngestOptions::default(), &mut |_| {})?;
    let ingest_s = t0.elapsed().as_secs_f64();
    let ingest_rss_kib = peak_rss_kib().unwrap_or(0);
    rows.push((format!("custos ingest{label} (parse, commit, seal, chain, insert)"), rate(receipt.appended, ingest_s), "events/s".into()));

    // Reads run in a new process in real use (`custos events list`, `custos verify`), and
    // the raw scan baseline reads a store its writer has closed: reopen likewise, so the
    // ingest's WAL is checkpointed away before anything is read.
    drop(p);
    let p = Platform::open(store, key)?;

    // Body size as stored, for the raw baselines.
    let mut body_len = 0usize;
    p.log().backend().scan(&custos_eventlog::Query { limit: Some(1), from_seq: Some(10), ..Default::default() }, &mut |r| {
        body_len = r.body.map(|b| b.len()).unwrap_or(0);
        Ok(false)
    })?;

    note(&format!("decrypting scan (best of {READ_RUNS}) ..."));
    let mut scanned = 0u64;
    let scan_s = best_of(READ_RUNS, || {
        scanned = 0;
        p.events(&EventFilter::default(), &mut |e| {
            scanned += u64::from(e.has_body());
            Ok(true)
        })
    })?;
    rows.push((format!("custos decrypting scan{label} (events list without printing)"), rate(scanned, scan_s), "events/s".into()));

    note(&format!("verify (best of {READ_RUNS}) ..."));
    let mut rep = VerifyReport::default();
    let verify_keys_s = best_of(READ_RUNS, || {
        rep = p.verify(&VerifyOptions { with_keys: true, expect: vec![] }, &mut |_| {})?;
        Ok(())
    })?;
    rows.push((format!("custos verify with keys{label}"), rate(rep.events, verify_keys_s), "events/s".into()));
    let mut rep2 = VerifyReport::default();
    let verify_nokeys_s = best_of(READ_RUNS, || {
        rep2 = p.verify(&VerifyOptions { with_keys: false, expect: vec![] }, &mut |_| {})?;
        Ok(())
    })?;
    rows.push((format!("custos verify without keys{label}"), rate(rep2.events, verify_nokeys_s), "events/s".into()));
    if !(rep.ok && rep2.ok) {
        return Err(PlatformError::Integrity("the benchmark store does not verify".into()).into());
    }
    let store_bytes = p.log().backend().size_bytes()?;
    Ok(LogRun {
        appended: receipt.appended,
        ingest_s,
        ingest_rss_kib,
        body_len,
        scanned,
        scan_s,
        verified: rep.events,
        verify_keys_s,
        verify_nokeys_s,
        store_bytes,
    })
}

fn core(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<()> {
    let base = bench_dir(&a)?;
    let n = a.events;
    let note = |s: &str| ctx.out.note(s);
    let mut rows: Vec<(String, f64, String)> = vec![];

    note(&format!("generating {n} events of ~{} B over {} tenants ...", a.payload, a.tenants));
    let input = base.path().join("events.jsonl");
    write_input(&a, &input)?;
    let rss_before = peak_rss_kib().unwrap_or(0);

    let store = base.path().join("bench.db").display().to_string();
    let run = measure_log(ctx, &store, &base.path().join("bench.key"), &input, "", &mut rows)?;
    let LogRun {
        appended,
        ingest_s,
        ingest_rss_kib: ingest_rss,
        body_len,
        scanned: cnt,
        scan_s,
        verified,
        verify_keys_s: vk_s,
        verify_nokeys_s: vn_s,
        store_bytes,
    } = run;
    let receipt_appended = appended;

    note("raw SQLite baselines ...");
    let raw = base.path().join("raw.db");
    let ri_s = rawbench::raw_insert(&raw, n, body_len, a.tenants)?;
    let (mut rn, mut rs_s) = (0, f64::INFINITY);
    for _ in 0..READ_RUNS {
        let (n, s) = rawbench::raw_scan(&raw)?;
        (rn, rs_s) = (n, rs_s.min(s));
    }
    rows.push(("raw rusqlite insert, same row shape, one transaction, synchronous=FULL".into(), rate(n, ri_s), "rows/s".into()));
    rows.push((format!("raw rusqlite scan touching every body (best of {READ_RUNS})"), rate(rn, rs_s), "rows/s".into()));

    note("crypto baselines ...");
    let m = n.min(1_000_000);
    let aead = Aead::new(&SecretKey::generate()?)?;
    let plain = vec![0x41u8; body_len.saturating_sub(16)];
    let nonce = [3u8; 12];
    let mut sealed = plain.clone();
    seal_in_place(&aead, &nonce, b"aad", &mut sealed)?;
    let t0 = Instant::now();
    for _ in 0..m {
        let mut b = plain.clone();
        seal_in_place(&aead, &nonce, b"aad", &mut b)?;
        std::hint::black_box(&b);
    }
    rows.push(("AES-256-GCM seal (ring), same body size".into(), rate(m, t0.elapsed().as_secs_f64()), "ops/s".into()));
    let t0 = Instant::now();
    for _ in 0..m {
        let mut b = sealed.clone();
        open_in_place(&aead, &nonce, b"aad", &mut b)?;
        std::hint::black_box(&b);
    }
    let open_rate = rate(m, t0.elapsed().as_secs_f64());
    rows.push(("AES-256-GCM open (ring), same body size".into(), open_rate, "ops/s".into()));
    let buf512 = vec![0x42u8; 512];
    let t0 = Instant::now();
    for _ in 0..m {
        std::hint::black_box(sha256(std::hint::black_box(&buf512)));
    }
    rows.push(("SHA-256 of 512 B".into(), rate(m, t0.elapsed().as_secs_f64()), "ops/s".into()));

    let raw_insert = rate(n, ri_s);
    let raw_scan = rate(rn, rs_s);
    let scan_limit = 1.0 / (1.0 / raw_scan + 1.0 / open_rate);
    let goals = json!({
        "ingest_vs_raw_insert": rate(receipt_appended, ingest_s) / raw_insert,
        "decrypting_scan_vs_raw_scan_plus_open": rate(cnt, scan_s) / scan_limit,
        "verify_with_keys_events_per_s": rate(verified, vk_s),
        "verify_without_keys_events_per_s": rate(verified, vn_s),
        "ingest_peak_rss_mib": ingest_rss as f64 / 1024.0,
    });
    let v = json!({
        "events": n, "tenants": a.tenants, "payload_bytes": a.payload, "stored_body_bytes": body_len,
        "store_bytes": store_bytes, "rss_before_ingest_kib": rss_before, "peak_rss_after_ingest_kib": ingest_rss,
        "results": rows.iter().map(|(k, r, u)| json!({"what": k, "rate": r.round(), "unit": u})).collect::<Vec<Value>>(),
        "ratios": goals,
    });
    ctx.out.emit(&v, || {
        let mut s = format!("custos bench: {n} events, {} tenants, ~{} B data ({body_len} B sealed bodies)\n\n", a.tenants, a.payload);
        s += &format!("| {:<72} | {:>12} | {:<8} |\n|{}|{}|{}|\n", "operation", "rate", "unit", "-".repeat(74), "-".repeat(14), "-".repeat(10));
        for (k, r, u) in &rows {
            s += &format!("| {k:<72} | {:>12.0} | {u:<8} |\n", r);
        }
        s += &format!(
            "\ningest / raw insert            {:.0}%\ndecrypting scan / (raw scan ⊕ open) {:.0}%\npeak RSS during ingest        {:.1} MiB\nstore size                    {:.1} MiB\n",
            100.0 * rate(receipt_appended, ingest_s) / raw_insert,
            100.0 * rate(cnt, scan_s) / scan_limit,
            ingest_rss as f64 / 1024.0,
            store_bytes as f64 / 1048576.0
        );
        s
    })
}
