//! `custos bench --suite budgets`: latency of `budget check` and `approvals approve` as
//! whole commands (the real binary spawned, p50/p99) on stores of two sizes spread over
//! many tenants — to show it does not grow with the log — and `rebuild` throughput
//! beside the decrypting scan of the same store.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use custos_domain::budget::{BudgetScope, Limits};
use custos_domain::{format_ts, now_micros, Role};
use custos_platform::{EventFilter, IngestOptions, NewCheckpoint, Platform, PlatformError};
use serde_json::{json, Value};

use super::Ctx;
use crate::args::BenchArgs;

/// Commands timed per size and operation.
const SAMPLES: usize = 40;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn time_cmd(exe: &Path, env: &[(&str, String)], args: &[String], ok: &[i32]) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let out = Command::new(exe).envs(env.iter().map(|(k, v)| (*k, v.as_str()))).args(args).output()?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    let code = out.status.code().unwrap_or(-1);
    if !ok.contains(&code) {
        return Err(
            PlatformError::Input(format!("bench command {args:?} failed ({code}): {}", String::from_utf8_lossy(&out.stderr))).into()
        );
    }
    Ok(ms)
}

fn one_size(ctx: &Ctx, base: &Path, n: u64, tenants: u64) -> anyhow::Result<Value> {
    let note = |s: &str| ctx.out.note(s);
    let dir = base.join(format!("n{n}"));
    std::fs::create_dir_all(&dir)?;
    let store = dir.join("bench.db").display().to_string();
    let key = dir.join("bench.key");
    let (mut p, init) = Platform::init(&store, &key, "admin")?;
    let token_file = dir.join("admin.token");
    std::fs::write(&token_file, &init.admin.token)?;
    let admin = p.authenticate(Some(&init.admin.token), "bench")?;

    note(&format!("[{n}] generating and ingesting {n} cost events over {tenants} tenants and 30 days ..."));
    let input = dir.join("events.jsonl");
    {
        let now = now_micros();
        let mut w = BufWriter::new(std::fs::File::create(&input)?);
        for i in 0..n {
            let t = format!("t{:03}", i % tenants.max(1));
            let at = now - 60_000_000 - (i as i64 % 30) * 86_400_000_000 - (i as i64 % 1000) * 1_000_000;
            let provider = ["openai", "anthropic", "local"][i as usize % 3];
            let v = json!({"tenant": t, "category": "costs", "kind": "cost_recorded", "occurred_at": format_ts(at),
                "data": {"run_id": format!("run-{i}"), "provider": provider, "model": "m",
                         "tokens_in": 100 + i % 50, "tokens_out": 40 + i % 30, "usd_micros": 1000 + (i % 997) as i64}});
            writeln!(w, "{v}")?;
        }
        w.flush()?;
    }
    let mut f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&input)?);
    p.ingest(&admin, &mut f, &IngestOptions::default(), &mut |_| {})?;

    p.budget_set(
        &admin,
        BudgetScope::TenantDefault,
        None,
        Limits { daily_usd_micros: Some(1_000_000_000), monthly_usd_micros: Some(10_000_000_000) },
    )?;
    p.budget_set(
        &admin,
        BudgetScope::Global,
        None,
        Limits { daily_usd_micros: Some(100_000_000_000), monthly_usd_micros: Some(1_000_000_000_000) },
    )?;
    for i in 0..SAMPLES {
        p.approvals_create(
            &admin,
            NewCheckpoint {
                tenant: format!("t{:03}", i as u64 % tenants.max(1)),
                dag_run_id: format!("dag-{i}"),
                prompt: "Approve?".into(),
                required_role: Role::Operator,
                expires_in_secs: Some(86_400),
                id: Some(format!("bench-{i}")),
            },
        )?;
    }

    note(&format!("[{n}] decrypting scan and rebuild ..."));
    let t0 = Instant::now();
    let mut cnt = 0u64;
    p.events(&EventFilter::default(), &mut |e| {
        cnt += u64::from(e.has_body());
        Ok(true)
    })?;
    let scan_s = t0.elapsed().as_secs_f64();
    let rb = p.rebuild_governance(&mut |_| {})?;
    let events = p.log().head()?.size;
    drop(p);

    note(&format!("[{n}] timing {SAMPLES}× budget check and {SAMPLES}× approvals approve (spawned binary) ..."));
    let exe = std::env::current_exe()?;
    let env = [
        ("CUSTOS_STORE", store.clone()),
        ("CUSTOS_ROOT_KEY_FILE", key.display().to_string()),
        ("CUSTOS_TOKEN_FILE", token_file.display().to_string()),
    ];
    let mut check = vec![];
    let mut approve = vec![];
    let mut whoami = vec![];
    for i in 0..SAMPLES {
        let t = format!("t{:03}", (i as u64 * 7) % tenants.max(1));
        check.push(time_cmd(&exe, &env, &["budget".into(), "check".into(), "--tenant".into(), t, "--usd".into(), "0.01".into()], &[0, 4])?);
        approve.push(time_cmd(&exe, &env, &["approvals".into(), "approve".into(), format!("bench-{i}")], &[0])?);
        whoami.push(time_cmd(&exe, &env, &["whoami".into()], &[0])?);
    }
    for v in [&mut check, &mut approve, &mut whoami] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    Ok(json!({
        "events": events,
        "tenants": tenants,
        "budget_check_ms": {"p50": percentile(&check, 0.5), "p99": percentile(&check, 0.99)},
        "approvals_approve_ms": {"p50": percentile(&approve, 0.5), "p99": percentile(&approve, 0.99)},
        "whoami_ms_baseline": {"p50": percentile(&whoami, 0.5), "p99": percentile(&whoami, 0.99)},
        "rebuild_events_per_s": rb.events_per_sec.round(),
        "decrypting_scan_events_per_s": (cnt as f64 / scan_s.max(1e-9)).round(),
    }))
}

