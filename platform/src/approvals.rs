//! Approval checkpoints: create, list, show, approve, reject, expire, report.
//!
//! Every state change is decided **inside** the write transaction: the appender holds
//! SQLite's write lock, the checkpoint's state is re-read there (snapshot + tail, as
//! seen by the transaction), the pure `custos_domain::checkpoint::decide` runs on it,
//! and its events are appended with the refreshed snapshot before the lock is released.
//! Two processes deciding the same checkpoint therefore serialize: the second sees the
//! first's decision and gets a conflict error.

use std::collections::BTreeMap;

use custos_domain::checkpoint::{
    decide, decide_create, Checkpoint, CheckpointCreated, CheckpointError, Command, Status, DEFAULT_EXPIRY_SECS,
};
use custos_domain::{format_ts, now_micros, Category, Role, TenantId, Timestamp, SYSTEM_TENANT};
use custos_projections::checkpoints::{CheckpointDirectory, CheckpointsView};
use custos_projections::snapshot::{self, load_folded_in, Folded};
use serde::Serialize;
use serde_json::{json, Value};

use crate::governance::{directory_in, pending};
use crate::{Platform, PlatformError, Principal, SYSTEM_ACTOR};

/// A checkpoint as commands print it (times RFC 3339, effective status).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Id.
    pub checkpoint_id: String,
    /// Tenant.
    pub tenant: String,
    /// DAG run.
    pub dag_run_id: String,
    /// Prompt.
    pub prompt: String,
    /// Required role.
    pub required_role: Role,
    /// Effective status now.
    pub status: Status,
    /// Created.
    pub created_at: String,
    /// Creator.
    pub created_by: String,
    /// Expiry.
    pub expires_at: String,
    /// Decision time.
    pub decided_at: Option<String>,
    /// Decider.
    pub decided_by: Option<String>,
    /// Decider's role.
    pub decided_role: Option<Role>,
    /// Rejection reason.
    pub reason: Option<String>,
    /// Approval inputs.
    pub kv: BTreeMap<String, String>,
}

impl CheckpointInfo {
    fn of(c: &Checkpoint, now: Timestamp) -> Self {
        Self {
            checkpoint_id: c.checkpoint_id.clone(),
            tenant: c.tenant.clone(),
            dag_run_id: c.dag_run_id.clone(),
            prompt: c.prompt.clone(),
            required_role: c.required_role,
            status: c.status_at(now),
            created_at: format_ts(c.created_at),
            created_by: c.created_by.clone(),
            expires_at: format_ts(c.expires_at),
            decided_at: c.decided_at.map(format_ts),
            decided_by: c.decided_by.clone(),
            decided_role: c.decided_role,
            reason: c.reason.clone(),
            kv: c.kv.clone(),
        }
    }
}

/// What `approvals create` needs.
#[derive(Debug, Clone)]
pub struct NewCheckpoint {
    /// Tenant.
    pub tenant: String,
    /// DAG run.
    pub dag_run_id: String,
    /// Prompt.
    pub prompt: String,
    /// Required role (default Operator).
    pub required_role: Role,
    /// Expiry in seconds (default: recorded default, else 72 h).
    pub expires_in_secs: Option<i64>,
    /// Id (default: generated).
    pub id: Option<String>,
}

/// A decision (`approve` / `reject`).
#[derive(Debug, Clone)]
pub enum Decide {
    /// Approve with inputs.
    Approve(BTreeMap<String, String>),
    /// Reject with a reason.
    Reject(String),
}

/// One decision row of the audit CSV.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRow {
    /// Decision time (RFC 3339).
    pub timestamp: String,
    /// `checkpoint_approved`, `checkpoint_rejected` or `checkpoint_expired`.
    pub event: String,
    /// Checkpoint.
    pub checkpoint_id: String,
    /// DAG run.
    pub dag_run_id: String,
    /// Tenant.
    pub tenant: String,
    /// Who decided (empty for expiry).
    pub actor: String,
    /// Their role.
    pub role: String,
    /// Rejection reason.
    pub reason: String,
}

