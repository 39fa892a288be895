use thiserror::Error;

/// Errors of the event log. Each variant says what to do about it.
#[derive(Debug, Error)]
pub enum LogError {
    /// The storage engine failed (I/O, disk full, corrupt file). Retry or restore from backup.
    #[error("storage error: {0}")]
    Storage(String),
    /// Another process holds the write lock longer than the busy timeout. Retry later.
    #[error("the store is locked by another custos process (waited {0} ms); retry, or raise CUSTOS_BUSY_TIMEOUT_MS")]
    Locked(u64),
    /// No store at the path.
    #[error("no custos store at {0}; create one with `custos init --store {0}`")]
    NotFound(String),
    /// A store exists where `init` would create one.
    #[error("a custos store already exists at {0}; refusing to overwrite it")]
    Exists(String),
    /// The file is not a custos store, or has a newer schema than this binary.
    #[error("{0}")]
    Schema(String),
    /// Key material is missing or does not open.
    #[error(transparent)]
    Crypto(#[from] custos_crypto::CryptoError),
    /// An operation needs keys but the log was opened without the root key.
    #[error("this operation needs the root key (--root-key-file or CUSTOS_ROOT_KEY_FILE)")]
    Locked2,
    /// Appends to a crypto-shredded tenant are refused.
    #[error("tenant {0} was deleted (crypto-shredded); it cannot receive new events")]
    TenantDeleted(String),
    /// A record or key the caller named does not exist.
    #[error("{0}")]
    NotFoundItem(String),
    /// The log failed an integrity check.
    #[error("integrity failure at seq {seq}: {detail}")]
    Integrity {
        /// First bad global sequence number (0 when not tied to one record).
        seq: u64,
        /// What was wrong.
        detail: String,
    },
    /// The operation is not available on this storage backend; the message says what
    /// to use instead (e.g. `pg_dump` for a PostgreSQL store's backup).
    #[error("{0}")]
    Unsupported(String),
    /// A caller's precondition failed (e.g. an optimistic append conflict).
    #[error("conflict: {0}")]
    Conflict(String),
}

impl LogError {
    pub(crate) fn integrity(seq: u64, detail: impl Into<String>) -> Self {
        LogError::Integrity { seq, detail: detail.into() }
    }
}

impl From<rusqlite::Error> for LogError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) {
                return LogError::Locked(crate::sqlite::busy_timeout_ms());
            }
        }
        LogError::Storage(e.to_string())
    }
}
