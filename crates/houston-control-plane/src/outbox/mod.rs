//! A write-behind queue for records that must reach the store but must not slow a request:
//! audit entries of authorization decisions and usage events.
//!
//! A request pushes without awaiting the database. A spooler task takes what was pushed, up
//! to 500 records at a time, and (with a spool folder) writes it to a spool file with fsync.
//! A writer task then stores each batch. When a write fails, it keeps the batch, waits (100 ms
//! doubling to 5 s) and retries, so a database outage delays records but never drops them.
//! The spool file is deleted once the store has the batch. At start, leftover spool files are
//! replayed first. Writes are idempotent by record id, so a batch that was stored but whose
//! file survived a crash counts once.
//!
//! NOTE: a request is answered before its records are fsynced. A crash within that window
//! (until the spooler's next fsync, an estimated few milliseconds on an idle disk) loses them, and without a spool
//! folder a crash loses everything not yet stored.

mod spool;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use houston_store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use spool::Spool;

/// Maximum records written in one batch.
const BATCH_SIZE: usize = 500;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The function that stores one batch.
pub type BatchWriter<T> = Arc<dyn Fn(Vec<T>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>> + Send + Sync>;

enum Message<T> {
    Record(T),
    Flush(oneshot::Sender<()>),
}

/// Work for the writer task, in the order it was pushed.
enum Work<T> {
    /// A batch, with its spool file when it was spooled.
    Batch { records: Vec<T>, file: Option<PathBuf> },
    Flush(oneshot::Sender<()>),
}

/// The sending side of a write-behind queue.
pub struct Outbox<T> {
    sender: mpsc::UnboundedSender<Message<T>>,
    queued: Arc<AtomicUsize>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self { sender: self.sender.clone(), queued: self.queued.clone() }
    }
}

impl<T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> Outbox<T> {
    /// Starts an outbox that keeps its queue in memory only. Its tasks end once every
    /// [`Outbox`] clone is dropped and the queue is written.
    pub fn start(name: &'static str, writer: BatchWriter<T>) -> Self {
        Self::start_tasks(name, writer, None, Vec::new())
    }

    /// Starts an outbox that spools records to files in `dir` (created when missing) and
    /// first replays the batches an earlier process left there. One process must own `dir`.
    ///
    /// # Errors
    /// The I/O error when `dir` cannot be created or read.
    pub fn start_spooled(name: &'static str, writer: BatchWriter<T>, dir: PathBuf) -> std::io::Result<Self> {
        let spool = Spool::open(dir)?;
        let leftovers = spool.leftovers(name)?;
        let replayed: usize = leftovers.iter().map(|batch| batch.records.len()).sum();
        if replayed > 0 {
            tracing::info!(outbox = name, records = replayed, batches = leftovers.len(), "replaying spooled records left by an earlier process");
        }
        let leftovers = leftovers.into_iter().map(|batch| Work::Batch { records: batch.records, file: Some(batch.path) }).collect();
        Ok(Self::start_tasks(name, writer, Some(spool), leftovers))
    }

    fn start_tasks(name: &'static str, writer: BatchWriter<T>, spool: Option<Spool>, leftovers: Vec<Work<T>>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (work_sender, work_receiver) = mpsc::unbounded_channel();
        let mut queued_at_start = 0;
        for batch in leftovers {
            if let Work::Batch { records, .. } = &batch {
                queued_at_start += records.len();
            }
            // The receiver is alive: it is moved into the writer task below.
            let _ = work_sender.send(batch);
        }
        let queued = Arc::new(AtomicUsize::new(queued_at_start));
        tokio::spawn(run_spooler(name, receiver, spool, work_sender));
        tokio::spawn(run_writer(name, work_receiver, writer, queued.clone()));
        Self { sender, queued }
    }

    /// Queues one record.
    pub fn push(&self, record: T) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.sender.send(Message::Record(record)).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("the outbox writer has stopped; a record was dropped");
        }
    }

    /// Returns how many records wait to be written.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Waits until every record pushed before this call is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Groups pushed records into batches, spools each one and hands it to the writer task.
