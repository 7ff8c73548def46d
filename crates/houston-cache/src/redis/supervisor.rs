//! The task that applies invalidation messages and tracks Redis availability.
//!
//! It watches both connections. A connection error marks Redis down (dropping local copies).
//! A reconnect, or a periodic probe while down, subscribes again, checks the command
//! connection with `PING` and only then marks Redis up, again dropping local copies because
//! messages sent in between were lost.

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Message;
use fred::types::config::Server;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::message::Invalidation;
use super::shared::Shared;

/// The event streams the task reads. They are opened before the first subscription, so no
/// connection event between connecting and starting the task is missed.
pub(crate) struct Events {
    messages: Receiver<Message>,
    subscriber_errors: Receiver<(fred::error::Error, Option<Server>)>,
    client_errors: Receiver<(fred::error::Error, Option<Server>)>,
    reconnects: Receiver<Server>,
}

impl Events {
    pub(crate) fn open(shared: &Shared) -> Self {
        Self {
            messages: shared.subscriber.message_rx(),
            subscriber_errors: shared.subscriber.error_rx(),
            client_errors: shared.client.error_rx(),
            reconnects: shared.subscriber.reconnect_rx(),
        }
    }
}

/// Runs until a client is closed with QUIT; dropping [`super::RedisCaches`] aborts it.
pub(crate) async fn supervise(shared: Arc<Shared>, events: Events, probe_interval: Duration) {
    let Events {
        mut messages,
        mut subscriber_errors,
        mut client_errors,
        mut reconnects,
    } = events;
    let mut probe = tokio::time::interval(probe_interval);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) => apply(&shared, &message),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "invalidation messages were dropped by a full buffer; clearing local caches");
                    shared.clear_local();
                }
                Err(RecvError::Closed) => return,
            },
            error = subscriber_errors.recv() => match error {
                Ok((error, _)) => shared.mark_down(&error),
                Err(RecvError::Lagged(_)) => shared.mark_down(&"missed connection events"),
                Err(RecvError::Closed) => return,
            },
            error = client_errors.recv() => match error {
                Ok((error, _)) => shared.mark_down(&error),
                Err(RecvError::Lagged(_)) => shared.mark_down(&"missed connection events"),
                Err(RecvError::Closed) => return,
            },
            reconnect = reconnects.recv() => match reconnect {
                Ok(_) | Err(RecvError::Lagged(_)) => recover(&shared).await,
                Err(RecvError::Closed) => return,
            },
            _ = probe.tick() => {
                if !shared.is_up() {
                    recover(&shared).await;
                }
            }
        }
    }
}

/// Subscribes, checks the command connection and marks Redis up when both work.
pub(crate) async fn recover(shared: &Shared) {
    if !shared.subscriber.is_connected() || !shared.client.is_connected() {
        return;
    }
    let timeout = shared.command_timeout;

    let subscribed =
        tokio::time::timeout(timeout, shared.subscriber.subscribe(&shared.channel)).await;
    if let Err(error) = flatten(subscribed) {
        shared.mark_down(&format_args!(
            "subscribing to {} failed: {error}",
            shared.channel
        ));
        return;
    }

    let pinged = tokio::time::timeout(timeout, shared.client.ping::<()>(None)).await;
    if let Err(error) = flatten(pinged) {
        shared.mark_down(&format_args!("PING failed: {error}"));
        return;
    }

    shared.mark_up();
}

fn flatten<T>(
    result: Result<Result<T, fred::error::Error>, tokio::time::error::Elapsed>,
) -> Result<T, String> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

/// Drops the local entries a message names.
fn apply(shared: &Shared, message: &Message) {
    if message.channel != shared.channel {
        return;
    }
    let Some(text) = message.value.as_str() else {
        tracing::warn!(channel = %message.channel, "ignored a non-text invalidation message");
        return;
    };
    match serde_json::from_str::<Invalidation>(&text) {
        Ok(Invalidation::Permission(scope)) => {
            shared.permissions.remove_matching(|key| scope.matches(key));
        }
        Ok(Invalidation::Route(route)) => shared.routes.remove_matching(|key| *key == route),
        Err(error) => {
            // A message this version cannot read may still name entries it caches.
            tracing::warn!(%error, "unreadable invalidation message; clearing local caches");
            shared.clear_local();
        }
    }
}
