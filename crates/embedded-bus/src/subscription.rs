//! One consumer of a group on the embedded bus, and the handle that settles its deliveries.
//! A claim is a lease: the delivery row is marked in flight until `now + ack_wait`, after which
//! any consumer of the group may claim it again. Settling checks the attempt it was handed, so
//! a consumer whose lease expired cannot nack or dead-letter a message someone else now holds.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kernel::bus::dead_letter_topic;
use kernel::{BusError, Delivery, DeliveryHandle, Envelope, SubscribeOptions, Subscription};
use sqlx::Row;

use crate::{after, bus_error, insert_dead_letter, now_ms, EmbeddedBus};

/// The longest a waiting consumer goes without looking, should a wake-up be missed.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A claim of up to `$5` of the oldest ready deliveries of group-and-topic `$2` that have
/// attempts left (`$4`), leased until `$1`; then, only when it claimed nothing (`changes()` is
/// what the claim changed), a look at when the next delivery is due and whether ready ones are
/// out of attempts. One query: one trip to the bus connection's thread.
macro_rules! claim {
    () => {
        "UPDATE bus_delivery SET attempts = attempts + 1, in_flight = 1, available_at = $1 \
         WHERE group_id = $2 AND seq IN ( \
             SELECT seq FROM bus_delivery \
             WHERE group_id = $2 AND available_at <= $3 AND attempts < $4 \
             ORDER BY available_at, seq LIMIT $5) \
         RETURNING seq, attempts, \
             (SELECT envelope FROM bus_message m WHERE m.seq = bus_delivery.seq) AS envelope; \
         SELECT \
             (SELECT MIN(available_at) FROM bus_delivery \
              WHERE group_id = $2) AS next_available_at, \
             (SELECT COUNT(*) FROM bus_delivery \
              WHERE group_id = $2 AND available_at <= $3 AND attempts >= $4) AS exhausted \
         WHERE changes() = 0"
    };
}
const CLAIM: &str = claim!();
/// [`CLAIM`] after deleting the acknowledged deliveries `$6` (a JSON list of sequence numbers).
const ACK_AND_CLAIM: &str = concat!(
    "DELETE FROM bus_delivery WHERE group_id = $2 AND seq IN (SELECT value FROM json_each($6)); ",
    claim!()
);

pub(crate) struct EmbeddedSubscription {
    bus: EmbeddedBus,
    topic: Arc<str>,
    group: Arc<str>,
    /// The group's id on this topic in `bus_group`, which its deliveries are keyed by.
    group_id: i64,
    max_attempts: u32,
    ack_wait: Duration,
    wake: Arc<tokio::sync::Notify>,
    /// Deliveries acknowledged through `ack_all` whose rows are not deleted yet: the delete
    /// rides with this consumer's next claim (one query), or is sent when it is dropped.
    acked: Vec<i64>,
}

enum Claim {
    /// What was claimed; empty only when every row claimed was unreadable and dropped.
    Ready(Vec<Delivery>),
    /// Nothing is ready; the earliest time something of this group and topic will be.
    Empty { next_available_at: Option<i64> },
    /// Nothing with attempts left is ready, but deliveries out of attempts are waiting to be
    /// dead-lettered ([`EmbeddedSubscription::claim`]).
    Exhausted,
}

/// A ready delivery row as read by a claim.
struct Ready {
    seq: i64,
    attempts: u32,
    last_error: Option<String>,
    body: String,
}

impl EmbeddedSubscription {
    pub(crate) fn new(
        bus: EmbeddedBus,
        topic: &str,
        group: &str,
        group_id: i64,
        options: SubscribeOptions,
    ) -> Self {
        let wake = bus.waker(topic, group);
        Self {
            bus,
            topic: topic.into(),
            group: group.into(),
            group_id,
            // Zero attempts would dead-letter every message unseen; treat it as one.
            max_attempts: options.max_attempts.max(1),
            ack_wait: options.ack_wait,
            wake,
            acked: Vec::new(),
        }
    }

