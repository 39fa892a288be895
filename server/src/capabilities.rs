//! The capability endpoints: budgets and costs, approvals, legal holds and deletion,
//! retention, freezes, status and alerts — each the body of a CLI handler minus
//! printing, answering the JSON of its `--json`. Routed in [`crate::routes::router`].
//!
//! Parameters come from the JSON body of a POST and the query of a GET. Every field is
//! checked here (missing, wrong type, unknown) before the platform is called, so a bad
//! request is a 422 `bad_input` naming the field and appends nothing.
//!
//! Destructive operations (deletion, retention run, hold release, freeze) have no typed
//! confirmation over HTTP: the caller is a program holding a Compliance/Admin token, and
//! the role check plus the recorded event are the safeguard (docs/API.md).

use std::collections::BTreeMap;
use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawPathParams, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use custos_compliance::holds::ReleaseTarget;
use custos_domain::budget::{parse_permille, AnomalyRule};
use custos_domain::kinds::CostRecorded;
use custos_domain::{parse_duration_secs, parse_ts, Role, Timestamp};
use custos_platform::{
    parse_checkpoint_status, parse_usd, AlertOptions, CheckpointList, Decide, ExpiredList, ExportOptions, HoldList, NewCheckpoint,
    Platform, PlatformError, PolicyList, Principal,
};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::routes::{to_json, AppState, OpInput};

type R = Result<Value, PlatformError>;

fn bad(msg: String) -> PlatformError {
    PlatformError::Input(msg)
}

/// The fields of a JSON body, checked against what the endpoint takes.
struct Fields<'a>(Option<&'a Map<String, Value>>);

impl<'a> Fields<'a> {
    /// The body must be an object (or empty) with no field outside `allowed`: a typo
    /// (`dryrun`) must fail loudly rather than run the destructive default.
    fn of(i: &'a OpInput, allowed: &[&str]) -> Result<Self, PlatformError> {
        let m = match &i.body {
            Value::Null => return Ok(Self(None)),
            Value::Object(m) => m,
            _ => return Err(bad("the body must be a JSON object".into())),
        };
        if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(format!("unknown field `{k}`; this endpoint takes {}", allowed.join(", "))));
        }
        Ok(Self(Some(m)))
    }

    /// A present, non-null value.
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.0.and_then(|m| m.get(k)).filter(|v| !v.is_null())
    }

    fn str(&self, k: &str) -> Result<Option<&'a str>, PlatformError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(format!("field `{k}` must be a string"))),
        }
    }

    fn req_str(&self, k: &str) -> Result<&'a str, PlatformError> {
        self.str(k)?.ok_or_else(|| bad(format!("field `{k}` is required")))
    }

    fn bool(&self, k: &str) -> Result<bool, PlatformError> {
        match self.get(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(format!("field `{k}` must be true or false"))),
        }
    }

    fn u64(&self, k: &str) -> Result<Option<u64>, PlatformError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| bad(format!("field `{k}` must be a non-negative integer"))),
        }
    }

    /// Dollars as a decimal string (`"0.0021"`, exact) or a JSON number, parsed by the
    /// CLI's `--usd` parser from the number's shortest decimal text.
    fn usd(&self, k: &str) -> Result<i64, PlatformError> {
        match self.get(k) {
            None => Err(bad(format!("field `{k}` is required"))),
            Some(Value::String(s)) => parse_usd(s, k),
            Some(Value::Number(n)) => parse_usd(&n.to_string(), k),
            Some(_) => Err(bad(format!("field `{k}` must be dollars as a decimal string such as \"0.0021\" or a number"))),
        }
    }

    fn ts(&self, k: &str) -> Result<Option<Timestamp>, PlatformError> {
        self.str(k)?.map(|s| parse_ts(s).map_err(|e| bad(format!("{k}: {e}")))).transpose()
    }
}

fn q_ts(i: &OpInput, k: &str) -> Result<Option<Timestamp>, PlatformError> {
    i.param(k).map(|s| parse_ts(s).map_err(|e| bad(format!("query parameter {k}: {e}")))).transpose()
}

