//! The `Bus` port: publish envelopes to a topic; subscribe a durable consumer group to a topic.
//! Competing consumers of one group share its messages; separate groups each get every message.
//! A delivery is acked, nacked with a delay, or dead-lettered; after `max_attempts` a nacked
//! message goes to the group's dead-letter topic with its last error.

use std::time::Duration;

use async_trait::async_trait;

use crate::envelope::Envelope;

/// An envelope as the text `serde_json` wrote for it (what an outbox row holds), with its id.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeText<'a> {
    pub id: uuid::Uuid,
    pub text: &'a str,
}

/// A failure of the bus itself (its storage or its broker), never of a handler.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    #[error("bus closed")]
    Closed,
}

/// How a group consumes a topic.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// Deliveries of one message before it is dead-lettered.
    pub max_attempts: u32,
    /// How long a delivery may stay unacknowledged before it is handed out again.
    pub ack_wait: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// The dead-letter topic of a subscriber group.
pub fn dead_letter_topic(group: &str) -> String {
    format!("{group}.dlq")
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes each envelope to `topic`. Publishing an envelope whose `id` the topic already
    /// holds is a no-op, so a relay that retries after a crash never duplicates a message.
    async fn publish(&self, topic: &str, envelopes: &[Envelope]) -> Result<(), BusError>;

    /// Publishes runs of envelopes, each run to its topic, in order: what [`Bus::publish`]
    /// does for each run in turn. An adapter that can store them all in one write does so, so
    /// that a relay's batch of several topics costs one write instead of one per run.
    async fn publish_runs(&self, runs: &[(&str, &[Envelope])]) -> Result<(), BusError> {
        for (topic, envelopes) in runs {
            self.publish(topic, envelopes).await?;
        }
        Ok(())
    }

    /// Publishes runs of envelopes held as text, as [`Bus::publish_runs`] does with parsed
    /// ones. The outbox relay holds its rows as text: an adapter that stores or sends text
    /// takes it as it is, instead of having it parsed into an [`Envelope`] only to write it
    /// out again. By default each text is parsed and the runs go to `publish_runs`; a text
    /// that is not an envelope then fails the publish.
    async fn publish_texts(&self, runs: &[(&str, &[EnvelopeText<'_>])]) -> Result<(), BusError> {
        let mut parsed: Vec<(&str, Vec<Envelope>)> = Vec::with_capacity(runs.len());
        for (topic, texts) in runs {
            let envelopes = texts
                .iter()
                .map(|text| {
                    serde_json::from_str::<Envelope>(text.text).map_err(|error| {
                        BusError::Unavailable(format!(
                            "the text of event {} is not an envelope: {error}",
                            text.id
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            parsed.push((topic, envelopes));
        }
        let runs: Vec<(&str, &[Envelope])> = parsed
            .iter()
            .map(|(topic, envelopes)| (*topic, envelopes.as_slice()))
            .collect();
        self.publish_runs(&runs).await
    }

    /// Joins `group` as a consumer of `topic`, creating the group durably if it is new (a new
    /// group starts from the oldest message the topic retains).
    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError>;

    /// Whether the bus is reachable, for `/ready`.
    async fn ping(&self) -> Result<(), BusError>;
}

/// One consumer's handle on a group.
#[async_trait]
pub trait Subscription: Send {
    /// Waits for the next delivery for this consumer.
    async fn next(&mut self) -> Result<Delivery, BusError>;

    /// Waits for at least one delivery and returns it with whatever else is ready at once, up
    /// to `max`. Taking a batch costs one claim instead of one per message, and lets a handler
    /// apply the batch in one transaction. Adapters that cannot batch hand out one at a time.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>, BusError> {
        let _ = max;
        Ok(vec![self.next().await?])
    }

    /// Acknowledges every delivery in `deliveries`, in one round-trip where the adapter can.
    /// On error some may be acknowledged and the rest are handed out again after their ack
    /// wait, which idempotent handlers absorb.
    async fn ack_all(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        for delivery in deliveries {
            delivery.ack().await?;
        }
        Ok(())
    }
}

/// What a bus adapter does when a delivery is settled.
#[async_trait]
pub trait DeliveryHandle: Send + Sync + 'static {
    async fn ack(&self) -> Result<(), BusError>;
    /// Hands the message out again after `delay`, or dead-letters it when attempts are spent.
    async fn nack(&self, delay: Duration, error: &str) -> Result<(), BusError>;
    /// Sends the message straight to the group's dead-letter topic (a poison message).
    async fn dead_letter(&self, error: &str) -> Result<(), BusError>;

    /// The handle as `Any`, so an adapter's `Subscription::ack_all` can recognise its own
    /// handles and settle them together.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A message handed to one consumer, to be settled exactly once.
pub struct Delivery {
    pub envelope: Envelope,
    pub topic: String,
    /// 1 on the first delivery.
    pub attempt: u32,
    pub handle: Box<dyn DeliveryHandle>,
}

impl Delivery {
    pub async fn ack(self) -> Result<(), BusError> {
        self.handle.ack().await
    }

    pub async fn nack(self, delay: Duration, error: &str) -> Result<(), BusError> {
        self.handle.nack(delay, error).await
    }

    pub async fn dead_letter(self, error: &str) -> Result<(), BusError> {
        self.handle.dead_letter(error).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("topic", &self.topic)
            .field("id", &self.envelope.id)
            .field("type", &self.envelope.event_type)
            .field("attempt", &self.attempt)
            .finish()
    }
}
