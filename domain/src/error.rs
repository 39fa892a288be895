use thiserror::Error;

/// Why a value from outside (a JSONL line, a flag) is not a valid custos value.
///
/// Every variant names the offending input so a CLI can show it as is.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// The tenant id does not match `[a-z0-9][a-z0-9._-]{0,62}`.
    #[error("invalid tenant id {0:?}: use 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")]
    BadTenant(String),
    /// The tenant is reserved for custos itself.
    #[error("tenant {0:?} is reserved for custos governance events and cannot be written directly")]
    ReservedTenant(String),
    /// Unknown category name.
    #[error("unknown category {0:?}: expected one of runs, costs, approvals, artifacts, queue, dlq, governance, custom")]
    BadCategory(String),
    /// Kind is empty or has characters outside `[a-z0-9_.-]`.
    #[error("invalid kind {0:?}: use 1-64 characters of a-z, 0-9, '_', '.' or '-'")]
    BadKind(String),
    /// Not an artifact storage tier.
    #[error("invalid tier {0:?}: use hot, warm or cold")]
    BadTier(String),
    /// A kind reserved for events custos records itself.
    #[error("kind {0:?} is recorded by custos itself and cannot be ingested; use the matching custos command")]
    ReservedKind(String),
    /// A well-known kind whose payload does not parse.
    #[error("malformed {kind} payload: {detail}")]
    BadPayload {
        /// The well-known kind.
        kind: String,
        /// What serde said.
        detail: String,
    },
    /// A well-known kind under the wrong category.
    #[error("kind {kind} belongs to category {expected}, not {got}")]
    WrongCategory {
        /// The kind.
        kind: String,
        /// Its category.
        expected: &'static str,
        /// The category given.
        got: String,
    },
    /// A timestamp that does not parse as RFC 3339.
    #[error("invalid time {0:?}: use RFC 3339, e.g. 2025-10-03T12:00:00Z")]
    BadTime(String),
    /// A timestamp too far in the future.
    #[error("time {0} is in the future (more than 5 minutes ahead of this machine's clock)")]
    FutureTime(String),
    /// A duration such as `72h` that does not parse.
    #[error("invalid duration {0:?}: use a number followed by s, m, h or d, e.g. 90s, 45m, 72h, 3d")]
    BadDuration(String),
    /// A dollar amount that does not parse exactly.
    #[error("invalid amount {0:?}: use a non-negative decimal dollar amount with at most 6 decimals, e.g. 0.0021")]
    BadMoney(String),
    /// Unknown role name.
    #[error("unknown role {0:?}: expected Viewer, Operator, Auditor, Compliance or Admin")]
    BadRole(String),
    /// Unknown clearance / label name.
    #[error("unknown clearance {0:?}: expected Public, Internal, Confidential or Restricted")]
    BadClearance(String),
    /// The JSON line itself is wrong.
    #[error("invalid event: {0}")]
    BadEvent(String),
}
