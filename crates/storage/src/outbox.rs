//! The transactional outbox and its relay. A service appends its events inside the transaction
//! that changes its state; the relay takes committed rows, publishes them and deletes them.
//! Two relays never publish a row at the same time: on PostgreSQL a batch is deleted in a
//! transaction held open (row locks, `SKIP LOCKED`) while it is published, so replicas skip it
//! and a relay that dies mid-batch leaves it to the others at once; a SQLite database belongs
//! to one process, whose relays take turns under the database's relay lock. A row published
//! but not yet deleted when a process dies is published again with the same event id, which
//! the bus de-duplicates.

use std::borrow::Borrow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kernel::{Bus, BusError, Consumes, Envelope, EnvelopeText, Shutdown};
use tokio::sync::Notify;

use crate::db::{Db, StorageError, Tx};

/// Appends `envelope` to the outbox inside `tx`, to be published on `topic` once `tx` commits.
/// The row is written when `tx` commits, together with every other row the transaction
/// appended, in one statement: a batch of messages handled in one transaction costs one outbox
/// insert, not one per event.
pub fn append(tx: &mut Tx, topic: &str, envelope: &Envelope) {
    tx.outbox.push(row(topic, envelope));
}

/// The outbox row of `envelope` on `topic` (event id, topic, envelope text), for a statement
/// that writes it together with its state change ([`with_row`]).
pub fn row(topic: &str, envelope: &Envelope) -> (uuid::Uuid, String, String) {
    let body = serde_json::to_string(envelope).expect("envelopes serialize to JSON");
    (envelope.id, topic.to_owned(), body)
}

/// PostgreSQL: `write` (an `INSERT` or `UPDATE` whose parameters are `$1…$params`) and one
/// outbox row as a single statement, which commits on its own: one round trip instead of four
/// (`BEGIN`, the write, the outbox insert, `COMMIT`). The row is written only if `write`
/// changed exactly one row, and the statement's row count says whether it did. The caller
/// binds the write's parameters, then the row's event id, topic and envelope ([`row`]) and the
/// time, and wakes the relay when a row was written.
pub fn with_row(write: &str, params: usize) -> String {
    format!(
        "WITH written AS ({write} RETURNING 1)
         INSERT INTO outbox (event_id, topic, envelope, created_at)
         SELECT ${}, ${}, ${}, ${} FROM written",
        params + 1,
        params + 2,
        params + 3,
        params + 4
    )
}

/// Appends each `(topic, envelope)` to the outbox inside `tx`, in order.
pub fn append_all<T, E>(tx: &mut Tx, rows: impl IntoIterator<Item = (T, E)>)
where
    T: AsRef<str>,
    E: Borrow<Envelope>,
{
    for (topic, envelope) in rows {
        append(tx, topic.as_ref(), envelope.borrow());
    }
}

