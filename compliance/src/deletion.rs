//! Tenant deletion by crypto-shredding (DESIGN §7).
//!
//! In ONE transaction: every DEK version of the tenant is destroyed, every remaining
//! body is dropped (marked `purged_by` the `tenant_deleted` event), its snapshots are
//! deleted, its stream head is marked deleted, and `tenant_deleted` (counts, actor)
//! is recorded in `_system`. Headers and commitments stay, so the chains still verify;
//! the salts died with the bodies, so the commitments reveal nothing. Afterwards the
//! backend reclaims freed space (SQLite: `secure_delete` zeroed the freed cells and
//! pages; the WAL is checkpointed and truncated) so no wrapped DEK or ciphertext
//! survives in the store's files. Backups taken earlier are out of reach: they stay
//! decryptable until they expire or their root key is destroyed.

use custos_domain::{format_ts, now_micros, Category, TenantId};
use custos_eventlog::backend::TenantHead;
use custos_eventlog::{EventLog, Pending};
use custos_projections::HoldsView;
use serde::{Deserialize, Serialize};

use crate::holds::{guard_system, system_event};
use crate::ComplianceError;

/// What a deletion destroys (or, in a dry run, would destroy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionCounts {
    /// Bodies of `runs` events.
    pub runs: u64,
    /// Bodies of `costs` events.
    pub costs: u64,
    /// Bodies of `approvals` events.
    pub approvals: u64,
    /// Bodies of `artifacts` events.
    pub artifacts: u64,
    /// Stored artifact contents (encrypted chunks with their metadata) destroyed with them.
    #[serde(default)]
    pub artifact_blobs: u64,
    /// Bodies of `queue` events.
    pub queue: u64,
    /// Bodies of `dlq` events.
    pub dlq: u64,
    /// Bodies of the tenant's own `governance` events.
    pub governance: u64,
    /// Bodies of `custom` events.
    pub custom: u64,
    /// Projection snapshots sealed with the tenant's DEKs.
    pub snapshots: u64,
    /// DEK versions destroyed.
    pub keys: u64,
}

impl DeletionCounts {
    fn slot(&mut self, c: Category) -> &mut u64 {
        match c {
            Category::Runs => &mut self.runs,
            Category::Costs => &mut self.costs,
            Category::Approvals => &mut self.approvals,
            Category::Artifacts => &mut self.artifacts,
            Category::Queue => &mut self.queue,
            Category::Dlq => &mut self.dlq,
            Category::Governance => &mut self.governance,
            Category::Custom => &mut self.custom,
        }
    }

    /// Bodies over all categories.
    pub fn bodies(&self) -> u64 {
        self.runs + self.costs + self.approvals + self.artifacts + self.queue + self.dlq + self.governance + self.custom
    }

    /// Everything destroyed: every field of the struct, artifact blobs included, so
    /// `total_items` accounts for all the ciphertext a deletion removed.
    pub fn total(&self) -> u64 {
        self.bodies() + self.artifact_blobs + self.snapshots + self.keys
    }
}

/// Payload of `tenant_deleted` (`_system`, governance). Verify uses `tenant` to check
/// that every body it purged belongs to that tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDeleted {
    /// The tenant crypto-shredded.
    pub tenant: String,
    /// What was destroyed.
    pub counts: DeletionCounts,
    /// Sum of every field of counts ([`DeletionCounts::total`]).
    pub total_items: u64,
}

/// The answer of `compliance delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionReport {
    /// Tenant.
    pub tenant: String,
    /// True when nothing was changed.
    pub dry_run: bool,
    /// When the tenant was deleted (RFC 3339); null in a dry run.
    pub deleted_at: Option<String>,
    /// What was (or would be) destroyed.
    pub counts: DeletionCounts,
    /// Sum of counts.
    pub total_items: u64,
    /// True when the tenant had already been deleted (the re-run changed nothing).
    pub already_deleted: bool,
    /// Global seq of the `tenant_deleted` event (when this run recorded it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<u64>,
    /// False when a concurrent reader kept the WAL from being truncated; re-run to finish.
    pub storage_reclaimed: bool,
}

fn head_of(log: &EventLog, tenant: &TenantId) -> Result<TenantHead, ComplianceError> {
    log.backend()
        .tenant_heads()?
        .into_iter()
        .find(|h| h.tenant == tenant.as_str())
        .ok_or_else(|| ComplianceError::NotFound(format!("unknown tenant {tenant}: it has no events in this store (check the spelling)")))
}

