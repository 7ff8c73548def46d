//! Helpers for tests that need a real store: a fresh Postgres database per test, or a SQLite
//! file in a temporary folder.

use std::sync::Arc;

use crate::{Store, StoreOptions, StoreResult};

/// The database URL tests use for Postgres: `DATABASE_URL`, by default the local server.
#[must_use]
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A Postgres database created for one test. Dropping it drops the database (best effort),
/// so repeated runs do not pile up databases on the server.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Returns the URL of the database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime (or while it shuts down), where blocking on that
        // runtime would deadlock, so a short-lived thread runs the statement on its own one.
        let outcome = std::thread::spawn(move || drop_database(&admin_url, &name)).join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("dropping the test database {} failed: {error}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}

/// Runs `DROP DATABASE … WITH (FORCE)` (Postgres 13 or later), which also ends the
/// connections that pools of the finished test still hold. Gives up after 5 s.
fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    use sqlx::Connection;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|error| error.to_string())?;
    runtime.block_on(async {
        let statement = async {
            let mut admin = sqlx::PgConnection::connect(admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut admin).await?;
            admin.close().await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), statement).await {
            Ok(result) => result.map_err(|error| error.to_string()),
            Err(_) => Err("timed out after 5 s".to_owned()),
        }
    })
}

/// Creates a new, empty Postgres database and returns a URL to it, or `None` when the server
/// is unreachable and `CI` is not `true`.
///
/// NOTE: the database is never dropped; [`fresh_postgres_database`] drops its database when
/// the handle is dropped.
///
/// # Panics
/// When the server is unreachable and `CI=true`, because the Postgres run is mandatory there.
pub async fn fresh_postgres_url() -> Option<String> {
    let database = fresh_postgres_database().await?;
    let url = database.url.clone();
    // The caller gets only the URL, so the database must outlive this handle.
    std::mem::forget(database);
    Some(url)
}

/// Creates a new, empty Postgres database, dropped again when the returned handle is
/// dropped, or returns `None` when the server is unreachable and `CI` is not `true`.
///
/// # Panics
/// When the server is unreachable and `CI=true`, because the Postgres run is mandatory there.
pub async fn fresh_postgres_database() -> Option<TestDatabase> {
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
    let url = format!("{base}/{name}");
    Some(TestDatabase { admin_url, name, url })
}

/// A store under test and what keeps it alive (the SQLite folder).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// `postgres` or `sqlite`, for failure messages.
    pub backend: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// The Postgres database, shared with [`TestStore::share`] handles and dropped after the
    /// last one.
    _database: Option<Arc<TestDatabase>>,
}

impl TestStore {
    /// Returns a second handle on the same database, as another replica would have. The
    /// original must outlive it, because it keeps the SQLite folder.
    #[must_use]
    pub fn share(&self) -> Self {
        Self { store: self.store.clone(), backend: self.backend, url: self.url.clone(), _dir: None, _database: self._database.clone() }
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
    Ok(TestStore { store, backend: "sqlite", url, _dir: Some(dir), _database: None })
}

/// Opens a store on a fresh Postgres database, dropped with the last handle, or `None` when
/// skipped (see [`fresh_postgres_database`]).
///
/// # Errors
/// The error of connecting or migrating.
pub async fn postgres_store(max_connections: u32) -> StoreResult<Option<TestStore>> {
    let Some(database) = fresh_postgres_database().await else {
        return Ok(None);
    };
    let url = database.url.clone();
    let mut options = StoreOptions::new(url.clone());
    options.max_connections = max_connections;
    let store = crate::connect(&options).await?;
    Ok(Some(TestStore { store, backend: "postgres", url, _dir: None, _database: Some(Arc::new(database)) }))
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