/// `approvals report`.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalsReport {
    /// Window in days (decisions and creations since now − days).
    pub days: u32,
    /// Approved in the window.
    pub approved: u64,
    /// Rejected in the window.
    pub rejected: u64,
    /// Expired in the window (recorded or past expiry).
    pub expired: u64,
    /// Pending now.
    pub pending: u64,
    /// Approvals by actor.
    pub approvals_by_actor: BTreeMap<String, u64>,
    /// Approvals by role.
    pub approvals_by_role: BTreeMap<String, u64>,
    /// Median seconds from creation to approve/reject (None when no decisions).
    pub median_secs_to_decision: Option<i64>,
    /// Every decision in the window, oldest first.
    pub decisions: Vec<DecisionRow>,
}

fn map_cp(e: CheckpointError) -> PlatformError {
    match e {
        CheckpointError::NotFound(_) => PlatformError::NotFound(e.to_string()),
        CheckpointError::RoleTooLow { .. } => PlatformError::Denied(e.to_string()),
        CheckpointError::AlreadyDecided { .. } | CheckpointError::Duplicate(_) => PlatformError::Conflict(e.to_string()),
        _ => PlatformError::Input(e.to_string()),
    }
}

fn new_id() -> Result<String, PlatformError> {
    let mut b = [0u8; 6];
    custos_crypto::random_bytes(&mut b)?;
    Ok(format!("ckpt-{}", hex::encode(b)))
}

impl Platform {
    /// Creates a checkpoint (`checkpoint_created`), updating the tenant's checkpoints and
    /// the id directory in the same transaction.
    pub fn approvals_create(&mut self, who: &Principal, n: NewCheckpoint) -> Result<CheckpointInfo, PlatformError> {
        let tenant = TenantId::parse(&n.tenant)?.to_string();
        let id = match n.id {
            Some(i) => i,
            None => new_id()?,
        };
        // The default expiry is read before the lock: a concurrent config change may apply
        // to this checkpoint or not, either order is correct.
        let cfg = self.config()?;
        let mut a = self.log.appender()?;
        let (_, mut dir) = directory_in(&mut a)?;
        let secs = n.expires_in_secs.or(cfg.default_expiry_secs).unwrap_or(DEFAULT_EXPIRY_SECS);
        let now = now_micros();
        let expires = now.saturating_add(secs.saturating_mul(1_000_000));
        let mut l = load_folded_in::<CheckpointsView>(&mut a, &tenant)?;
        let c = CheckpointCreated {
            checkpoint_id: id.clone(),
            dag_run_id: n.dag_run_id,
            prompt: n.prompt,
            required_role: n.required_role,
            expires_at_micros: expires,
        };
        let events = decide_create(dir.tenants.contains_key(&id) || l.state.checkpoints.contains_key(&id), c, now).map_err(map_cp)?;
        let mut covers = l.covers;
        let mut last_global = 0;
        for e in &events {
            let seqs = a.push(&[pending(&tenant, Category::Approvals, e.kind(), now, e.data(), &who.name)?])?;
            last_global = seqs.last().copied().unwrap_or(last_global);
            covers += 1;
            l.state.apply_parts(&tenant, Category::Approvals, e.kind(), now, Some(&who.name), &e.data());
        }
        dir.tenants.insert(id.clone(), tenant.clone());
        snapshot::save_in(&mut a, &tenant, CheckpointsView::NAME, covers, &l.state)?;
        snapshot::save_in(&mut a, SYSTEM_TENANT, CheckpointDirectory::NAME, last_global, &dir)?;
        a.commit()?;
        let cp = l.state.checkpoints.get(&id).ok_or_else(|| PlatformError::NotFound(id.clone()))?;
        Ok(CheckpointInfo::of(cp, now))
    }

    /// Approves or rejects, deciding under the write lock. Role too low → exit 2 (recorded);
    /// already decided → conflict (exit 1); expired → exit 1.
    pub fn approvals_decide(&mut self, who: &Principal, id: &str, d: Decide) -> Result<CheckpointInfo, PlatformError> {
        let action = match d {
            Decide::Approve(_) => "approvals approve",
            Decide::Reject(_) => "approvals reject",
        };
        let res = self.decide_in_tx(who, id, d);
        if let Err(PlatformError::Denied(msg)) = &res {
            let (need, tenant) = self.checkpoint_role(id);
            self.record_denial(&who.name, action, need, Some(who.role), msg, tenant.as_deref());
        }
        res
    }

    fn checkpoint_role(&mut self, id: &str) -> (Option<Role>, Option<String>) {
        match self.approvals_show(id) {
            Ok(c) => (Some(c.required_role), Some(c.tenant)),
            Err(_) => (None, None),
        }
    }

