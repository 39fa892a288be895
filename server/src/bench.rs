//! `custos bench --suite server`: group-commit throughput and append latency of
//! a real server on loopback with 1, 8 and 64 concurrent clients, beside the raw
//! batched SQLite insert of same-size rows measured in the same run.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use custos_domain::now_micros;
use custos_platform::{sample, Platform};
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::{Config, ServerError};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Concurrency levels (clients, one keep-alive connection each).
    pub clients: Vec<usize>,
    /// Seconds each level runs.
    pub secs: f64,
    /// Events per request.
    pub events_per_request: usize,
    /// Approximate JSON size of an event's data.
    pub payload: usize,
    /// Tenants the events are spread over.
    pub tenants: u64,
    /// Rows of the raw-insert baseline.
    pub raw_rows: u64,
    /// A PostgreSQL URL to measure on (in a scratch schema, dropped at the end) instead
    /// of a temp SQLite store; the raw baseline is then PostgreSQL's batched insert.
    pub postgres: Option<String>,
}

/// One concurrency level's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Concurrent clients.
    pub clients: usize,
    /// Requests acknowledged.
    pub requests: u64,
    /// Events acknowledged.
    pub events: u64,
    /// Non-200 answers or transport errors.
    pub errors: u64,
    /// Acknowledged events per second.
    pub events_per_s: f64,
    /// Median request latency, ms.
    pub p50_ms: f64,
    /// 99th percentile request latency, ms.
    pub p99_ms: f64,
    /// Mean events per group commit during this level.
    pub mean_batch_events: f64,
}

/// The whole suite's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Per concurrency level.
    pub levels: Vec<Level>,
    /// Raw rusqlite batched insert of same-size rows, one transaction, rows/s.
    pub raw_insert_rows_per_s: f64,
    /// Sealed body size used for the raw rows.
    pub body_bytes: usize,
    /// Events per request.
    pub events_per_request: usize,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
}

/// Runs the suite in a temp store under `dir`, or in a scratch schema of
/// `o.postgres`.
pub fn run(dir: &Path, o: &BenchOptions) -> Result<Report, ServerError> {
    let log_err = |e: custos_eventlog::LogError| ServerError::Platform(e.into());
    let Some(url) = &o.postgres else { return run_on(dir, o, None) };
    let (scratch, schema) = custos_eventlog::rawbench::pg_scratch(url).map_err(log_err)?;
    let res = run_on(dir, o, Some(&scratch));
    let dropped = custos_eventlog::rawbench::pg_drop_scratch(url, &schema).map_err(log_err);
    let r = res?;
    dropped?;
    Ok(r)
}

