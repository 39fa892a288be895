//! Principals, the minimum role of every action, and recorded denials (DESIGN §5).

use custos_domain::kinds::AccessDenied;
use custos_domain::{Category, Clearance, NewEvent, Role, TenantId};
use custos_eventlog::Pending;
use serde::Serialize;

use crate::{Platform, PlatformError};

/// Name under which custos itself records events it makes on nobody's behalf.
pub const SYSTEM_ACTOR: &str = "custos";

/// Who is acting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Actor name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Clearance.
    pub clearance: Clearance,
}

/// Every action that needs a role, with its minimum (DESIGN §5). One table, reviewed as a whole.
pub fn required_role(action: &str) -> Role {
    match action {
        "events list"
        | "events show"
        | "whoami"
        | "budget show"
        | "cost report"
        | "approvals list"
        | "approvals show"
        | "artifacts list"
        | "artifacts show"
        | "retention policy list"
        | "lifecycle policy show"
        | "keys public"
        // Deciding a checkpoint needs the checkpoint's own required role (DESIGN §5),
        // enforced per checkpoint in `approvals_decide`; the table only admits the attempt.
        | "approvals approve"
        | "approvals reject" => Role::Viewer,
        "ingest" | "checkpoint" | "cost record" | "budget check" | "approvals create" | "approvals expire" | "artifacts put"
        | "artifacts get" => Role::Operator,
        "verify"
        | "compliance export"
        | "lifecycle summary"
        | "compliance holds"
        | "approvals report"
        | "rebuild"
        | "alerts"
        | "alerts thresholds"
        // The incident screen shows holds, key ages and freezes: audit-level information.
        | "status"
        | "freeze status" => Role::Auditor,
        "compliance hold"
        | "compliance release"
        | "compliance delete"
        | "retention run"
        | "retention policy set"
        | "lifecycle run"
        | "lifecycle policy set"
        | "artifacts restore"
        | "artifacts label"
        | "artifacts default-label"
        | "budget set"
        | "budget thresholds"
        | "approvals config"
        | "alerts set"
        | "backup" => Role::Compliance,
        "freeze" | "unfreeze" => Role::Admin,
        "keys list" | "keys active" | "keys status" | "keys policy" | "keys rotate" | "keys rewrap" | "keys retire" | "keys reencrypt"
        | "keys rotate-root" => Role::Admin,
        _ => Role::Admin,
    }
}

impl Platform {
    /// Resolves a token to an enabled actor. Failures are recorded as `access_denied` and exit 2.
    pub fn authenticate(&mut self, token: Option<&str>, action: &str) -> Result<Principal, PlatformError> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            self.record_denial("<no token>", action, None, None, "no token given", None);
            return Err(PlatformError::Denied("no token: set CUSTOS_TOKEN or pass --token-file".into()));
        };
        let hash = custos_crypto::hash_token(token);
        let row = self.log.backend().actor_by_token(&hash)?;
        // The lookup is by hash; compare again in constant time so a prefix-matching index is never trusted.
        let Some(row) = row.filter(|r| custos_crypto::ct_eq(&r.token_hash, &hash)) else {
            self.record_denial("<unknown token>", action, None, None, "unknown token", None);
            return Err(PlatformError::Denied("unknown token".into()));
        };
        let role: Role = row.role.parse()?;
        if row.disabled {
            self.record_denial(&row.name, action, None, Some(role), "actor disabled", None);
            return Err(PlatformError::Denied(format!("actor {} is disabled", row.name)));
        }
        Ok(Principal { name: row.name, role, clearance: row.clearance.parse()? })
    }

    /// Authenticates and checks the action's minimum role in one step.
    pub fn authorize(&mut self, token: Option<&str>, action: &str, tenant: Option<&str>) -> Result<Principal, PlatformError> {
        let p = self.authenticate(token, action)?;
        self.require(&p, required_role(action), action, tenant)?;
        Ok(p)
    }

    /// Checks `p` has at least `need`; otherwise records the denial and returns exit-2 error.
    pub fn require(&mut self, p: &Principal, need: Role, action: &str, tenant: Option<&str>) -> Result<(), PlatformError> {
        if p.role >= need {
            return Ok(());
        }
        self.record_denial(&p.name, action, Some(need), Some(p.role), "role too low", tenant);
        Err(PlatformError::role(&p.name, p.role, need, action))
    }

    /// Appends an `access_denied` event. Best effort: a denial must never turn into a different error.
    pub fn record_denial(&mut self, actor: &str, action: &str, need: Option<Role>, have: Option<Role>, reason: &str, tenant: Option<&str>) {
        let data = AccessDenied {
            actor: actor.to_string(),
            action: action.to_string(),
            required_role: need,
            actor_role: have,
            reason: reason.to_string(),
            tenant: tenant.map(str::to_string),
        };
        let Ok(data) = serde_json::to_value(data) else { return };
        let ev = NewEvent {
            tenant: TenantId::system(),
            category: Category::Governance,
            kind: "access_denied".into(),
            occurred_at: None,
            label: None,
            data,
        };
        if let Err(e) = self.log.append(&[Pending { event: ev, actor: SYSTEM_ACTOR.into() }]) {
            tracing::warn!("could not record access_denied: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_roles_follow_design() {
        assert_eq!(required_role("events list"), Role::Viewer);
        assert_eq!(required_role("ingest"), Role::Operator);
        assert_eq!(required_role("verify"), Role::Auditor);
        assert_eq!(required_role("compliance delete"), Role::Compliance);
        assert_eq!(required_role("keys rotate"), Role::Admin);
        assert_eq!(required_role("status"), Role::Auditor);
        assert_eq!(required_role("freeze status"), Role::Auditor);
        assert_eq!(required_role("freeze"), Role::Admin);
        assert_eq!(required_role("unfreeze"), Role::Admin);
        assert_eq!(required_role("actors add"), Role::Admin);
        assert_eq!(required_role("something new"), Role::Admin, "unknown actions default to the highest role");
    }
}
