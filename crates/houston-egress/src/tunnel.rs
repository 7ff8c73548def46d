//! CONNECT tunnels to allowlisted hosts. The proxy cannot see inside a tunnel, so it adds no
//! credential; it checks the host and the address, then copies bytes both ways.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::agent::{AgentContext, ConnectionPermit};
use crate::body::{LogRecord, ProxyBody, full_body};
use crate::connect::connect_checked;
use crate::log::{EgressKind, EgressOutcome};
use crate::rejection::Rejection;
use crate::target::parse_connect_target;

/// Handles a CONNECT request: checks and connects before it returns 200, so a refused or
/// unreachable target gets an error status instead of a tunnel that closes at once.
pub(crate) async fn open_tunnel(
    context: Arc<AgentContext>,
    connection_permit: ConnectionPermit,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let mut record = context.start_record(EgressKind::Connect, "CONNECT");
    let (host, port) = match parse_connect_target(request.uri()) {
        Ok(target) => target,
        Err(error) => return context.reject(record, error.into()),
    };
    record.entry.host.clone_from(&host);
    record.entry.port = port;

    if !context.policy().allows(&host) {
        let rejection = Rejection::NotAllowed {
            host,
            agent: context.agent_id.clone(),
        };
        return context.reject(record, rejection);
    }
    let shared = &context.shared;
    let addresses = match shared
        .check
        .checked_addresses(&host, port, &context.agent_id)
        .await
    {
        Ok(addresses) => addresses,
        Err(rejection) => return context.reject(record, rejection),
    };
    let upstream =
        match connect_checked(&host, &addresses, shared.connect_timeout, &shared.attempts).await {
            Ok(stream) => stream,
            Err(rejection) => return context.reject(record, rejection),
        };

    record.entry.outcome = EgressOutcome::Forwarded;
    record.entry.status = 200;
    // The tunnel outlives the HTTP connection that opened it, so it takes over the
    // connection's place in the agent's connection limit.
    let permit = connection_permit
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    tokio::spawn(async move {
        relay_tunnel(context.clone(), request, upstream, record).await;
        drop(permit);
    });
    Response::new(full_body(bytes::Bytes::new()))
}

/// Copies bytes both ways until either side closes or the agent's socket is closed. The
/// record is written when this returns.
async fn relay_tunnel(
    context: Arc<AgentContext>,
    request: Request<Incoming>,
    upstream: TcpStream,
    mut record: LogRecord,
) {
    let upgraded = match hyper::upgrade::on(request).await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            record.entry.reason = Some(format!(
                "the agent's connection did not switch to a tunnel: {error}"
            ));
            return;
        }
    };
    let mut agent_side = TokioIo::new(upgraded);
    let mut upstream = CountingStream {
        inner: upstream,
        read: record.bytes_down.clone(),
        written: record.bytes_up.clone(),
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut agent_side, &mut upstream) => {
            if let Err(error) = copied {
                record.entry.reason = Some(format!("the tunnel closed with an error: {error}"));
            }
        }
        () = context.cancel.cancelled() => {
            record.entry.reason = Some("the agent's egress socket was closed".to_owned());
        }
    }
}

/// A stream that counts the bytes read from and written to it, so a tunnel's byte counts
/// are right even when it ends with an error.
struct CountingStream<S> {
    inner: S,
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        self.read.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            self.written.fetch_add(*written as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
