//! One consumer of a group on NATS, and the handle that settles its deliveries. The group is a
//! durable pull consumer (explicit acks, `ack_wait` from the options, every message from the
//! oldest kept); each `Subscription` keeps one pull request of one message open on it, so
//! replicas of a group compete message by message and a message waits in no one's buffer. A
//! batch is that message plus a no-wait fetch of what else is ready at that moment (a fetch the
//! server leaves open is not waited for, but kept and read beside the pull stream).
//!
//! Attempts are JetStream's delivery count. The consumer's `max_deliver` is unlimited on
//! purpose: the adapter enforces `max_attempts` itself, so a message whose last lease ran out
//! (its handler hung, or its process died) is dead-lettered on its next delivery instead of
//! being parked by JetStream where no group would ever see it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use kernel::retry::Backoff;
use kernel::{BusError, Delivery, DeliveryHandle, Envelope, SubscribeOptions, Subscription};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{names, NatsBus};

/// How long one pull request waits on the server before it is renewed.
const PULL_EXPIRES: Duration = Duration::from_secs(30);

/// How long a batch waits for the server to end the no-wait fetch that fills it. The server
/// answers such a fetch at once (what is ready, then a status) — except on older nats-server
/// releases (Debian's 2.9.10 among them) when the message that was pending as the fetch left
/// went to a sibling's waiting pull first: the fetch then stays queued, unanswered, until the
/// next message on the topic arrives for it. Waiting for that held the batch's first message
/// unsettled with it, at the end of a load until its ack wait ran out (30 s). After this long
/// the batch goes without the fetch, which the subscription keeps (`pending_fetch`) and reads
/// beside its pull stream, so that a message the server hands it later is not lost. An expiry
/// on the fetch itself is no cure: those releases then hold every fetch that finds nothing
/// until the expiry, and sometimes miss it by the client's 5 s of grace.
const FETCH_WAIT: Duration = Duration::from_millis(50);

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
    /// A batch's fetch the server has not ended (see [`FETCH_WAIT`]), read beside `messages`
    /// until it ends.
    pending_fetch: Option<consumer::pull::Batch>,
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
            pending_fetch: None,
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

    /// Adds a fetched message to `batch` unless the adapter settled it itself.
    async fn accept_into(&self, batch: &mut Vec<Delivery>, message: jetstream::Message) {
        match self.accept(message).await {
            Ok(Some(delivery)) => batch.push(delivery),
            Ok(None) => {}
            // Unsettled, it comes back after its ack wait.
            Err(error) => {
                tracing::warn!(topic = %self.topic, group = %self.group, %error, "nats: could not accept a fetched message")
            }
        }
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
                Some(fetched) = next_fetched(&mut self.pending_fetch) => Some(Ok(fetched)),
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
        // What a kept fetch has brought meanwhile joins the batch; while it is open, the server
        // hands it what becomes ready, so the batch asks for nothing more.
        while batch.len() < max {
            let Some(Some(message)) = next_fetched(&mut self.pending_fetch).now_or_never() else {
                break;
            };
            self.accept_into(&mut batch, message).await;
        }
        if batch.len() >= max || pending == 0 || self.pending_fetch.is_some() {
            return Ok(batch);
        }
        let more = match fetch_ready(&consumer, max - batch.len()).await {
            Ok(more) => more,
            Err(error) => {
                // The first delivery is good; the rest wait for the next call.
                tracing::debug!(topic = %self.topic, group = %self.group, %error, "nats: fetch for a batch failed");
                return Ok(batch);
            }
        };
        let (fetched, kept) = read_fetch(more).await;
        self.pending_fetch = kept;
        for message in fetched {
            self.accept_into(&mut batch, message).await;
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

/// Asks for up to `max` messages of `consumer` that are ready now, without waiting for more;
/// the answer streams in through the returned batch (see [`FETCH_WAIT`]).
async fn fetch_ready(
    consumer: &consumer::PullConsumer,
    max: usize,
) -> Result<consumer::pull::Batch, consumer::pull::BatchError> {
    consumer.fetch().max_messages(max).messages().await
}

/// The messages `fetch` brings within [`FETCH_WAIT`] of each other, and the fetch itself when
/// the server has not ended it by then.
async fn read_fetch(
    mut fetch: consumer::pull::Batch,
) -> (Vec<jetstream::Message>, Option<consumer::pull::Batch>) {
    let mut fetched = Vec::new();
    loop {
        match tokio::time::timeout(FETCH_WAIT, fetch.next()).await {
            Ok(Some(Ok(message))) => fetched.push(message),
            Ok(None) => return (fetched, None),
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "nats: fetch for a batch ended early");
                return (fetched, None);
            }
            Err(_) => {
                tracing::debug!("nats: fetch for a batch not ended by the server; kept");
                return (fetched, Some(fetch));
            }
        }
    }
}

