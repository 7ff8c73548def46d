//! Helpers for tests that need a real store: a fresh Postgres database per test, or a SQLite
//! file in a temporary folder.

use std::sync::Arc;

use crate::{Store, StoreOptions, StoreResult};

/// The database URL tests use for Postgres: `DATABASE_URL`, by default the local server.
#[must_use]
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates a new, empty Postgres database and returns a URL to it, or `None` when the server
/// is unreachable and `CI` is not `true`.
///
/// # Panics
/// When the server is unreachable and `CI=true`, because the Postgres run is mandatory there.
pub async fn fresh_postgres_url() -> Option<String> {
    use sqlx::Connection;

    let admin_url = postgres_admin_url();
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(connection) => connection,
        Err(error) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("Postgres at {admin_url} is unreachable and CI=true: {error}");
            }
            eprintln!("skipping the Postgres run: {admin_url} is unreachable ({error})");
            return None;
        }
    };
    let name = format!("houston_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE failed");
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
    Some(format!("{base}/{name}"))
}

/// A store under test and what keeps it alive (the SQLite folder).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// `postgres` or `sqlite`, for failure messages.
    pub backend: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// Returns a second handle on the same database, as another replica would have. The
    /// original must outlive it, because it keeps the SQLite folder.
    #[must_use]
    pub fn share(&self) -> Self {
        Self { store: self.store.clone(), backend: self.backend, url: self.url.clone(), _dir: None }
    }
}

/// Opens a fresh SQLite store in a temporary folder.
///
/// # Errors
/// The error of opening or migrating.
pub async fn sqlite_store(max_connections: u32) -> StoreResult<TestStore> {
    let dir = tempfile::tempdir().map_err(|error| crate::StoreError::Corrupt(format!("temporary folder: {error}")))?;
    let url = format!("sqlite://{}", dir.path().join("houston.db").display());
    let mut options = StoreOptions::new(url.clone());
    options.max_connections = max_connections;
    let store = crate::connect(&options).await?;
    Ok(TestStore { store, backend: "sqlite", url, _dir: Some(dir) })
}

/// Opens a store on a fresh Postgres database, or `None` when skipped (see
/// [`fresh_postgres_url`]).
///
/// # Errors
/// The error of connecting or migrating.
pub async fn postgres_store(max_connections: u32) -> StoreResult<Option<TestStore>> {
    let Some(url) = fresh_postgres_url().await else {
        return Ok(None);
    };
    let mut options = StoreOptions::new(url.clone());
    options.max_connections = max_connections;
    let store = crate::connect(&options).await?;
    Ok(Some(TestStore { store, backend: "postgres", url, _dir: None }))
}

/// Returns the stores every backend-agnostic test runs against: Postgres (unless skipped)
/// and SQLite.
///
/// # Panics
/// When a store cannot be opened.
pub async fn all_stores(max_connections: u32) -> Vec<TestStore> {
    let mut stores = Vec::new();
    if let Some(postgres) = postgres_store(max_connections).await.expect("opening the Postgres store failed") {
        stores.push(postgres);
    }
    stores.push(sqlite_store(max_connections).await.expect("opening the SQLite store failed"));
    stores
}
