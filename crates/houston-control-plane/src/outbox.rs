//! A write-behind queue for records that must reach the store but must not slow a request:
//! audit entries of authorization decisions and usage events.
//!
//! A request pushes without awaiting the database. One task writes batches; when a write
//! fails it keeps the batch, waits (100 ms doubling to 5 s) and retries, so a database hiccup
//! delays records but never drops them. Writes are idempotent by record id, so a batch that
//! was stored but reported as failed counts once. Records still queued when the process
//! exits are lost.
//
// NOTE: the queue lives in memory; a crash (not a clean stop) loses what was not yet written.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use houston_store::StoreError;
use tokio::sync::{mpsc, oneshot};

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

impl<T: Clone + Send + 'static> Outbox<T> {
    /// Starts the writer task; it ends once every [`Outbox`] clone is dropped and the queue
    /// is written.
    pub fn start(name: &'static str, writer: BatchWriter<T>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run_writer(name, receiver, writer, queued.clone()));
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

async fn run_writer<T: Clone + Send + 'static>(
    name: &'static str,
    mut receiver: mpsc::UnboundedReceiver<Message<T>>,
    writer: BatchWriter<T>,
    queued: Arc<AtomicUsize>,
) {
    let mut batch: Vec<T> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut backoff = FIRST_BACKOFF;
    let mut failing = false;
    let mut open = true;
    while open || !batch.is_empty() {
        if batch.is_empty() && waiters.is_empty() {
            match receiver.recv().await {
                Some(message) => take(message, &mut batch, &mut waiters),
                None => break,
            }
        }
        while batch.len() < BATCH_SIZE {
            match receiver.try_recv() {
                Ok(message) => take(message, &mut batch, &mut waiters),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            match writer(batch.clone()).await {
                Ok(()) => {
                    queued.fetch_sub(batch.len(), Ordering::Relaxed);
                    batch.clear();
                    backoff = FIRST_BACKOFF;
                    if failing {
                        failing = false;
                        tracing::info!(outbox = name, "writing queued records works again");
                    }
                }
                Err(error) => {
                    if !failing {
                        failing = true;
                        tracing::warn!(outbox = name, %error, queued = queued.load(Ordering::Relaxed), "writing queued records failed; retrying with backoff");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(());
        }
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
