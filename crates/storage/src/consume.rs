//! Message handlers whose effects are one database transaction. A service writes a
//! [`TxHandler`] — inbox check, state changes and outbox rows inside a transaction it is given —
//! and [`Transactional`] turns it into a `kernel::MessageHandler` that commits: one message per
//! transaction when handled alone, a whole batch per transaction when the consumer hands over a
//! batch. One commit (one disk sync) per batch instead of per message is what lets a consumer
//! keep up with a backlog.
//!
//! A batch is all or nothing: should any message fail, the transaction is rolled back and every
//! message of the batch is handled again alone, so one early or failing message only costs its
//! batch a second pass and never holds back, or takes effect for, the others.

use std::sync::Arc;

use async_trait::async_trait;
use kernel::{Envelope, HandlerError, MessageHandler};
use tokio::sync::Notify;

use crate::db::{Db, StorageError, Tx};
use crate::{inbox, outbox};

/// A message handler that writes inside a transaction it does not own. `apply` must not commit
/// or roll back; it returns `Ok` when the message needs nothing more (including "already
/// handled", which its inbox row tells), and its writes are committed with the batch.
#[async_trait]
pub trait TxHandler: Send + Sync + 'static {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError>;
}

/// Runs a [`TxHandler`] in transactions on `db`, waking the outbox relay (and any other worker
/// that reads what the handler writes) after each commit.
pub struct Transactional<H> {
    db: Db,
    relay: Arc<Notify>,
    also_wake: Vec<Arc<Notify>>,
    inbox_group: Option<String>,
    handler: H,
}

impl<H: TxHandler> Transactional<H> {
    /// `relay` is the service's `Relay::waker`: rows the handler appends to the outbox leave as
    /// soon as their transaction commits.
    pub fn new(db: Db, relay: Arc<Notify>, handler: H) -> Self {
        Self {
            db,
            relay,
            also_wake: Vec::new(),
            inbox_group: None,
            handler,
        }
    }

    /// Also wakes `worker` after each commit: a worker that acts on rows the handler writes
    /// (a notification sender) then starts at once instead of at its next poll.
    pub fn waking(mut self, worker: Arc<Notify>) -> Self {
        self.also_wake.push(worker);
        self
    }

    /// Names the consumer group whose inbox the handler keeps (`inbox::first_delivery`): a
    /// batch then inserts every inbox row in one statement up front, and the handler's own
    /// checks answer from that instead of one insert per message.
    pub fn with_inbox(mut self, group: &str) -> Self {
        self.inbox_group = Some(group.to_owned());
        self
    }

    async fn apply_all(&self, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        let mut tx = self.db.begin().await.map_err(transient)?;
        if let (Some(group), true) = (&self.inbox_group, envelopes.len() > 1) {
            let ids: Vec<_> = envelopes.iter().map(|envelope| envelope.id).collect();
            inbox::precheck(&mut tx, group, &ids)
                .await
                .map_err(transient)?;
        }
        for envelope in envelopes {
            self.handler.apply(&mut tx, envelope).await?;
        }
        outbox::commit_and_wake(tx, &self.relay)
            .await
            .map_err(transient)?;
        for worker in &self.also_wake {
            worker.notify_one();
        }
        Ok(())
    }
}

#[async_trait]
impl<H: TxHandler> MessageHandler for Transactional<H> {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandlerError> {
        self.apply_all(&[envelope]).await
    }

    async fn handle_batch(&self, envelopes: &[&Envelope]) -> Vec<Result<(), HandlerError>> {
        if envelopes.len() > 1 {
            match self.apply_all(envelopes).await {
                Ok(()) => return envelopes.iter().map(|_| Ok(())).collect(),
                Err(error) => {
                    tracing::debug!(size = envelopes.len(), %error, "batch failed; handling its messages one by one");
                }
            }
        }
        let mut results = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            results.push(self.handle(envelope).await);
        }
        results
    }
}

/// A storage failure inside a handler: worth retrying.
pub fn transient(error: impl Into<StorageError>) -> HandlerError {
    HandlerError::Transient(error.into().to_string())
}
