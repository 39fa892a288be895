//! The router: each endpoint is the HTTP face of one CLI command, answering the
//! same JSON as its `--json`.
//!
//! Capability commands plug in with **one line** each through [`op`]: name the
//! method, whether it writes ([`Access::Write`] runs it on the single writer in
//! its own transaction) or reads ([`Access::Read`] runs it on a pooled
//! connection), the action name of `required_role`, and a function
//! `fn(&mut Platform, &Principal, &OpInput) -> Result<Value, PlatformError>`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use custos_domain::{parse_ts, Category, TenantId};
use custos_eventlog::{prepare, Pending, Prepared, Receipt, VerifyOptions};
use custos_platform::{parse_expect, required_role, EventFilter, Platform, PlatformError, Principal};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::body::{self, Format};
use crate::capabilities as cap;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::writer::{AppendReq, Msg};

/// Bodies up to this size are parsed on the async thread; larger ones on the blocking pool.
const INLINE_PARSE_BYTES: usize = 64 * 1024;
/// Bytes buffered per chunk of a streamed `GET /v1/events`.
const STREAM_CHUNK: usize = 32 * 1024;
/// Concurrent short reads (authentication); with [`LONG_READS`] the pool's size.
pub const SHORT_READS: usize = 32;
/// Concurrent long reads (streamed listings, verify).
pub const LONG_READS: usize = 8;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    pool: Pool,
    /// Bounds short reads (authentication, whoami) so the pool never grows past its size.
    short: Semaphore,
    /// Bounds long reads (listing, verify) separately: slow readers of a stream must
    /// not starve authentication of every other request.
    long: Arc<Semaphore>,
    auth_cache: AuthCache,
    tx: mpsc::Sender<Msg>,
    metrics: Arc<Metrics>,
    body_limit: usize,
    stopping: AtomicBool,
    /// Rendered alert gauges and when they were computed: an evaluation reads the log,
    /// so scrapes reuse it for [`ALERTS_TTL`]. The async lock also keeps concurrent
    /// scrapes from evaluating twice.
    alerts: tokio::sync::Mutex<Option<(std::time::Instant, String)>>,
}

/// How long `/metrics` reuses an alert evaluation.
const ALERTS_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl AppState {
    /// State over a reader pool, the writer's queue and the metrics.
    pub fn new(pool: Pool, tx: mpsc::Sender<Msg>, metrics: Arc<Metrics>, body_limit: usize) -> Self {
        Self(Arc::new(Inner {
            pool,
            short: Semaphore::new(SHORT_READS),
            long: Arc::new(Semaphore::new(LONG_READS)),
            auth_cache: AuthCache::default(),
            tx,
            metrics,
            body_limit,
            stopping: AtomicBool::new(false),
            alerts: tokio::sync::Mutex::new(None),
        }))
    }

    /// Marks the server as draining: `/readyz` answers 503 from now on.
    pub fn set_stopping(&self) {
        self.0.stopping.store(true, Ordering::SeqCst);
    }

    /// Runs `f` on a pooled read-side platform in the blocking pool; `long` for
    /// work that may take long (scans), which is bounded separately.
    async fn read<T: Send + 'static>(&self, long: bool, f: impl FnOnce(&mut Platform) -> T + Send + 'static) -> Result<T, ApiError> {
        let sem = if long { &self.0.long } else { &self.0.short };
        let _permit = sem.acquire().await.map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        let st = self.clone();
        match tokio::task::spawn_blocking(move || st.0.pool.with(f)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ApiError::from_platform(e)),
            Err(e) => Err(ApiError::internal(e)),
        }
    }

    /// Runs `f` on the writer thread, after the appends queued before it.
    pub(crate) async fn write<T: Send + 'static>(&self, f: impl FnOnce(&mut Platform) -> T + Send + 'static) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let op = Box::new(move |p: &mut Platform| {
            let _ = tx.send(f(p));
        });
        self.0.tx.send(Msg::Op(op)).await.map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        rx.await.map_err(|_| ApiError::unavailable("the server is shutting down"))
    }

    /// Authenticates the bearer token (401 on failure) and checks the action's
    /// minimum role (403 on failure). Both failures are recorded as `access_denied`.
    pub(crate) async fn auth(&self, headers: &HeaderMap, action: &'static str, tenant: Option<String>) -> Result<Principal, ApiError> {
        let token = bearer(headers);
        let hash = token.as_deref().map(custos_crypto::hash_token);
        // Fast path: a principal resolved less than AUTH_CACHE_TTL ago, with a role high
        // enough. Anything else (unknown, too low) goes to the store so that the denial
        // is recorded exactly as the CLI records it.
        if let Some(h) = &hash {
            if let Some(who) = self.0.auth_cache.get(h) {
                if who.role >= required_role(action) {
                    return Ok(who);
                }
            }
        }
        let st = self.clone();
        let r = self
            .read(false, move |p| -> Result<Principal, ApiError> {
                let missing = token.is_none();
                let who = p.authenticate(token.as_deref(), action).map_err(|e| match e {
                    PlatformError::Denied(d) => ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        if missing {
                            "no token: send `Authorization: Bearer <token>` with a token from `custos actors add`".to_string()
                        } else {
                            format!("{d}: send a current token from `custos actors add` as `Authorization: Bearer <token>`")
                        },
                    ),
                    e => ApiError::from_platform(e),
                })?;
                if let Some(h) = hash {
                    st.0.auth_cache.put(h, &who);
                }
                p.require(&who, required_role(action), action, tenant.as_deref()).map_err(ApiError::from_platform)?;
                Ok(who)
            })
            .await?;
        r
    }
}

