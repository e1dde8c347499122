//! The consumer loop every service runs per subscription: take a delivery, hand it to the
//! handler, settle it. A transient error is nacked with back-off; a poison message (one that can
//! never succeed) goes to the dead-letter topic at once. The loop stops when `shutdown` fires,
//! leaving any unsettled delivery to be redelivered. `spawn_consumers` starts a group's
//! competing consumers, the same way in every service.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::bus::{Bus, BusError, Delivery, SubscribeOptions, Subscription};
use crate::envelope::Envelope;
use crate::retry::Backoff;
use crate::shutdown::Shutdown;

/// How a handler failed, which decides what happens to the message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: a database or broker hiccup, a lock conflict.
    #[error("transient: {0}")]
    Transient(String),
    /// Arrived before something it depends on (its saga, its cause, its partner): topics are
    /// consumed independently, so this is expected and retried quietly.
    #[error("early: {0}")]
    Early(String),
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

/// One topic a consumer group follows: the handler its consumers run, how many deliveries a
/// message gets before it is dead-lettered, and the back-off between them.
#[derive(Clone)]
pub struct Consumes {
    pub topic: &'static str,
    pub handler: Arc<dyn MessageHandler>,
    pub options: SubscribeOptions,
    pub backoff: Backoff,
}

impl Consumes {
    /// `topic` with the default subscription options and back-off.
    pub fn new(topic: &'static str, handler: Arc<dyn MessageHandler>) -> Self {
        Self {
            topic,
            handler,
            options: SubscribeOptions::default(),
            backoff: Backoff::default(),
        }
    }

    pub fn with_options(self, options: SubscribeOptions) -> Self {
        Self { options, ..self }
    }

    pub fn with_backoff(self, backoff: Backoff) -> Self {
        Self { backoff, ..self }
    }
}

/// Subscribes `per_topic` competing consumers of `group` to each topic and spawns a
/// [`run_consumer`] loop for each; they stop when `shutdown` fires. Several consumers per topic
/// keep one slow message from holding up the rest. Fails when the bus refuses a subscription
/// (loops already spawned then stop with `shutdown`).
pub async fn spawn_consumers(
    bus: &dyn Bus,
    group: &str,
    topics: impl IntoIterator<Item = Consumes>,
    per_topic: usize,
    shutdown: &Shutdown,
) -> Result<Vec<tokio::task::JoinHandle<()>>, BusError> {
    let mut handles = Vec::new();
    for consumes in topics {
        for _ in 0..per_topic {
            let subscription = bus
                .subscribe(consumes.topic, group, consumes.options.clone())
                .await?;
            handles.push(tokio::spawn(run_consumer(
                subscription,
                consumes.handler.clone(),
                consumes.backoff,
                shutdown.clone().wait(),
            )));
        }
    }
    Ok(handles)
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
        Err(HandlerError::Early(reason)) => {
            tracing::debug!(%id, %event_type, attempt = delivery.attempt, %reason, "arrived early; will retry");
            let delay = backoff.delay(delivery.attempt);
            delivery.nack(delay, &reason).await
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