fn run_on(dir: &Path, o: &BenchOptions, pg: Option<&str>) -> Result<Report, ServerError> {
    let io = |e: std::io::Error| ServerError::Io(e.to_string());
    let base = tempfile::Builder::new().prefix("custos-bench-server-").tempdir_in(dir).map_err(io)?;
    let store = pg.map_or_else(|| base.path().join("bench.db").display().to_string(), str::to_string);
    let key = base.path().join("bench.key");
    let (p, init) = Platform::init(&store, &key, "admin")?;
    drop(p);
    let token: Arc<str> = init.admin.token.clone().into();
    let now = now_micros();
    // A few distinct bodies, made before measuring so clients spend no time on them.
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..64u64)
            .map(|b| {
                let mut s = String::new();
                for i in 0..o.events_per_request as u64 {
                    s.push_str(&sample::bench_line(b * 1000 + i, o.tenants, o.payload, now));
                    s.push('\n');
                }
                Bytes::from(s)
            })
            .collect(),
    );

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(io)?;
    let levels = rt.block_on(async {
        let cfg = Config::new(&store, key.clone(), "127.0.0.1:0");
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(
            cfg,
            move |a| {
                let _ = addr_tx.send(a);
            },
            async move {
                let _ = stop_rx.await;
            },
        ));
        let addr = addr_rx.await.map_err(|_| ServerError::Io("the bench server did not start".into()))?;
        let mut levels = vec![];
        for &c in &o.clients {
            let before = scrape(addr).await?;
            let deadline = Instant::now() + Duration::from_secs_f64(o.secs);
            let t0 = Instant::now();
            let tasks: Vec<_> = (0..c)
                .map(|i| tokio::spawn(client(addr, token.clone(), bodies.clone(), o.events_per_request as u64, deadline, i)))
                .collect();
            let mut lat: Vec<u32> = vec![];
            let (mut events, mut errors, mut requests) = (0u64, 0u64, 0u64);
            for t in tasks {
                let r = t.await.map_err(|e| ServerError::Io(e.to_string()))?;
                lat.extend(&r.lat_us);
                events += r.events;
                errors += r.errors;
                requests += r.requests;
            }
            let secs = t0.elapsed().as_secs_f64();
            let after = scrape(addr).await?;
            lat.sort_unstable();
            let pct =
                |q: f64| lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1))).map_or(0.0, |v| *v as f64 / 1000.0);
            let commits = after.1.saturating_sub(before.1).max(1);
            levels.push(Level {
                clients: c,
                requests,
                events,
                errors,
                events_per_s: events as f64 / secs,
                p50_ms: pct(0.50),
                p99_ms: pct(0.99),
                mean_batch_events: after.0.saturating_sub(before.0) as f64 / commits as f64,
            });
        }
        let _ = stop_tx.send(());
        server.await.map_err(|e| ServerError::Io(e.to_string()))??;
        Ok::<_, ServerError>(levels)
    })?;

    // Same row shape as stored: measure a real sealed body.
    let p = Platform::open(&store, &key)?;
    let mut body_bytes = 0usize;
    p.log()
        .backend()
        .scan(&custos_eventlog::Query { limit: Some(1), from_seq: Some(10), ..Default::default() }, &mut |r| {
            body_bytes = r.body.map(|b| b.len()).unwrap_or(0);
            Ok(false)
        })
        .map_err(|e| ServerError::Platform(e.into()))?;
    drop(p);
    let secs = match pg {
        Some(url) => custos_eventlog::rawbench::pg_raw_insert(url, o.raw_rows, body_bytes, o.tenants),
        None => custos_eventlog::rawbench::raw_insert(&base.path().join("raw.db"), o.raw_rows, body_bytes, o.tenants),
    }
    .map_err(|e| ServerError::Platform(e.into()))?;
    Ok(Report {
        levels,
        raw_insert_rows_per_s: o.raw_rows as f64 / secs.max(1e-9),
        body_bytes,
        events_per_request: o.events_per_request,
        backend: if pg.is_some() { "postgres" } else { "sqlite" },
    })
}

struct ClientResult {
    lat_us: Vec<u32>,
    events: u64,
    errors: u64,
    requests: u64,
}

/// One client: a keep-alive connection appending until `deadline`.
async fn client(addr: SocketAddr, token: Arc<str>, bodies: Arc<Vec<Bytes>>, per: u64, deadline: Instant, seed: usize) -> ClientResult {
    let mut r = ClientResult { lat_us: vec![], events: 0, errors: 0, requests: 0 };
    let Ok(stream) = TcpStream::connect(addr).await else {
        r.errors += 1;
        return r;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await else {
        r.errors += 1;
        return r;
    };
    tokio::spawn(conn);
    let auth = format!("Bearer {token}");
    let mut i = seed;
    while Instant::now() < deadline {
        let body = bodies[i % bodies.len()].clone();
        i += 1;
        let Ok(req) = hyper::Request::post("/v1/events")
            .header(HOST, addr.to_string())
            .header(AUTHORIZATION, &auth)
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(Full::new(body))
        else {
            r.errors += 1;
            break;
        };
        let t0 = Instant::now();
        let ok = match sender.send_request(req).await {
            Ok(res) => {
                let status = res.status();
                res.into_body().collect().await.is_ok() && status == hyper::StatusCode::OK
            }
            Err(_) => false,
        };
        r.lat_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if ok {
            r.events += per;
            r.requests += 1;
        } else {
            r.errors += 1;
            break;
        }
    }
    r
}

/// (events appended, group commits) from `/metrics`.
async fn scrape(addr: SocketAddr) -> Result<(u64, u64), ServerError> {
    let err = |e: &dyn std::fmt::Display| ServerError::Io(format!("scraping /metrics: {e}"));
    let stream = TcpStream::connect(addr).await.map_err(|e| err(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await.map_err(|e| err(&e))?;
    tokio::spawn(conn);
    let req = hyper::Request::get("/metrics").header(HOST, addr.to_string()).body(Full::new(Bytes::new())).map_err(|e| err(&e))?;
    let res = sender.send_request(req).await.map_err(|e| err(&e))?;
    let text = res.into_body().collect().await.map_err(|e| err(&e))?.to_bytes();
    let text = String::from_utf8_lossy(&text);
    let get = |name: &str| text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<u64>().ok())).unwrap_or(0);
    Ok((get("custos_events_appended_total "), get("custos_group_commits_total ")))
}