/// How long a resolved token is trusted without asking the store again: disabling
/// an actor or changing its role reaches a running server within this time.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(1);
const AUTH_CACHE_MAX: usize = 4096;

/// Recently resolved principals by token **hash** (never the token itself).
#[derive(Default)]
struct AuthCache(Mutex<HashMap<[u8; 32], (Principal, Instant)>>);

impl AuthCache {
    fn get(&self, h: &[u8; 32]) -> Option<Principal> {
        let m = self.0.lock().ok()?;
        m.get(h).filter(|(_, t)| t.elapsed() < AUTH_CACHE_TTL).map(|(p, _)| p.clone())
    }

    fn put(&self, h: [u8; 32], p: &Principal) {
        let Ok(mut m) = self.0.lock() else { return };
        if m.len() >= AUTH_CACHE_MAX {
            m.retain(|_, (_, t)| t.elapsed() < AUTH_CACHE_TTL);
            if m.len() >= AUTH_CACHE_MAX {
                m.clear();
            }
        }
        m.insert(h, (p.clone(), Instant::now()));
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, tok) = v.split_once(' ')?;
    let tok = tok.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !tok.is_empty()).then(|| tok.to_string())
}

/// Whether an operation writes (single writer) or only reads (pooled reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Runs on a pooled read-side connection.
    Read,
    /// Runs on the writer thread in its own transaction, between group commits.
    Write,
}

/// What an operation receives besides the platform and the principal.
#[derive(Debug, Clone, Default)]
pub struct OpInput {
    /// Path parameters (`/v1/holds/{tenant}` → `tenant`).
    pub path: Vec<(String, String)>,
    /// Query parameters, repeated keys kept in order.
    pub query: Vec<(String, String)>,
    /// The JSON body (`null` when empty).
    pub body: Value,
}

impl OpInput {
    /// A path or query parameter (path first).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.path.iter().chain(&self.query).find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a query parameter, comma-separated values split.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == name).flat_map(|(_, v)| v.split(',')).filter(|s| !s.is_empty()).collect()
    }

    /// A boolean query flag (`true`/`1`/`yes`, `false`/`0`/`no`, absent = false).
    pub fn flag(&self, name: &str) -> Result<bool, PlatformError> {
        match self.param(name) {
            None => Ok(false),
            Some("true" | "1" | "yes" | "") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(v) => Err(PlatformError::Input(format!("query parameter {name}={v:?} must be true or false"))),
        }
    }
}

/// A capability operation: the body of a CLI handler, minus printing.
pub type OpFn = fn(&mut Platform, &Principal, &OpInput) -> Result<Value, PlatformError>;