/// Writes the rows `append` gathered in `tx`, in the order they were appended (the relay
/// publishes by `outbox_id`), as one statement. Called by `Tx::commit` just before it commits.
pub(crate) async fn flush(tx: &mut Tx) -> Result<(), sqlx::Error> {
    let rows = std::mem::take(&mut tx.outbox);
    match rows.as_slice() {
        [] => {}
        // Most transactions append one row (an HTTP command, a lone message): bound as is,
        // without the JSON list's encoding and parsing.
        [(event_id, topic, body)] => {
            crate::with_tx!(&mut *tx, conn => sqlx::query(
                "INSERT INTO outbox (event_id, topic, envelope, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(event_id)
            .bind(topic)
            .bind(body)
            .bind(kernel::now())
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        }
        _ => {
            let list = encode_list(rows.iter().map(|(id, topic, body)| {
                let write = |bytes: &mut Vec<u8>| bytes.extend_from_slice(body.as_bytes());
                (*id, topic.as_str(), write)
            }));
            let sql = insert_list(tx.backend());
            crate::with_tx!(&mut *tx, conn => sqlx::query(sql)
                .bind(kernel::now())
                .bind(&list.rows)
                .bind(&list.envelopes)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()))?;
        }
    }
    Ok(())
}

/// The statement that writes a [`list`] of rows, in the list's order (the relay publishes by
/// `outbox_id`), with `$1` the time they were written, `$2` the list and `$3` the envelopes
/// ([`OutboxList`]): SQLite stores ids as 16-byte blobs (`unhex`), PostgreSQL parses the hex as
/// a uuid. For a query that writes them with other writes ([`crate::Db::write_once`]), its
/// placeholders move with [`crate::renumbered`].
pub fn insert_list(backend: crate::Backend) -> &'static str {
    match backend {
        crate::Backend::Sqlite => {
            "INSERT INTO outbox (event_id, topic, envelope, created_at)
             SELECT unhex(value ->> 0), value ->> 1,
                 CAST(substr($3, value ->> 2, value ->> 3) AS TEXT), $1
             FROM json_each($2) ORDER BY key"
        }
        crate::Backend::Postgres => {
            "INSERT INTO outbox (event_id, topic, envelope, created_at)
             SELECT (value ->> 0)::uuid, value ->> 1,
                 convert_from(substring($3::bytea FROM (value ->> 2)::int FOR (value ->> 3)::int),
                     'UTF8'),
                 $1
             FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS r (value, n)
             ORDER BY n"
        }
    }
}

/// Outbox rows as [`insert_list`] reads them: `rows`, a JSON list `[[bare hex id, topic,
/// offset, length], …]`, and `envelopes`, their texts end to end ([`crate::Texts`]), each bound
/// as a parameter of its own.
#[derive(Debug)]
pub struct OutboxList {
    pub rows: String,
    pub envelopes: Vec<u8>,
}

/// The outbox rows of `envelopes`, each published on its topic, as [`insert_list`] reads them.
pub fn list<'a>(envelopes: impl IntoIterator<Item = (&'a str, &'a Envelope)>) -> OutboxList {
    encode_list(envelopes.into_iter().map(|(topic, envelope)| {
        let write = move |bytes: &mut Vec<u8>| {
            serde_json::to_writer(bytes, envelope).expect("envelopes serialize to JSON")
        };
        (envelope.id, topic, write)
    }))
}

/// `(event id, topic, what writes the envelope's text)` rows as [`insert_list`] reads them.
fn encode_list<'a, W: FnOnce(&mut Vec<u8>)>(
    rows: impl Iterator<Item = (uuid::Uuid, &'a str, W)>,
) -> OutboxList {
    let mut texts = crate::Texts::default();
    let rows: Vec<_> = rows
        .map(|(id, topic, write)| {
            let (offset, length) = texts.push_with(write);
            (crate::Hex(id), topic, offset, length)
        })
        .collect();
    OutboxList {
        rows: serde_json::to_string(&rows).expect("strings serialize to JSON"),
        envelopes: texts.into_bytes(),
    }
}

/// Commits `tx` and, if it appended outbox rows, wakes the relay (`Relay::waker`) so they leave
/// at once instead of at the relay's next poll. (A commit with nothing to publish does not send
/// the relay looking.)
pub async fn commit_and_wake(tx: Tx, relay: &Notify) -> Result<(), StorageError> {
    let appended = !tx.outbox.is_empty();
    tx.commit().await?;
    if appended {
        relay.notify_one();
    }
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
}

/// An outbox row as the relay reads it: `(outbox_id, event_id, topic, envelope)`.
type Row = (i64, uuid::Uuid, String, String);

/// Moves committed outbox rows to the bus.
#[derive(Clone)]
pub struct Relay {
    db: Db,
    bus: Arc<dyn Bus>,
    wake: Arc<Notify>,
    batch_size: i64,
    poll_interval: Duration,
}

