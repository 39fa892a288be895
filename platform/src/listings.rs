//! The `--json` answers that wrap a list (`{"holds": [...], "count": n}`, ...) and the
//! parsing of arguments both faces take as text. One definition each, shared by the
//! CLI and the server, so `custos ... --json` and the HTTP endpoint cannot drift apart.

use custos_domain::checkpoint::Status;
use custos_domain::UsdMicros;
use custos_retention::PolicyRow;
use serde::Serialize;

use crate::{CheckpointInfo, HoldInfo, PlatformError};

/// `compliance holds --json` / `GET /v1/holds`.
#[derive(Debug, Clone, Serialize)]
pub struct HoldList {
    /// Active holds.
    pub holds: Vec<HoldInfo>,
    /// How many.
    pub count: usize,
}

impl From<Vec<HoldInfo>> for HoldList {
    fn from(holds: Vec<HoldInfo>) -> Self {
        Self { count: holds.len(), holds }
    }
}

/// `retention policy list --json` / `GET /v1/retention/policies`.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyList {
    /// Effective policies.
    pub policies: Vec<PolicyRow>,
    /// How many.
    pub count: usize,
}

impl From<Vec<PolicyRow>> for PolicyList {
    fn from(policies: Vec<PolicyRow>) -> Self {
        Self { count: policies.len(), policies }
    }
}

/// `approvals list --json` / `GET /v1/approvals`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointList {
    /// Matching checkpoints.
    pub checkpoints: Vec<CheckpointInfo>,
}

impl From<Vec<CheckpointInfo>> for CheckpointList {
    fn from(checkpoints: Vec<CheckpointInfo>) -> Self {
        Self { checkpoints }
    }
}

/// `approvals expire --json` / `POST /v1/approvals/expire`.
#[derive(Debug, Clone, Serialize)]
pub struct ExpiredList {
    /// How many expired in this run.
    pub expired: usize,
    /// Those checkpoints.
    pub checkpoints: Vec<CheckpointInfo>,
}

impl From<Vec<CheckpointInfo>> for ExpiredList {
    fn from(checkpoints: Vec<CheckpointInfo>) -> Self {
        Self { expired: checkpoints.len(), checkpoints }
    }
}

/// Dollars given as text (`"0.0021"`), parsed exactly into micro-USD. `field` names the
/// flag or JSON field in the error (`--usd`, `usd`).
pub fn parse_usd(s: &str, field: &str) -> Result<i64, PlatformError> {
    UsdMicros::parse_usd(s).map(|u| u.0).map_err(|e| PlatformError::Input(format!("{field}: {e}")))
}

/// A checkpoint status filter (`pending`, `approved`, `rejected`, `expired`).
pub fn parse_checkpoint_status(s: &str, field: &str) -> Result<Status, PlatformError> {
    Status::parse(s).ok_or_else(|| PlatformError::Input(format!("invalid {field} {s:?}: use pending, approved, rejected or expired")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_is_exact_and_names_the_field() {
        assert_eq!(parse_usd("0.000001", "usd").ok(), Some(1));
        assert_eq!(parse_usd("12.5", "usd").ok(), Some(12_500_000));
        assert!(parse_usd("1e-3", "usd").is_err_and(|e| e.to_string().starts_with("usd: ")));
        assert!(parse_usd("0.0000001", "--usd").is_err_and(|e| e.to_string().starts_with("--usd: ")));
    }

    #[test]
    fn status_filter() {
        assert_eq!(parse_checkpoint_status("approved", "status").ok(), Some(Status::Approved));
        assert!(parse_checkpoint_status("done", "--status").is_err_and(|e| e.to_string().contains("invalid --status \"done\"")));
    }

    #[test]
    fn counts_follow_the_lists() {
        let l = PolicyList::from(vec![]);
        assert_eq!((l.count, l.policies.len()), (0, 0));
        let e = ExpiredList::from(vec![]);
        assert_eq!(e.expired, 0);
    }
}
