//! The spooled outbox across a crash, against Postgres and SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use houston_control_plane::outbox::{BatchWriter, Outbox};
use houston_control_plane::seed;
use houston_store::testing::all_stores;
use houston_store::{AgentSettings, Store, StoreError, UsageEvent, UsageGrouping};
use houston_protocol::{AgentId, UserId, WorkspaceId};
use time::OffsetDateTime;

/// Returns a writer whose database is unreachable, so every batch fails.
fn unreachable_database(attempts: Arc<AtomicUsize>) -> BatchWriter<UsageEvent> {
    Arc::new(move |_batch| {
        attempts.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            let error = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
            Err(StoreError::Database(houston_store::SqlxError::Io(error)))
        })
    })
}

fn store_writer(store: Arc<dyn Store>) -> BatchWriter<UsageEvent> {
    Arc::new(move |batch| {
        let store = store.clone();
        Box::pin(async move { store.insert_usage_events(&batch).await })
    })
}

fn event(number: i64, workspace: &WorkspaceId, agent: &AgentId, user: &UserId) -> UsageEvent {
    UsageEvent {
        id: format!("usage-{number}"),
        at: OffsetDateTime::now_utc(),
        workspace_id: workspace.clone(),
        agent_id: agent.clone(),
        user_id: user.clone(),
        messages: 1,
        input_tokens: number,
        output_tokens: 0,
        wake_ups: 0,
        runtime_seconds: 0,
    }
}

/// Counts the spooled records (complete `.jsonl` lines) in `dir`.
fn spooled_records(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "jsonl"))
        .map(|path| std::fs::read_to_string(path).unwrap().lines().count())
        .sum()
}

#[test]
fn spooled_records_survive_crash() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stores = runtime.block_on(all_stores(5));
    for test_store in stores {
        let backend = test_store.backend;
        let store = test_store.store.clone();
        let (workspace, agent, user) = runtime.block_on(async {
            let workspace = seed::create_workspace(store.as_ref(), "acme", "Acme").await.unwrap();
            let user = seed::create_user_with_password(store.as_ref(), "juan@acme.test", "Juan", "pw").await.unwrap();
            let definition = serde_json::json!({"id": "hr", "name": "HR", "description": "HR", "icon": "star", "category": "test"}).to_string();
            let agent = seed::create_agent(store.as_ref(), &workspace.id, "hr", &definition, "", AgentSettings::default()).await.unwrap();
            (workspace.id, agent.id, user.id)
        });
        let spool = tempfile::tempdir().unwrap();

        // The first process queues 30 records while the database is unreachable, then
        // crashes: its runtime stops without a flush while the writer is retrying.
        let crashed = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let attempts = Arc::new(AtomicUsize::new(0));
        crashed.block_on(async {
            let outbox = Outbox::start_spooled("usage", unreachable_database(attempts.clone()), spool.path().to_owned()).unwrap();
            for number in 0..30 {
                outbox.push(event(number, &workspace, &agent, &user));
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while spooled_records(spool.path()) < 30 {
                assert!(tokio::time::Instant::now() < deadline, "{backend}: the records were not spooled within 10 s");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            while attempts.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        crashed.shutdown_background();
        assert_eq!(spooled_records(spool.path()), 30, "{backend}");

        // An earlier process may have stored a batch and crashed before deleting its file.
        runtime.block_on(store.insert_usage_events(&[event(0, &workspace, &agent, &user), event(1, &workspace, &agent, &user)])).unwrap();

        // The next process replays the spool into a working database.
        runtime.block_on(async {
            let outbox = Outbox::start_spooled("usage", store_writer(store.clone()), spool.path().to_owned()).unwrap();
            assert_eq!(outbox.queued(), 30, "{backend}: leftover records count as queued");
            tokio::time::timeout(Duration::from_secs(10), outbox.flush()).await.expect("flush timed out");
            assert_eq!(outbox.queued(), 0, "{backend}");
        });
        assert_eq!(spooled_records(spool.path()), 0, "{backend}: stored batches leave the spool");

        let today = OffsetDateTime::now_utc().date().to_string();
        let rows = runtime.block_on(store.usage_report(&workspace, UsageGrouping::Agent, &today, &today)).unwrap();
        assert_eq!(rows.len(), 1, "{backend}: {rows:?}");
        assert_eq!(rows[0].messages, 30, "{backend}: every record stored exactly once");
        assert_eq!(rows[0].input_tokens, (0..30).sum::<i64>(), "{backend}");
    }
}

#[tokio::test]
async fn unfinished_spool_file_discarded() {
    let spool = tempfile::tempdir().unwrap();
    std::fs::write(spool.path().join("0000.tmp"), "{\"torn\":").unwrap();
    let stored = Arc::new(AtomicUsize::new(0));
    let writer: BatchWriter<UsageEvent> = {
        let stored = stored.clone();
        Arc::new(move |batch| {
            stored.fetch_add(batch.len(), Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
    };
    let outbox = Outbox::start_spooled("usage", writer, spool.path().to_owned()).unwrap();
    outbox.flush().await;
    assert_eq!(stored.load(Ordering::SeqCst), 0);
    assert!(!spool.path().join("0000.tmp").exists(), "an unfinished batch file is deleted at start");
}
