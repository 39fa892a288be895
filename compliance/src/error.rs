use custos_eventlog::LogError;
use thiserror::Error;

/// Errors of holds and tenant deletion. Each message names the input and what to do.
#[derive(Debug, Error)]
pub enum ComplianceError {
    /// Bad input (hold id, reason, tenant id).
    #[error("{0}")]
    Input(String),
    /// A tenant or hold that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The tenant is under legal hold: deletion is refused.
    #[error("tenant {tenant} is under legal hold ({}); release the hold(s) with `custos compliance release` first", hold_ids.join(", "))]
    Held {
        /// Tenant.
        tenant: String,
        /// Active holds on it.
        hold_ids: Vec<String>,
    },
    /// Another process changed holds or policies while this operation ran; retry.
    #[error("governance state changed concurrently ({0}); retry the command")]
    Conflict(String),
    /// Storage, keys or integrity.
    #[error(transparent)]
    Log(#[from] LogError),
}