    /// Claims up to `max` of the oldest ready deliveries that have attempts left, in one
    /// statement (no explicit transaction): the common case, and the one that must be cheap,
    /// since every claim queues on the bus file's single connection. When it claims nothing,
    /// a second statement of the same query (one trip to the connection's thread) looks
    /// further: whether some ready delivery is out of attempts (then [`Self::claim`]
    /// dead-letters it) and when the next one becomes ready.
    ///
    /// The deliveries acknowledged since the last claim are deleted first, in the same query.
    async fn claim_fast(&mut self, max: usize) -> Result<Claim, BusError> {
        let now = now_ms();
        let limit = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        let sql = if self.acked.is_empty() {
            CLAIM
        } else {
            ACK_AND_CLAIM
        };
        let mut query = sqlx::query(sql)
            .bind(after(now, self.ack_wait))
            .bind(self.group_id)
            .bind(now)
            .bind(i64::from(self.max_attempts))
            .bind(limit);
        if !self.acked.is_empty() {
            query = query.bind(seq_list(&self.acked));
        }
        let rows = query.fetch_all(self.bus.pool()).await.map_err(bus_error)?;
        self.acked.clear();
        let mut claimed: Vec<(i64, i64, String)> = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_column("exhausted").is_ok() {
                let next_available_at: Option<i64> =
                    row.try_get("next_available_at").map_err(bus_error)?;
                let exhausted: Option<i64> = row.try_get("exhausted").map_err(bus_error)?;
                return Ok(if exhausted.unwrap_or(0) > 0 {
                    Claim::Exhausted
                } else {
                    Claim::Empty { next_available_at }
                });
            }
            claimed.push((
                row.try_get("seq").map_err(bus_error)?,
                row.try_get("attempts").map_err(bus_error)?,
                row.try_get("envelope").map_err(bus_error)?,
            ));
        }
        // The statement returns rows in no particular order; hand them out oldest first.
        claimed.sort_by_key(|(seq, _, _)| *seq);
        let mut deliveries = Vec::with_capacity(claimed.len());
        for (seq, attempts, body) in claimed {
            let envelope: Envelope = match serde_json::from_str(&body) {
                Ok(envelope) => envelope,
                Err(error) => {
                    // Only a hand-edited file gets here; see `claim`.
                    tracing::error!(seq, group = %self.group, %error, "unreadable message on the embedded bus; skipping it");
                    self.delete_delivery(
                        &mut *self.bus.pool().acquire().await.map_err(bus_error)?,
                        seq,
                    )
                    .await?;
                    continue;
                }
            };
            let attempt = u32::try_from(attempts).unwrap_or(u32::MAX);
            deliveries.push(self.delivery(seq, attempt, envelope, body));
        }
        Ok(Claim::Ready(deliveries))
    }

    /// `body` is the text `envelope` was read from: the handle keeps it (rather than a copy of
    /// the envelope, which every delivery would pay for) to rebuild the envelope should it be
    /// dead-lettered.
    fn delivery(&self, seq: i64, attempt: u32, envelope: Envelope, body: String) -> Delivery {
        Delivery {
            envelope,
            topic: self.topic.to_string(),
            attempt,
            handle: Box::new(EmbeddedDeliveryHandle {
                bus: self.bus.clone(),
                group: self.group.clone(),
                group_id: self.group_id,
                topic: self.topic.clone(),
                seq,
                attempt,
                max_attempts: self.max_attempts,
                body,
            }),
        }
    }

    /// Claims up to `max` of the oldest ready deliveries in one transaction (one select, one
    /// update). A delivery whose leases have run out `max_attempts` times without being settled
    /// (its handler hangs, or kills the process) is dead-lettered instead of handed out again.
    async fn claim(&self, max: usize) -> Result<Claim, BusError> {
        let now = now_ms();
        let limit = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        let mut tx = self
            .bus
            .pool()
            .begin_with(crate::BEGIN_WRITE)
            .await
            .map_err(bus_error)?;
        let mut dead_lettered = false;
        let claimed = loop {
            let rows = sqlx::query(
                "SELECT d.seq, d.attempts, d.last_error, m.envelope \
                 FROM bus_delivery d JOIN bus_message m ON m.seq = d.seq \
                 WHERE d.group_id = $1 AND d.available_at <= $2 \
                 ORDER BY d.available_at, d.seq LIMIT $3",
            )
            .bind(self.group_id)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(bus_error)?;
            if rows.is_empty() {
                let next_available_at: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(available_at) FROM bus_delivery \
                     WHERE group_id = $1",
                )
                .bind(self.group_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(bus_error)?;
                break Claim::Empty { next_available_at };
            }
            let mut ready = Vec::with_capacity(rows.len());
            for row in rows {
                ready.push(Ready {
                    seq: row.try_get("seq").map_err(bus_error)?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(bus_error)?)
                        .unwrap_or(u32::MAX),
                    last_error: row.try_get("last_error").map_err(bus_error)?,
                    body: row.try_get("envelope").map_err(bus_error)?,
                });
            }
            let mut deliveries = Vec::with_capacity(ready.len());
            let mut seqs = Vec::with_capacity(ready.len());
            for row in ready {
                let envelope: Envelope = match serde_json::from_str(&row.body) {
                    Ok(envelope) => envelope,
                    Err(error) => {
                        // Only a hand-edited file gets here. Handing it out is impossible and
                        // keeping it would block the group, so drop the delivery and keep the
                        // message row for inspection.
                        tracing::error!(
                            seq = row.seq,
                            group = %self.group,
                            %error,
                            "unreadable message on the embedded bus; skipping it"
                        );
                        self.delete_delivery(&mut tx, row.seq).await?;
                        continue;
                    }
                };
                if row.attempts >= self.max_attempts {
                    let error = row
                        .last_error
                        .unwrap_or_else(|| format!("not acknowledged within {:?}", self.ack_wait));
                    self.delete_delivery(&mut tx, row.seq).await?;
                    insert_dead_letter(
                        &mut tx,
                        &self.group,
                        &self.topic,
                        &envelope,
                        &error,
                        row.attempts,
                    )
                    .await?;
                    dead_lettered = true;
                    continue;
                }
                let attempt = row.attempts.saturating_add(1);
                seqs.push(row.seq);
                deliveries.push(self.delivery(row.seq, attempt, envelope, row.body));
            }
            if deliveries.is_empty() {
                // Every row looked at was dead-lettered or skipped: look again.
                continue;
            }
            sqlx::query(
                "UPDATE bus_delivery SET attempts = attempts + 1, in_flight = 1, available_at = $1 \
                 WHERE group_id = $2 AND seq IN (SELECT value FROM json_each($3))",
            )
            .bind(after(now, self.ack_wait))
            .bind(self.group_id)
            .bind(seq_list(&seqs))
            .execute(&mut *tx)
            .await
            .map_err(bus_error)?;
            break Claim::Ready(deliveries);
        };
        tx.commit().await.map_err(bus_error)?;
        if dead_lettered {
            self.bus.wake(&dead_letter_topic(&self.group));
        }
        Ok(claimed)
    }

    async fn delete_delivery(
        &self,
        conn: &mut sqlx::SqliteConnection,
        seq: i64,
    ) -> Result<(), BusError> {
        sqlx::query("DELETE FROM bus_delivery WHERE group_id = $1 AND seq = $2")
            .bind(self.group_id)
            .bind(seq)
            .execute(conn)
            .await
            .map_err(bus_error)?;
        Ok(())
    }
}