    fn decide_in_tx(&mut self, who: &Principal, id: &str, d: Decide) -> Result<CheckpointInfo, PlatformError> {
        let mut a = self.log.appender()?;
        let (_, dir) = directory_in(&mut a)?;
        let tenant = dir.tenants.get(id).cloned().ok_or_else(|| map_cp(CheckpointError::NotFound(id.to_string())))?;
        let mut l = load_folded_in::<CheckpointsView>(&mut a, &tenant)?;
        let now = now_micros();
        let cmd = match d {
            Decide::Approve(kv) => Command::Approve { actor: who.name.clone(), role: who.role, kv, now },
            Decide::Reject(reason) => Command::Reject { actor: who.name.clone(), role: who.role, reason, now },
        };
        let events = decide(l.state.checkpoints.get(id), id, cmd).map_err(map_cp)?;
        for e in &events {
            a.push(&[pending(&tenant, Category::Approvals, e.kind(), now, e.data(), &who.name)?])?;
            l.covers += 1;
            l.state.apply_parts(&tenant, Category::Approvals, e.kind(), now, Some(&who.name), &e.data());
        }
        snapshot::save_in(&mut a, &tenant, CheckpointsView::NAME, l.covers, &l.state)?;
        a.commit()?;
        let cp = l.state.checkpoints.get(id).ok_or_else(|| PlatformError::NotFound(id.to_string()))?;
        Ok(CheckpointInfo::of(cp, now))
    }

    /// Records `checkpoint_expired` for every pending checkpoint at or past its expiry, in
    /// one transaction. Idempotent: a second run finds nothing to do.
    pub fn approvals_expire(&mut self) -> Result<Vec<CheckpointInfo>, PlatformError> {
        let tenants = self.live_tenants()?;
        let now = now_micros();
        let mut a = self.log.appender()?;
        let mut out = vec![];
        for t in tenants {
            let mut l = load_folded_in::<CheckpointsView>(&mut a, &t)?;
            let due: Vec<String> = l
                .state
                .checkpoints
                .values()
                .filter(|c| c.status == Status::Pending && now >= c.expires_at)
                .map(|c| c.checkpoint_id.clone())
                .collect();
            if due.is_empty() {
                continue;
            }
            for id in due {
                let events = decide(l.state.checkpoints.get(&id), &id, Command::Expire { now }).map_err(map_cp)?;
                for e in &events {
                    a.push(&[pending(&t, Category::Approvals, e.kind(), now, e.data(), SYSTEM_ACTOR)?])?;
                    l.covers += 1;
                    l.state.apply_parts(&t, Category::Approvals, e.kind(), now, Some(SYSTEM_ACTOR), &e.data());
                }
                if let Some(c) = l.state.checkpoints.get(&id) {
                    out.push(CheckpointInfo::of(c, now));
                }
            }
            snapshot::save_in(&mut a, &t, CheckpointsView::NAME, l.covers, &l.state)?;
        }
        a.commit()?;
        Ok(out)
    }

    pub(crate) fn all_checkpoints(&mut self, tenant: Option<&str>) -> Result<Vec<Checkpoint>, PlatformError> {
        let tenants = match tenant {
            Some(t) => vec![TenantId::parse(t)?.to_string()],
            None => self.live_tenants()?,
        };
        let mut out = vec![];
        for t in tenants {
            out.extend(self.view::<CheckpointsView>(&t)?.checkpoints.into_values());
        }
        out.sort_by(|a, b| (a.created_at, &a.checkpoint_id).cmp(&(b.created_at, &b.checkpoint_id)));
        Ok(out)
    }

    /// `approvals list`, with effective statuses.
    pub fn approvals_list(&mut self, tenant: Option<&str>, status: Option<Status>) -> Result<Vec<CheckpointInfo>, PlatformError> {
        let now = now_micros();
        Ok(self
            .all_checkpoints(tenant)?
            .iter()
            .map(|c| CheckpointInfo::of(c, now))
            .filter(|c| status.is_none_or(|s| c.status == s))
            .collect())
    }