/// One endpoint for one command: `.route(PATH, op(MethodFilter::GET, Access::Read, "action", f))`.
pub fn op(method: MethodFilter, access: Access, action: &'static str, f: OpFn) -> MethodRouter<AppState> {
    on(
        method,
        move |State(st): State<AppState>,
              path: RawPathParams,
              query: Result<Query<Vec<(String, String)>>, QueryRejection>,
              headers: HeaderMap,
              body: Result<Bytes, BytesRejection>| async move {
            let query = query.map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?.0;
            let path: Vec<(String, String)> = path.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let body = body.map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))?;
            let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&body).map_err(|e| ApiError::bad_event(format!("the body is not JSON: {e}")))?
            };
            let input = OpInput { path, query, body };
            // The tenant a denial is recorded against: path or query, else the body's.
            let tenant = input.param("tenant").or_else(|| input.body.get("tenant").and_then(Value::as_str)).map(str::to_string);
            let who = st.auth(&headers, action, tenant).await?;
            let r = match access {
                Access::Read => st.read(true, move |p| f(p, &who, &input)).await?,
                Access::Write => st.write(move |p| f(p, &who, &input)).await?,
            };
            r.map(Json).map_err(ApiError::from_platform)
        },
    )
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    use Access::{Read, Write};
    use MethodFilter as M;
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/events", get(list_events).post(append_events))
        .route("/v1/verify", op(M::GET, Read, "verify", verify))
        .route("/v1/checkpoints", op(M::POST, Write, "checkpoint", checkpoint))
        .route("/v1/whoami", op(M::GET, Read, "whoami", whoami))
        // Capability endpoints, one `.route(PATH, op(...))` line each; see docs/API.md.
        // Reads that record something (cost report's anomalies) run on the writer.
        .route("/v1/budget", op(M::GET, Read, "budget show", cap::budget_show))
        .route("/v1/budget/check", op(M::POST, Write, "budget check", cap::budget_check))
        .route("/v1/costs", op(M::POST, Write, "cost record", cap::cost_record))
        .route("/v1/costs/report", op(M::GET, Write, "cost report", cap::cost_report))
        .route(
            "/v1/approvals",
            op(M::GET, Read, "approvals list", cap::approvals_list).merge(op(M::POST, Write, "approvals create", cap::approvals_create)),
        )
        .route("/v1/approvals/expire", op(M::POST, Write, "approvals expire", cap::approvals_expire))
        .route("/v1/approvals/{id}", op(M::GET, Read, "approvals show", cap::approvals_show))
        .route("/v1/approvals/{id}/approve", op(M::POST, Write, "approvals approve", cap::approvals_approve))
        .route("/v1/approvals/{id}/reject", op(M::POST, Write, "approvals reject", cap::approvals_reject))
        .route(
            "/v1/holds",
            op(M::GET, Read, "compliance holds", cap::holds_list).merge(op(M::POST, Write, "compliance hold", cap::hold_apply)),
        )
        .route("/v1/holds/release", op(M::POST, Write, "compliance release", cap::hold_release))
        .route("/v1/tenants/{tenant}/delete", op(M::POST, Write, "compliance delete", cap::tenant_delete))
        .route("/v1/retention/run", op(M::POST, Write, "retention run", cap::retention_run))
        .route("/v1/retention/policies", op(M::GET, Read, "retention policy list", cap::retention_policies))
        .route("/v1/export/{tenant}", get(cap::export))
        .route("/v1/freeze", op(M::POST, Write, "freeze", cap::freeze))
        .route("/v1/unfreeze", op(M::POST, Write, "unfreeze", cap::unfreeze))
        .route("/v1/freezes", op(M::GET, Read, "freeze status", cap::freezes))
        .route("/v1/status", op(M::GET, Read, "status", cap::status))
        .route("/v1/alerts", op(M::GET, Read, "alerts", cap::alerts))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint; see docs/API.md") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Counts error responses and denials for `/metrics`.
async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let s = res.status().as_u16();
    if s >= 400 {
        st.0.metrics.error(s);
        if s == 401 || s == 403 {
            st.0.metrics.denial();
        }
    }
    res
}

async fn readyz(State(st): State<AppState>) -> Response {
    let writer_up = !st.0.tx.is_closed() && !st.0.stopping.load(Ordering::SeqCst);
    let store = st.read(false, |p| -> Result<(u64, bool), PlatformError> { Ok((p.log().head()?.size, p.log().keys().is_ok())) }).await;
    match store {
        Ok(Ok((size, keys))) if keys && writer_up => Json(json!({"ready": true, "events": size})).into_response(),
        Ok(Ok((_, keys))) => {
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false, "keys_loaded": keys, "accepting_writes": writer_up})))
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!("readyz: store not readable: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false, "store": "unreachable"}))).into_response()
        }
        Err(e) => {
            tracing::warn!("readyz: {}", e.detail);
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false, "store": "unreachable"}))).into_response()
        }
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    let mut body = st.0.metrics.render();
    body.push_str(&alert_gauges(&st).await);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// The alert gauges, evaluated at most every [`ALERTS_TTL`]. A failed evaluation keeps
/// the last good figures (a scrape must not fail because of one slow read).
async fn alert_gauges(st: &AppState) -> String {
    let mut cache = st.0.alerts.lock().await;
    if let Some((at, text)) = cache.as_ref() {
        if at.elapsed() < ALERTS_TTL {
            return text.clone();
        }
    }
    match st.read(true, |p| p.alerts_evaluate(&custos_platform::AlertOptions::default())).await {
        Ok(Ok(r)) => {
            let text = crate::metrics::render_alerts(&r);
            *cache = Some((std::time::Instant::now(), text.clone()));
            text
        }
        Ok(Err(e)) => {
            tracing::warn!("metrics: alert evaluation failed: {e}");
            cache.as_ref().map(|c| c.1.clone()).unwrap_or_default()
        }
        Err(e) => {
            tracing::warn!("metrics: alert evaluation failed: {}", e.detail);
            cache.as_ref().map(|c| c.1.clone()).unwrap_or_default()
        }
    }
}

