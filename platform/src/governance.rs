//! Shared plumbing of the governance read models (budgets, checkpoints): reading
//! state as snapshot + tail, refreshing a snapshot whose tail got long, appending
//! inside a transaction together with the snapshot it updates, and `rebuild`.
//!
//! Snapshots and where they live:
//! - `budgets` per tenant ([`SpendView`]): spend by UTC day, provider and model; the
//!   tenant's own limits; anomaly days recorded. Covers a tenant_seq.
//! - `checkpoints` per tenant ([`CheckpointsView`]). Covers a tenant_seq.
//! - `budget-config` in `_system` ([`BudgetConfigView`]): global and tenant-default
//!   limits, thresholds, default checkpoint expiry, active freezes. Covers a `_system` tenant_seq.
//! - `checkpoint-directory` in `_system` ([`CheckpointDirectory`]): checkpoint id → tenant.
//!   Covers a **global** seq; written in the same transaction as every `checkpoint_created`.
//!
//! Global spend is the sum of the tenants' `budgets` views (one snapshot load per tenant),
//! computed only when a global budget exists or a report asks for it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use custos_domain::{Category, NewEvent, TenantId, Timestamp, SYSTEM_TENANT};
use custos_eventlog::{Appender, Pending, Query};
use custos_projections::budgets::{BudgetConfigView, SpendView};
use custos_projections::checkpoints::{CheckpointDirectory, CheckpointsView};
use custos_projections::snapshot::{self, load_folded, load_folded_in, Folded};
use custos_projections::Projection;
use serde::Serialize;
use serde_json::Value;

use crate::{Platform, PlatformError};

/// A read whose tail is longer than this rewrites the snapshot, so read latency stays
/// bounded by this many events however the log grows (ingest does not update snapshots).
pub const REFRESH_TAIL: u64 = 256;

/// Kinds the governance projections fold; `rebuild` decrypts only these bodies.
const FOLDED_KINDS: &[&str] = &[
    "cost_recorded",
    "budget_set",
    "budget_thresholds_set",
    "approvals_config_set",
    "freeze_applied",
    "freeze_lifted",
    "cost_anomaly",
    "checkpoint_created",
    "checkpoint_approved",
    "checkpoint_rejected",
    "checkpoint_expired",
];

/// Snapshots as stored, consumed as the rebuild reaches the seq each covers.
struct Stored {
    spend: Option<(u64, SpendView)>,
    cps: Option<(u64, CheckpointsView)>,
}

/// An event to append in a tenant stream at an explicit time (the decision's clock).
pub(crate) fn pending(
    tenant: &str,
    category: Category,
    kind: &str,
    at: Timestamp,
    data: Value,
    actor: &str,
) -> Result<Pending, PlatformError> {
    Ok(Pending {
        event: NewEvent { tenant: TenantId::parse_any(tenant)?, category, kind: kind.into(), occurred_at: Some(at), label: None, data },
        actor: actor.to_string(),
    })
}

/// What `rebuild` did to the governance snapshots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GovernanceRebuild {
    /// Events folded.
    pub events: u64,
    /// Tenant streams with governance state.
    pub tenants: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// `tenant/snapshot` names whose stored state (snapshot + tail) differed from the log.
    pub drift: Vec<String>,
    /// Wall time of the fold and write, seconds.
    pub secs: f64,
    /// Events folded per second.
    pub events_per_sec: f64,
}

impl Platform {
    /// A tenant's state (snapshot + tail), refreshing the snapshot when the tail is long.
    pub(crate) fn view<T: Folded>(&mut self, tenant: &str) -> Result<T, PlatformError> {
        let l = load_folded::<T>(&self.log, tenant)?;
        if l.tail > REFRESH_TAIL {
            // A cache write: if it cannot happen now (read-only file, lock contention), the
            // answer is still exact and the next read tries again.
            if let Err(e) = self.refresh::<T>(tenant) {
                tracing::warn!("could not refresh the {} snapshot of {tenant}: {e}", T::NAME);
            }
        }
        Ok(l.state)
    }

