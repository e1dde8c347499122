//! One consumer of a group on NATS, and the handle that settles its deliveries. The group is a
//! durable pull consumer (explicit acks, `ack_wait` from the options, every message from the
//! oldest kept); each `Subscription` keeps one pull request of one message open on it, so
//! replicas of a group compete message by message and a message waits in no one's buffer. A
//! batch is that message plus a no-wait fetch of what else is ready at that moment.
//!
//! Attempts are JetStream's delivery count. The consumer's `max_deliver` is unlimited on
//! purpose: the adapter enforces `max_attempts` itself, so a message whose last lease ran out
//! (its handler hung, or its process died) is dead-lettered on its next delivery instead of
//! being parked by JetStream where no group would ever see it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use async_trait::async_trait;
use futures_util::StreamExt;
use kernel::retry::Backoff;
use kernel::{BusError, Delivery, DeliveryHandle, Envelope, SubscribeOptions, Subscription};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{names, NatsBus};

/// How long one pull request waits on the server before it is renewed.
const PULL_EXPIRES: Duration = Duration::from_secs(30);

/// Between attempts to re-open a broken pull stream.
const REOPEN_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

pub(crate) struct NatsSubscription {
    bus: NatsBus,
    topic: Arc<str>,
    group: Arc<str>,
    consumer_name: String,
    max_attempts: u32,
    ack_wait: Duration,
    /// The open pull stream; `None` after a failure, until it is re-opened.
    messages: Option<consumer::pull::Stream>,
    /// The durable consumer the stream pulls from, for the no-wait fetches that fill a batch.
    consumer: Option<consumer::PullConsumer>,
    /// Failures since the last message, for the back-off.
    failures: u32,
    /// When a broken pull stream may be re-opened.
    reopen_at: Option<Instant>,
    closed: watch::Receiver<bool>,
}

impl NatsSubscription {
    /// Creates (or updates) the group's durable consumer and opens a pull stream on it.
    pub(crate) async fn open(
        bus: NatsBus,
        topic: &str,
        group: &str,
        options: SubscribeOptions,
    ) -> Result<NatsSubscription, BusError> {
        let consumer_name = names::consumer(group).map_err(crate::invalid)?;
        let closed = bus.closed_signal();
        let mut subscription = NatsSubscription {
            bus,
            topic: topic.into(),
            group: group.into(),
            consumer_name,
            // Zero attempts would dead-letter every message unseen; treat it as one.
            max_attempts: options.max_attempts.max(1),
            // Zero means "the server's default" to JetStream, which is not what was asked.
            ack_wait: options.ack_wait.max(Duration::from_millis(1)),
            messages: None,
            consumer: None,
            failures: 0,
            reopen_at: None,
            closed,
        };
        let (consumer, messages) = subscription.open_messages().await?;
        subscription.consumer = Some(consumer);
        subscription.messages = Some(messages);
        Ok(subscription)
    }

    async fn open_messages(
        &self,
    ) -> Result<(consumer::PullConsumer, consumer::pull::Stream), BusError> {
        let consumer = match self.create_consumer().await {
            Ok(consumer) => consumer,
            Err(_) => {
                // Perhaps the stream is gone since this process created it: make it again.
                self.bus.forget_stream(&self.topic);
                self.create_consumer().await?
            }
        };
        let messages = consumer
            .stream()
            .max_messages_per_batch(1)
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(|error| {
                BusError::Unavailable(format!(
                    "cannot pull from consumer {} of {}: {error}",
                    self.group, self.topic
                ))
            })?;
        Ok((consumer, messages))
    }

    async fn create_consumer(&self) -> Result<consumer::PullConsumer, BusError> {
        let stream_name = self.bus.ensure_stream(&self.topic).await?;
        let config = consumer::pull::Config {
            durable_name: Some(self.consumer_name.clone()),
            description: Some(format!("alpes group {} on {}", self.group, self.topic)),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: -1,
            ..Default::default()
        };
        self.bus
            .jetstream()
            .create_consumer_on_stream(config, &stream_name)
            .await
            .map_err(|error| {
                BusError::Unavailable(format!(
                    "cannot create consumer {} on stream {stream_name}: {error}",
                    self.consumer_name
                ))
            })
    }

    /// Drops the pull stream and schedules its re-opening after a back-off.
    fn broken(&mut self, error: &dyn std::fmt::Display) {
        self.failures = self.failures.saturating_add(1);
        let delay = REOPEN_BACKOFF.delay(self.failures);
        tracing::warn!(
            topic = %self.topic,
            group = %self.group,
            %error,
            retry_in = ?delay,
            "nats: pulling failed; re-opening the pull stream"
        );
        self.messages = None;
        self.reopen_at = Some(Instant::now() + delay);
    }

    /// What to do with a message the server handed out: a delivery for the caller, or `None`
    /// when the adapter settled it itself.
    async fn accept(&self, message: jetstream::Message) -> Result<Option<Delivery>, BusError> {
        let delivered = match message.info() {
            Ok(info) => info.delivered,
            Err(error) => {
                tracing::warn!(subject = %message.subject, %error, "nats: not a JetStream delivery; ignored");
                return Ok(None);
            }
        };
        let attempt = u32::try_from(delivered.max(1)).unwrap_or(u32::MAX);
        let envelope = match Envelope::from_json(&message.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                // Not published by this bus: nobody can handle it, and it would come back
                // forever. Terminated, it stays in the stream for inspection.
                tracing::error!(topic = %self.topic, group = %self.group, %error, "nats: unreadable message; terminating it");
                message
                    .double_ack_with(AckKind::Term)
                    .await
                    .map_err(settle_error)?;
                return Ok(None);
            }
        };
        if attempt > self.max_attempts {
            // Its last lease ran out without a settlement.
            let error = format!("not acknowledged within {:?}", self.ack_wait);
            self.bus
                .publish_dead_letter(
                    &self.group,
                    &self.topic,
                    &envelope,
                    &error,
                    self.max_attempts,
                )
                .await?;
            message
                .double_ack_with(AckKind::Term)
                .await
                .map_err(settle_error)?;
            return Ok(None);
        }
        Ok(Some(Delivery {
            envelope,
            topic: self.topic.to_string(),
            attempt,
            handle: Box::new(NatsDeliveryHandle {
                bus: self.bus.clone(),
                message,
                topic: self.topic.clone(),
                group: self.group.clone(),
                attempt,
                max_attempts: self.max_attempts,
            }),
        }))
    }
}