fn q_u32(i: &OpInput, k: &str) -> Result<Option<u32>, PlatformError> {
    i.param(k).map(|s| s.parse::<u32>().map_err(|_| bad(format!("query parameter {k}={s:?} must be a whole number")))).transpose()
}

// ---- budgets and costs ----

/// `POST /v1/budget/check` — a deny is an answer (200, `decision: "deny"`), the CLI's exit 4.
pub fn budget_check(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["tenant", "usd"])?;
    let tenant = f.req_str("tenant")?;
    let usd = f.usd("usd")?;
    to_json(&p.budget_check(who, tenant, usd)?)
}

/// `GET /v1/budget` — `budget show`.
pub fn budget_show(p: &mut Platform, _: &Principal, i: &OpInput) -> R {
    to_json(&p.budget_show(i.param("tenant"))?)
}

/// `POST /v1/costs` — `cost record`.
pub fn cost_record(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["tenant", "run", "provider", "model", "tokens_in", "tokens_out", "usd", "occurred_at"])?;
    let tenant = f.req_str("tenant")?;
    let c = CostRecorded {
        run_id: f.req_str("run")?.to_string(),
        provider: f.req_str("provider")?.to_string(),
        model: f.req_str("model")?.to_string(),
        tokens_in: f.u64("tokens_in")?.unwrap_or(0),
        tokens_out: f.u64("tokens_out")?.unwrap_or(0),
        usd_micros: f.usd("usd")?,
    };
    let at = f.ts("occurred_at")?;
    to_json(&p.cost_record(who, tenant, c, at)?)
}

/// `GET /v1/costs/report` — `cost report`. A writer operation: newly found anomalies
/// are recorded once as `cost_anomaly`.
pub fn cost_report(p: &mut Platform, _: &Principal, i: &OpInput) -> R {
    let mut rule = AnomalyRule::default();
    if let Some(s) = i.param("sigma") {
        rule.sigma_milli = parse_permille(s).map_err(|e| bad(format!("query parameter sigma: {e}")))?;
    }
    if let Some(s) = i.param("min_usd") {
        rule.min_usd_micros = parse_usd(s, "query parameter min_usd")?;
    }
    if let Some(n) = q_u32(i, "min_days")? {
        rule.min_baseline_days = n;
    }
    let days = q_u32(i, "days")?.unwrap_or(30);
    to_json(&p.cost_report(i.param("tenant"), days, rule)?)
}

// ---- approvals ----

/// `GET /v1/approvals` — `approvals list`.
pub fn approvals_list(p: &mut Platform, _: &Principal, i: &OpInput) -> R {
    let st = i.param("status").map(|s| parse_checkpoint_status(s, "status")).transpose()?;
    to_json(&CheckpointList::from(p.approvals_list(i.param("tenant"), st)?))
}

/// `POST /v1/approvals` — `approvals create`.
pub fn approvals_create(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["tenant", "dag_run", "prompt", "role", "expires_in", "id"])?;
    let required_role: Role = f.str("role")?.unwrap_or("Operator").parse().map_err(|e| bad(format!("role: {e}")))?;
    let expires_in_secs = f.str("expires_in")?.map(|s| parse_duration_secs(s).map_err(|e| bad(format!("expires_in: {e}")))).transpose()?;
    let n = NewCheckpoint {
        tenant: f.req_str("tenant")?.to_string(),
        dag_run_id: f.req_str("dag_run")?.to_string(),
        prompt: f.req_str("prompt")?.to_string(),
        required_role,
        expires_in_secs,
        id: f.str("id")?.map(str::to_string),
    };
    to_json(&p.approvals_create(who, n)?)
}

fn id(i: &OpInput) -> Result<&str, PlatformError> {
    i.param("id").ok_or_else(|| bad("the checkpoint id is missing from the path".into()))
}

/// `GET /v1/approvals/{id}` — `approvals show`.
pub fn approvals_show(p: &mut Platform, _: &Principal, i: &OpInput) -> R {
    to_json(&p.approvals_show(id(i)?)?)
}

