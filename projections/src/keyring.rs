use std::collections::BTreeMap;

use custos_eventlog::Event;
use serde::{Deserialize, Serialize};

use crate::Projection;

/// One KEK version as the log describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KekState {
    /// `key-001`, ...
    pub key_id: String,
    /// `active`, `decrypt-only` or `retired`.
    pub status: String,
    /// Seq of the event that created it.
    pub created_seq: u64,
    /// Its creation time (µs).
    pub created_at: i64,
}

/// KEK history folded from `log_initialized`, `key_rotated` and `key_retired`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyringView {
    /// By key id.
    pub keks: BTreeMap<String, KekState>,
}

impl Projection for KeyringView {
    fn apply(&mut self, ev: &Event) {
        if !ev.header.tenant.is_system() {
            return;
        }
        let Some(data) = &ev.data else { return };
        let key_id = data.get("key_id").and_then(|v| v.as_str()).map(str::to_string);
        match (ev.header.kind.as_str(), key_id) {
            ("log_initialized" | "key_rotated", Some(id)) => {
                for k in self.keks.values_mut() {
                    if k.status == "active" {
                        k.status = "decrypt-only".into();
                    }
                }
                self.keks.insert(
                    id.clone(),
                    KekState { key_id: id, status: "active".into(), created_seq: ev.header.global_seq, created_at: ev.header.occurred_at },
                );
            }
            ("key_retired", Some(id)) => {
                if let Some(k) = self.keks.get_mut(&id) {
                    k.status = "retired".into();
                }
            }
            _ => {}
        }
    }
}