    /// Rewrites a snapshot from its state read under the write lock (no event: a cache write).
    fn refresh<T: Folded>(&mut self, tenant: &str) -> Result<(), PlatformError> {
        let mut a = self.log.appender()?;
        let l = load_folded_in::<T>(&mut a, tenant)?;
        if l.tail > 0 {
            snapshot::save_in(&mut a, tenant, T::NAME, l.covers, &l.state)?;
            a.commit()?;
        }
        Ok(())
    }

    /// Global budget configuration.
    pub(crate) fn config(&mut self) -> Result<BudgetConfigView, PlatformError> {
        self.view::<BudgetConfigView>(SYSTEM_TENANT)
    }

    /// Tenants with a stream that is not deleted (no `_system`).
    pub fn live_tenants(&self) -> Result<Vec<String>, PlatformError> {
        Ok(self
            .log
            .backend()
            .tenant_heads()?
            .into_iter()
            .filter(|h| h.deleted_at.is_none() && h.tenant != SYSTEM_TENANT)
            .map(|h| h.tenant)
            .collect())
    }

    /// Recomputes every governance snapshot from the log in one pass, reports drift, and
    /// writes them all in one transaction.
    ///
    /// Drift is checked without a second read: each stored snapshot is compared with the
    /// fold at the seq it claims to cover; since reads fold the same tail onto it, equal
    /// there means reads return exactly the rebuilt state. Only bodies of the kinds these
    /// projections fold are decrypted.
    pub fn rebuild_governance(&mut self, progress: &mut dyn FnMut(u64)) -> Result<GovernanceRebuild, PlatformError> {
        let t0 = Instant::now();
        let heads = self.log.backend().tenant_heads()?;
        let deleted: HashSet<String> = heads.iter().filter(|h| h.deleted_at.is_some()).map(|h| h.tenant.clone()).collect();
        let mut stored: HashMap<String, Stored> = HashMap::new();
        for h in heads.iter().filter(|h| h.deleted_at.is_none() && h.tenant != SYSTEM_TENANT) {
            let spend = snapshot::load::<SpendView>(&self.log, &h.tenant, SpendView::NAME)?;
            let cps = snapshot::load::<CheckpointsView>(&self.log, &h.tenant, CheckpointsView::NAME)?;
            stored.insert(h.tenant.clone(), Stored { spend, cps });
        }
        let mut stored_cfg = snapshot::load::<BudgetConfigView>(&self.log, SYSTEM_TENANT, BudgetConfigView::NAME)?;
        let mut stored_dir = snapshot::load::<CheckpointDirectory>(&self.log, SYSTEM_TENANT, CheckpointDirectory::NAME)?;
        let mut drift: Vec<String> = vec![];
        // A snapshot covering 0 events must be empty.
        for (t, st) in stored.iter_mut() {
            if st.spend.as_ref().is_some_and(|(c, _)| *c == 0) && st.spend.take().is_some_and(|(_, v)| v != SpendView::default()) {
                drift.push(format!("{t}/{}", SpendView::NAME));
            }
            if st.cps.as_ref().is_some_and(|(c, _)| *c == 0) && st.cps.take().is_some_and(|(_, v)| v != CheckpointsView::default()) {
                drift.push(format!("{t}/{}", CheckpointsView::NAME));
            }
        }

        let mut state: HashMap<String, (u64, SpendView, CheckpointsView)> = HashMap::new();
        let mut config = BudgetConfigView::default();
        let mut sys_seq = 0u64;
        let mut dir = CheckpointDirectory::default();
        let mut events = 0u64;
        let mut last_global = 0u64;
        let log = &self.log;
        log.backend().scan(&Query::default(), &mut |rec| {
            events += 1;
            last_global = rec.header.global_seq;
            let tenant = rec.header.tenant.to_string();
            if deleted.contains(&tenant) {
                return Ok(true);
            }
            let relevant = FOLDED_KINDS.contains(&rec.header.kind.as_str());
            let seq = rec.header.tenant_seq;
            let gseq = rec.header.global_seq;
            if rec.header.tenant.is_system() {
                sys_seq = seq;
                if relevant {
                    config.apply(&log.open_record(rec)?);
                }
                if stored_cfg.as_ref().is_some_and(|(c, _)| *c == seq) && stored_cfg.take().is_some_and(|(_, v)| v != config) {
                    drift.push(format!("{SYSTEM_TENANT}/{}", BudgetConfigView::NAME));
                }
            } else {
                let s = state.entry(tenant.clone()).or_default();
                s.0 = seq;
                if relevant {
                    let e = log.open_record(rec)?;
                    s.1.apply(&e);
                    s.2.apply(&e);
                    dir.apply(&e);
                }
                if let Some(st) = stored.get_mut(&tenant) {
                    if st.spend.as_ref().is_some_and(|(c, _)| *c == seq) && st.spend.take().is_some_and(|(_, v)| v != s.1) {
                        drift.push(format!("{tenant}/{}", SpendView::NAME));
                    }
                    if st.cps.as_ref().is_some_and(|(c, _)| *c == seq) && st.cps.take().is_some_and(|(_, v)| v != s.2) {
                        drift.push(format!("{tenant}/{}", CheckpointsView::NAME));
                    }
                }
            }
            if stored_dir.as_ref().is_some_and(|(c, _)| *c == gseq) && stored_dir.take().is_some_and(|(_, v)| v != dir) {
                drift.push(format!("{SYSTEM_TENANT}/{}", CheckpointDirectory::NAME));
            }
            if events.is_multiple_of(65_536) {
                progress(events);
            }
            Ok(true)
        })?;
        progress(events);
        // Snapshots claiming seqs the log does not have.
        for (t, st) in &stored {
            if st.spend.is_some() {
                drift.push(format!("{t}/{}", SpendView::NAME));
            }
            if st.cps.is_some() {
                drift.push(format!("{t}/{}", CheckpointsView::NAME));
            }
        }
        if stored_cfg.is_some_and(|(c, v)| c != 0 || v != BudgetConfigView::default()) {
            drift.push(format!("{SYSTEM_TENANT}/{}", BudgetConfigView::NAME));
        }
        if stored_dir.is_some_and(|(c, v)| c != 0 || v != CheckpointDirectory::default()) {
            drift.push(format!("{SYSTEM_TENANT}/{}", CheckpointDirectory::NAME));
        }
        drift.sort();
        let mut tenants: Vec<_> = state.into_iter().collect();
        tenants.sort_by(|a, b| a.0.cmp(&b.0));
        let mut rep = GovernanceRebuild { events, drift, ..Default::default() };
        let mut a = self.log.appender()?;
        for (t, (seq, s, c)) in &tenants {
            snapshot::save_in(&mut a, t, SpendView::NAME, *seq, s)?;
            snapshot::save_in(&mut a, t, CheckpointsView::NAME, *seq, c)?;
            rep.snapshots += 2;
        }
        if sys_seq > 0 {
            snapshot::save_in(&mut a, SYSTEM_TENANT, BudgetConfigView::NAME, sys_seq, &config)?;
            snapshot::save_in(&mut a, SYSTEM_TENANT, CheckpointDirectory::NAME, last_global, &dir)?;
            rep.snapshots += 2;
        }
        a.commit()?;
        rep.tenants = tenants.len() as u64;
        rep.secs = t0.elapsed().as_secs_f64();
        rep.events_per_sec = if rep.secs > 0.0 { events as f64 / rep.secs } else { 0.0 };
        Ok(rep)
    }
}

/// The checkpoint directory inside a transaction: (global seq covered, directory).
pub(crate) fn directory_in(a: &mut Appender<'_>) -> Result<(u64, CheckpointDirectory), PlatformError> {
    let (covers, mut d) = snapshot::load_in::<CheckpointDirectory>(a, SYSTEM_TENANT, CheckpointDirectory::NAME)?.unwrap_or_default();
    // Normally empty: every creation updates the directory in its own transaction.
    let q = Query { kind: Some("checkpoint_created".into()), from_seq: Some(covers + 1), ..Default::default() };
    a.read(&q, &mut |e| {
        d.apply(&e);
        Ok(true)
    })?;
    Ok((covers, d))
}

/// Sums tenants' spend: (today, this month) per tenant and the global totals.
pub(crate) fn sum_spend(views: &BTreeMap<String, SpendView>, day: i64) -> (i64, i64) {
    let month0 = custos_domain::budget::month_start(day);
    let mut d = 0i64;
    let mut m = 0i64;
    for v in views.values() {
        d = d.saturating_add(v.day(day));
        m = m.saturating_add(v.range(month0, day).usd_micros);
    }
    (d, m)
}
