//! The Postgres store, for fleets.

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::{StoreOptions, StoreResult};

/// The store on Postgres.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresStore {
    /// Connects and runs the migrations.
    ///
    /// # Errors
    /// The error of connecting or migrating.
    pub async fn connect(options: &StoreOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect(&options.url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Returns the pool, for tests and benchmarks that inspect it.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

crate::sql::queries::impl_store!(PostgresStore);
