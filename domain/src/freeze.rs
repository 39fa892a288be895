//! Emergency freeze: the payloads of `freeze_applied` / `freeze_lifted` (`_system`,
//! governance) and the description of an active freeze that decisions quote.
//!
//! A freeze is global or covers one tenant. While one applies, every budget check of
//! the tenants it covers answers `deny` (see [`crate::budget::decide_check`]).

use serde::{Deserialize, Serialize};

/// What a freeze covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezeScope {
    /// Every tenant.
    Global,
    /// One tenant (named in the payload).
    Tenant,
}

impl FreezeScope {
    /// Name in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FreezeScope::Global => "global",
            FreezeScope::Tenant => "tenant",
        }
    }
}

/// Payload of `freeze_applied`. Who froze is the event's actor, when is its `occurred_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeApplied {
    /// Global or tenant.
    pub scope: FreezeScope,
    /// The tenant, for scope `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Why (incident reference).
    pub reason: String,
}

/// Payload of `freeze_lifted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeLifted {
    /// Global or tenant.
    pub scope: FreezeScope,
    /// The tenant, for scope `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Reason of the freeze that was lifted (so the lift reads on its own in an audit trail).
    pub reason: String,
    /// Who had applied it.
    pub frozen_by: String,
    /// When it had been applied (RFC 3339).
    pub frozen_at: String,
}

/// An active freeze as commands print it and budget denials quote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeInfo {
    /// Global or tenant.
    pub scope: FreezeScope,
    /// The tenant, for scope `tenant`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Why.
    pub reason: String,
    /// Actor who froze.
    pub frozen_by: String,
    /// When (RFC 3339).
    pub frozen_at: String,
}

impl FreezeInfo {
    /// "global freeze" or "freeze of tenant T".
    pub fn describe_scope(&self) -> String {
        match (&self.scope, &self.tenant) {
            (FreezeScope::Tenant, Some(t)) => format!("freeze of tenant {t}"),
            _ => "global freeze".to_string(),
        }
    }

    /// The sentence a denied check gives: scope, reason, who and when.
    pub fn denial_reason(&self) -> String {
        format!(
            "frozen: {} by {} at {}: {:?} (custos unfreeze{} lifts it)",
            self.describe_scope(),
            self.frozen_by,
            self.frozen_at,
            self.reason,
            self.tenant.as_deref().map(|t| format!(" --tenant {t}")).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_reason_names_scope_reason_who_and_when() {
        let f = FreezeInfo {
            scope: FreezeScope::Tenant,
            tenant: Some("acme".into()),
            reason: "INC-7 leaked key".into(),
            frozen_by: "alice".into(),
            frozen_at: "2026-01-02T03:04:05Z".into(),
        };
        let r = f.denial_reason();
        for part in ["tenant acme", "alice", "2026-01-02T03:04:05Z", "INC-7 leaked key", "unfreeze --tenant acme"] {
            assert!(r.contains(part), "{r} lacks {part}");
        }
        let g = FreezeInfo { scope: FreezeScope::Global, tenant: None, ..f };
        assert!(g.denial_reason().starts_with("frozen: global freeze by alice"));
    }
}
