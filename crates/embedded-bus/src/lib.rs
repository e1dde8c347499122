//! The embedded, durable event bus: the `kernel::Bus` port over its own SQLite file, used in
//! embedded mode where every service runs in one process. A publish is committed and synced
//! (WAL, `synchronous=FULL` for that commit) before it returns; each group's position is its set of unacknowledged
//! deliveries, so a killed process loses nothing and redelivers what was not acked.
//! One process owns the file at a time: opening it hands out again every in-flight delivery.

mod schema;
mod subscription;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use kernel::bus::dead_letter_topic;
use kernel::{Bus, BusError, Envelope, EnvelopeText, SubscribeOptions, Subscription};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection, SqlitePool};
use tokio::sync::Notify;

use crate::subscription::EmbeddedSubscription;

// The statement as a literal, so that `concat!` can build on it.
macro_rules! begin_write {
    () => {
        "BEGIN IMMEDIATE"
    };
}

/// Every transaction that writes takes the write lock up front. A deferred transaction that
/// reads and then writes fails at once with "database is locked" when another process (an
/// operator tool attached to the file) wrote in between; an immediate one waits its turn.
pub(crate) const BEGIN_WRITE: &str = begin_write!();

/// Stores messages at `$1`, each once per topic: a message published again under the same id
/// is dropped. `$2` is a JSON list of `[topic, event id, offset, length]` and `$3` the
/// envelopes' texts end to end, as bytes, where each message's 1-based byte offset and length
/// find its own ([`encode_rows`]): an envelope inside the JSON list was escaped on the way in,
/// and parsed, re-rendered and unescaped by SQLite, which was most of a publish's work. The
/// schema's trigger gives every group of a message's topic its delivery.
macro_rules! insert_messages {
    () => {
        // `WHERE true` tells SQLite's parser the ON CONFLICT belongs to the INSERT, not a join.
        "INSERT INTO bus_message (topic, event_id, envelope, published_at) \
         SELECT value ->> 0, value ->> 1, CAST(substr($3, value ->> 2, value ->> 3) AS TEXT), $1 \
         FROM json_each($2) WHERE true ORDER BY key \
         ON CONFLICT (topic, event_id) DO NOTHING"
    };
}

/// The publishes waiting for the bus file, committed together in one query: a transaction
/// whose commit alone is synced to disk (see `open_with`) around one insert of every message.
/// It returns the topic of each message stored, to wake their groups (a query's row count
/// would not do: SQLite reports the last insert's count again for the statements after it).
const PUBLISH: &str = concat!(
    "PRAGMA synchronous = FULL; ",
    begin_write!(),
    "; ",
    insert_messages!(),
    " RETURNING topic; COMMIT; PRAGMA synchronous = NORMAL"
);

/// A publish waiting for the next group commit: its messages as `[topic, event id,
/// envelope]`, and where to say how the commit went.
struct Waiting {
    rows: Vec<(String, String, String)>,
    done: tokio::sync::oneshot::Sender<Result<(), BusError>>,
}

/// A handle on the bus file. Cloning is cheap and shares the connection and the wake-ups.
#[derive(Clone)]
pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