/// Takes and deletes the oldest batch. Rows under a claim written by an earlier version of the
/// relay (`claimed_by`, `claimed_until`, a lease) wait until it runs out. The ids are taken
/// first (an init plan) and deleted by index look-ups; as a join (`IN (SELECT …)`) the delete
/// side scanned the whole table to match them.
const TAKE_POSTGRES: &str = "DELETE FROM outbox WHERE outbox_id = ANY(ARRAY(
        SELECT outbox_id FROM outbox
        WHERE claimed_until IS NULL OR claimed_until < $1
        ORDER BY outbox_id LIMIT $2
        FOR UPDATE SKIP LOCKED))
    RETURNING outbox_id, event_id, topic, envelope";

/// The relay's transaction on PostgreSQL, opened in the same round trip as its settings:
///
/// - `enable_seqscan = off`: the outbox is a queue whose live rows are few and whose dead ones
///   pile up between vacuums (autovacuum looks once a minute by default: ~180,000 rows at
///   3,000 writes a second). Its statistics say "small table", so the planner read the whole
///   heap, every dead version included, to find the oldest rows of each batch. The primary
///   key's index yields them in order and learns to skip dead entries (`kill_prior_tuple`).
/// - `synchronous_commit = off`: the delete need not be durable. A delete lost to a crash
///   brings the rows back, and they are published again under the same event ids, which the
///   consumers' inboxes drop; the publish itself the bus made durable before it returned.
const BEGIN_RELAY_POSTGRES: &str =
    "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL synchronous_commit = off";

impl Relay {
    pub fn new(db: Db, bus: Arc<dyn Bus>) -> Self {
        Self {
            db,
            bus,
            wake: Arc::new(Notify::new()),
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
        }
    }