/// `POST /v1/events` — the HTTP face of `custos ingest`, group-committed.
async fn append_events(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Receipt>, ApiError> {
    let who = st.auth(&headers, "ingest", None).await?;
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let format = Format::from_content_type(ct)?;
    let limit = st.0.body_limit;
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than the server's limit of {limit} bytes; split it into several requests"),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_big()),
        Err(e) => return Err(ApiError::bad_request(format!("could not read the body: {e}"))),
    };
    // Parsing, canonical JSON and commitments happen here, on the request's task, in
    // parallel across requests; the single writer is left with sealing and chaining.
    let actor = who.name.clone();
    let inline = bytes.len() <= INLINE_PARSE_BYTES;
    let parse_and_prepare = move || -> Result<Vec<Prepared>, ApiError> {
        let events = body::parse(&bytes, format)?;
        prepare(events.into_iter().map(|event| Pending { event, actor: actor.clone() }).collect()).map_err(ApiError::from_log)
    };
    let events =
        if inline { parse_and_prepare()? } else { tokio::task::spawn_blocking(parse_and_prepare).await.map_err(ApiError::internal)?? };
    let (reply, rx) = oneshot::channel();
    st.0.tx
        .send(Msg::Append(AppendReq { events, reply }))
        .await
        .map_err(|_| ApiError::unavailable("the server is shutting down; retry against another instance"))?;
    let receipt = rx.await.map_err(|_| ApiError::unavailable("the server is shutting down"))?.map_err(ApiError::from_log)?;
    Ok(Json(receipt))
}

/// Filters of `GET /v1/events`, as `events list` takes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    tenant: Option<String>,
    category: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u64>,
}

/// `GET /v1/events` — `events list` as a stream of NDJSON lines.
async fn list_events(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = q.map_err(|e| ApiError::bad_request(format!("bad query: {e}")))?.0;
    let bad = |what: &str, e: &dyn std::fmt::Display| ApiError::bad_request(format!("query parameter {what}: {e}"));
    if let Some(t) = &q.tenant {
        TenantId::parse_any(t).map_err(|e| bad("tenant", &e))?;
    }
    let filter = EventFilter {
        tenant: q.tenant.clone(),
        category: q.category.as_deref().map(str::parse::<Category>).transpose().map_err(|e| bad("category", &e))?,
        kind: q.kind,
        since: q.since.as_deref().map(parse_ts).transpose().map_err(|e| bad("since", &e))?,
        until: q.until.as_deref().map(parse_ts).transpose().map_err(|e| bad("until", &e))?,
        limit: q.limit,
    };
    st.auth(&headers, "events list", q.tenant).await?;
    let permit = st.0.long.clone().acquire_owned().await.map_err(|_| ApiError::unavailable("the server is shutting down"))?;
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let st2 = st.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let tx2 = tx.clone();
        let r = st2.0.pool.with(move |p| {
            let mut buf: Vec<u8> = Vec::with_capacity(STREAM_CHUNK + 4096);
            let r = p.events(&filter, &mut |e| {
                if e.write_json(&mut buf).is_err() {
                    return Ok(false);
                }
                buf.push(b'\n');
                if buf.len() >= STREAM_CHUNK {
                    // A closed receiver means the client went away: stop reading.
                    return Ok(tx2.blocking_send(Ok(Bytes::from(std::mem::take(&mut buf)))).is_ok());
                }
                Ok(true)
            });
            if !buf.is_empty() {
                let _ = tx2.blocking_send(Ok(Bytes::from(buf)));
            }
            r
        });
        if let Err(e) | Ok(Err(e)) = r {
            // Headers are gone already: abort the chunked body so the client sees a truncated stream.
            tracing::error!("events stream failed: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other("stream aborted")));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

fn verify(p: &mut Platform, _: &Principal, i: &OpInput) -> Result<Value, PlatformError> {
    let expect = i.all("expect").into_iter().map(parse_expect).collect::<Result<Vec<_>, _>>()?;
    let rep = p.verify(&VerifyOptions { with_keys: !i.flag("no_keys")?, expect }, &mut |_| {})?;
    to_json(&rep)
}

fn checkpoint(p: &mut Platform, _: &Principal, _: &OpInput) -> Result<Value, PlatformError> {
    let cp = p.log_mut().checkpoint()?;
    to_json(&cp)
}

fn whoami(_: &mut Platform, who: &Principal, _: &OpInput) -> Result<Value, PlatformError> {
    to_json(who)
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, PlatformError> {
    serde_json::to_value(v).map_err(|e| PlatformError::Io(format!("serializing the answer: {e}")))
}
