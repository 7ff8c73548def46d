//! Errors of the store.

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database URL must start with postgres://, postgresql:// or sqlite:")]
    InvalidUrl,
    /// A unique constraint rejected the write (a slug or email already in use).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A referenced row (workspace, user, agent) does not exist.
    #[error("a referenced record does not exist: {0}")]
    MissingReference(String),
    /// A stored value could not be read back (for example an id that fails validation).
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("running migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database call failed")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if db.is_unique_violation() {
                return Self::Conflict(db.message().to_owned());
            }
            if db.is_foreign_key_violation() {
                return Self::MissingReference(db.message().to_owned());
            }
        }
        Self::Database(error)
    }
}

impl StoreError {
    /// Whether the failure is likely to pass (connection lost, pool exhausted), so a retry
    /// later may succeed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Database(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_))
                | Self::Database(sqlx::Error::Tls(_))
        )
    }
}