/// Deletes `tenant` (or, with `dry_run`, reports what would be destroyed).
///
/// `holds` must be the holds view folded up to `_system` tenant_seq `system_seq`; the
/// write transaction re-checks that nothing was appended to `_system` since (else
/// [`ComplianceError::Conflict`]), so a hold applied concurrently always wins.
pub fn delete_tenant(
    log: &mut EventLog,
    holds: &HoldsView,
    system_seq: u64,
    tenant: &TenantId,
    actor: &str,
    dry_run: bool,
) -> Result<DeletionReport, ComplianceError> {
    if tenant.is_system() {
        return Err(ComplianceError::Input("_system holds the governance record of the store and cannot be deleted".into()));
    }
    let head = head_of(log, tenant)?;
    if let Some(at) = head.deleted_at {
        // Idempotent: nothing is left to destroy; finish reclaiming in case a previous run was interrupted.
        let reclaimed = if dry_run { true } else { log.backend().reclaim()? };
        return Ok(DeletionReport {
            tenant: tenant.to_string(),
            dry_run,
            deleted_at: Some(format_ts(at)),
            counts: DeletionCounts::default(),
            total_items: 0,
            already_deleted: true,
            event_seq: None,
            storage_reclaimed: reclaimed,
        });
    }
    let held = holds.of_tenant(tenant.as_str());
    if !held.is_empty() {
        return Err(ComplianceError::Held { tenant: tenant.to_string(), hold_ids: held.iter().map(|h| h.hold_id.clone()).collect() });
    }
    let t = tenant.as_str();
    if dry_run {
        let mut counts = DeletionCounts::default();
        for c in Category::ALL {
            *counts.slot(c) = log.backend().count_live(t, Some(c), None)?;
        }
        counts.snapshots = log.backend().count_snapshots(t)?;
        counts.keys = log.backend().deks(Some(t))?.len() as u64;
        counts.artifact_blobs = log.backend().artifacts(Some(t))?.len() as u64;
        let total_items = counts.total();
        return Ok(DeletionReport {
            tenant: t.into(),
            dry_run,
            deleted_at: None,
            counts,
            total_items,
            already_deleted: false,
            event_seq: None,
            storage_reclaimed: true,
        });
    }

    let now = now_micros();
    let mut a = log.appender()?;
    guard_system(&mut a, system_seq)?;
    let mut head = a.tx().tenant_head(t)?.ok_or_else(|| ComplianceError::NotFound(format!("unknown tenant {tenant}")))?;
    if head.deleted_at.is_some() {
        return Err(ComplianceError::Conflict(format!("tenant {tenant} was deleted by another process")));
    }
    // The bodies are dropped in one pass naming the event recorded below in this same
    // transaction: its seq is the next one.
    let event_seq = a.head().size + 1;
    let mut counts = DeletionCounts::default();
    let all: Vec<(Category, i64)> = Category::ALL.iter().map(|&c| (c, i64::MAX)).collect();
    for (c, n) in a.tx().purge_before_cutoffs(t, &all, Some(event_seq))? {
        *counts.slot(c) = n;
    }
    counts.snapshots = a.tx().delete_snapshots(t)?;
    counts.keys = a.tx().delete_deks(t, None)?;
    // Artifact contents are sealed with the same DEKs; dropping them in this transaction
    // leaves no ciphertext of the tenant behind (the chunks would be undecryptable anyway).
    counts.artifact_blobs = a.tx().delete_artifacts(t)?;
    let total_items = counts.total();
    let data = serde_json::to_value(TenantDeleted { tenant: t.into(), counts: counts.clone(), total_items })
        .map_err(|e| ComplianceError::Input(e.to_string()))?;
    let seqs = a.push(&[Pending { event: system_event("tenant_deleted", data, Some(now)), actor: actor.into() }])?;
    let seq = seqs.first().copied().unwrap_or(0);
    if seq != event_seq {
        return Err(ComplianceError::Conflict("the deletion event did not get the sequence number its purge names".into()));
    }
    if a.tx().count_live(t, None, None)? != 0 {
        return Err(ComplianceError::Conflict(format!("bodies of {tenant} remain after the purge")));
    }
    head.deleted_at = Some(now);
    a.tx().set_tenant_head(&head)?;
    a.commit()?;
    log.keys()?.forget_tenant(t);
    let reclaimed = log.backend().reclaim()?;
    Ok(DeletionReport {
        tenant: t.into(),
        dry_run,
        deleted_at: Some(format_ts(now)),
        counts,
        total_items,
        already_deleted: false,
        event_seq: Some(seq),
        storage_reclaimed: reclaimed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_sums_every_field() {
        let c = DeletionCounts {
            runs: 1,
            costs: 2,
            approvals: 4,
            artifacts: 8,
            artifact_blobs: 16,
            queue: 32,
            dlq: 64,
            governance: 128,
            custom: 256,
            snapshots: 512,
            keys: 1024,
        };
        // Sum every field through the serialized form, so a field added later without
        // being counted in total() fails here.
        let v = serde_json::to_value(&c).unwrap_or_default();
        let fields = v.as_object().map(|m| m.values().filter_map(|x| x.as_u64()).collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(fields.len(), 11, "every field is numeric: {v}");
        assert_eq!(c.total(), fields.iter().sum::<u64>());
        assert_eq!(c.total(), 2047);
    }
}