/// The next message the server hands a kept fetch; `None` (pending for ever) when there is no
/// such fetch, and the fetch is dropped once it ends or fails.
async fn next_fetched(fetch: &mut Option<consumer::pull::Batch>) -> Option<jetstream::Message> {
    let Some(batch) = fetch.as_mut() else {
        return std::future::pending().await;
    };
    match batch.next().await {
        Some(Ok(message)) => Some(message),
        Some(Err(error)) => {
            tracing::debug!(%error, "nats: a kept fetch ended with an error");
            *fetch = None;
            None
        }
        None => {
            *fetch = None;
            None
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared NATS server the integration tests use; this test fails, never skips, without it.
    fn nats_url() -> String {
        std::env::var("ALPES_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
    }

    /// The race made deterministic: the consumer lets one message be outstanding, so the second
    /// one stays pending while a batch's fetch and a sibling's pull queue up behind it; the
    /// sibling's pull, first in the queue, takes it once the first is acknowledged. The batch
    /// must not wait for the fetch (older servers never end it), and a message the server later
    /// hands the kept fetch must come out of it, not be lost.
    #[tokio::test]
    async fn a_batch_does_not_wait_for_a_fetch_the_server_leaves_open() {
        let client = async_nats::connect(nats_url())
            .await
            .expect("NATS with JetStream is reachable (set ALPES_TEST_NATS_URL)");
        let js = jetstream::new(client.clone());
        let name = format!("t{}", uuid::Uuid::new_v4().simple());
        let stream = js
            .create_stream(jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("{name}.x")],
                ..Default::default()
            })
            .await
            .unwrap();
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("group".to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                max_ack_pending: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        let publish = |body: &'static str| {
            let js = js.clone();
            let subject = format!("{name}.x");
            async move {
                js.publish(subject, body.into())
                    .await
                    .unwrap()
                    .await
                    .unwrap()
            }
        };
        let deadline = Duration::from_secs(10);

        publish("first").await;
        let mut taken = consumer.fetch().max_messages(1).messages().await.unwrap();
        let first = taken.next().await.expect("the first message").unwrap();
        publish("second").await;
        let mut sibling = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .unwrap();
        let fetch = fetch_ready(&consumer, 10).await.unwrap();
        // The requests reach the server, in order, before the acknowledgement that frees the
        // second message.
        client.flush().await.unwrap();
        first.double_ack().await.unwrap();
        let second = tokio::time::timeout(deadline, sibling.next())
            .await
            .expect("the sibling's pull is served")
            .expect("a message")
            .unwrap();
        assert_eq!(&second.payload[..], b"second");

        let (fetched, mut kept) = tokio::time::timeout(deadline, read_fetch(fetch))
            .await
            .expect("the batch does not wait for the fetch");
        assert!(fetched.is_empty(), "the sibling took what was pending");
        second.double_ack().await.unwrap();
        if kept.is_some() {
            // A server that left the fetch open hands it the next message.
            publish("third").await;
            let third = tokio::time::timeout(deadline, next_fetched(&mut kept))
                .await
                .expect("the kept fetch yields the next message")
                .expect("a message");
            assert_eq!(&third.payload[..], b"third");
        }
        js.delete_stream(&name).await.unwrap();
    }
}