#[async_trait]
impl Subscription for NatsSubscription {
    /// Errors of the connection or the consumer are retried here with back-off; only a closed
    /// bus ends it. Cancelling this future loses nothing: a message that arrives meanwhile waits
    /// in the pull stream for the next call.
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            self.bus.ensure_open()?;
            if let Some(at) = self.reopen_at {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    _ = self.closed.wait_for(|closed| *closed) => return Err(BusError::Closed),
                }
                self.reopen_at = None;
            }
            if self.messages.is_none() {
                match self.open_messages().await {
                    Ok((consumer, messages)) => {
                        self.consumer = Some(consumer);
                        self.messages = Some(messages);
                    }
                    Err(error) => self.broken(&error),
                }
                continue;
            }
            let Some(messages) = self.messages.as_mut() else {
                continue;
            };
            let next = tokio::select! {
                next = messages.next() => next,
                _ = self.closed.wait_for(|closed| *closed) => return Err(BusError::Closed),
            };
            match next {
                Some(Ok(message)) => {
                    self.failures = 0;
                    match self.accept(message).await {
                        Ok(Some(delivery)) => return Ok(delivery),
                        Ok(None) => {}
                        // The message stays unsettled and comes back after its ack wait.
                        Err(error) => self.broken(&error),
                    }
                }
                Some(Err(error)) => self.broken(&error),
                None => self.broken(&"the pull stream ended"),
            }
        }
    }

    /// The first delivery as `next` waits for it, then a no-wait fetch of what else is ready,
    /// so nothing is pulled that this batch will not handle.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>, BusError> {
        let mut batch = vec![self.next().await?];
        let Some(consumer) = self.consumer.clone() else {
            return Ok(batch);
        };
        // The server tells each delivery how many more are pending for the consumer: when none
        // are, a fetch would only come back empty.
        let pending = batch[0]
            .handle
            .as_any()
            .downcast_ref::<NatsDeliveryHandle>()
            .and_then(|handle| handle.message.info().ok().map(|info| info.pending))
            .unwrap_or(1);
        if max <= 1 || pending == 0 {
            return Ok(batch);
        }
        let mut more = match consumer.fetch().max_messages(max - 1).messages().await {
            Ok(more) => more,
            Err(error) => {
                // The first delivery is good; the rest wait for the next call.
                tracing::debug!(topic = %self.topic, group = %self.group, %error, "nats: fetch for a batch failed");
                return Ok(batch);
            }
        };
        while let Some(message) = more.next().await {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::debug!(topic = %self.topic, group = %self.group, %error, "nats: fetch for a batch ended early");
                    break;
                }
            };
            match self.accept(message).await {
                Ok(Some(delivery)) => batch.push(delivery),
                Ok(None) => {}
                // Unsettled, it comes back after its ack wait.
                Err(error) => {
                    tracing::warn!(topic = %self.topic, group = %self.group, %error, "nats: could not accept a fetched message")
                }
            }
        }
        Ok(batch)
    }

    /// JetStream acknowledges message by message; the acks go out together and their
    /// confirmations are awaited together.
    async fn ack_all(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        let results =
            futures_util::future::join_all(deliveries.iter().map(|delivery| delivery.handle.ack()))
                .await;
        results.into_iter().collect()
    }
}

struct NatsDeliveryHandle {
    bus: NatsBus,
    message: jetstream::Message,
    topic: Arc<str>,
    group: Arc<str>,
    attempt: u32,
    max_attempts: u32,
}

#[async_trait]
impl DeliveryHandle for NatsDeliveryHandle {
    /// Waits for the server to confirm the ack, so an acked message is settled for good.
    async fn ack(&self) -> Result<(), BusError> {
        self.bus.ensure_open()?;
        self.message.double_ack().await.map_err(settle_error)
    }

    async fn nack(&self, delay: Duration, error: &str) -> Result<(), BusError> {
        if self.attempt >= self.max_attempts {
            return self.dead_letter(error).await;
        }
        self.bus.ensure_open()?;
        let kind = if delay.is_zero() {
            AckKind::Nak(None)
        } else {
            AckKind::Nak(Some(delay))
        };
        self.message
            .double_ack_with(kind)
            .await
            .map_err(settle_error)
    }

    /// Publishes the copy first and terminates the original after: a crash in between leaves the
    /// original to be delivered again, and de-duplication (or the DLQ reader's inbox) absorbs a
    /// second copy.
    async fn dead_letter(&self, error: &str) -> Result<(), BusError> {
        self.bus.ensure_open()?;
        let envelope = Envelope::from_json(&self.message.payload).map_err(|parse| {
            BusError::Unavailable(format!("a delivered message no longer parses: {parse}"))
        })?;
        self.bus
            .publish_dead_letter(&self.group, &self.topic, &envelope, error, self.attempt)
            .await?;
        self.message
            .double_ack_with(AckKind::Term)
            .await
            .map_err(settle_error)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn settle_error(error: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("settling a delivery failed: {error}"))
}