    /// `approvals show ID`.
    pub fn approvals_show(&mut self, id: &str) -> Result<CheckpointInfo, PlatformError> {
        let (covers, mut dir) =
            snapshot::load::<CheckpointDirectory>(&self.log, SYSTEM_TENANT, CheckpointDirectory::NAME)?.unwrap_or_default();
        if !dir.tenants.contains_key(id) {
            let q = custos_eventlog::Query { kind: Some("checkpoint_created".into()), from_seq: Some(covers + 1), ..Default::default() };
            self.log.read(&q, &mut |e| {
                custos_projections::Projection::apply(&mut dir, &e);
                Ok(true)
            })?;
        }
        let tenant = dir.tenants.get(id).cloned().ok_or_else(|| map_cp(CheckpointError::NotFound(id.to_string())))?;
        let v = self.view::<CheckpointsView>(&tenant)?;
        let c = v.checkpoints.get(id).ok_or_else(|| map_cp(CheckpointError::NotFound(id.to_string())))?;
        Ok(CheckpointInfo::of(c, now_micros()))
    }

    /// `approvals report`: counts, approvals by actor and role, median time to decision,
    /// and every decision of the last `days` days.
    pub fn approvals_report(&mut self, days: u32) -> Result<ApprovalsReport, PlatformError> {
        let now = now_micros();
        let since = now.saturating_sub(i64::from(days).saturating_mul(86_400_000_000));
        let all = self.all_checkpoints(None)?;
        let mut r = ApprovalsReport {
            days,
            approved: 0,
            rejected: 0,
            expired: 0,
            pending: 0,
            approvals_by_actor: BTreeMap::new(),
            approvals_by_role: BTreeMap::new(),
            median_secs_to_decision: None,
            decisions: vec![],
        };
        let mut waits = vec![];
        let mut rows: Vec<(i64, DecisionRow)> = vec![];
        for c in &all {
            let st = c.status_at(now);
            if st == Status::Pending {
                r.pending += 1;
                continue;
            }
            // An expired checkpoint expired at its expiry instant, whether or not the cron step
            // has recorded `checkpoint_expired` yet (that event's time is when the cron ran), so
            // the report reads the same before and after `approvals expire`.
            let at = if st == Status::Expired { c.expires_at } else { c.decided_at.unwrap_or(c.expires_at) };
            if at < since {
                continue;
            }
            match st {
                Status::Approved => {
                    r.approved += 1;
                    *r.approvals_by_actor.entry(c.decided_by.clone().unwrap_or_default()).or_default() += 1;
                    *r.approvals_by_role.entry(c.decided_role.map(|x| x.to_string()).unwrap_or_default()).or_default() += 1;
                }
                Status::Rejected => r.rejected += 1,
                _ => r.expired += 1,
            }
            if matches!(st, Status::Approved | Status::Rejected) {
                waits.push(at.saturating_sub(c.created_at));
            }
            rows.push((
                at,
                DecisionRow {
                    timestamp: format_ts(at),
                    event: format!("checkpoint_{}", st.as_str()),
                    checkpoint_id: c.checkpoint_id.clone(),
                    dag_run_id: c.dag_run_id.clone(),
                    tenant: c.tenant.clone(),
                    actor: if st == Status::Expired { String::new() } else { c.decided_by.clone().unwrap_or_default() },
                    role: c.decided_role.map(|x| x.to_string()).unwrap_or_default(),
                    reason: c.reason.clone().unwrap_or_default(),
                },
            ));
        }
        waits.sort_unstable();
        r.median_secs_to_decision = median(&waits).map(|m| m / 1_000_000);
        // Sort on the instant, not the text: RFC 3339 with trimmed fractions does not sort
        // as a string (`…:51Z` would land after `…:51.04Z`).
        rows.sort_by(|(a, x), (b, y)| (a, &x.checkpoint_id).cmp(&(b, &y.checkpoint_id)));
        r.decisions = rows.into_iter().map(|(_, row)| row).collect();
        Ok(r)
    }

    /// Records the default checkpoint expiry (`approvals_config_set`); see [`Platform::approvals_config`].
    pub fn approvals_settings(&mut self) -> Result<Value, PlatformError> {
        let cfg = self.config()?;
        Ok(json!({ "default_expiry_secs": cfg.default_expiry_secs.unwrap_or(DEFAULT_EXPIRY_SECS) }))
    }
}

/// Median of sorted µs durations (mean of the two middle values, integer).
fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if !n.is_multiple_of(2) {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] / 2) + (sorted[n / 2] / 2) + ((sorted[n / 2 - 1] % 2 + sorted[n / 2] % 2) / 2)
    })
}
