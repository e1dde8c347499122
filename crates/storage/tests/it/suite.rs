//! The behaviours themselves, each taking a migrated database of either backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kernel::{Bus, BusError, Envelope, SubscribeOptions, Subscription};
use storage::idempotency::{self, StoredResponse};
use storage::outbox::{self, Relay};
use storage::{inbox, Db, Migration};
use testkit::bus::{ping, Ping};
use uuid::Uuid;

/// A bus that records every publish call, so a test can see a row published twice (a real bus
/// would hide it by de-duplicating), and can be told to fail.
#[derive(Default)]
struct RecordingBus {
    published: Mutex<Vec<(String, Envelope)>>,
    failing: AtomicBool,
}

impl RecordingBus {
    fn ids(&self) -> Vec<Uuid> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.id)
            .collect()
    }
}

#[async_trait]
impl Bus for RecordingBus {
    async fn publish(&self, topic: &str, envelopes: &[Envelope]) -> Result<(), BusError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable("told to fail".into()));
        }
        let mut published = self.published.lock().unwrap();
        published.extend(envelopes.iter().map(|e| (topic.to_owned(), e.clone())));
        Ok(())
    }

    async fn subscribe(
        &self,
        _topic: &str,
        _group: &str,
        _options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        Err(BusError::Unavailable(
            "a recording bus has no subscribers".into(),
        ))
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}

async fn append_committed(db: &Db, envelopes: &[Envelope]) {
    let mut tx = db.begin().await.unwrap();
    for envelope in envelopes {
        outbox::append(&mut tx, "pings", envelope);
    }
    tx.commit().await.unwrap();
}

