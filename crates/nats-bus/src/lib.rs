//! The `kernel::Bus` port on NATS JetStream, for distributed mode (BRIEF §5). A topic is the
//! subject `<prefix>.<topic>` stored in its own stream; a group is a durable pull consumer on that
//! stream, shared by every replica of the group (competing consumers). Publishing sets
//! `Nats-Msg-Id` to the envelope id, so JetStream drops a re-published duplicate.
//! See `subscription.rs` for attempts, retries and dead letters.
//!
//! Reconnection is async-nats's: after the server goes away the client reconnects forever (with
//! back-off), re-issues its subscriptions and pull requests, and a `Subscription::next` that hits
//! an error re-creates its pull stream with back-off instead of failing. Publishes made while
//! disconnected wait for the reconnection up to the JetStream request timeout, then fail with
//! `BusError::Unavailable` (the outbox relay retries them, and de-duplication absorbs a publish
//! that did land).
//!
//! De-duplication holds within the streams' duplicate window (2 minutes by default); a message
//! re-published later is stored again, and consumers' inboxes make handling it a no-op.
//! Built without a TLS crypto provider: `nats://` only.

mod names;
mod subscription;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use async_trait::async_trait;
use kernel::bus::dead_letter_topic;
use kernel::{Bus, BusError, Envelope, SubscribeOptions, Subscription};
use tokio::sync::watch;

pub use crate::names::NameError;
use crate::subscription::NatsSubscription;

/// How a deployment's streams are laid out and kept.
#[derive(Debug, Clone)]
pub struct NatsBusConfig {
    /// The first subject token of every topic, and of every stream name: deployments (and
    /// parallel test runs) with different prefixes share one server without seeing each other.
    pub prefix: String,
    /// How long a topic's stream keeps a message (limits-based retention: consumed or not). A
    /// group created later starts from the oldest message still kept.
    pub max_age: Duration,
    /// How long a dead-letter topic keeps a message; `None` keeps it until an operator removes it.
    pub dead_letter_max_age: Option<Duration>,
    /// How long JetStream remembers a message id to drop a re-publish of it. A duplicate
    /// published later than this is stored again, and consumers' inboxes make handling it a
    /// no-op.
    pub duplicate_window: Duration,
    /// Copies of each stream in a JetStream cluster (1 for a single server, 3 in production).
    pub replicas: usize,
}

impl NatsBusConfig {
    /// The defaults: 7 days of retention, dead letters kept, a 2-minute de-duplication window,
    /// one replica.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            max_age: Duration::from_secs(7 * 24 * 3600),
            dead_letter_max_age: None,
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
        }
    }
}

