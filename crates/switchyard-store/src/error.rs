//! The store's errors.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row in the scope's tenant (or it belongs to another tenant, which is the
    /// same thing to the caller).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; `constraint` names which (`tenant_slug`,
    /// `user_email`, `agent_name`, `agent_fallback`, `primary_key`, `unique`).
    #[error("conflict on {constraint}")]
    Conflict {
        /// Which rule.
        constraint: &'static str,
    },
    /// The scope's role may not do this.
    #[error("forbidden")]
    Forbidden,
    /// Creating a conversation would exceed a limit (`per_user` or `per_tenant`).
    #[error("conversation limit reached ({which})")]
    LimitReached {
        /// Which limit.
        which: &'static str,
        /// The limit.
        limit: i64,
    },
    /// The change asked for is not valid (settings that do not merge or are out of range).
    #[error("{0}")]
    Invalid(String),
    /// The database cannot be reached or no connection is free in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The configuration cannot work.
    #[error("{0}")]
    Config(String),
    /// Anything else (a bug or a broken database).
    #[error("database error: {0}")]
    Other(String),
}

/// The store's result.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Maps a driver error, naming uniqueness conflicts with `name_constraint`.
    pub(crate) fn from_sqlx(
        err: sqlx::Error,
        name_constraint: fn(&dyn sqlx::error::DatabaseError) -> &'static str,
    ) -> Self {
        use sqlx::error::ErrorKind;
        match err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Conflict {
                    constraint: name_constraint(db.as_ref()),
                },
                // A reference to a row that is not in the scope's tenant: to the caller,
                // that row does not exist.
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                // The server is shutting down or restarting (SQLSTATE class 57, operator
                // intervention) or the connection failed (class 08): retry shortly.
                _ if db
                    .code()
                    .is_some_and(|c| c.starts_with("57") || c.starts_with("08")) =>
                {
                    StoreError::Unavailable(db.to_string())
                }
                _ => StoreError::Other(db.to_string()),
            },
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(err.to_string()),
            sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => {
                StoreError::Unavailable(err.to_string())
            }
            other => StoreError::Other(other.to_string()),
        }
    }
}