pub async fn migrations_run_once_and_again_is_a_no_op(db: Db) {
    let migrations = [Migration {
        version: 1,
        name: "thing",
        sqlite: "CREATE TABLE thing (thing_id INTEGER PRIMARY KEY)",
        postgres: "CREATE TABLE thing (thing_id BIGINT PRIMARY KEY)",
    }];
    db.migrate_with("component", &migrations).await.unwrap();
    // A second start (or a second replica) must not re-run the CREATE TABLE.
    db.migrate_with("component", &migrations).await.unwrap();
    storage::with_db!(&db, conn => sqlx::query("INSERT INTO thing (thing_id) VALUES (1)")
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
}

pub async fn the_relay_publishes_committed_rows_in_order_and_empties_the_outbox(db: Db) {
    let envelopes: Vec<Envelope> = (0..600).map(ping).collect();
    append_committed(&db, &envelopes).await;
    assert_eq!(outbox::backlog(&db).await.unwrap(), 600);
    let bus = Arc::new(RecordingBus::default());
    let relay = Relay::new(db.clone(), bus.clone());
    let mut total = 0;
    loop {
        let n = relay.relay_once().await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 600);
    let expected: Vec<Uuid> = envelopes.iter().map(|e| e.id).collect();
    assert_eq!(bus.ids(), expected, "one relay publishes in commit order");
    assert!(bus
        .published
        .lock()
        .unwrap()
        .iter()
        .all(|(topic, _)| topic == "pings"));
    assert_eq!(outbox::backlog(&db).await.unwrap(), 0);
}

pub async fn envelopes_leave_the_outbox_exactly_as_appended_in_append_order(db: Db) {
    // A text that needs escaping at every level the row passes through (the JSON list `commit`
    // writes several rows with, then the envelope's own JSON), in the subject and the data.
    let nota = |texto: &str| {
        let mut envelope = ping(0);
        envelope.subject = texto.to_owned();
        envelope.data = serde_json::json!({ "texto": texto }).into();
        envelope.traceparent =
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        envelope
    };
    let mut rows = vec![
        (
            "notas",
            nota("comillas \"dobles\", barra \\ y salto\nde línea"),
        ),
        ("pings", ping(7)),
        ("notas", nota("ñandú, 東京, 🦙, \u{0001} y \t")),
        ("notas", nota("")),
    ];
    // Several rows in one transaction go as one list; a lone row is bound as it is.
    let mut tx = db.begin().await.unwrap();
    outbox::append_all(
        &mut tx,
        rows.iter().map(|(topic, envelope)| (*topic, envelope)),
    );
    tx.commit().await.unwrap();
    let lone = ("notas", nota("sola: \"comillas\" y ñ"));
    let mut tx = db.begin().await.unwrap();
    outbox::append(&mut tx, lone.0, &lone.1);
    tx.commit().await.unwrap();
    rows.push(lone);

    let bus = Arc::new(RecordingBus::default());
    assert_eq!(
        Relay::new(db.clone(), bus.clone())
            .relay_once()
            .await
            .unwrap(),
        5
    );
    let published: Vec<(String, Envelope)> = bus.published.lock().unwrap().clone();
    let expected: Vec<(String, Envelope)> = rows
        .into_iter()
        .map(|(topic, envelope)| (topic.to_owned(), envelope))
        .collect();
    assert_eq!(published, expected);
}

pub async fn rolled_back_outbox_rows_are_never_published(db: Db) {
    let mut tx = db.begin().await.unwrap();
    outbox::append(&mut tx, "pings", &ping(1));
    drop(tx);
    let bus = Arc::new(RecordingBus::default());
    assert_eq!(
        Relay::new(db.clone(), bus.clone())
            .relay_once()
            .await
            .unwrap(),
        0
    );
    assert!(bus.ids().is_empty());
}

pub async fn concurrent_relays_never_publish_a_row_twice(db: Db) {
    let envelopes: Vec<Envelope> = (0..2_000).map(ping).collect();
    append_committed(&db, &envelopes).await;
    let bus = Arc::new(RecordingBus::default());
    let relays: Vec<_> = (0..4)
        .map(|_| {
            let relay = Relay::new(db.clone(), bus.clone());
            tokio::spawn(async move { while relay.relay_once().await.unwrap() > 0 {} })
        })
        .collect();
    for relay in relays {
        relay.await.unwrap();
    }
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for id in bus.ids() {
        *counts.entry(id).or_default() += 1;
    }
    assert_eq!(counts.len(), 2_000, "every row was published");
    assert!(
        counts.values().all(|n| *n == 1),
        "no row was published twice"
    );
    assert_eq!(outbox::backlog(&db).await.unwrap(), 0);
}

pub async fn a_failed_publish_leaves_the_rows_for_a_retry(db: Db) {
    append_committed(&db, &[ping(1), ping(2)]).await;
    let bus = Arc::new(RecordingBus::default());
    let relay = Relay::new(db.clone(), bus.clone());
    bus.failing.store(true, Ordering::SeqCst);
    assert!(relay.relay_once().await.is_err());
    assert_eq!(outbox::backlog(&db).await.unwrap(), 2, "nothing is lost");
    bus.failing.store(false, Ordering::SeqCst);
    // Available again at once: nothing was claimed or deleted.
    assert_eq!(relay.relay_once().await.unwrap(), 2);
    assert_eq!(bus.ids().len(), 2);
}

pub async fn a_claim_left_by_an_earlier_relay_is_honoured_until_it_expires(db: Db) {
    append_committed(&db, &[ping(1)]).await;
    // Rows an earlier version's relay claimed (a lease) and then died holding: a claim whose
    // lease is already over is taken over.
    storage::with_db!(&db, conn => sqlx::query(
        "UPDATE outbox SET claimed_by = $1, claimed_until = $2",
    )
    .bind(Uuid::now_v7())
    .bind(kernel::now() - chrono::Duration::seconds(1))
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .unwrap();
    let bus = Arc::new(RecordingBus::default());
    let relay = Relay::new(db.clone(), bus.clone());
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    // A live claim is respected.
    append_committed(&db, &[ping(2)]).await;
    let other = Relay::new(db.clone(), Arc::new(RecordingBus::default()));
    storage::with_db!(&db, conn => sqlx::query(
        "UPDATE outbox SET claimed_by = $1, claimed_until = $2",
    )
    .bind(Uuid::now_v7())
    .bind(kernel::now() + chrono::Duration::seconds(30))
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .unwrap();
    assert_eq!(other.relay_once().await.unwrap(), 0);
}

pub async fn the_inbox_admits_an_event_once_per_group(db: Db) {
    let event = Uuid::now_v7();
    let mut tx = db.begin().await.unwrap();
    assert!(inbox::first_delivery(&mut tx, "group-a", event)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(!inbox::first_delivery(&mut tx, "group-a", event)
        .await
        .unwrap());
    assert!(inbox::first_delivery(&mut tx, "group-b", event)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    assert!(inbox::contains(&db, "group-b", event).await.unwrap());
}

pub async fn an_inbox_row_rolls_back_with_the_effects(db: Db) {
    let event = Uuid::now_v7();
    let mut tx = db.begin().await.unwrap();
    assert!(inbox::first_delivery(&mut tx, "group", event)
        .await
        .unwrap());
    outbox::append(&mut tx, "pings", &ping(1));
    drop(tx); // the handler failed: neither the effect nor the inbox row may remain
    assert!(!inbox::contains(&db, "group", event).await.unwrap());
    assert_eq!(outbox::backlog(&db).await.unwrap(), 0);
    let mut tx = db.begin().await.unwrap();
    assert!(
        inbox::first_delivery(&mut tx, "group", event)
            .await
            .unwrap(),
        "the redelivery is handled"
    );
    tx.commit().await.unwrap();
}

pub async fn a_batch_inserts_its_inbox_rows_up_front(db: Db) {
    let (seen, fresh, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut tx = db.begin().await.unwrap();
    assert!(inbox::first_delivery(&mut tx, "group", seen).await.unwrap());
    tx.commit().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    inbox::precheck(&mut tx, "group", &[seen, fresh, other])
        .await
        .unwrap();
    assert!(!inbox::first_delivery(&mut tx, "group", seen).await.unwrap());
    assert!(inbox::first_delivery(&mut tx, "group", fresh)
        .await
        .unwrap());
    assert!(
        !inbox::first_delivery(&mut tx, "group", fresh)
            .await
            .unwrap(),
        "answered once: asked again, the row is there"
    );
    assert!(
        inbox::first_delivery(&mut tx, "another-group", other)
            .await
            .unwrap(),
        "another group keeps its own inbox"
    );
    drop(tx);
    assert!(
        !inbox::contains(&db, "group", fresh).await.unwrap(),
        "rows inserted up front roll back with the batch"
    );

    let mut tx = db.begin().await.unwrap();
    inbox::precheck(&mut tx, "group", &[fresh, other])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(inbox::contains(&db, "group", fresh).await.unwrap());
    assert!(inbox::contains(&db, "group", other).await.unwrap());
}

/// Appends its message to the outbox unless the payload's `n` is odd, which it refuses as
/// early; records which ids it saw for the first time.
struct EvenOnly {
    firsts: Mutex<Vec<Uuid>>,
}

#[async_trait]
impl storage::TxHandler for EvenOnly {
    async fn apply(
        &self,
        tx: &mut storage::Tx,
        envelope: &Envelope,
    ) -> Result<(), kernel::HandlerError> {
        if !inbox::first_delivery(tx, "even", envelope.id)
            .await
            .map_err(storage::consume::transient)?
        {
            return Ok(());
        }
        let ping: Ping = envelope.decode()?;
        if ping.n % 2 == 1 {
            return Err(kernel::HandlerError::Early(format!("{} is odd", ping.n)));
        }
        outbox::append(tx, "pongs", envelope);
        self.firsts.lock().unwrap().push(envelope.id);
        Ok(())
    }
}

/// An [`EvenOnly`] handler in transactions on `db`, keeping the inbox of group "even".
fn even_only(db: &Db) -> storage::Transactional<EvenOnly> {
    storage::Transactional::new(
        db.clone(),
        Arc::new(tokio::sync::Notify::new()),
        EvenOnly {
            firsts: Mutex::new(Vec::new()),
        },
    )
    .with_inbox("even")
}

pub async fn a_batch_commits_together_and_a_failing_message_goes_alone(db: Db) {
    use kernel::MessageHandler;
    let handler = even_only(&db);
    let (zero, two, four) = (ping(0), ping(2), ping(4));
    let results = handler.handle_batch(&[&zero, &two, &zero]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(outbox::backlog(&db).await.unwrap(), 2, "one row per new id");

    let (one, three) = (ping(1), ping(3));
    let results = handler.handle_batch(&[&four, &one, &two, &three]).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(kernel::HandlerError::Early(_)))
            && matches!(results[3], Err(kernel::HandlerError::Early(_))),
        "{results:?}"
    );
    assert_eq!(
        outbox::backlog(&db).await.unwrap(),
        3,
        "the even message of the failed batch took effect alone, the duplicate did not"
    );
    assert!(inbox::contains(&db, "even", four.id).await.unwrap());
    assert!(
        !inbox::contains(&db, "even", one.id).await.unwrap(),
        "a refused message leaves no inbox row, so its redelivery is handled"
    );
    assert_eq!(
        handler.counts(),
        storage::TxCounts {
            committed: 2,
            rolled_back: 4
        },
        "the first batch, then [4 1 2 3]: rolled back at 1, again at 3, [4 2] committed, 1 and 3 alone"
    );

    // One failure in a larger batch costs one more transaction, not one per message.
    let evens: Vec<Envelope> = (10..16).map(|n| ping(2 * n)).collect();
    let five = ping(5);
    let mut batch: Vec<&Envelope> = evens.iter().collect();
    batch.insert(2, &five);
    let results = handler.handle_batch(&batch).await;
    assert_eq!(
        results.iter().filter(|result| result.is_ok()).count(),
        6,
        "{results:?}"
    );
    assert!(
        matches!(results[2], Err(kernel::HandlerError::Early(_))),
        "{results:?}"
    );
    assert_eq!(outbox::backlog(&db).await.unwrap(), 9);
    assert_eq!(
        handler.counts(),
        storage::TxCounts {
            committed: 3,
            rolled_back: 6
        },
        "the batch rolled back once, committed without 5, and 5 alone rolled back"
    );
}

/// Past three failures an early message no longer sends the rest of its batch one message per
/// transaction: what came before it commits as a batch, and the batch goes on after it.
pub async fn many_early_messages_split_a_batch_instead_of_going_one_by_one(db: Db) {
    use kernel::MessageHandler;
    let handler = even_only(&db);
    // Odd (early) at positions 1, 3, 5, 7 and 9; even everywhere else.
    let ns = [40, 1, 42, 3, 44, 5, 46, 7, 48, 9, 50, 52, 54];
    let pings: Vec<Envelope> = ns.iter().map(|&n| ping(n)).collect();
    let batch: Vec<&Envelope> = pings.iter().collect();
    let results = handler.handle_batch(&batch).await;
    for (n, result) in ns.iter().zip(&results) {
        if n % 2 == 0 {
            assert!(result.is_ok(), "{n}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(kernel::HandlerError::Early(_))),
                "{n}: {result:?}"
            );
        }
    }
    assert_eq!(
        outbox::backlog(&db).await.unwrap(),
        8,
        "every even took effect"
    );
    assert_eq!(
        handler.counts(),
        storage::TxCounts {
            committed: 3,
            rolled_back: 10
        },
        "rolled back at 1, 3 and 5 (each retried without); at 7 [40 42 44 46] committed; \
         at 9 [48] committed; [50 52 54] committed; the five odd ones alone"
    );
}

pub async fn idempotency_responses_are_stored_and_a_twin_key_conflicts(db: Db) {
    let response = StoredResponse {
        request_hash: "h1".into(),
        status: 201,
        location: Some("/things/1".into()),
        body: "{\"id\":1}".into(),
    };
    assert_eq!(idempotency::find(&db, "things", "k1").await.unwrap(), None);
    let mut tx = db.begin().await.unwrap();
    idempotency::store(&mut tx, "things", "k1", &response)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        idempotency::find(&db, "things", "k1").await.unwrap(),
        Some(response.clone())
    );
    assert_eq!(idempotency::find(&db, "other", "k1").await.unwrap(), None);
    let mut tx = db.begin().await.unwrap();
    let twin = idempotency::store(&mut tx, "things", "k1", &response)
        .await
        .unwrap_err();
    assert!(storage::is_unique_violation(&twin), "{twin}");
}

pub async fn orphaned_claims_are_released_at_start_only_where_one_process_owns_the_db(db: Db) {
    append_committed(&db, &[ping(1)]).await;
    storage::with_db!(&db, conn => sqlx::query(
        "UPDATE outbox SET claimed_by = $1, claimed_until = $2",
    )
    .bind(Uuid::now_v7())
    .bind(kernel::now() + chrono::Duration::seconds(30))
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .unwrap();
    let relay = Relay::new(db.clone(), Arc::new(RecordingBus::default()));
    let released = relay.release_orphaned_claims().await.unwrap();
    match db.backend() {
        storage::Backend::Sqlite => {
            assert_eq!(released, 1);
            assert_eq!(relay.relay_once().await.unwrap(), 1);
        }
        // Another replica may be alive and publishing: its claim stands.
        storage::Backend::Postgres => {
            assert_eq!(released, 0);
            assert_eq!(relay.relay_once().await.unwrap(), 0);
        }
    }
}

/// SQLite only. The relay deletes published rows unsynced (a lost delete only republishes rows
/// the bus then drops as duplicates); the writer connection must be synced again afterwards,
/// and a transaction commits synced whatever the connection was left at.
pub async fn the_writer_is_synced_again_after_the_relay_and_in_every_transaction(db: Db) {
    let synchronous = |db: Db| async move {
        let level: i64 = storage::with_db!(&db, conn => sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(conn)
            .await)
        .unwrap();
        level
    };
    const FULL: i64 = 2;
    append_committed(&db, &[ping(1)]).await;
    let bus = Arc::new(RecordingBus::default());
    assert_eq!(Relay::new(db.clone(), bus).relay_once().await.unwrap(), 1);
    assert_eq!(outbox::backlog(&db).await.unwrap(), 0);
    assert_eq!(
        synchronous(db.clone()).await,
        FULL,
        "after the relay's delete"
    );

    storage::with_db!(&db, conn => sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
    let mut tx = db.begin().await.unwrap();
    let level: i64 = storage::with_tx!(&mut tx, conn => sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(conn)
        .await)
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        level, FULL,
        "inside a transaction begun on a connection left unsynced"
    );
}

/// While a backlog remains, the relay publishes batch after batch without waiting for the
/// writer (busy with the service's own transactions) to delete them: published rows stay and
/// later reads start past them. Once it catches up it deletes them all, and nothing was
/// published twice.
pub async fn the_relay_keeps_publishing_a_backlog_while_the_writer_is_busy(db: Db) {
    let envelopes: Vec<Envelope> = (0..600).map(ping).collect();
    append_committed(&db, &envelopes).await;
    let bus = Arc::new(RecordingBus::default());
    let relay = Relay::new(db.clone(), bus.clone());
    let busy = db.begin().await.unwrap();
    for _ in 0..2 {
        let published = tokio::time::timeout(testkit::DEADLINE, relay.relay_once())
            .await
            .expect("a batch of a backlog is published without the writer")
            .unwrap();
        assert_eq!(published, 256);
    }
    let left: i64 =
        storage::with_reader!(&db, conn => sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(conn)
        .await)
        .unwrap();
    assert_eq!(left, 600, "nothing deleted yet");
    // Caught up: the last batch waits for the writer to delete everything published.
    let last = tokio::spawn(async move { relay.relay_once().await.unwrap() });
    drop(busy);
    assert_eq!(last.await.unwrap(), 88);
    assert_eq!(outbox::backlog(&db).await.unwrap(), 0);
    let expected: Vec<Uuid> = envelopes.iter().map(|e| e.id).collect();
    assert_eq!(bus.ids(), expected, "each row once, in commit order");
}

/// A request whose client goes away is dropped wherever it stands, and so is the write it was
/// making: waiting for the writer, beginning, between statements, committing. Whatever point
/// it was dropped at, the writer must be free for the next write, and a write that reported
/// its commit must be there.
pub async fn writes_dropped_at_any_point_leave_the_writer_usable(db: Db) {
    let committed = Arc::new(Mutex::new(Vec::new()));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..16u32 {
        let db = db.clone();
        let committed = committed.clone();
        writers.spawn(async move {
            for attempt in 0..150u32 {
                let n = writer * 1_000 + attempt;
                let envelope = ping(n);
                let id = envelope.id;
                let write = async {
                    let mut tx = db.begin().await?;
                    outbox::append(&mut tx, "pings", &envelope);
                    tx.commit().await
                };
                // From a few microseconds (dropped while waiting for the writer or beginning)
                // to a few hundred (dropped mid-commit, or not at all).
                let patience = std::time::Duration::from_micros(u64::from(attempt % 50) * 8);
                if let Ok(Ok(())) = tokio::time::timeout(patience, write).await {
                    committed.lock().unwrap().push(id);
                }
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.unwrap();
    }

    let last = ping(u32::MAX);
    let write = async {
        let mut tx = db.begin().await.unwrap();
        outbox::append(&mut tx, "pings", &last);
        tx.commit().await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), write)
        .await
        .expect("the writer is free again once the dropped writes are gone");

    let published = published_ids(&db).await;
    assert!(published.contains(&last.id));
    for id in committed.lock().unwrap().iter() {
        assert!(
            published.contains(id),
            "a write reported committed is there"
        );
    }
}

/// A group commit whose write appends each envelope to the outbox in one transaction, and
/// fails the whole group (before committing) when one of them is numbered `FAILS`, or panics
/// when one is numbered `PANICS`.
fn outbox_group(db: &Db) -> storage::GroupCommit<(u32, Envelope)> {
    const FAILS: u32 = 666;
    const PANICS: u32 = 999;
    let db = db.clone();
    storage::GroupCommit::spawn(8, move |items: Vec<(u32, Envelope)>| {
        let db = db.clone();
        async move {
            let mut tx = db.begin().await?;
            for (n, envelope) in &items {
                outbox::append(&mut tx, "pings", envelope);
                assert_ne!(*n, PANICS, "told to panic");
                if *n == FAILS {
                    return Err(storage::GroupCommitError::Failed("told to fail".into()));
                }
            }
            tx.commit().await?;
            Ok(())
        }
    })
}

/// Relays everything committed to a recording bus and returns the ids it published.
async fn published_ids(db: &Db) -> std::collections::HashSet<Uuid> {
    let bus = Arc::new(RecordingBus::default());
    let relay = Relay::new(db.clone(), bus.clone());
    while relay.relay_once().await.unwrap() > 0 {}
    bus.ids().into_iter().collect()
}

pub async fn a_group_commit_writes_every_caller_once_and_tells_each(db: Db) {
    let group = Arc::new(outbox_group(&db));
    let mut callers = tokio::task::JoinSet::new();
    let mut ids = Vec::new();
    for n in 0..100u32 {
        let envelope = ping(n);
        ids.push(envelope.id);
        let group = group.clone();
        callers.spawn(async move { group.submit((n, envelope)).await });
    }
    while let Some(told) = callers.join_next().await {
        assert_eq!(told.unwrap(), Ok(()));
    }
    let published = published_ids(&db).await;
    assert_eq!(published.len(), ids.len());
    assert!(ids.iter().all(|id| published.contains(id)));
}

pub async fn a_failed_group_fails_all_its_callers_and_the_next_group_commits(db: Db) {
    let group = outbox_group(&db);
    let first = ping(1);
    let doomed = ping(2);
    let failing = ping(666);
    let (a, b, c) = tokio::join!(
        group.submit((1, first.clone())),
        group.submit((2, doomed.clone())),
        group.submit((666, failing.clone())),
    );
    // However the three were grouped, the failing one's group failed whole and told each of
    // its callers so; whoever was told `Ok` is committed.
    let told = [(a, first.id), (b, doomed.id), (c, failing.id)];
    assert!(matches!(
        told[2].0,
        Err(storage::GroupCommitError::Failed(_))
    ));
    let published = published_ids(&db).await;
    for (outcome, id) in &told {
        assert_eq!(outcome.is_ok(), published.contains(id), "{outcome:?}");
    }

    let panicking = ping(999);
    assert!(matches!(
        group.submit((999, panicking.clone())).await,
        Err(storage::GroupCommitError::Failed(_))
    ));
    let after = ping(3);
    assert_eq!(group.submit((3, after.clone())).await, Ok(()));
    let published = published_ids(&db).await;
    assert!(published.contains(&after.id));
    assert!(!published.contains(&panicking.id));
}

pub async fn a_caller_that_goes_away_still_has_its_item_written(db: Db) {
    let group = outbox_group(&db);
    let abandoned = ping(1);
    // Polled once (which hands the item over), then dropped: the caller stops waiting.
    let submit = group.submit((1, abandoned.clone()));
    tokio::pin!(submit);
    tokio::select! {
        biased;
        _ = &mut submit => {}
        () = std::future::ready(()) => {}
    }
    testkit::eventually(
        std::time::Duration::from_secs(10),
        "the abandoned item committed",
        || {
            let db = db.clone();
            async move {
                published_ids(&db)
                    .await
                    .contains(&abandoned.id)
                    .then_some(())
            }
        },
    )
    .await;
}

/// A batch's ids (`storage::id_among`) are looked up in the column's index, also when two
/// lists are joined by `OR`, on a table large enough that reading it whole would show: on
/// PostgreSQL `IN (SELECT … FROM jsonb_array_elements(…))` read the whole table for a batch,
/// under `OR` at any size.
pub async fn a_batch_of_ids_is_looked_up_in_the_index_even_under_or(db: Db) {
    let backend = db.backend();
    let migrations = [Migration {
        version: 1,
        name: "keyed",
        sqlite: "CREATE TABLE keyed (a_id BLOB PRIMARY KEY, b_id BLOB NOT NULL UNIQUE);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
                 INSERT INTO keyed SELECT randomblob(16), randomblob(16) FROM n;
                 ANALYZE keyed",
        postgres: "CREATE TABLE keyed (a_id UUID PRIMARY KEY, b_id UUID NOT NULL UNIQUE);
                   INSERT INTO keyed SELECT gen_random_uuid(), gen_random_uuid()
                   FROM generate_series(1, 20000);
                   ANALYZE keyed",
    }];
    db.migrate_with("keyed", &migrations).await.unwrap();
    let picked: Vec<(Uuid, Uuid)> = storage::with_db!(&db, conn => sqlx::query_as(
        "SELECT a_id, b_id FROM keyed ORDER BY a_id LIMIT 2"
    )
    .fetch_all(conn)
    .await)
    .unwrap();
    let (by_a, by_b) = (picked[0], picked[1]);
    let query = format!(
        "SELECT a_id FROM keyed WHERE {} OR {}",
        storage::id_among(backend, "a_id", 1),
        storage::id_among(backend, "b_id", 2)
    );
    let a_list = storage::hex_list([[by_a.0], [Uuid::now_v7()]].into_iter());
    let b_list = storage::hex_list([[by_b.1]].into_iter());
    let mut found: Vec<Uuid> = storage::with_db!(&db, conn => sqlx::query_scalar(&query)
        .bind(&a_list)
        .bind(&b_list)
        .fetch_all(conn)
        .await)
    .unwrap();
    found.sort();
    let mut expected = vec![by_a.0, by_b.0];
    expected.sort();
    assert_eq!(found, expected);

    let plan: Vec<String> = match backend {
        storage::Backend::Sqlite => {
            let rows: Vec<(i64, i64, i64, String)> = storage::with_db!(&db, conn => sqlx::query_as(
                &format!("EXPLAIN QUERY PLAN {query}")
            )
            .bind(&a_list)
            .bind(&b_list)
            .fetch_all(conn)
            .await)
            .unwrap();
            rows.into_iter().map(|row| row.3).collect()
        }
        storage::Backend::Postgres => storage::with_db!(&db, conn => sqlx::query_scalar(
            &format!("EXPLAIN {query}")
        )
        .bind(&a_list)
        .bind(&b_list)
        .fetch_all(conn)
        .await)
        .unwrap(),
    };
    let whole_table = plan
        .iter()
        .any(|line| line.contains("Seq Scan") || line.trim_start().starts_with("SCAN keyed"));
    assert!(!whole_table, "the plan reads the whole table: {plan:#?}");
    assert!(
        plan.iter().any(|line| line.contains("keyed")),
        "the plan names the table: {plan:#?}"
    );
}

/// A batch's unique keys (`storage::select_by_unique_keys`, uuid and text keys, with an extra
/// condition) find exactly their rows, and are looked up in the key's index even by the generic
/// plan PostgreSQL caches for a prepared statement while its table is a few rows and was never
/// analyzed — a new deployment's first seconds, when a condition over the whole list (`= ANY`)
/// was planned as a read of the whole table and kept so.
pub async fn a_batch_of_unique_keys_is_looked_up_in_the_index_even_by_a_generic_plan(db: Db) {
    let backend = db.backend();
    let migrations = [Migration {
        version: 1,
        name: "listed",
        sqlite: "CREATE TABLE listed (listed_id BLOB PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                     gone INTEGER NOT NULL)",
        // Wide rows, as a partner's: the fewer rows the planner thinks a page holds, the
        // cheaper reading the whole table looks.
        postgres: "CREATE TABLE listed (listed_id UUID PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                       gone BOOLEAN NOT NULL, a TEXT, b TEXT, c TEXT, d TEXT, e TEXT, f TEXT,
                       g TEXT, h TEXT, i TEXT, j TEXT, k TEXT, l TEXT)",
    }];
    db.migrate_with("listed", &migrations).await.unwrap();
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for (n, id) in ids.iter().enumerate() {
        storage::with_db!(&db, conn => sqlx::query(
            "INSERT INTO listed (listed_id, name, gone) VALUES ($1, $2, $3)"
        )
        .bind(id)
        .bind(format!("name-{n}"))
        .bind(n == 2)
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))
        .unwrap();
    }
    let query = format!(
        "{} UNION ALL {}",
        storage::select_by_unique_keys(
            backend,
            "listed_id, NULL AS name",
            "listed",
            "listed_id",
            storage::ListedKey::Uuid,
            1,
            None
        ),
        storage::select_by_unique_keys(
            backend,
            "NULL, name",
            "listed",
            "name",
            storage::ListedKey::Text,
            2,
            Some("NOT gone")
        )
    );
    let by_id = storage::hex_list([[ids[0]], [Uuid::now_v7()]].into_iter());
    let by_name = r#"[["name-1"], ["name-2"], ["nobody"]]"#;
    let found: Vec<(Option<Uuid>, Option<String>)> =
        storage::with_db!(&db, conn => sqlx::query_as(&query)
        .bind(&by_id)
        .bind(by_name)
        .fetch_all(conn)
        .await)
        .unwrap();
    assert_eq!(
        found,
        vec![(Some(ids[0]), None), (None, Some("name-1".to_owned()))],
        "the listed id, and the listed name whose row is not gone"
    );

    let plan: Vec<String> = match backend {
        storage::Backend::Sqlite => {
            let rows: Vec<(i64, i64, i64, String)> = storage::with_db!(&db, conn => sqlx::query_as(
                &format!("EXPLAIN QUERY PLAN {query}")
            )
            .bind(&by_id)
            .bind(by_name)
            .fetch_all(conn)
            .await)
            .unwrap();
            rows.into_iter().map(|row| row.3).collect()
        }
        storage::Backend::Postgres => {
            // The plan PostgreSQL would cache after the statement's fifth run, on one connection.
            let mut tx = db.begin().await.unwrap();
            let plan = storage::with_tx!(&mut tx, conn => {
                sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                sqlx::raw_sql(&format!("PREPARE listed_probe (text, text) AS {query}"))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                let plan: Vec<String> = sqlx::query_scalar(&format!(
                    "EXPLAIN EXECUTE listed_probe ('{by_id}', '{by_name}')"
                ))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
                sqlx::raw_sql("DEALLOCATE listed_probe")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                Ok::<_, sqlx::Error>(plan)
            })
            .unwrap();
            tx.rollback().await.unwrap();
            plan
        }
    };
    let whole_table = plan
        .iter()
        .any(|line| line.contains("Seq Scan") || line.trim_start().starts_with("SCAN listed"));
    assert!(!whole_table, "the plan reads the whole table: {plan:#?}");
    assert!(
        plan.iter().any(|line| line.contains("listed")),
        "the plan names the table: {plan:#?}"
    );
}