#[async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        let mut batch = self.next_batch(1).await?;
        batch.pop().ok_or(BusError::Unavailable(
            "a claim of one delivery returned none".into(),
        ))
    }

    /// Cancelling this future (a `select!` or a timeout) loses nothing: at worst deliveries
    /// claimed during the cancelled call stay leased until their ack wait runs out.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivery>, BusError> {
        loop {
            self.bus.ensure_open()?;
            // Registered before looking, so a publish committed after the look still wakes us.
            let wake = self.wake.clone();
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claimed = match self.claim_fast(max).await? {
                Claim::Exhausted => self.claim(max).await?,
                claimed => claimed,
            };
            let next_available_at = match claimed {
                // Every row claimed was unreadable (and dropped): claim again at once.
                Claim::Ready(deliveries) if deliveries.is_empty() => continue,
                Claim::Ready(deliveries) => {
                    if deliveries.len() >= max {
                        // More may be ready: hand the wake-up on to a sibling consumer.
                        self.wake.notify_one();
                    }
                    return Ok(deliveries);
                }
                Claim::Empty { next_available_at } => next_available_at,
                // `claim` dead-letters and then claims or reports empty; never this.
                Claim::Exhausted => None,
            };
            let poll_ms = i64::try_from(POLL_INTERVAL.as_millis()).unwrap_or(i64::MAX);
            let wait_ms = next_available_at
                .map_or(poll_ms, |at| at.saturating_sub(now_ms()).clamp(1, poll_ms));
            let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The deliveries of this group are deleted with this consumer's next claim, in the same
    /// query, or when the subscription is dropped: no trip of its own to the bus connection.
    /// Until then a crash hands them out again, which idempotent handlers absorb (the work
    /// they acknowledge is committed already). Handles of another adapter (a wrapping bus) are
    /// acknowledged one by one, at once.
    async fn ack_all(&mut self, deliveries: Vec<Delivery>) -> Result<(), BusError> {
        self.bus.ensure_open()?;
        let mut seqs = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match delivery
                .handle
                .as_any()
                .downcast_ref::<EmbeddedDeliveryHandle>()
            {
                Some(handle) if handle.group_id == self.group_id => seqs.push(handle.seq),
                _ => delivery.ack().await?,
            }
        }
        self.acked.extend(seqs);
        Ok(())
    }
}

