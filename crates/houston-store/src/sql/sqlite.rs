//! The SQLite store, for one machine.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::{StoreOptions, StoreResult};

/// The store on a SQLite file, in WAL mode.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    /// Opens (creating when missing) the database file and runs the migrations.
    ///
    /// # Errors
    /// The error of opening or migrating.
    pub async fn connect(options: &StoreOptions) -> StoreResult<Self> {
        let connect_options = SqliteConnectOptions::from_str(&options.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // Every connection to `:memory:` opens its own empty database, so an in-memory store
        // must live on exactly one connection.
        let in_memory = options.url.contains(":memory:") || options.url.contains("mode=memory");
        let max_connections = if in_memory { 1 } else { options.max_connections };
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Returns the pool, for tests that inspect it.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

crate::sql::queries::impl_store!(SqliteStore);
