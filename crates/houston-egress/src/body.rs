//! Streaming bodies that count their bytes, and the log record they complete.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};
use time::OffsetDateTime;

use crate::log::{EgressKind, EgressLog, EgressLogEntry, EgressOutcome};
use houston_protocol::AgentId;

/// The body type of every request and response the proxy sends.
pub(crate) type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// Wraps complete bytes as a [`ProxyBody`].
pub(crate) fn full_body(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An egress log entry under construction, written when the record is dropped: after the
/// response body ended, the tunnel closed or the agent went away, so the entry carries the
/// final byte counts and duration whatever way the exchange ends.
pub(crate) struct LogRecord {
    log: Arc<EgressLog>,
    pub entry: EgressLogEntry,
    started: Instant,
    pub bytes_up: Arc<AtomicU64>,
    pub bytes_down: Arc<AtomicU64>,
}

impl LogRecord {
    /// Starts a record for a request that arrived now. Until a target is set, it names no host.
    pub fn start(log: Arc<EgressLog>, agent_id: AgentId, kind: EgressKind, method: &str) -> Self {
        let entry = EgressLogEntry {
            time: OffsetDateTime::now_utc(),
            agent_id,
            kind,
            method: method.to_owned(),
            scheme: None,
            host: String::new(),
            port: 0,
            path: None,
            upstream: None,
            outcome: EgressOutcome::Failed,
            status: 0,
            reason: None,
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: 0.0,
        };
        Self {
            log,
            entry,
            started: Instant::now(),
            bytes_up: Arc::default(),
            bytes_down: Arc::default(),
        }
    }
}

impl Drop for LogRecord {
    fn drop(&mut self) {
        self.entry.bytes_up = self.bytes_up.load(Ordering::Relaxed);
        self.entry.bytes_down = self.bytes_down.load(Ordering::Relaxed);
        self.entry.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(
            agent.id = %self.entry.agent_id,
            host = %self.entry.host,
            status = self.entry.status,
            bytes_up = self.entry.bytes_up,
            bytes_down = self.entry.bytes_down,
            duration_ms = self.entry.duration_ms,
            "egress finished"
        );
        self.log.append(&self.entry);
    }
}

/// A body passed through frame by frame (never buffered) that adds its data bytes to a
/// counter. It may own the log record, which is then written when the body is dropped.
pub(crate) struct CountedBody<B> {
    inner: B,
    counter: Arc<AtomicU64>,
    _record: Option<LogRecord>,
}

impl<B> CountedBody<B> {
    pub fn new(inner: B, counter: Arc<AtomicU64>, record: Option<LogRecord>) -> Self {
        Self {
            inner,
            counter,
            _record: record,
        }
    }
}

impl<B> Body for CountedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
