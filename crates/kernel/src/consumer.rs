//! The consumer loop every service runs per subscription: take a batch of deliveries, hand it
//! to the handler, settle it (the successes with one acknowledgement). A transient error is nacked with back-off; a poison message (one that can
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

    /// Handles a batch, answering one result per envelope in order. Handlers whose effects are
    /// a database transaction apply the whole batch in one (one commit, one disk sync); the
    /// default handles each envelope alone.
    async fn handle_batch(&self, envelopes: &[&Envelope]) -> Vec<Result<(), HandlerError>> {
        let mut results = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            results.push(self.handle(envelope).await);
        }
        results
    }
}

/// Deliveries a consumer takes at once unless its topic says otherwise: large enough that a
/// backlog drains in few transactions, small enough that one slow batch holds up little.
pub const DEFAULT_BATCH: usize = 64;

/// Runs `handler` over `subscription`, up to `batch` deliveries at a time, until `shutdown`
/// resolves.
pub async fn run_consumer(
    mut subscription: Box<dyn Subscription>,
    handler: Arc<dyn MessageHandler>,
    backoff: Backoff,
    batch: usize,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let batch = batch.max(1);
    loop {
        let deliveries = tokio::select! {
            _ = &mut shutdown => return,
            next = subscription.next_batch(batch) => next,
        };
        match deliveries {
            Ok(deliveries) => {
                settle(deliveries, subscription.as_mut(), handler.as_ref(), backoff).await;
            }
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
    /// The most deliveries a consumer takes and hands to the handler at once.
    pub batch: usize,
}

impl Consumes {
    /// `topic` with the default subscription options and back-off.
    pub fn new(topic: &'static str, handler: Arc<dyn MessageHandler>) -> Self {
        Self {
            topic,
            handler,
            options: SubscribeOptions::default(),
            backoff: Backoff::default(),
            batch: DEFAULT_BATCH,
        }
    }

    pub fn with_batch(self, batch: usize) -> Self {
        Self { batch, ..self }
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
                consumes.batch,
                shutdown.clone().wait(),
            )));
        }
    }
    Ok(handles)
}

async fn settle(
    deliveries: Vec<Delivery>,
    subscription: &mut dyn Subscription,
    handler: &dyn MessageHandler,
    backoff: Backoff,
) {
    let envelopes: Vec<&Envelope> = deliveries.iter().map(|d| &d.envelope).collect();
    let mut results = handler.handle_batch(&envelopes).await;
    // A handler answering the wrong number of results is a bug; the missing ones are retried.
    results.resize_with(deliveries.len(), || {
        Err(HandlerError::Transient(
            "the handler gave no result for this message".into(),
        ))
    });
    let mut handled = Vec::with_capacity(deliveries.len());
    for (delivery, result) in deliveries.into_iter().zip(results) {
        match result {
            Ok(()) => handled.push(delivery),
            Err(error) => settle_failure(delivery, error, backoff).await,
        }
    }
    if handled.is_empty() {
        return;
    }
    let count = handled.len();
    if let Err(error) = subscription.ack_all(handled).await {
        // Unacknowledged deliveries are handed out again after their ack wait.
        tracing::warn!(count, %error, "could not acknowledge deliveries");
    }
}

async fn settle_failure(delivery: Delivery, error: HandlerError, backoff: Backoff) {
    let id = delivery.envelope.id;
    let event_type = delivery.envelope.event_type.clone();
    let settled = match error {
        HandlerError::Transient(error) => {
            tracing::warn!(%id, %event_type, attempt = delivery.attempt, %error, "handler failed; will retry");
            let delay = backoff.delay(delivery.attempt);
            delivery.nack(delay, &error).await
        }
        HandlerError::Early(reason) => {
            tracing::debug!(%id, %event_type, attempt = delivery.attempt, %reason, "arrived early; will retry");
            let delay = backoff.delay(delivery.attempt);
            delivery.nack(delay, &reason).await
        }
        HandlerError::Poison(error) => {
            tracing::error!(%id, %event_type, %error, "poison message; dead-lettering");
            delivery.dead_letter(&error).await
        }
    };
    if let Err(error) = settled {
        // The delivery stays unacknowledged and is handed out again after its ack wait.
        tracing::warn!(%id, %error, "could not settle delivery");
    }
}
