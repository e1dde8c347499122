//! Message handlers whose effects are one database transaction. A service writes a
//! [`TxHandler`] — inbox check, state changes and outbox rows inside a transaction it is given —
//! and [`Transactional`] turns it into a `kernel::MessageHandler` that commits: one message per
//! transaction when handled alone, a whole batch per transaction when the consumer hands over a
//! batch. One commit (one disk sync) per batch instead of per message is what lets a consumer
//! keep up with a backlog.
//!
//! A batch is all or nothing: should a message fail, the transaction is rolled back and the
//! batch is applied again without it, and the failed message is then handled alone (by then what
//! the rest of its batch wrote is committed, which may be what it was waiting for). One early or
//! failing message thus costs a retry of the rest and its own transaction, never one transaction
//! per message of the batch, and never holds back, or takes effect for, the others. Past a few
//! failures in one batch, replaying the whole batch after each would cost too much: a message
//! that arrived early then splits it instead — the messages before it applied cleanly and
//! commit as a batch of their own, and the batch goes on after it — so a batch of many early
//! messages (a cause held up on another topic) costs a transaction per early message, not one
//! per message. A batch whose messages keep failing otherwise (its database is failing), or that
//! fails outside any message (its begin or commit), goes one message per transaction.

use std::sync::atomic::{AtomicU64, Ordering};
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

    /// Called once before a batch of several messages is applied in `tx`: a handler may read
    /// up front, in a statement or two, what each `apply` would otherwise read on its own
    /// (keeping it in [`Tx::scratch`]). On SQLite every statement is a trip to the connection's
    /// thread while the database's single writer waits, so per-message reads bound how fast
    /// a batch goes. An error fails the batch's transaction, whose messages then go one by one.
    async fn prepare(&self, _tx: &mut Tx, _envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        Ok(())
    }

    /// Called once every message of `tx` was applied, before it commits: a handler that left
    /// writes waiting (to send a batch's writes as one query) writes them here. An error fails
    /// the transaction, whose messages then go one by one.
    async fn finish(&self, _tx: &mut Tx) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// Runs a [`TxHandler`] in transactions on `db`, waking the outbox relay (and any other worker
/// that reads what the handler writes) after each commit.
pub struct Transactional<H> {
    db: Db,
    relay: Arc<Notify>,
    also_wake: Vec<Arc<Notify>>,
    inbox_group: Option<String>,
    handler: H,
    committed: AtomicU64,
    rolled_back: AtomicU64,
}

/// Transactions a [`Transactional`] has committed and rolled back since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxCounts {
    pub committed: u64,
    pub rolled_back: u64,
}

impl TxCounts {
    /// One transaction committed and none rolled back: a batch applied as one.
    pub const ONE_COMMIT: TxCounts = TxCounts {
        committed: 1,
        rolled_back: 0,
    };

    /// The transactions committed and rolled back since `earlier` was read.
    pub fn since(self, earlier: TxCounts) -> TxCounts {
        TxCounts {
            committed: self.committed - earlier.committed,
            rolled_back: self.rolled_back - earlier.rolled_back,
        }
    }
}

/// How many messages of one batch may fail and be retried without before the batch gives up
/// replaying its whole rest: each failure costs a rolled-back transaction, so a batch that fails
/// throughout (its database is failing) gives up on batching early. Past it, early messages
/// split the batch instead (see the module's documentation).
const MAX_BATCH_FAILURES: usize = 3;

/// Why a transaction did not commit.
enum Failed {
    /// The message at this position of the batch failed; the others may be fine.
    Message(usize, HandlerError),
    /// The transaction itself failed (begin, inbox, commit): no message is to blame.
    Transaction(HandlerError),
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
            committed: AtomicU64::new(0),
            rolled_back: AtomicU64::new(0),
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

    /// Transactions committed and rolled back so far.
    pub fn counts(&self) -> TxCounts {
        TxCounts {
            committed: self.committed.load(Ordering::Relaxed),
            rolled_back: self.rolled_back.load(Ordering::Relaxed),
        }
    }

