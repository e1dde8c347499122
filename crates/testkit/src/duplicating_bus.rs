//! A bus wrapper that delivers every message twice to each consumer: first a copy whose
//! settlement is a no-op, then the real delivery. Handlers therefore run twice per message with
//! the same event id, which is exactly what at-least-once delivery may do; tests use it to show
//! that a second run changes nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kernel::{
    Bus, BusError, Delivery, DeliveryHandle, Envelope, EnvelopeText, SubscribeOptions, Subscription,
};

pub struct DuplicatingBus {
    inner: Arc<dyn Bus>,
}

impl DuplicatingBus {
    pub fn new(inner: Arc<dyn Bus>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl Bus for DuplicatingBus {
    async fn publish(&self, topic: &str, envelopes: &[Envelope]) -> Result<(), BusError> {
        self.inner.publish(topic, envelopes).await
    }

    async fn publish_runs(&self, runs: &[(&str, &[Envelope])]) -> Result<(), BusError> {
        self.inner.publish_runs(runs).await
    }

    async fn publish_texts(&self, runs: &[(&str, &[EnvelopeText<'_>])]) -> Result<(), BusError> {
        self.inner.publish_texts(runs).await
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        Ok(Box::new(DuplicatingSubscription {
            inner: self.inner.subscribe(topic, group, options).await?,
            held: None,
        }))
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.inner.ping().await
    }
}

struct DuplicatingSubscription {
    inner: Box<dyn Subscription>,
    held: Option<Delivery>,
}

#[async_trait]
impl Subscription for DuplicatingSubscription {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        if let Some(real) = self.held.take() {
            return Ok(real);
        }
        let real = self.inner.next().await?;
        let copy = Delivery {
            envelope: real.envelope.clone(),
            topic: real.topic.clone(),
            attempt: real.attempt,
            handle: Box::new(NoopHandle),
        };
        self.held = Some(real);
        Ok(copy)
    }
}

struct NoopHandle;

#[async_trait]
impl DeliveryHandle for NoopHandle {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn nack(&self, _delay: Duration, _error: &str) -> Result<(), BusError> {
        Ok(())
    }

    async fn dead_letter(&self, _error: &str) -> Result<(), BusError> {
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
