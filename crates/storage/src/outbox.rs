//! The transactional outbox and its relay. A service appends its events inside the transaction
//! that changes its state; the relay claims committed rows, publishes them and deletes them.
//! A claim is a lease (`claimed_by`, `claimed_until`): concurrent relays, in one process or in
//! several replicas, never publish a row at the same time, and a relay that dies mid-batch only
//! delays its rows until the lease expires. A row published but not yet deleted when a process
//! dies is published again with the same event id, which the bus de-duplicates.

use std::borrow::Borrow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kernel::{Bus, BusError, Consumes, Envelope, Shutdown};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::db::{Backend, Db, StorageError, Tx};

/// Appends `envelope` to the outbox inside `tx`, to be published on `topic` once `tx` commits.
pub async fn append(tx: &mut Tx, topic: &str, envelope: &Envelope) -> Result<(), sqlx::Error> {
    let body = serde_json::to_string(envelope).expect("envelopes serialize to JSON");
    crate::with_tx!(tx, conn => sqlx::query(
        "INSERT INTO outbox (event_id, topic, envelope, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(envelope.id)
    .bind(topic)
    .bind(body)
    .bind(kernel::now())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Appends each `(topic, envelope)` to the outbox inside `tx`, in order.
pub async fn append_all<T, E>(
    tx: &mut Tx,
    rows: impl IntoIterator<Item = (T, E)>,
) -> Result<(), sqlx::Error>
where
    T: AsRef<str>,
    E: Borrow<Envelope>,
{
    for (topic, envelope) in rows {
        append(tx, topic.as_ref(), envelope.borrow()).await?;
    }
    Ok(())
}

/// Commits `tx` and wakes the relay (`Relay::waker`) so the outbox rows it wrote leave at once
/// instead of at the relay's next poll.
pub async fn commit_and_wake(tx: Tx, relay: &Notify) -> Result<(), StorageError> {
    tx.commit().await?;
    relay.notify_one();
    Ok(())
}

/// Rows not yet published (claimed or not), for metrics and tests.
pub async fn backlog(db: &Db) -> Result<i64, sqlx::Error> {
    crate::with_db!(db, conn => sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(conn).await)
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Bus(#[from] kernel::BusError),
    #[error("outbox row {0} holds an unreadable envelope: {1}")]
    Corrupt(i64, serde_json::Error),
}

/// Moves committed outbox rows to the bus.
#[derive(Clone)]
pub struct Relay {
    db: Db,
    bus: Arc<dyn Bus>,
    wake: Arc<Notify>,
    batch_size: i64,
    lease: Duration,
    poll_interval: Duration,
}

const CLAIM_SQLITE: &str = "UPDATE outbox SET claimed_by = $1, claimed_until = $2
    WHERE outbox_id IN (
        SELECT outbox_id FROM outbox
        WHERE claimed_until IS NULL OR claimed_until < $3
        ORDER BY outbox_id LIMIT $4)
    RETURNING outbox_id, topic, envelope";

const CLAIM_POSTGRES: &str = "UPDATE outbox SET claimed_by = $1, claimed_until = $2
    WHERE outbox_id IN (
        SELECT outbox_id FROM outbox
        WHERE claimed_until IS NULL OR claimed_until < $3
        ORDER BY outbox_id LIMIT $4
        FOR UPDATE SKIP LOCKED)
    RETURNING outbox_id, topic, envelope";

impl Relay {
    pub fn new(db: Db, bus: Arc<dyn Bus>) -> Self {
        Self {
            db,
            bus,
            wake: Arc::new(Notify::new()),
            batch_size: 256,
            lease: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
        }
    }

    /// How long a claim lasts before another relay may take the rows over.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The handle a service notifies after committing outbox rows, so the relay runs at once
    /// instead of at its next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims, publishes and deletes one batch; returns how many rows it published.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let claim_id = kernel::new_id();
        let now = kernel::now();
        let until =
            now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::seconds(30));
        let claim_sql = match self.db.backend() {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let mut rows: Vec<(i64, String, String)> = crate::with_db!(&self.db, conn => sqlx::query_as(claim_sql)
            .bind(claim_id)
            .bind(until)
            .bind(now)
            .bind(self.batch_size)
            .fetch_all(conn)
            .await)?;
        if rows.is_empty() {
            return Ok(0);
        }
        rows.sort_by_key(|(outbox_id, _, _)| *outbox_id);
        let count = rows.len();
        if let Err(error) = self.publish(&rows).await {
            self.release(claim_id).await;
            return Err(error);
        }
        crate::with_db!(&self.db, conn => sqlx::query("DELETE FROM outbox WHERE claimed_by = $1")
            .bind(claim_id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(count)
    }

    /// Publishes rows in outbox order, one bus call per run of rows with the same topic.
    async fn publish(&self, rows: &[(i64, String, String)]) -> Result<(), RelayError> {
        let mut start = 0;
        while start < rows.len() {
            let topic = &rows[start].1;
            let end = rows[start..]
                .iter()
                .position(|(_, t, _)| t != topic)
                .map_or(rows.len(), |offset| start + offset);
            let envelopes = rows[start..end]
                .iter()
                .map(|(outbox_id, _, body)| {
                    serde_json::from_str::<Envelope>(body)
                        .map_err(|e| RelayError::Corrupt(*outbox_id, e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.bus.publish(topic, &envelopes).await?;
            start = end;
        }
        Ok(())
    }

    async fn release(&self, claim_id: Uuid) {
        let released = crate::with_db!(&self.db, conn => sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1",
        )
        .bind(claim_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()));
        if let Err(error) = released {
            tracing::warn!(%error, "could not release outbox claim; it expires on its own");
        }
    }

    /// A SQLite database belongs to one process, so claims found at start-up were left by a
    /// previous run of this process that died: release them now instead of waiting out their
    /// lease. On PostgreSQL other live replicas may hold claims, so leases run their course.
    pub async fn release_orphaned_claims(&self) -> Result<u64, sqlx::Error> {
        match &self.db {
            Db::Sqlite { writer, .. } => Ok(sqlx::query(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL",
            )
            .execute(writer)
            .await?
            .rows_affected()),
            Db::Postgres(_) => Ok(0),
        }
    }

    /// Relays until `shutdown` resolves: at once when woken, otherwise every poll interval
    /// (which also picks up rows written by other replicas and expired claims).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        if let Err(error) = self.release_orphaned_claims().await {
            tracing::warn!(%error, "could not release orphaned outbox claims; they expire on their own");
        }
        let mut failures = 0u32;
        let backoff = kernel::retry::Backoff::default();
        loop {
            let wait = match self.relay_once().await {
                Ok(n) if n as i64 >= self.batch_size => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    self.poll_interval
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, failures, "outbox relay failed; backing off");
                    backoff.delay(failures)
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Spawns this relay and `per_topic` competing consumers of `group` on each of `topics`
    /// ([`kernel::spawn_consumers`]): the workers every service runs. They stop when `shutdown`
    /// fires. Fails when the bus refuses a subscription.
    pub async fn spawn_with_consumers(
        &self,
        bus: &dyn Bus,
        group: &str,
        topics: impl IntoIterator<Item = Consumes>,
        per_topic: usize,
        shutdown: &Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, BusError> {
        let mut handles = vec![tokio::spawn(self.clone().run(shutdown.clone().wait()))];
        handles.extend(kernel::spawn_consumers(bus, group, topics, per_topic, shutdown).await?);
        Ok(handles)
    }
}

/// When the oldest unpublished row was written, for lag metrics.
pub async fn oldest(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    crate::with_db!(db, conn => sqlx::query_scalar("SELECT MIN(created_at) FROM outbox").fetch_one(conn).await)
}
