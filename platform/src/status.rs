//! `custos status`: the one screen an operator reads first in an incident.
//!
//! Everything here is read through the method that owns it (freezes from the budget
//! config, holds from the governance views, approvals, key status); this module only
//! gathers. Freezes come first because they change what every budget check answers.

use custos_domain::checkpoint::Status as CheckpointStatus;
use custos_domain::format_ts;
use custos_domain::freeze::FreezeInfo;
use serde::Serialize;
use serde_json::Value;

use crate::{CheckpointInfo, HoldInfo, KeyStatus, Platform, PlatformError};

/// The store itself.
#[derive(Debug, Clone, Serialize)]
pub struct StoreSummary {
    /// Where it is (a PostgreSQL URL without its password).
    pub location: String,
    /// Size on disk, bytes.
    pub bytes: u64,
    /// Events in the log (= the head's global seq).
    pub events: u64,
    /// Global chain head, hex.
    pub global_head: String,
}

/// The latest signed checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointSummary {
    /// Log size it signs.
    pub seq: u64,
    /// RFC 3339.
    pub signed_at: String,
    /// Events appended since.
    pub events_since: u64,
}

/// Active legal holds.
#[derive(Debug, Clone, Serialize)]
pub struct HoldsSummary {
    /// How many.
    pub count: usize,
    /// Oldest first.
    pub active: Vec<HoldInfo>,
}

/// Pending approval checkpoints.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalsSummary {
    /// How many are pending now.
    pub pending: usize,
    /// The one waiting longest.
    pub oldest: Option<CheckpointInfo>,
}

/// The latest recorded governance event of a kind (retention run, backup).
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// Who ran it.
    pub by: Option<String>,
    /// Its payload (retention: `as_of`, `total_purged`, …; backup: `file`, `bytes`, …).
    pub details: Value,
}

/// `custos status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Active freezes, global first.
    pub freezes: Vec<FreezeInfo>,
    /// Size and head.
    pub store: StoreSummary,
    /// Latest signed checkpoint, if any.
    pub last_checkpoint: Option<CheckpointSummary>,
    /// Legal holds.
    pub holds: HoldsSummary,
    /// Approval checkpoints.
    pub approvals: ApprovalsSummary,
    /// Key ages and rotation policy (as `keys status`).
    pub keys: KeyStatus,
    /// The latest `retention run` (not dry runs, which record nothing).
    pub last_retention_run: Option<LastRun>,
    /// The latest `backup`.
    pub last_backup: Option<LastRun>,
}

impl Platform {
    /// The latest `_system` event of `kind`, if any.
    fn last_system_event(&self, kind: &str) -> Result<Option<LastRun>, PlatformError> {
        Ok(self.system_events_of(kind)?.pop().map(|(at, by, details)| LastRun { at: format_ts(at), by, details }))
    }

    /// `custos status`.
    pub fn status(&mut self) -> Result<StatusReport, PlatformError> {
        let freezes = self.freezes()?;
        let head = self.log.head()?;
        let store = StoreSummary {
            location: custos_eventlog::postgres::redact(self.location()),
            bytes: self.log.backend().size_bytes()?,
            events: head.size,
            global_head: hex::encode(head.chain),
        };
        let last_checkpoint =
            self.log.backend().checkpoints()?.into_iter().max_by_key(|c| (c.size, c.signed_at)).map(|c| CheckpointSummary {
                seq: c.size,
                signed_at: format_ts(c.signed_at),
                events_since: head.size.saturating_sub(c.size),
            });
        let active = self.holds_list(None)?;
        let holds = HoldsSummary { count: active.len(), active };
        let mut pending = self.approvals_list(None, Some(CheckpointStatus::Pending))?;
        // RFC 3339 strings of one format sort as the times they name.
        pending.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        let approvals = ApprovalsSummary { pending: pending.len(), oldest: pending.into_iter().next() };
        Ok(StatusReport {
            freezes,
            store,
            last_checkpoint,
            holds,
            approvals,
            keys: self.keys_status()?,
            last_retention_run: self.last_system_event("retention_enforced")?,
            last_backup: self.last_system_event("backup_created")?,
        })
    }
}