/// A connection to NATS JetStream. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: NatsBusConfig,
    /// Topics whose stream this process has created or updated already.
    ensured: Mutex<HashSet<String>>,
    closed: watch::Sender<bool>,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("prefix", &self.inner.config.prefix)
            .field("closed", &*self.inner.closed.borrow())
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects to the server at `url` (`nats://host:4222`) with the default settings and the
    /// subjects `<prefix>.<topic>`.
    ///
    /// Fails with `BusError::Unavailable` when the server cannot be reached, has no JetStream,
    /// or `prefix` is not a single subject token.
    pub async fn connect(url: &str, prefix: &str) -> Result<NatsBus, BusError> {
        Self::connect_with(url, NatsBusConfig::new(prefix)).await
    }

    /// Connects with explicit settings; fails as `connect` does, and when the duplicate window
    /// exceeds a retention time (JetStream refuses such a stream).
    pub async fn connect_with(url: &str, config: NatsBusConfig) -> Result<NatsBus, BusError> {
        names::check_prefix(&config.prefix).map_err(invalid)?;
        // Zero is "no limit" to JetStream, for retention as for the window.
        let limited_ages = [Some(config.max_age), config.dead_letter_max_age]
            .into_iter()
            .flatten()
            .filter(|age| !age.is_zero());
        if config.duplicate_window.is_zero()
            || limited_ages
                .clone()
                .any(|age| config.duplicate_window > age)
        {
            return Err(BusError::Unavailable(format!(
                "the duplicate window {:?} must be positive and within every retention ({:?})",
                config.duplicate_window,
                limited_ages.collect::<Vec<_>>()
            )));
        }
        let client = async_nats::ConnectOptions::new()
            .name(format!("alpes-{}", config.prefix))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("nats: connected"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("nats: disconnected; reconnecting")
                    }
                    // Draining and closing follow our own `close`.
                    async_nats::Event::Draining | async_nats::Event::Closed => {
                        tracing::debug!(event = %event, "nats: connection event")
                    }
                    other => tracing::warn!(event = %other, "nats: connection event"),
                }
            })
            .connect(url)
            .await
            .map_err(|error| {
                BusError::Unavailable(format!("cannot connect to NATS at {url}: {error}"))
            })?;
        let jetstream = jetstream::new(client.clone());
        account_info(&jetstream).await.map_err(|error| {
            BusError::Unavailable(format!("JetStream is not available at {url}: {error}"))
        })?;
        let (closed, _) = watch::channel(false);
        Ok(NatsBus {
            inner: Arc::new(Inner {
                client,
                jetstream,
                config,
                ensured: Mutex::new(HashSet::new()),
                closed,
            }),
        })
    }

    /// The settings this bus was connected with.
    pub fn config(&self) -> &NatsBusConfig {
        &self.inner.config
    }

    /// Deletes every stream of this bus's prefix, with their messages and consumer groups:
    /// tearing down a deployment (or a test's) that shares a server with others. Returns how
    /// many streams went.
    pub async fn delete_streams(&self) -> Result<usize, BusError> {
        use futures_util::TryStreamExt;
        let names: Vec<String> = self
            .inner
            .jetstream
            .stream_names()
            .try_collect()
            .await
            .map_err(|error| BusError::Unavailable(format!("cannot list streams: {error}")))?;
        let own = format!("{}_", self.inner.config.prefix);
        let mut deleted = 0;
        for name in names.iter().filter(|name| name.starts_with(&own)) {
            self.inner
                .jetstream
                .delete_stream(name)
                .await
                .map_err(|error| {
                    BusError::Unavailable(format!("cannot delete stream {name}: {error}"))
                })?;
            deleted += 1;
        }
        self.inner
            .ensured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        Ok(deleted)
    }

    /// Flushes what was sent and closes the connection. Afterwards every operation on this bus,
    /// its subscriptions and its deliveries fails with `BusError::Closed`; deliveries left
    /// unsettled are handed out again once their ack wait runs out.
    pub async fn close(&self) {
        self.inner.closed.send_replace(true);
        if let Err(error) = self.inner.client.flush().await {
            tracing::debug!(%error, "nats: flush on close failed");
        }
        if let Err(error) = self.inner.client.drain().await {
            tracing::debug!(%error, "nats: drain on close failed");
        }
    }

    pub(crate) fn ensure_open(&self) -> Result<(), BusError> {
        if *self.inner.closed.borrow() {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn closed_signal(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.inner.jetstream
    }

    fn ensured(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A set of names stays consistent even if a holder panicked.
        self.inner
            .ensured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets that `topic`'s stream exists, after the server said it does not (deleted by an
    /// operator, or lost with a server's storage), so the next use creates it again.
    pub(crate) fn forget_stream(&self, topic: &str) {
        self.ensured().remove(topic);
    }

    /// Creates `topic`'s stream, or updates it to this bus's settings, once per process;
    /// returns its name.
    pub(crate) async fn ensure_stream(&self, topic: &str) -> Result<String, BusError> {
        let config = self.stream_config(topic)?;
        let name = config.name.clone();
        if self.ensured().contains(topic) {
            return Ok(name);
        }
        self.inner
            .jetstream
            .create_or_update_stream(config)
            .await
            .map_err(|error| {
                BusError::Unavailable(format!("cannot create or update stream {name}: {error}"))
            })?;
        self.ensured().insert(topic.to_owned());
        Ok(name)
    }

    fn stream_config(&self, topic: &str) -> Result<stream::Config, BusError> {
        let config = &self.inner.config;
        let subject = names::subject(&config.prefix, topic).map_err(invalid)?;
        let max_age = if topic.ends_with(&dead_letter_topic("")) {
            config.dead_letter_max_age.unwrap_or(Duration::ZERO)
        } else {
            config.max_age
        };
        Ok(stream::Config {
            name: names::stream(&config.prefix, topic),
            description: Some(format!("alpes topic {topic}")),
            subjects: vec![subject],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            max_age,
            duplicate_window: config.duplicate_window,
            storage: stream::StorageType::File,
            num_replicas: config.replicas.max(1),
            ..Default::default()
        })
    }

    /// Publishes and waits for every ack; `Ok(false)` when the stream turned out to be missing.
    async fn publish_acked(&self, subject: &str, envelopes: &[Envelope]) -> Result<bool, BusError> {
        // In chunks: the context lends a bounded number of in-flight acks to all its callers.
        for chunk in envelopes.chunks(256) {
            let mut acks = Vec::with_capacity(chunk.len());
            for envelope in chunk {
                let message = jetstream::message::PublishMessage::build()
                    .message_id(envelope.id.to_string())
                    .payload(envelope.to_json().into());
                let ack = self
                    .inner
                    .jetstream
                    .send_publish(subject.to_owned(), message)
                    .await
                    .map_err(|error| publish_error(subject, &error))?;
                acks.push(ack);
            }
            for ack in acks {
                match ack.await {
                    Ok(_) => {}
                    Err(error) if error.kind() == PublishErrorKind::StreamNotFound => {
                        return Ok(false);
                    }
                    Err(error) => return Err(publish_error(subject, &error)),
                }
            }
        }
        Ok(true)
    }

    /// Publishes the dead-lettered copy of `envelope`, consumed by `group` from `topic`.
    pub(crate) async fn publish_dead_letter(
        &self,
        group: &str,
        topic: &str,
        envelope: &Envelope,
        error: &str,
        attempts: u32,
    ) -> Result<(), BusError> {
        let mut copy = envelope.clone();
        copy.deadlettertopic = Some(topic.to_owned());
        copy.deadlettererror = Some(error.to_owned());
        copy.deadletterattempts = Some(attempts);
        self.publish(&dead_letter_topic(group), std::slice::from_ref(&copy))
            .await
    }
}

#[async_trait]
impl Bus for NatsBus {
    /// Waits until JetStream has stored (or recognised as a duplicate) every envelope. A batch
    /// that fails part-way may have stored a prefix of it; publishing it again is safe.
    async fn publish(&self, topic: &str, envelopes: &[Envelope]) -> Result<(), BusError> {
        self.ensure_open()?;
        if envelopes.is_empty() {
            return Ok(());
        }
        let subject = names::subject(&self.inner.config.prefix, topic).map_err(invalid)?;
        self.ensure_stream(topic).await?;
        if self.publish_acked(&subject, envelopes).await? {
            return Ok(());
        }
        self.forget_stream(topic);
        self.ensure_stream(topic).await?;
        if self.publish_acked(&subject, envelopes).await? {
            Ok(())
        } else {
            Err(BusError::Unavailable(format!("no stream stores {subject}")))
        }
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.ensure_open()?;
        let subscription = NatsSubscription::open(self.clone(), topic, group, options).await?;
        Ok(Box::new(subscription))
    }

    /// A round trip to JetStream (its account information), so a server without JetStream, or
    /// one that cannot answer, is not ready. While the client is reconnecting it answers at
    /// once, without waiting for the request to time out.
    async fn ping(&self) -> Result<(), BusError> {
        self.ensure_open()?;
        let state = self.inner.client.connection_state();
        if state != async_nats::connection::State::Connected {
            return Err(BusError::Unavailable(format!(
                "not connected to NATS ({state})"
            )));
        }
        account_info(&self.inner.jetstream)
            .await
            .map_err(|error| BusError::Unavailable(format!("JetStream did not answer: {error}")))
    }
}

/// Asks JetStream for the account's information and reads only whether it is an error:
/// async-nats's typed `query_account` expects fields that servers before 2.10 do not send.
async fn account_info(jetstream: &jetstream::Context) -> Result<(), String> {
    let answer: serde_json::Value = jetstream
        .request("INFO", &())
        .await
        .map_err(|error| error.to_string())?;
    match answer.get("error") {
        Some(error) => Err(error.to_string()),
        None => Ok(()),
    }
}

fn invalid(error: NameError) -> BusError {
    BusError::Unavailable(error.to_string())
}

fn publish_error(subject: &str, error: &dyn std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("publishing to {subject} failed: {error}"))
}