    /// The handle a service notifies after committing outbox rows, so the relay runs at once
    /// instead of at its next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Publishes and deletes one batch of committed rows; returns how many it published.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        match &self.db {
            Db::Sqlite {
                writer,
                reader,
                relay,
            } => self.relay_locked(writer, reader, relay).await,
            Db::Postgres(pool) => self.relay_in_tx(pool).await,
        }
    }

    /// SQLite: the database's relay lock stands in for a claim, so a batch costs one read and
    /// one delete. Rows under a live claim of an earlier version are still respected.
    ///
    /// Deleting takes the database's single writer, which the service's consumers keep busy
    /// under load; waiting for it after every batch held the relay to one batch per writer
    /// turn. So while a backlog remains, published rows stay (up to [`MAX_UNDELETED`]) and
    /// later reads start past them: outbox ids grow in commit order here (one writer, one
    /// transaction at a time), so nothing committed later can take a lower id. They are
    /// deleted together once the relay catches up or enough have gathered. Should the process
    /// stop first, they are published again at the next start under the same event ids, which
    /// the bus and the consumers' inboxes drop as duplicates.
    async fn relay_locked(
        &self,
        writer: &sqlx::SqlitePool,
        reader: &sqlx::SqlitePool,
        lock: &tokio::sync::Mutex<Published>,
    ) -> Result<usize, RelayError> {
        let mut published = lock.lock().await;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT outbox_id, event_id, topic, envelope FROM outbox
             WHERE outbox_id > $3 AND (claimed_until IS NULL OR claimed_until < $1)
             ORDER BY outbox_id LIMIT $2",
        )
        .bind(kernel::now())
        .bind(self.batch_size)
        .bind(published.upto)
        .fetch_all(reader)
        .await?;
        if !rows.is_empty() {
            self.publish(&rows).await?;
        }
        if let Some((last, ..)) = rows.last() {
            published.upto = *last;
        }
        published
            .undeleted
            .extend(rows.iter().map(|(outbox_id, ..)| *outbox_id));
        let caught_up = (rows.len() as i64) < self.batch_size;
        if published.undeleted.is_empty()
            || !(caught_up || published.undeleted.len() >= MAX_UNDELETED)
        {
            return Ok(rows.len());
        }
        let ids = std::mem::take(&mut published.undeleted);
        if let Err(error) = delete_published(writer, &ids).await {
            // Published all the same: they are deleted with the next ones.
            published.undeleted = ids;
            return Err(error);
        }
        Ok(rows.len())
    }

    /// PostgreSQL: replicas in other processes relay the same table. A batch is deleted in a
    /// transaction that stays open while it is published: the row locks keep other relays off
    /// it (`SKIP LOCKED`), a failed publish rolls the delete back, and a relay that dies
    /// mid-batch releases it at once (its connection drops). One commit per batch.
    async fn relay_in_tx(&self, pool: &sqlx::PgPool) -> Result<usize, RelayError> {
        let mut tx = pool.begin_with(BEGIN_RELAY_POSTGRES).await?;
        let mut rows: Vec<Row> = sqlx::query_as(TAKE_POSTGRES)
            .bind(kernel::now())
            .bind(self.batch_size)
            .fetch_all(&mut *tx)
            .await?;
        if !rows.is_empty() {
            // The statement returns rows in no particular order; publish them oldest first.
            rows.sort_by_key(|(outbox_id, ..)| *outbox_id);
            if let Err(error) = self.publish(&rows).await {
                // Rolled back here, not when the pooled connection is next used: until then
                // the rows stay locked, and the next attempt (on another connection) would
                // skip them.
                tx.rollback().await?;
                return Err(error);
            }
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Publishes rows in outbox order, in one bus call: each run of rows with the same topic
    /// is one run of `Bus::publish_texts`, which takes the envelopes as the text they are
    /// stored as (parsing each only to have the bus write it out again cost ~2.7% of the
    /// platform's instructions under a backlog; BENCHMARKS.md, eighteenth run).
    async fn publish(&self, rows: &[Row]) -> Result<(), RelayError> {
        let mut runs: Vec<(&str, Vec<EnvelopeText<'_>>)> = Vec::new();
        for (_, id, topic, body) in rows {
            let text = EnvelopeText {
                id: *id,
                text: body,
            };
            match runs.last_mut() {
                Some((run_topic, texts)) if *run_topic == topic.as_str() => texts.push(text),
                _ => runs.push((topic, vec![text])),
            }
        }
        let runs: Vec<(&str, &[EnvelopeText<'_>])> = runs
            .iter()
            .map(|(topic, texts)| (*topic, texts.as_slice()))
            .collect();
        self.bus.publish_texts(&runs).await?;
        Ok(())
    }

    /// Relays no longer write claims, so claims found at start-up were left by a run of an
    /// earlier version that died. A SQLite database belongs to one process: release them now
    /// instead of waiting out their lease. On PostgreSQL a live replica of that earlier version
    /// may still hold them, so their leases run their course.
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

/// What the relays of a SQLite database published and have not deleted yet (see
/// `Relay::relay_locked`): reads start past `upto`.
#[derive(Debug, Default)]
pub struct Published {
    upto: i64,
    undeleted: Vec<i64>,
}

/// Published rows a SQLite relay leaves in the outbox at most before deleting them.
const MAX_UNDELETED: usize = 4096;

/// Deletes published rows `ids` on SQLite.
async fn delete_published(writer: &sqlx::SqlitePool, ids: &[i64]) -> Result<(), RelayError> {
    let mut conn = writer.acquire().await?;
    // The delete is not synced to disk: should the machine lose power before a later
    // commit syncs the log, the rows come back and are published again under the same
    // event ids, which the bus drops as duplicates. What must be durable, the publish, the
    // bus synced before it returned. One round trip for the three statements.
    let deleted = sqlx::query(
        "PRAGMA synchronous = NORMAL;
         DELETE FROM outbox WHERE outbox_id IN (SELECT value FROM json_each($1));
         PRAGMA synchronous = FULL",
    )
    .bind(serde_json::to_string(&ids).expect("integers serialize to JSON"))
    .execute(&mut *conn)
    .await;
    if deleted.is_err() {
        // The last pragma may not have run: leave the connection synced for whatever
        // writes through it next outside a transaction (transactions set it themselves).
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
    }
    deleted?;
    Ok(())
}

/// When the oldest unpublished row was written, for lag metrics.
pub async fn oldest(db: &Db) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    crate::with_db!(db, conn => sqlx::query_scalar("SELECT MIN(created_at) FROM outbox").fetch_one(conn).await)
}
