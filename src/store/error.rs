//! Storage errors, classified by what the caller should tell its client.

/// A storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take writes now (disk full, read-only, I/O error, shutting
    /// down): nothing was committed; the client should retry (503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The thing named does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with what is stored (409).
    #[error("{0}")]
    Conflict(String),
    /// A desk answered in a conversation that was handed off to another desk: the
    /// answer is dropped (the desk gets 2xx; `/v1` would answer 409).
    #[error("{0}")]
    HandedOff(String),
    /// A bug or corruption (500).
    #[error("storage error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        match e.sqlite_error_code() {
            Some(
                DiskFull | ReadOnly | CannotOpen | SystemIoFailure | DatabaseBusy | DatabaseLocked
                | OutOfMemory | PermissionDenied,
            ) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Internal(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Internal(format!("serialization: {e}"))
    }
}

impl From<StoreError> for switchboard_core::HostError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => switchboard_core::HostError::NotFound(m),
            StoreError::Conflict(m) => switchboard_core::HostError::Conflict(m),
            StoreError::HandedOff(m) => switchboard_core::HostError::HandedOff(m),
            StoreError::Unavailable(m) | StoreError::Internal(m) => {
                switchboard_core::HostError::Unavailable(m)
            }
        }
    }
}
