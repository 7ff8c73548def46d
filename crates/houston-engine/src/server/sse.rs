//! The `text/event-stream` response of a turn: replay from a `seq`, then follow live events,
//! with a heartbeat comment while idle. The stream ends after the terminal event.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use houston_protocol::sse::{HEARTBEAT, encode};
use tokio::sync::watch;

use crate::turns::TurnHandle;

struct Follower {
    handle: Arc<TurnHandle>,
    cursor: u64,
    changes: watch::Receiver<u64>,
    heartbeat: Duration,
    ended: bool,
}

/// Streams the events of `handle` with `seq > after`.
pub fn event_stream(handle: Arc<TurnHandle>, after: u64, heartbeat: Duration) -> Response {
    let changes = handle.log.subscribe();
    let follower = Follower { handle, cursor: after, changes, heartbeat, ended: false };
    let stream = futures::stream::unfold(follower, next_chunk);
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    (headers, Body::from_stream(stream)).into_response()
}

/// Returns the next chunk: every event after the cursor, or a heartbeat after an idle
/// interval, or `None` once the terminal event was sent.
async fn next_chunk(mut follower: Follower) -> Option<(Result<Bytes, Infallible>, Follower)> {
    loop {
        if follower.ended {
            return None;
        }
        // Marking the current version seen before reading the log means any event pushed
        // after the read wakes `changed()` below, so none is missed.
        follower.changes.borrow_and_update();
        let (events, ended) = follower.handle.log.events_after(follower.cursor);
        if let Some(last) = events.last() {
            follower.cursor = last.seq;
            follower.ended = ended;
            let chunk: String = events.iter().map(encode).collect();
            return Some((Ok(Bytes::from(chunk)), follower));
        }
        if ended {
            return None;
        }
        tokio::select! {
            changed = follower.changes.changed() => {
                // The sender lives in the handle this follower holds, so this cannot fail
                // while the stream exists; ending the stream is the safe choice if it ever does.
                if changed.is_err() {
                    return None;
                }
            }
            () = tokio::time::sleep(follower.heartbeat) => {
                return Some((Ok(Bytes::from_static(HEARTBEAT.as_bytes())), follower));
            }
        }
    }
}
