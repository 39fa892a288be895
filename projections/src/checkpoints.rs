//! Approval checkpoints: per-tenant [`CheckpointsView`] (snapshot `checkpoints`) and the
//! id → tenant [`CheckpointDirectory`] (snapshot `checkpoint-directory` in `_system`,
//! covering a *global* seq) that lets `approvals approve ID` find the tenant without a scan.

use std::collections::BTreeMap;

use custos_domain::checkpoint::{apply, Checkpoint};
use custos_domain::Category;
use custos_eventlog::Event;
use serde::{Deserialize, Serialize};

use crate::snapshot::Folded;
use crate::Projection;

/// A tenant's checkpoints by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointsView {
    /// By id.
    pub checkpoints: BTreeMap<String, Checkpoint>,
}

impl CheckpointsView {
    /// Folds the parts of an event of this tenant.
    pub fn apply_parts(
        &mut self,
        tenant: &str,
        category: Category,
        kind: &str,
        occurred_at: i64,
        actor: Option<&str>,
        data: &serde_json::Value,
    ) {
        if category == Category::Approvals {
            apply(&mut self.checkpoints, tenant, kind, occurred_at, actor, data);
        }
    }
}

impl Projection for CheckpointsView {
    fn apply(&mut self, ev: &Event) {
        if ev.header.tenant.is_system() {
            return;
        }
        if let Some(d) = &ev.data {
            let h = &ev.header;
            self.apply_parts(h.tenant.as_str(), h.category, &h.kind, h.occurred_at, ev.actor.as_deref(), d);
        }
    }
}

impl Folded for CheckpointsView {
    const NAME: &'static str = "checkpoints";
    const CATEGORY: Option<Category> = Some(Category::Approvals);
}

/// Which tenant holds each checkpoint id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointDirectory {
    /// id → tenant.
    pub tenants: BTreeMap<String, String>,
}

impl CheckpointDirectory {
    /// Snapshot name (in `_system`; its covers_seq is a global seq).
    pub const NAME: &'static str = "checkpoint-directory";
}

impl Projection for CheckpointDirectory {
    fn apply(&mut self, ev: &Event) {
        if ev.header.kind != "checkpoint_created" || ev.header.category != Category::Approvals || ev.header.tenant.is_system() {
            return;
        }
        if let Some(id) = ev.data.as_ref().and_then(|d| d.get("checkpoint_id")).and_then(|v| v.as_str()) {
            self.tenants.entry(id.to_string()).or_insert_with(|| ev.header.tenant.to_string());
        }
    }
}