    async fn apply_all(&self, envelopes: &[&Envelope]) -> Result<(), Failed> {
        let mut tx = self
            .db
            .begin()
            .await
            .map_err(|error| Failed::Transaction(transient(error)))?;
        if let (Some(group), true) = (&self.inbox_group, envelopes.len() > 1) {
            let ids: Vec<_> = envelopes.iter().map(|envelope| envelope.id).collect();
            if let Err(error) = inbox::precheck(&mut tx, group, &ids).await {
                self.roll_back(tx).await;
                return Err(Failed::Transaction(transient(error)));
            }
        }
        if envelopes.len() > 1 {
            if let Err(error) = self.handler.prepare(&mut tx, envelopes).await {
                self.roll_back(tx).await;
                return Err(Failed::Transaction(error));
            }
        }
        for (at, envelope) in envelopes.iter().enumerate() {
            if let Err(error) = self.handler.apply(&mut tx, envelope).await {
                self.roll_back(tx).await;
                return Err(Failed::Message(at, error));
            }
        }
        if let Err(error) = self.handler.finish(&mut tx).await {
            self.roll_back(tx).await;
            return Err(Failed::Transaction(error));
        }
        if let Err(error) = outbox::commit_and_wake(tx, &self.relay).await {
            self.rolled_back.fetch_add(1, Ordering::Relaxed);
            return Err(Failed::Transaction(transient(error)));
        }
        self.committed.fetch_add(1, Ordering::Relaxed);
        for worker in &self.also_wake {
            worker.notify_one();
        }
        Ok(())
    }

    async fn roll_back(&self, tx: Tx) {
        self.rolled_back.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = tx.rollback().await {
            // The connection is then broken and leaves its pool; its rollback is the server's.
            tracing::debug!(%error, "rollback failed");
        }
    }

    /// One message in its own transaction.
    async fn apply_one(&self, envelope: &Envelope) -> Result<(), HandlerError> {
        self.apply_all(&[envelope])
            .await
            .map_err(|failed| match failed {
                Failed::Message(_, error) | Failed::Transaction(error) => error,
            })
    }
}

#[async_trait]
impl<H: TxHandler> MessageHandler for Transactional<H> {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandlerError> {
        self.apply_one(envelope).await
    }

    async fn handle_batch(&self, envelopes: &[&Envelope]) -> Vec<Result<(), HandlerError>> {
        // Every position ends either in a committed batch or among those handled alone.
        let mut results: Vec<Result<(), HandlerError>> = envelopes.iter().map(|_| Ok(())).collect();
        // Positions still to apply together, and those to handle alone afterwards, in order.
        let mut together: Vec<usize> = (0..envelopes.len()).collect();
        let mut alone = Vec::new();
        let mut failures = 0;
        let pick = |positions: &[usize]| -> Vec<&Envelope> {
            positions.iter().map(|&i| envelopes[i]).collect()
        };
        while together.len() > 1 {
            let batch = pick(&together);
            match self.apply_all(&batch).await {
                Ok(()) => together.clear(),
                Err(Failed::Message(at, error)) if failures < MAX_BATCH_FAILURES => {
                    tracing::debug!(size = batch.len(), %error, "a message failed its batch; applying the batch without it");
                    failures += 1;
                    alone.push(together.remove(at));
                }
                Err(Failed::Message(at, error @ HandlerError::Early(_))) => {
                    tracing::debug!(size = batch.len(), %error, "a message arrived early; committing the messages before it and going on after it");
                    let rest = together.split_off(at + 1);
                    alone.extend(together.pop());
                    // What came before the early message applied cleanly in this very batch.
                    if !together.is_empty() && self.apply_all(&pick(&together)).await.is_err() {
                        alone.append(&mut together);
                    }
                    together = rest;
                }
                Err(Failed::Message(_, error) | Failed::Transaction(error)) => {
                    tracing::debug!(size = batch.len(), %error, "batch failed; handling its messages one by one");
                    alone.append(&mut together);
                }
            }
        }
        alone.append(&mut together);
        alone.sort_unstable();
        for i in alone {
            results[i] = self.apply_one(envelopes[i]).await;
        }
        results
    }
}

/// A storage failure inside a handler: worth retrying.
pub fn transient(error: impl Into<StorageError>) -> HandlerError {
    HandlerError::Transient(error.into().to_string())
}
