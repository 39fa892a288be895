use custos_domain::Role;
use custos_eventlog::LogError;
use thiserror::Error;

/// Errors of platform operations; [`PlatformError::exit_code`] is the one mapping
/// to the exit codes of DESIGN §8 that scripts rely on.
#[derive(Debug, Error)]
pub enum PlatformError {
    /// Bad input: the message names it and says what to do.
    #[error("{0}")]
    Input(String),
    /// A bad line of an ingest input.
    #[error("line {line}: {detail}")]
    BadLine {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No token, unknown token, disabled actor or role too low. Recorded as `access_denied`.
    #[error("access denied: {0}")]
    Denied(String),
    /// The request contradicts the current state (a checkpoint decided twice, an id
    /// already taken): retrying the same request cannot succeed. Exit 1 like `Input`.
    #[error("{0}")]
    Conflict(String),
    /// Blocked by a legal hold.
    #[error("blocked by legal hold: {0}")]
    Held(String),
    /// Budget exceeded (or frozen).
    #[error("{0}")]
    Budget(String),
    /// The log or a bundle failed an integrity check.
    #[error("integrity failure: {0}")]
    Integrity(String),
    /// I/O on a file the user named.
    #[error("{0}")]
    Io(String),
    /// Log/storage error.
    #[error(transparent)]
    Log(LogError),
}

impl PlatformError {
    /// 0 ok · 1 error · 2 access denied · 3 legal hold · 4 budget · 5 integrity.
    pub fn exit_code(&self) -> i32 {
        match self {
            PlatformError::Denied(_) => 2,
            PlatformError::Held(_) => 3,
            PlatformError::Budget(_) => 4,
            PlatformError::Integrity(_) => 5,
            PlatformError::Log(LogError::Integrity { .. }) => 5,
            PlatformError::Log(LogError::Crypto(custos_crypto::CryptoError::Unwrap(_))) => 5,
            PlatformError::Log(LogError::Crypto(custos_crypto::CryptoError::MalformedWrapped(_))) => 5,
            _ => 1,
        }
    }

    /// A role-too-low denial message.
    pub fn role(actor: &str, have: Role, need: Role, action: &str) -> Self {
        PlatformError::Denied(format!("{actor} has role {have}; `{action}` needs {need} or higher"))
    }
}

impl From<LogError> for PlatformError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::NotFoundItem(m) => PlatformError::NotFound(m),
            LogError::NotFound(_) | LogError::Exists(_) => PlatformError::Input(e.to_string()),
            e => PlatformError::Log(e),
        }
    }
}

impl From<custos_crypto::CryptoError> for PlatformError {
    fn from(e: custos_crypto::CryptoError) -> Self {
        PlatformError::Log(LogError::Crypto(e))
    }
}

impl From<custos_domain::DomainError> for PlatformError {
    fn from(e: custos_domain::DomainError) -> Self {
        PlatformError::Input(e.to_string())
    }
}