impl Drop for EmbeddedSubscription {
    /// Deletes what was acknowledged since the last claim. Outside a runtime, or on a closed
    /// bus, it stays to be handed out again, which idempotent handlers absorb.
    fn drop(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (bus, group, group_id, seqs) = (
            self.bus.clone(),
            self.group.clone(),
            self.group_id,
            seq_list(&self.acked),
        );
        runtime.spawn(async move {
            if bus.ensure_open().is_err() {
                return;
            }
            let deleted = sqlx::query(
                "DELETE FROM bus_delivery WHERE group_id = $1 \
                 AND seq IN (SELECT value FROM json_each($2))",
            )
            .bind(group_id)
            .bind(seqs)
            .execute(bus.pool())
            .await;
            if let Err(error) = deleted {
                tracing::debug!(%group, %error, "acknowledgements left for redelivery");
            }
        });
    }
}

/// `seqs` as a JSON array, bound as one parameter and unpacked by `json_each`: one prepared
/// statement serves every batch size.
fn seq_list(seqs: &[i64]) -> String {
    serde_json::to_string(seqs).expect("integers serialize to JSON")
}

struct EmbeddedDeliveryHandle {
    bus: EmbeddedBus,
    group: Arc<str>,
    group_id: i64,
    topic: Arc<str>,
    seq: i64,
    /// The attempt this handle was given: the token that proves it still holds the lease.
    attempt: u32,
    max_attempts: u32,
    /// The message as stored, for [`DeliveryHandle::dead_letter`].
    body: String,
}

#[async_trait]
impl DeliveryHandle for EmbeddedDeliveryHandle {
    /// Acknowledges even after the lease ran out: the work is done, and a copy handed to another
    /// consumer meanwhile is harmless to drop because handlers are idempotent.
    async fn ack(&self) -> Result<(), BusError> {
        self.bus.ensure_open()?;
        sqlx::query("DELETE FROM bus_delivery WHERE group_id = $1 AND seq = $2")
            .bind(self.group_id)
            .bind(self.seq)
            .execute(self.bus.pool())
            .await
            .map_err(bus_error)?;
        Ok(())
    }

    async fn nack(&self, delay: Duration, error: &str) -> Result<(), BusError> {
        if self.attempt >= self.max_attempts {
            return self.dead_letter(error).await;
        }
        self.bus.ensure_open()?;
        // Matching the attempt leaves alone a message another consumer claimed after our lease
        // ran out.
        sqlx::query(
            "UPDATE bus_delivery SET in_flight = 0, available_at = $1, last_error = $2 \
             WHERE group_id = $3 AND seq = $4 AND attempts = $5",
        )
        .bind(after(now_ms(), delay))
        .bind(error)
        .bind(self.group_id)
        .bind(self.seq)
        .bind(i64::from(self.attempt))
        .execute(self.bus.pool())
        .await
        .map_err(bus_error)?;
        // Waiting consumers sleep until the earliest availability they saw; this one may be
        // earlier.
        self.bus.wake(&self.topic);
        Ok(())
    }

    async fn dead_letter(&self, error: &str) -> Result<(), BusError> {
        self.bus.ensure_open()?;
        // Read before the write transaction, which holds the bus file's one connection.
        let envelope: Envelope = serde_json::from_str(&self.body).map_err(|error| {
            BusError::Unavailable(format!("a delivered message no longer reads: {error}"))
        })?;
        let mut tx = self
            .bus
            .pool()
            .begin_with(crate::BEGIN_WRITE)
            .await
            .map_err(bus_error)?;
        let deleted = sqlx::query(
            "DELETE FROM bus_delivery WHERE group_id = $1 AND seq = $2 AND attempts = $3",
        )
        .bind(self.group_id)
        .bind(self.seq)
        .bind(i64::from(self.attempt))
        .execute(&mut *tx)
        .await
        .map_err(bus_error)?
        .rows_affected();
        if deleted == 0 {
            // Acked already, or re-claimed by another consumer after our lease ran out.
            return Ok(());
        }
        insert_dead_letter(
            &mut tx,
            &self.group,
            &self.topic,
            &envelope,
            error,
            self.attempt,
        )
        .await?;
        tx.commit().await.map_err(bus_error)?;
        self.bus.wake(&dead_letter_topic(&self.group));
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
