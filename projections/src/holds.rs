//! Legal holds folded from `hold_applied` / `hold_released` in `_system`.
//!
//! Holds live in `_system` (not in the tenant's stream) because they must be
//! readable whatever happens to the tenant's keys, and they are global state
//! (DESIGN §6), persisted in the `_system` snapshot.

use std::collections::BTreeMap;

use custos_domain::Timestamp;
use custos_eventlog::Event;
use serde::{Deserialize, Serialize};

use crate::Projection;

/// Payload of `hold_applied` (`_system`, governance). The actor who applied it is the
/// event's actor; the time is its `occurred_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldApplied {
    /// Case id, unique among active holds.
    pub hold_id: String,
    /// Tenant held.
    pub tenant: String,
    /// Why (case reference, matter name).
    pub reason: String,
    /// When the hold is due for review (µs); `custos alerts` reports holds past it.
    /// Absent in holds applied before review dates existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_by_micros: Option<Timestamp>,
}

/// Payload of `hold_released` (`_system`, governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldReleased {
    /// Tenant concerned.
    pub tenant: String,
    /// Holds released (all active holds of the tenant with `--all`).
    pub hold_ids: Vec<String>,
}

/// One active hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldState {
    /// Case id.
    pub hold_id: String,
    /// Tenant held.
    pub tenant: String,
    /// Why.
    pub reason: String,
    /// Actor who applied it.
    pub applied_by: String,
    /// When (µs).
    pub applied_at: Timestamp,
    /// Global seq of the `hold_applied` event.
    pub applied_seq: u64,
    /// Review date (µs), if one was given. `default` keeps older snapshots readable.
    #[serde(default)]
    pub review_by: Option<Timestamp>,
}

/// Active legal holds by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldsView {
    /// Active holds by hold id.
    pub active: BTreeMap<String, HoldState>,
}

impl HoldsView {
    /// Active holds of `tenant`, oldest first.
    pub fn of_tenant(&self, tenant: &str) -> Vec<&HoldState> {
        let mut v: Vec<_> = self.active.values().filter(|h| h.tenant == tenant).collect();
        v.sort_by_key(|h| h.applied_seq);
        v
    }

    /// True when `tenant` has at least one active hold.
    pub fn is_held(&self, tenant: &str) -> bool {
        self.active.values().any(|h| h.tenant == tenant)
    }
}

impl Projection for HoldsView {
    fn apply(&mut self, ev: &Event) {
        if !ev.header.tenant.is_system() {
            return;
        }
        let Some(data) = &ev.data else { return };
        match ev.header.kind.as_str() {
            "hold_applied" => {
                if let Ok(h) = serde_json::from_value::<HoldApplied>(data.clone()) {
                    self.active.insert(
                        h.hold_id.clone(),
                        HoldState {
                            hold_id: h.hold_id,
                            tenant: h.tenant,
                            reason: h.reason,
                            applied_by: ev.actor.clone().unwrap_or_default(),
                            applied_at: ev.header.occurred_at,
                            applied_seq: ev.header.global_seq,
                            review_by: h.review_by_micros,
                        },
                    );
                }
            }
            "hold_released" => {
                if let Ok(r) = serde_json::from_value::<HoldReleased>(data.clone()) {
                    for id in r.hold_ids {
                        // A release names holds of its tenant only; never drop another tenant's hold.
                        if self.active.get(&id).is_some_and(|h| h.tenant == r.tenant) {
                            self.active.remove(&id);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_domain::{Category, TenantId};
    use custos_eventlog::record::Header;
    use serde_json::json;

    fn ev(seq: u64, tenant: TenantId, kind: &str, data: serde_json::Value) -> Event {
        Event {
            header: Header {
                global_seq: seq,
                tenant,
                tenant_seq: seq,
                category: Category::Governance,
                kind: kind.into(),
                occurred_at: 10,
                recorded_at: 10,
                label: None,
                commitment: [0; 32],
            },
            actor: Some("alice".into()),
            data: Some(data),
            salt: None,
            purged_by: None,
        }
    }

    #[test]
    fn fold_apply_release_and_ignore_foreign_streams() {
        let sys = TenantId::system;
        let mut v = HoldsView::default();
        v.apply(&ev(1, sys(), "hold_applied", json!({"hold_id": "A", "tenant": "acme", "reason": "r"})));
        v.apply(&ev(2, sys(), "hold_applied", json!({"hold_id": "B", "tenant": "globex", "reason": "r"})));
        // The same kind in a tenant stream is not a hold (and could not be ingested anyway).
        v.apply(&ev(
            3,
            TenantId::parse("acme").unwrap_or_else(|_| sys()),
            "hold_applied",
            json!({"hold_id": "C", "tenant": "acme", "reason": "r"}),
        ));
        assert_eq!(v.active.len(), 2);
        assert_eq!(v.active["A"].applied_by, "alice");
        // A release naming another tenant's hold leaves it alone.
        v.apply(&ev(4, sys(), "hold_released", json!({"tenant": "acme", "hold_ids": ["A", "B"]})));
        assert!(!v.is_held("acme"));
        assert!(v.is_held("globex"));
        // Purged or undecryptable bodies are ignored, never a panic.
        let mut e = ev(5, sys(), "hold_released", json!({}));
        e.data = None;
        v.apply(&e);
        assert_eq!(v.active.len(), 1);
    }

    #[test]
    fn review_dates_are_optional_and_old_snapshots_still_read() {
        let sys = TenantId::system;
        let mut v = HoldsView::default();
        v.apply(&ev(1, sys(), "hold_applied", json!({"hold_id": "A", "tenant": "acme", "reason": "r", "review_by_micros": 99})));
        v.apply(&ev(2, sys(), "hold_applied", json!({"hold_id": "B", "tenant": "acme", "reason": "r"})));
        assert_eq!(v.active["A"].review_by, Some(99));
        assert_eq!(v.active["B"].review_by, None);
        // A snapshot written before review dates existed has no `review_by` field.
        let old = json!({"active": {"B": {"hold_id": "B", "tenant": "acme", "reason": "r", "applied_by": "a", "applied_at": 1, "applied_seq": 2}}});
        let back: HoldsView = serde_json::from_value(old).unwrap_or_default();
        assert_eq!(back.active.get("B").map(|h| h.review_by), Some(None));
    }
}
