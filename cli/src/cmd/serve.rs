//! `custos serve`: server mode. The CLI is synchronous; this handler starts the
//! tokio runtime that `custos-server` runs on and blocks until a signal stops it.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use custos_platform::PlatformError;
use custos_server::{Config, DEFAULT_BODY_LIMIT, DEFAULT_MAX_BATCH, DEFAULT_QUEUE};
use serde_json::json;

use super::Ctx;

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (printed as `listening on ADDR`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest accepted `POST /v1/events` body, bytes.
    #[arg(long, default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Most events gathered into one group commit.
    #[arg(long, default_value_t = DEFAULT_MAX_BATCH)]
    pub max_batch: usize,
    /// Append requests that may wait for the writer before clients are slowed down.
    #[arg(long, default_value_t = DEFAULT_QUEUE)]
    pub queue: usize,
    /// Seconds a SIGTERM/SIGINT waits for in-flight requests.
    #[arg(long, default_value_t = 30)]
    pub grace_secs: u64,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
}

pub fn run(ctx: &Ctx, a: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = Config::new(&ctx.store, ctx.root_key.clone(), &a.listen);
    cfg.tls = a.tls_cert.zip(a.tls_key);
    cfg.body_limit = a.body_limit;
    cfg.max_batch = a.max_batch;
    cfg.queue = a.queue;
    cfg.grace = Duration::from_secs(a.grace_secs);
    cfg.defaults = ctx.defaults.clone();
    if !custos_eventlog::postgres::is_postgres_url(&ctx.store) && !std::path::Path::new(&ctx.store).exists() {
        return Err(PlatformError::Input(format!("no custos store at {}; create one with `custos init` first", ctx.store)).into());
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = a.workers {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build()?;
    let out = ctx.out;
    let tls = cfg.tls.is_some();
    let summary = rt.block_on(async move {
        let stop = custos_server::shutdown_signal()?;
        custos_server::serve(
            cfg,
            |addr| {
                // Tests and scripts read this line to learn the port.
                let mut o = std::io::stdout().lock();
                let _ = if out.json {
                    writeln!(o, "{}", json!({"listening": addr.to_string(), "tls": tls}))
                } else {
                    writeln!(o, "listening on {addr} ({})", if tls { "https" } else { "http" })
                };
                let _ = o.flush();
            },
            stop,
        )
        .await
    });
    // Idle blocking-pool threads must not hold the process open after a graceful stop.
    rt.shutdown_timeout(Duration::from_secs(2));
    let summary = summary?;
    ctx.out.note(&format!(
        "custos serve: stopped after appending {} events{}",
        summary.events_appended,
        if summary.drained { "" } else { " (grace period over before every request finished)" }
    ));
    Ok(())
}

/// `custos bench --suite server`. Knobs beyond the shared bench flags come from the
/// environment so the shared argument struct stays as it is:
/// CUSTOS_BENCH_SECS (per level, default 5), CUSTOS_BENCH_EVENTS_PER_REQUEST (default 16),
/// CUSTOS_BENCH_CLIENTS (comma-separated levels, default `1,8,64`).
pub fn bench(ctx: &Ctx, a: crate::args::BenchArgs) -> anyhow::Result<()> {
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(d);
    let o = custos_server::bench::BenchOptions {
        clients: std::env::var("CUSTOS_BENCH_CLIENTS")
            .ok()
            .map(|v| v.split(',').filter_map(|c| c.trim().parse::<usize>().ok()).filter(|&c| c > 0).collect::<Vec<_>>())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec![1, 8, 64]),
        secs: env("CUSTOS_BENCH_SECS", 5.0),
        events_per_request: env("CUSTOS_BENCH_EVENTS_PER_REQUEST", 16.0).max(1.0) as usize,
        payload: a.payload,
        tenants: a.tenants,
        raw_rows: a.events.min(200_000),
        // `--store postgres://…` measures on PostgreSQL (scratch schema); otherwise a temp SQLite store.
        postgres: custos_eventlog::postgres::is_postgres_url(&ctx.store).then(|| ctx.store.clone()),
    };
    let dir = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    ctx.out.note(&format!("server bench: {} s per level, {} events/request, loopback ...", o.secs, o.events_per_request));
    let r = custos_server::bench::run(&dir, &o)?;
    ctx.out.emit(&r, || {
        let mut s = format!(
            "custos bench --suite server ({}): {} events/request, ~{} B data ({} B sealed bodies)\n\n| clients | events/s | requests | p50 ms | p99 ms | mean events/commit | errors | vs raw insert |\n|---|---|---|---|---|---|---|---|\n",
            r.backend, r.events_per_request, a.payload, r.body_bytes
        );
        for l in &r.levels {
            s += &format!(
                "| {} | {:.0} | {} | {:.2} | {:.2} | {:.1} | {} | {:.0}% |\n",
                l.clients,
                l.events_per_s,
                l.requests,
                l.p50_ms,
                l.p99_ms,
                l.mean_batch_events,
                l.errors,
                100.0 * l.events_per_s / r.raw_insert_rows_per_s.max(1.0)
            );
        }
        let raw = if r.backend == "postgres" { "raw PostgreSQL INSERT .. unnest, 4096 rows/statement" } else { "raw rusqlite batched insert" };
        s += &format!("\nbackend {}; {raw}, same row shape, one transaction: {:.0} rows/s\n", r.backend, r.raw_insert_rows_per_s);
        s
    })
}