/// `POST /v1/approvals/{id}/approve` `{kv?: {key: value}}` — the platform enforces the
/// checkpoint's own required role (403, recorded) and answers 409 to a second decision.
pub fn approvals_approve(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["kv"])?;
    let mut kv = BTreeMap::new();
    match f.get("kv") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let v = v.as_str().ok_or_else(|| bad(format!("kv.{k} must be a string")))?;
                if k.trim().is_empty() {
                    return Err(bad("kv keys must not be empty".into()));
                }
                kv.insert(k.trim().to_string(), v.to_string());
            }
        }
        Some(_) => return Err(bad("field `kv` must be an object of strings".into())),
    }
    to_json(&p.approvals_decide(who, id(i)?, Decide::Approve(kv))?)
}

/// `POST /v1/approvals/{id}/reject` `{reason}`.
pub fn approvals_reject(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["reason"])?;
    let reason = f.req_str("reason")?.to_string();
    to_json(&p.approvals_decide(who, id(i)?, Decide::Reject(reason))?)
}

/// `POST /v1/approvals/expire` — the cron step.
pub fn approvals_expire(p: &mut Platform, _: &Principal, i: &OpInput) -> R {
    Fields::of(i, &[])?;
    to_json(&ExpiredList::from(p.approvals_expire()?))
}

// ---- legal holds, deletion, retention ----

/// `GET /v1/holds` — `compliance holds`.
pub fn holds_list(p: &mut Platform, _: &Principal, i: &OpInput) -> R {
    to_json(&HoldList::from(p.holds_list(i.param("tenant"))?))
}

/// `POST /v1/holds` `{tenant, reason, id?, review_by?}` — `compliance hold`.
pub fn hold_apply(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["tenant", "reason", "id", "review_by"])?;
    let (tenant, reason) = (f.req_str("tenant")?, f.req_str("reason")?);
    let review_by = f.ts("review_by")?;
    p.hold_apply(who, tenant, reason, f.str("id")?, review_by)
}

/// `POST /v1/holds/release` `{tenant, hold | all: true}` — `compliance release`.
pub fn hold_release(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["tenant", "hold", "all"])?;
    let tenant = f.req_str("tenant")?;
    let target = match (f.str("hold")?, f.bool("all")?) {
        (Some(h), false) => ReleaseTarget::One(h.to_string()),
        (None, true) => ReleaseTarget::All,
        _ => return Err(bad("give exactly one of `hold` (a hold id) or `all: true`".into())),
    };
    to_json(&p.hold_release(who, tenant, &target)?)
}

/// `POST /v1/tenants/{tenant}/delete` `{dry_run?}` — `compliance delete`. 409 `legal_hold`
/// while held; the platform records the blocked attempt as `deletion_blocked`.
pub fn tenant_delete(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["dry_run"])?;
    let tenant = i.param("tenant").ok_or_else(|| bad("the tenant is missing from the path".into()))?;
    to_json(&p.tenant_delete(who, tenant, f.bool("dry_run")?)?)
}

/// `POST /v1/retention/run` `{dry_run?, as_of?}`.
pub fn retention_run(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["dry_run", "as_of"])?;
    let as_of = f.ts("as_of")?;
    to_json(&p.retention_run(who, as_of, f.bool("dry_run")?, &mut |_, _| {})?)
}

/// `GET /v1/retention/policies` — `retention policy list`.
pub fn retention_policies(p: &mut Platform, _: &Principal, _: &OpInput) -> R {
    to_json(&PolicyList::from(p.retention_policy_list()?))
}

// ---- freezes, status, alerts ----

/// `POST /v1/freeze` `{reason, tenant?}`.
pub fn freeze(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["reason", "tenant"])?;
    let reason = f.req_str("reason")?;
    to_json(&p.freeze(who, f.str("tenant")?, reason)?)
}