struct Inner {
    /// A single connection: every statement, read or write, queues in-process, so SQLite never
    /// answers "busy" and a claim never races another claim.
    pool: SqlitePool,
    /// One `Notify` per topic and group, woken after a commit makes a delivery of that topic
    /// available. A wake-up goes to one consumer of each group, not to all: its siblings would
    /// only find the batch taken. Waiters also poll, so a missed wake-up only delays a delivery.
    wakers: Mutex<HashMap<String, HashMap<String, Arc<Notify>>>>,
    closed: AtomicBool,
    /// Publishes not yet committed. The publisher holding `committer` commits all of them in
    /// one transaction, so concurrent publishers (every service's relay) share one synced
    /// commit instead of queueing for one each.
    waiting: Mutex<Vec<Waiting>>,
    committer: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for EmbeddedBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBus")
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl EmbeddedBus {
    /// Opens (creating if missing) the bus file at `path` and recovers from a previous process:
    /// every delivery it left in flight becomes available at once. A file of an earlier layout
    /// is brought up to date first.
    ///
    /// Fails with `BusError::Unavailable` when the file cannot be opened or is not a bus.
    pub async fn open(path: &Path) -> Result<EmbeddedBus, BusError> {
        Self::open_with(path, true).await
    }

    /// Opens the bus file beside the process that owns it, without taking over its leases:
    /// for operator tools (`alpes dlq …`) that run while the platform is up. SQLite's locking
    /// keeps the two processes' writes apart; the owner notices new deliveries at its next poll.
    /// A file of an earlier layout is refused (left for its owner's `open` to migrate).
    pub async fn attach(path: &Path) -> Result<EmbeddedBus, BusError> {
        if !path.exists() {
            return Err(BusError::Unavailable(format!(
                "no bus file at {}",
                path.display()
            )));
        }
        Self::open_with(path, false).await
    }

    async fn open_with(path: &Path, recover: bool) -> Result<EmbeddedBus, BusError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a published message survives power loss, not only a process crash, because
            // the publisher (an outbox relay) forgets it as soon as publish returns.
            // NORMAL for claims, acks and nacks: in WAL mode a commit is then durable against a
            // crash of this process but may be undone by a power loss, which only hands a
            // message out again. `publish` switches to FULL around its own commit, and a FULL
            // commit syncs every earlier frame of the log too.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Statement journals in memory, not files created and deleted under load (as the
            // services' databases keep them: storage's `TEMP_STORE`).
            .pragma("temp_store", "memory")
            // Idle subscribers poll; logging each statement would drown the logs.
            // A claim hands over up to a batch's deliveries: sqlx's 50 would stop the
            // connection's thread half-way through one and wake it again.
            .row_buffer_size(256)
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            // A ping before each acquire would be one more round trip to the connection's
            // worker thread for every claim, ack and publish; the file is in this process.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|error| {
                BusError::Unavailable(format!("cannot open bus file {}: {error}", path.display()))
            })?;
        let mut tx = pool.begin_with(BEGIN_WRITE).await.map_err(bus_error)?;
        let layout = schema::layout(&mut tx).await.map_err(bus_error)?;
        if !recover && matches!(layout, schema::Layout::Earlier) {
            // The owner, perhaps a build that reads only that layout, may be running: changing
            // the file under it is its own business.
            return Err(BusError::Unavailable(format!(
                "bus file {} has an earlier layout; start the platform once to bring it up to date",
                path.display()
            )));
        }
        schema::create(&mut tx, layout).await.map_err(bus_error)?;
        if recover {
            // The previous owner of the file is gone, so nobody will settle its leases.
            sqlx::query(
                "UPDATE bus_delivery SET in_flight = 0, available_at = $1 WHERE in_flight = 1",
            )
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(bus_error)?;
        }
        tx.commit().await.map_err(bus_error)?;
        Ok(EmbeddedBus {
            inner: Arc::new(Inner {
                pool,
                wakers: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                waiting: Mutex::new(Vec::new()),
                committer: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Closes the file after in-progress statements finish. Afterwards every operation on this
    /// bus, its subscriptions and its deliveries fails with `BusError::Closed`; unsettled
    /// deliveries are handed out again by the next `open`.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let wakers: Vec<Arc<Notify>> = self
            .wakers()
            .values()
            .flat_map(|groups| groups.values().cloned())
            .collect();
        for waker in wakers {
            waker.notify_waiters();
        }
        self.inner.pool.close().await;
    }

    /// How many messages `group` has not yet acknowledged, over all the topics it consumes
    /// (in flight, waiting for a retry, or not yet delivered).
    pub async fn pending(&self, group: &str) -> Result<i64, BusError> {
        self.ensure_open()?;
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM bus_delivery \
             WHERE group_id IN (SELECT group_id FROM bus_group WHERE group_name = $1)",
        )
        .bind(group)
        .fetch_one(&self.inner.pool)
        .await
        .map_err(bus_error)
    }

    /// The messages dead-lettered by `group`, oldest first: the contents of its dead-letter
    /// topic, which are kept whether or not anyone consumes that topic.
    pub async fn dead_letters(&self, group: &str) -> Result<Vec<Envelope>, BusError> {
        self.ensure_open()?;
        let bodies: Vec<String> =
            sqlx::query_scalar("SELECT envelope FROM bus_message WHERE topic = $1 ORDER BY seq")
                .bind(dead_letter_topic(group))
                .fetch_all(&self.inner.pool)
                .await
                .map_err(bus_error)?;
        bodies
            .iter()
            .map(|body| {
                serde_json::from_str(body).map_err(|error| {
                    BusError::Unavailable(format!("unreadable dead letter: {error}"))
                })
            })
            .collect()
    }

    /// The groups that have a dead-letter topic with messages in it, with their counts.
    pub async fn dead_letter_counts(&self) -> Result<Vec<(String, i64)>, BusError> {
        self.ensure_open()?;
        let suffix = dead_letter_topic("");
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT topic, COUNT(*) FROM bus_message WHERE topic LIKE $1 GROUP BY topic ORDER BY topic",
        )
        .bind(format!("%{suffix}"))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(bus_error)?;
        Ok(rows
            .into_iter()
            .map(|(topic, count)| (topic.trim_end_matches(&suffix).to_owned(), count))
            .collect())
    }

    /// Hands every dead letter of `group` back to that group (and only to it) for a fresh round
    /// of attempts, and removes it from the dead-letter topic. Returns how many were replayed.
    /// Handlers are idempotent, so replaying a message that had in fact taken effect is safe.
    pub async fn replay_dead_letters(&self, group: &str) -> Result<usize, BusError> {
        self.ensure_open()?;
        let dead_topic = dead_letter_topic(group);
        let now = now_ms();
        let mut tx = self
            .inner
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(bus_error)?;
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, envelope FROM bus_message WHERE topic = $1 ORDER BY seq")
                .bind(&dead_topic)
                .fetch_all(&mut *tx)
                .await
                .map_err(bus_error)?;
        let mut topics = Vec::new();
        for (dead_seq, body) in &rows {
            let mut envelope: Envelope = serde_json::from_str(body).map_err(|error| {
                BusError::Unavailable(format!("unreadable dead letter: {error}"))
            })?;
            let Some(topic) = envelope.deadlettertopic.take() else {
                continue;
            };
            envelope.deadlettererror = None;
            envelope.deadletterattempts = None;
            let original: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM bus_message WHERE topic = $1 AND event_id = $2",
            )
            .bind(&topic)
            .bind(envelope.id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(bus_error)?;
            // The group consumed `topic` (it dead-lettered a message of it), so its row is
            // there; only a hand-edited file would have it made again here.
            let (group_id, _) = group_id(&mut tx, group, &topic, now).await?;
            let seq = match original {
                Some(seq) => seq,
                // Pruned since: store it again, without fanning it out to the other groups
                // (the schema's trigger gave each one a delivery).
                None => {
                    let seq: i64 = sqlx::query_scalar(
                        "INSERT INTO bus_message (topic, event_id, envelope, published_at) \
                         VALUES ($1, $2, $3, $4) RETURNING seq",
                    )
                    .bind(&topic)
                    .bind(envelope.id.to_string())
                    .bind(serde_json::to_string(&envelope).map_err(|error| {
                        BusError::Unavailable(format!("envelope does not serialize: {error}"))
                    })?)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(bus_error)?;
                    sqlx::query("DELETE FROM bus_delivery WHERE seq = $1 AND group_id <> $2")
                        .bind(seq)
                        .bind(group_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(bus_error)?;
                    seq
                }
            };
            sqlx::query(
                "INSERT INTO bus_delivery (group_id, seq, attempts, available_at, in_flight) \
                 VALUES ($1, $2, 0, $3, 0) ON CONFLICT DO NOTHING",
            )
            .bind(group_id)
            .bind(seq)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(bus_error)?;
            sqlx::query("DELETE FROM bus_delivery WHERE seq = $1")
                .bind(dead_seq)
                .execute(&mut *tx)
                .await
                .map_err(bus_error)?;
            sqlx::query("DELETE FROM bus_message WHERE seq = $1")
                .bind(dead_seq)
                .execute(&mut *tx)
                .await
                .map_err(bus_error)?;
            topics.push(topic);
        }
        tx.commit().await.map_err(bus_error)?;
        for topic in &topics {
            self.wake(topic);
        }
        Ok(topics.len())
    }

    /// Deletes messages published more than `retention` ago that no group still has to
    /// consume, and returns how many went. Dead-letter topics are kept until an operator deals
    /// with them. A pruned id is forgotten by de-duplication and by groups created later, so
    /// `retention` should be far longer than any publisher retries (days, not seconds).
    pub async fn prune(&self, retention: Duration) -> Result<u64, BusError> {
        self.ensure_open()?;
        let cutoff =
            now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        // Below the oldest pending delivery rather than "without a delivery": one scan of
        // bus_delivery instead of a lookup per message, at the price of keeping everything
        // younger than a message some group is stuck on.
        let deleted = sqlx::query(
            "DELETE FROM bus_message WHERE published_at <= $1 AND topic NOT LIKE $2 \
             AND seq < COALESCE((SELECT MIN(seq) FROM bus_delivery), 9223372036854775807)",
        )
        .bind(cutoff)
        .bind(format!("%{}", dead_letter_topic("")))
        .execute(&self.inner.pool)
        .await
        .map_err(bus_error)?
        .rows_affected();
        Ok(deleted)
    }

    /// Commits `batch` in one query (see [`PUBLISH`]) and tells each publisher how it went.
    /// A publish is the one write whose loss would lose a message (the publisher forgets it
    /// once `publish` returns), so its commit alone is synced to disk; see `open_with`.
    async fn commit_publishes(&self, batch: Vec<Waiting>) {
        if batch.is_empty() {
            return;
        }
        let mut rows = Vec::with_capacity(batch.iter().map(|waiting| waiting.rows.len()).sum());
        let mut senders = Vec::with_capacity(batch.len());
        for waiting in batch {
            rows.extend(waiting.rows);
            senders.push(waiting.done);
        }
        let outcome = self.insert_published(&rows).await;
        if let Ok(topics) = &outcome {
            for topic in topics {
                self.wake(topic);
            }
        }
        for sender in senders {
            // A publisher that stopped waiting has nobody to tell.
            let _ = sender.send(outcome.as_ref().map(|_| ()).map_err(Clone::clone));
        }
    }

    /// Stores `rows` (`[topic, event id, envelope]`) in the next group commit and waits for
    /// its outcome: a publisher committing now takes them along, or this one becomes the
    /// committer and takes along whatever waits by then.
    async fn publish_rows(&self, rows: Vec<(String, String, String)>) -> Result<(), BusError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (done, mut committed) = tokio::sync::oneshot::channel();
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Waiting { rows, done });
        let committer = tokio::select! {
            biased;
            result = &mut committed => return committed_result(result),
            committer = self.inner.committer.lock() => committer,
        };
        if let Ok(result) = committed.try_recv() {
            return result;
        }
        let batch = std::mem::take(
            &mut *self
                .inner
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.commit_publishes(batch).await;
        drop(committer);
        committed_result(committed.await)
    }

    /// Runs [`PUBLISH`] over `rows`; returns the topics that gained a message.
    async fn insert_published(
        &self,
        rows: &[(String, String, String)],
    ) -> Result<std::collections::BTreeSet<String>, BusError> {
        self.ensure_open()?;
        let mut conn = self.inner.pool.acquire().await.map_err(bus_error)?;
        let (list, envelopes) = encode_rows(rows);
        let published: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(PUBLISH)
            .bind(now_ms())
            .bind(list)
            .bind(envelopes)
            .fetch_all(&mut *conn)
            .await;
        match published {
            Ok(topics) => Ok(topics.into_iter().collect()),
            Err(error) => {
                // The query stopped at the failing statement, perhaps inside its transaction:
                // end that here, or close the connection so that nothing else runs in it.
                if sqlx::query("ROLLBACK; PRAGMA synchronous = NORMAL")
                    .execute(&mut *conn)
                    .await
                    .is_err()
                {
                    conn.close_on_drop();
                }
                Err(bus_error(error))
            }
        }
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    pub(crate) fn ensure_open(&self) -> Result<(), BusError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }

    fn wakers(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Arc<Notify>>>> {
        // The map stays consistent even if a holder panicked: it only ever gains entries.
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The wake-up shared by the consumers of `group` on `topic`.
    pub(crate) fn waker(&self, topic: &str, group: &str) -> Arc<Notify> {
        self.wakers()
            .entry(topic.to_owned())
            .or_default()
            .entry(group.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes one waiting consumer of each group of `topic` (or the next one to wait).
    pub(crate) fn wake(&self, topic: &str) {
        let wakers: Vec<Arc<Notify>> = self
            .wakers()
            .get(topic)
            .map(|groups| groups.values().cloned().collect())
            .unwrap_or_default();
        for waker in wakers {
            waker.notify_one();
        }
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn publish(&self, topic: &str, envelopes: &[Envelope]) -> Result<(), BusError> {
        self.publish_runs(&[(topic, envelopes)]).await
    }

    /// Every run's messages go into the same group commit, in order.
    async fn publish_runs(&self, runs: &[(&str, &[Envelope])]) -> Result<(), BusError> {
        self.ensure_open()?;
        let mut rows = Vec::new();
        for (topic, envelopes) in runs {
            rows.extend(message_rows(topic, envelopes)?);
        }
        self.publish_rows(rows).await
    }

    /// The texts are stored as they are: the bus keeps an envelope as text, and a text that is
    /// not one is dropped, with an error logged, by the consumers that claim it.
    async fn publish_texts(&self, runs: &[(&str, &[EnvelopeText<'_>])]) -> Result<(), BusError> {
        self.ensure_open()?;
        let rows = runs
            .iter()
            .flat_map(|(topic, texts)| {
                texts.iter().map(|text| {
                    (
                        (*topic).to_owned(),
                        text.id.to_string(),
                        text.text.to_owned(),
                    )
                })
            })
            .collect();
        self.publish_rows(rows).await
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.ensure_open()?;
        let now = now_ms();
        // Registration and backfill share the single connection with publish, so no message
        // can be published between them and be missed.
        let mut tx = self
            .inner
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(bus_error)?;
        let (group_id, created) = group_id(&mut tx, group, topic, now).await?;
        if created {
            sqlx::query(
                "INSERT INTO bus_delivery (group_id, seq, attempts, available_at, in_flight) \
                 SELECT $1, seq, 0, $2, 0 FROM bus_message WHERE topic = $3 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(group_id)
            .bind(now)
            .bind(topic)
            .execute(&mut *tx)
            .await
            .map_err(bus_error)?;
        }
        tx.commit().await.map_err(bus_error)?;
        Ok(Box::new(EmbeddedSubscription::new(
            self.clone(),
            topic,
            group,
            group_id,
            options,
        )))
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.ensure_open()?;
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(bus_error)?;
        Ok(())
    }
}

/// The id of `group`'s position on `topic`, and whether this call created the group.
async fn group_id(
    conn: &mut SqliteConnection,
    group: &str,
    topic: &str,
    now: i64,
) -> Result<(i64, bool), BusError> {
    let created: Option<i64> = sqlx::query_scalar(
        "INSERT INTO bus_group (group_name, topic, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING RETURNING group_id",
    )
    .bind(group)
    .bind(topic)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
    .map_err(bus_error)?;
    if let Some(id) = created {
        return Ok((id, true));
    }
    let id =
        sqlx::query_scalar("SELECT group_id FROM bus_group WHERE group_name = $1 AND topic = $2")
            .bind(group)
            .bind(topic)
            .fetch_one(&mut *conn)
            .await
            .map_err(bus_error)?;
    Ok((id, false))
}

/// Stores every envelope of a batch on `topic` in one statement (the trigger gives every group
/// of the topic a delivery of each new one); ids the topic already holds are skipped.
pub(crate) async fn insert_messages(
    conn: &mut SqliteConnection,
    topic: &str,
    envelopes: &[Envelope],
    now: i64,
) -> Result<(), BusError> {
    let (list, envelopes) = encode_rows(&message_rows(topic, envelopes)?);
    sqlx::query(insert_messages!())
        .bind(now)
        .bind(list)
        .bind(envelopes)
        .execute(&mut *conn)
        .await
        .map_err(bus_error)?;
    Ok(())
}

/// `envelopes` on `topic` as the `[topic, event id, envelope]` rows [`encode_rows`] takes.
fn message_rows(
    topic: &str,
    envelopes: &[Envelope],
) -> Result<Vec<(String, String, String)>, BusError> {
    envelopes
        .iter()
        .map(|envelope| {
            let body = serde_json::to_string(envelope).map_err(|error| {
                BusError::Unavailable(format!(
                    "envelope {} does not serialize: {error}",
                    envelope.id
                ))
            })?;
            Ok((topic.to_owned(), envelope.id.to_string(), body))
        })
        .collect()
}

/// `[topic, event id, envelope]` rows as [`insert_messages!`] reads them: the JSON list of
/// `[topic, event id, offset, length]` and the envelopes end to end.
fn encode_rows(rows: &[(String, String, String)]) -> (String, Vec<u8>) {
    let mut envelopes = Vec::with_capacity(rows.iter().map(|(_, _, body)| body.len()).sum());
    let list: Vec<(&str, &str, usize, usize)> = rows
        .iter()
        .map(|(topic, event_id, body)| {
            let offset = envelopes.len() + 1;
            envelopes.extend_from_slice(body.as_bytes());
            (topic.as_str(), event_id.as_str(), offset, body.len())
        })
        .collect();
    let list = serde_json::to_string(&list).expect("strings serialize to JSON");
    (list, envelopes)
}

/// What a publisher heard from the commit that took its messages along.
fn committed_result(
    result: Result<Result<(), BusError>, tokio::sync::oneshot::error::RecvError>,
) -> Result<(), BusError> {
    result.unwrap_or_else(|_| {
        Err(BusError::Unavailable(
            "the publish committing this one stopped; publish again".into(),
        ))
    })
}

/// Publishes the dead-lettered copy of `envelope` (consumed by `group` from `topic`) to the
/// group's dead-letter topic. The caller deletes the delivery in the same transaction.
pub(crate) async fn insert_dead_letter(
    conn: &mut SqliteConnection,
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
    insert_messages(
        conn,
        &dead_letter_topic(group),
        std::slice::from_ref(&copy),
        now_ms(),
    )
    .await?;
    Ok(())
}

/// A pool closed by `close` means the bus is closed; anything else is storage trouble.
pub(crate) fn bus_error(error: sqlx::Error) -> BusError {
    match error {
        sqlx::Error::PoolClosed => BusError::Closed,
        other => BusError::Unavailable(other.to_string()),
    }
}

/// Wall-clock milliseconds: availability times must survive a restart, which a monotonic clock
/// does not.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// `now + delay` in the milliseconds of `now_ms`, saturating rather than overflowing.
pub(crate) fn after(now: i64, delay: Duration) -> i64 {
    now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
}
