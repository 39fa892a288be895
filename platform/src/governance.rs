//! Shared plumbing of the governance read models (budgets, checkpoints): reading
//! state as snapshot + tail, refreshing a snapshot whose tail got long, appending
//! inside a transaction together with the snapshot it updates, and `rebuild`.
//!
//! Snapshots and where they live:
//! - `budgets` per tenant ([`SpendView`]): spend by UTC day, provider and model; the
//!   tenant's own limits; anomaly days recorded. Covers a tenant_seq.
//! - `checkpoints` per tenant ([`CheckpointsView`]). Covers a tenant_seq.
//! - `budget-config` in `_system` ([`BudgetConfigView`]): global and tenant-default
//!   limits, thresholds, default checkpoint expiry. Covers a `_system` tenant_seq.
//! - `checkpoint-directory` in `_system` ([`CheckpointDirectory`]): checkpoint id → tenant.
//!   Covers a **global** seq; written in the same transaction as every `checkpoint_created`.
//!
//! Global spend is the sum of the tenants' `budgets` views (one snapshot load per tenant),
//! computed only when a global budget exists or a report asks for it.

use std::collections::{BTreeMap, HashMap};
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
            self.refresh::<T>(tenant)?;
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

    /// Recomputes every governance snapshot from the log, reports drift, writes them all
    /// in one transaction.
    pub fn rebuild_governance(&mut self, progress: &mut dyn FnMut(u64)) -> Result<GovernanceRebuild, PlatformError> {
        let t0 = Instant::now();
        let mut spend: HashMap<String, (u64, SpendView, CheckpointsView)> = HashMap::new();
        let mut config = BudgetConfigView::default();
        let mut sys_seq = 0u64;
        let mut dir = CheckpointDirectory::default();
        let mut events = 0u64;
        let mut last_global = 0u64;
        self.log.read(&Query::default(), &mut |e| {
            events += 1;
            last_global = e.header.global_seq;
            if e.header.tenant.is_system() {
                sys_seq = e.header.tenant_seq;
                config.apply(&e);
            } else {
                let s = spend.entry(e.header.tenant.to_string()).or_default();
                s.0 = e.header.tenant_seq;
                s.1.apply(&e);
                s.2.apply(&e);
                dir.apply(&e);
            }
            if events.is_multiple_of(65_536) {
                progress(events);
            }
            Ok(true)
        })?;
        progress(events);
        let mut rep = GovernanceRebuild { events, ..Default::default() };
        let deleted: Vec<String> =
            self.log.backend().tenant_heads()?.into_iter().filter(|h| h.deleted_at.is_some()).map(|h| h.tenant).collect();
        let mut tenants: Vec<_> = spend.into_iter().filter(|(t, _)| !deleted.contains(t)).collect();
        tenants.sort_by(|a, b| a.0.cmp(&b.0));
        // Drift: what reads would have returned (snapshot + tail) against the full fold.
        for (t, (_, s, c)) in &tenants {
            if load_folded::<SpendView>(&self.log, t)?.state != *s {
                rep.drift.push(format!("{t}/{}", SpendView::NAME));
            }
            if load_folded::<CheckpointsView>(&self.log, t)?.state != *c {
                rep.drift.push(format!("{t}/{}", CheckpointsView::NAME));
            }
        }
        if load_folded::<BudgetConfigView>(&self.log, SYSTEM_TENANT)?.state != config {
            rep.drift.push(format!("{SYSTEM_TENANT}/{}", BudgetConfigView::NAME));
        }
        if self.directory_read()? != dir {
            rep.drift.push(format!("{SYSTEM_TENANT}/{}", CheckpointDirectory::NAME));
        }
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

    /// The checkpoint directory as reads see it (snapshot + creations after it).
    fn directory_read(&self) -> Result<CheckpointDirectory, PlatformError> {
        let (covers, mut d) =
            snapshot::load::<CheckpointDirectory>(&self.log, SYSTEM_TENANT, CheckpointDirectory::NAME)?.unwrap_or_default();
        let q = Query { kind: Some("checkpoint_created".into()), from_seq: Some(covers + 1), ..Default::default() };
        self.log.read(&q, &mut |e| {
            d.apply(&e);
            Ok(true)
        })?;
        Ok(d)
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