/// Runs the suite at 10k events and at `--events` (200k when left at the core default).
pub fn run(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<()> {
    let base = match &a.dir {
        Some(d) => tempfile::Builder::new().prefix("custos-bench-budgets-").tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("custos-bench-budgets-").tempdir()?,
    };
    let large = if a.events == 1_000_000 { 200_000 } else { a.events };
    let sizes = [10_000u64.min(large), large];
    let mut res = vec![];
    for n in sizes {
        res.push(one_size(ctx, base.path(), n, a.tenants)?);
    }
    let v = json!({"suite": "budgets", "samples": SAMPLES, "sizes": res});
    ctx.out.emit(&v, || {
        let mut s = format!(
            "custos bench --suite budgets ({SAMPLES} spawned commands each; whoami = process start + open + auth baseline)\n\n\
             | {:>9} | {:>7} | {:>16} | {:>16} | {:>16} | {:>14} | {:>14} |\n|{}|\n",
            "events",
            "tenants",
            "budget check ms",
            "approve ms",
            "whoami ms",
            "rebuild ev/s",
            "scan ev/s",
            "-".repeat(112)
        );
        for r in &res {
            let pp = |k: &str| format!("{:.1} / {:.1}", r[k]["p50"].as_f64().unwrap_or(0.0), r[k]["p99"].as_f64().unwrap_or(0.0));
            s += &format!(
                "| {:>9} | {:>7} | {:>16} | {:>16} | {:>16} | {:>14.0} | {:>14.0} |\n",
                r["events"].as_u64().unwrap_or(0),
                r["tenants"].as_u64().unwrap_or(0),
                pp("budget_check_ms"),
                pp("approvals_approve_ms"),
                pp("whoami_ms_baseline"),
                r["rebuild_events_per_s"].as_f64().unwrap_or(0.0),
                r["decrypting_scan_events_per_s"].as_f64().unwrap_or(0.0)
            );
        }
        s += "(latencies p50 / p99)\n";
        s
    })
}
