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

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let Some(db) = e.as_db_error() else {
            // Not the server's answer: the connection broke, or a value did not convert.
            return if e.is_closed()
                || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
            {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::Internal(e.to_string())
            };
        };
        let code = db.code();
        let class = &code.code()[..2];
        // Another instance's transaction won a race on the same row (the same provider
        // message through two instances): nothing of this one was committed, and the
        // client's retry finds what the other stored.
        let concurrent = *code == SqlState::UNIQUE_VIOLATION
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED;
        // Connection, resources, operator intervention, system errors.
        if concurrent
            || matches!(class, "08" | "53" | "57" | "58")
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        {
            StoreError::Unavailable(format!("{}: {}", code.code(), db.message()))
        } else {
            StoreError::Internal(format!("{}: {}", code.code(), db.message()))
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
