use custos_eventlog::LogError;
use thiserror::Error;

/// Errors of retention. Each message names the input and what to do.
#[derive(Debug, Error)]
pub enum RetentionError {
    /// Bad input (days, tenant, time).
    #[error("{0}")]
    Input(String),
    /// Holds or policies changed while the run was being prepared; retry.
    #[error("governance state changed concurrently ({0}); retry the command")]
    Conflict(String),
    /// Storage, keys or integrity.
    #[error(transparent)]
    Log(#[from] LogError),
}