async fn run_spooler<T: Serialize + Send + Sync + 'static>(
    name: &'static str,
    mut receiver: mpsc::UnboundedReceiver<Message<T>>,
    spool: Option<Spool>,
    work: mpsc::UnboundedSender<Work<T>>,
) {
    while let Some(first) = receiver.recv().await {
        let mut records = Vec::new();
        let mut flushes = Vec::new();
        take(first, &mut records, &mut flushes);
        while records.len() < BATCH_SIZE {
            match receiver.try_recv() {
                Ok(message) => take(message, &mut records, &mut flushes),
                Err(_) => break,
            }
        }
        if !records.is_empty() {
            let file = match &spool {
                Some(spool) => spool_batch(name, spool, &records).await,
                None => None,
            };
            let _ = work.send(Work::Batch { records, file });
        }
        for done in flushes {
            let _ = work.send(Work::Flush(done));
        }
    }
}

/// Writes a batch to the spool, returning its file. On a disk error the batch stays in
/// memory only: it is still stored, but a crash before that would lose it.
async fn spool_batch<T: Serialize>(name: &'static str, spool: &Spool, records: &[T]) -> Option<PathBuf> {
    let text = match spool::encode(records) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(outbox = name, %error, "encoding records for the spool failed; keeping them in memory only");
            return None;
        }
    };
    let spool = spool.clone();
    match tokio::task::spawn_blocking(move || spool.append(&text)).await {
        Ok(Ok(path)) => Some(path),
        Ok(Err(error)) => {
            tracing::error!(outbox = name, %error, records = records.len(), "writing the spool file failed; keeping the records in memory only");
            None
        }
        Err(error) => {
            tracing::error!(outbox = name, %error, "the spool write task failed; keeping the records in memory only");
            None
        }
    }
}

/// Stores batches in order, retrying each one until the store takes it, then deletes its
/// spool file.
async fn run_writer<T: Clone + Send + 'static>(name: &'static str, mut work: mpsc::UnboundedReceiver<Work<T>>, writer: BatchWriter<T>, queued: Arc<AtomicUsize>) {
    while let Some(item) = work.recv().await {
        match item {
            Work::Flush(done) => {
                let _ = done.send(());
            }
            Work::Batch { records, file } => {
                let count = records.len();
                store_with_retry(name, &writer, records, &queued).await;
                queued.fetch_sub(count, Ordering::Relaxed);
                if let Some(file) = file {
                    remove_spool_file(name, file).await;
                }
            }
        }
    }
}

async fn store_with_retry<T: Clone>(name: &'static str, writer: &BatchWriter<T>, records: Vec<T>, queued: &AtomicUsize) {
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    loop {
        match writer(records.clone()).await {
            Ok(()) => {
                if failing {
                    tracing::info!(outbox = name, "writing queued records works again");
                }
                return;
            }
            Err(error) => {
                if !failing {
                    failing = true;
                    tracing::warn!(outbox = name, %error, queued = queued.load(Ordering::Relaxed), "writing queued records failed; retrying with backoff");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn remove_spool_file(name: &'static str, file: PathBuf) {
    let shown_path = file.display().to_string();
    match tokio::task::spawn_blocking(move || spool::remove(&file)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(outbox = name, path = %shown_path, %error, "deleting a stored batch's spool file failed; it will be replayed at the next start"),
        Err(error) => tracing::error!(outbox = name, path = %shown_path, %error, "the spool delete task failed"),
    }
}

fn take<T>(message: Message<T>, batch: &mut Vec<T>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match message {
        Message::Record(record) => batch.push(record),
        Message::Flush(done) => waiters.push(done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    #[tokio::test]
    async fn failed_writes_retried_not_dropped() {
        let stored = Arc::new(Mutex::new(Vec::new()));
        let healthy = Arc::new(AtomicBool::new(false));
        let writer: BatchWriter<u32> = {
            let stored = stored.clone();
            let healthy = healthy.clone();
            Arc::new(move |batch| {
                let stored = stored.clone();
                let healthy = healthy.clone();
                Box::pin(async move {
                    if !healthy.load(Ordering::SeqCst) {
                        return Err(StoreError::Database(sqlx_io_error()));
                    }
                    stored.lock().unwrap().extend(batch);
                    Ok(())
                })
            })
        };
        let outbox = Outbox::start("test", writer);
        for record in 0..10 {
            outbox.push(record);
        }
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(stored.lock().unwrap().is_empty(), "nothing stored while the database fails");
        assert_eq!(outbox.queued(), 10);

        healthy.store(true, Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(10), outbox.flush()).await.expect("flush timed out");
        assert_eq!(*stored.lock().unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(outbox.queued(), 0);
    }

    fn sqlx_io_error() -> houston_store::SqlxError {
        houston_store::SqlxError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset"))
    }
}