/// `POST /v1/unfreeze` `{tenant?}`.
pub fn unfreeze(p: &mut Platform, who: &Principal, i: &OpInput) -> R {
    let f = Fields::of(i, &["tenant"])?;
    to_json(&p.unfreeze(who, f.str("tenant")?)?)
}

/// `GET /v1/freezes` — `freeze status`.
pub fn freezes(p: &mut Platform, _: &Principal, _: &OpInput) -> R {
    to_json(&p.freezes()?)
}

/// `GET /v1/status` — `custos status`.
pub fn status(p: &mut Platform, _: &Principal, _: &OpInput) -> R {
    to_json(&p.status()?)
}

/// `GET /v1/alerts?since=&tenant=&at=` — 200 with the report whether or not anything
/// fires (`firing` in the body is what the CLI's exit 10 reports).
pub fn alerts(p: &mut Platform, _: &Principal, i: &OpInput) -> R {
    let since = i.param("since").unwrap_or("7d");
    let window_secs = parse_duration_secs(since).map_err(|e| bad(format!("query parameter since: {e}")))?;
    let at = q_ts(i, "at")?;
    to_json(&p.alerts_evaluate(&AlertOptions { window_secs, tenant: i.param("tenant").map(str::to_string), at })?)
}

// ---- export ----

/// Bytes per chunk of a streamed bundle.
const EXPORT_CHUNK: usize = 64 * 1024;
const BUNDLE: &str = "bundle.tar.gz";

fn export_options(i: &OpInput, tenant: &str) -> Result<ExportOptions, PlatformError> {
    let policy = i.param("policy").unwrap_or("deny").parse().map_err(|e: String| bad(format!("query parameter policy: {e}")))?;
    Ok(ExportOptions {
        tenant: tenant.to_string(),
        out: BUNDLE.into(),
        archive: true,
        policy,
        require_labels: i.flag("require_labels")?,
        redact_pii: None,
        since: q_ts(i, "since")?,
        until: q_ts(i, "until")?,
    })
}

/// `GET /v1/export/{tenant}?policy=&require_labels=&since=&until=` — `compliance export
/// --archive`, streamed as `application/gzip`.
///
/// The export runs on the writer: it signs a checkpoint and records `export_created`,
/// which must stay in order with concurrent appends. It writes the archive into a
/// temp dir that lives until the last byte is streamed.
pub async fn export(
    State(st): State<AppState>,
    path: RawPathParams,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = query.map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?.0;
    let tenant = path.iter().find(|(k, _)| *k == "tenant").map(|(_, v)| v.to_string()).unwrap_or_default();
    let input = OpInput { path: vec![("tenant".into(), tenant.clone())], query, body: Value::Null };
    let who = st.auth(&headers, "compliance export", Some(tenant.clone())).await?;
    let mut opts = export_options(&input, &tenant).map_err(ApiError::from_platform)?;
    let (res, dir) = st
        .write(move |p| {
            let dir = tempfile::tempdir().map_err(|e| PlatformError::Io(format!("temp dir for an export: {e}")))?;
            opts.out = dir.path().join(BUNDLE);
            let res = p.export(&who, &opts, &mut |_, _| {})?;
            Ok::<_, PlatformError>((res, dir))
        })
        .await?
        .map_err(ApiError::from_platform)?;
    let file = dir.path().join(BUNDLE);
    let f = std::fs::File::open(&file).map_err(ApiError::internal)?;
    let len = f.metadata().map_err(ApiError::internal)?.len();
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        // The temp dir is removed when this task ends: after the last chunk, or when the client left.
        let _dir = dir;
        let mut f = f;
        loop {
            let mut buf = vec![0u8; EXPORT_CHUNK];
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!("export stream failed: {e}");
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // The tenant id is validated by the export (a safe charset), so it fits a header.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"custos-export-{}.tar.gz\"", res.tenant)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&res.manifest_sha256) {
        h.insert("x-custos-manifest-sha256", v);
    }
    h.insert("x-custos-export-seq", HeaderValue::from(res.recorded_seq));
    Ok(r)
}
