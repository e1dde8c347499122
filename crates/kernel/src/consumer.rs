//! The consumer loop every service runs per subscription: take a delivery, hand it to the
//! handler, settle it. A transient error is nacked with back-off; a poison message (one that can
//! never succeed) goes to the dead-letter topic at once. The loop stops when `shutdown` fires,
//! leaving any unsettled delivery to be redelivered.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::bus::{Delivery, Subscription};
use crate::envelope::Envelope;
use crate::retry::Backoff;

/// How a handler failed, which decides what happens to the message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: a database or broker hiccup, a lock conflict.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed: undecodable payload, unknown version.
    #[error("poison: {0}")]
    Poison(String),
}

impl From<crate::event::DecodeError> for HandlerError {
    fn from(error: crate::event::DecodeError) -> Self {
        HandlerError::Poison(error.to_string())
    }
}

/// Handles one message. Implementations make their effects idempotent (the inbox), because a
/// message may be delivered more than once.
#[async_trait]
pub trait MessageHandler: Send + Sync + 'static {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandlerError>;
}

/// Runs `handler` over `subscription` until `shutdown` resolves.
pub async fn run_consumer(
    mut subscription: Box<dyn Subscription>,
    handler: Arc<dyn MessageHandler>,
    backoff: Backoff,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        let delivery = tokio::select! {
            _ = &mut shutdown => return,
            next = subscription.next() => next,
        };
        match delivery {
            Ok(delivery) => settle(delivery, handler.as_ref(), backoff).await,
            Err(error) => {
                tracing::warn!(%error, "bus receive failed; retrying");
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(backoff.delay(1)) => {}
                }
            }
        }
    }
}

async fn settle(delivery: Delivery, handler: &dyn MessageHandler, backoff: Backoff) {
    let id = delivery.envelope.id;
    let event_type = delivery.envelope.event_type.clone();
    let result = handler.handle(&delivery.envelope).await;
    let settled = match result {
        Ok(()) => delivery.ack().await,
        Err(HandlerError::Transient(error)) => {
            tracing::warn!(%id, %event_type, attempt = delivery.attempt, %error, "handler failed; will retry");
            let delay = backoff.delay(delivery.attempt);
            delivery.nack(delay, &error).await
        }
        Err(HandlerError::Poison(error)) => {
            tracing::error!(%id, %event_type, %error, "poison message; dead-lettering");
            delivery.dead_letter(&error).await
        }
    };
    if let Err(error) = settled {
        // The delivery stays unacknowledged and is handed out again after its ack wait.
        tracing::warn!(%id, %error, "could not settle delivery");
    }
}
