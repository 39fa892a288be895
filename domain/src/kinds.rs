//! Well-known event kinds and their typed payloads.
//!
//! Kinds listed in [`INGESTABLE`] are parsed strictly when they arrive from the
//! platform; kinds in [`RESERVED`] are recorded by custos itself and refused on
//! ingest, so that nobody can forge a hold release or an actor change with a
//! JSONL line. Any other kind is accepted as opaque JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Category, Clearance, DomainError, Role};

/// `run_completed` (category `runs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCompleted {
    /// The run.
    pub run_id: String,
    /// Workflow name.
    pub workflow: String,
    /// `ok`, `failed`, ...
    pub status: String,
    /// LLM provider.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// Optional citation count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citations: Option<u64>,
    /// Optional count of redactions applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redactions: Option<u64>,
}

/// `cost_recorded` (category `costs`). Money in integer micro-USD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRecorded {
    /// The run this cost belongs to.
    pub run_id: String,
    /// LLM provider.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost in micro-USD (integer; never a float).
    pub usd_micros: i64,
}

/// `actor_added` (`_system`, governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorAdded {
    /// Unique actor name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Clearance.
    pub clearance: Clearance,
    /// Hex SHA-256 of the token; the token itself is never stored.
    pub token_sha256: String,
}

/// `actor_disabled` (`_system`, governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorDisabled {
    /// The actor.
    pub name: String,
}

/// `access_denied` (`_system`, governance): a refused attempt is itself audit data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDenied {
    /// Who tried (`<unknown token>` / `<no token>` when unauthenticated).
    pub actor: String,
    /// What was attempted (the command path).
    pub action: String,
    /// Role it needed, if the refusal is about role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_role: Option<Role>,
    /// Role the actor has, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_role: Option<Role>,
    /// Why.
    pub reason: String,
    /// Tenant concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// `key_rotated` (`_system`, governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotated {
    /// New active KEK.
    pub key_id: String,
    /// Algorithm.
    pub alg: String,
    /// Previous active KEK, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// Kinds the platform may ingest, parsed strictly, with the category each must use.
pub const INGESTABLE: &[(&str, Category)] = &[("run_completed", Category::Runs), ("cost_recorded", Category::Costs)];

/// Kinds only custos records. Refused on ingest.
pub const RESERVED: &[&str] = &[
    "access_denied",
    "actor_added",
    "actor_disabled",
    "alert_threshold_set",
    "artifact_labeled",
    "artifact_purged",
    "artifact_stored",
    "artifact_tier_changed",
    "approvals_config_set",
    "backup_created",
    "budget_set",
    "budget_thresholds_set",
    "budget_throttled",
    "budget_denied",
    "checkpoint_approved",
    "checkpoint_created",
    "checkpoint_expired",
    "checkpoint_rejected",
    "cost_anomaly",
    "deletion_blocked",
    "default_label_set",
    "export_created",
    "export_denied",
    "freeze_applied",
    "freeze_lifted",
    "hold_applied",
    "hold_released",
    "ingest_redacted",
    "key_policy_set",
    "key_retired",
    "key_rotated",
    "keys_rewrapped",
    "lifecycle_policy_set",
    "lifecycle_run",
    "log_initialized",
    "retention_enforced",
    "retention_policy_set",
    "root_key_rotated",
    "tenant_deleted",
    "tenant_reencrypt_started",
    "tenant_reencrypted",
];

/// Checks a kind name's shape.
pub fn check_kind_name(kind: &str) -> Result<(), DomainError> {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::BadKind(kind.to_string()))
    }
}

/// Validates an event arriving from outside custos: shape of the kind, not reserved,
/// and for well-known kinds the category and a strict parse of the payload.
pub fn validate_ingest(category: Category, kind: &str, data: &Value) -> Result<(), DomainError> {
    check_kind_name(kind)?;
    if RESERVED.contains(&kind) {
        return Err(DomainError::ReservedKind(kind.to_string()));
    }
    let Some(&(_, expected)) = INGESTABLE.iter().find(|(k, _)| *k == kind) else {
        return Ok(());
    };
    if expected != category {
        return Err(DomainError::WrongCategory { kind: kind.to_string(), expected: expected.as_str(), got: category.to_string() });
    }
    let bad = |e: serde_json::Error| DomainError::BadPayload { kind: kind.to_string(), detail: e.to_string() };
    match kind {
        "run_completed" => RunCompleted::deserialize(data).map(|_| ()).map_err(bad),
        "cost_recorded" => {
            let c = CostRecorded::deserialize(data).map_err(bad)?;
            if c.usd_micros < 0 {
                return Err(DomainError::BadPayload { kind: kind.to_string(), detail: "usd_micros must not be negative".into() });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_well_known() {
        let good = json!({"run_id":"r1","provider":"openai","model":"gpt","tokens_in":1,"tokens_out":2,"usd_micros":2100});
        assert!(validate_ingest(Category::Costs, "cost_recorded", &good).is_ok());
        let float = json!({"run_id":"r1","provider":"openai","model":"gpt","tokens_in":1,"tokens_out":2,"usd_micros":0.0021});
        assert!(matches!(validate_ingest(Category::Costs, "cost_recorded", &float), Err(DomainError::BadPayload { .. })));
        let missing = json!({"run_id":"r1"});
        assert!(validate_ingest(Category::Costs, "cost_recorded", &missing).is_err());
        assert!(matches!(validate_ingest(Category::Runs, "cost_recorded", &good), Err(DomainError::WrongCategory { .. })));
    }

    #[test]
    fn reserved_and_opaque() {
        assert!(matches!(validate_ingest(Category::Governance, "hold_released", &json!({})), Err(DomainError::ReservedKind(_))));
        assert!(validate_ingest(Category::Queue, "job_enqueued", &json!({"anything": [1, 2]})).is_ok());
        assert!(validate_ingest(Category::Queue, "Job Enqueued", &json!({})).is_err());
    }
}
