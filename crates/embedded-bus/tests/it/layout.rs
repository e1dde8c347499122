//! A bus file written by an earlier layout opens with everything it held: groups, positions,
//! leases, attempts and last errors carry over, and the migrated groups keep receiving.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use embedded_bus::EmbeddedBus;
use kernel::{Bus, BusError, Envelope, SubscribeOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;
use testkit::bus::ping;

const DEADLINE: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// The first layout, as files written before layouts were numbered hold it: deliveries keyed
/// by group name and topic, in a table with a rowid.
const VERSION_1: &str = "
CREATE TABLE bus_message (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    event_id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    UNIQUE (topic, event_id)
);
CREATE TABLE bus_group (
    group_name TEXT NOT NULL,
    topic TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_name, topic)
);
CREATE INDEX bus_group_by_topic ON bus_group (topic);
CREATE TABLE bus_delivery (
    group_name TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES bus_message (seq),
    topic TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,
    in_flight INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (group_name, seq)
);
CREATE INDEX bus_delivery_ready ON bus_delivery (group_name, topic, available_at, seq);
CREATE TRIGGER bus_message_fan_out AFTER INSERT ON bus_message
BEGIN
    INSERT INTO bus_delivery (group_name, seq, topic, attempts, available_at, in_flight)
    SELECT group_name, NEW.seq, NEW.topic, 0, NEW.published_at, 0
    FROM bus_group WHERE topic = NEW.topic;
END;
";

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// Writes a file of the first layout at `path` with groups `billing` and `shipping` on
/// `orders` and four messages: billing acknowledged the first, holds a lease on the second
/// (for an hour: only the recovery on open hands it out again) and failed the third twice;
/// shipping has all four to come.
async fn first_layout_file(path: &Path) -> [Envelope; 4] {
    let (acked, leased, failing, waiting) = (ping(1), ping(2), ping(3), ping(4));
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(VERSION_1).execute(&mut conn).await.unwrap();
    for group in ["billing", "shipping"] {
        sqlx::query("INSERT INTO bus_group VALUES ($1, 'orders', 0)")
            .bind(group)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for envelope in [&acked, &leased, &failing, &waiting] {
        sqlx::query("INSERT INTO bus_message (topic, event_id, envelope, published_at) VALUES ('orders', $1, $2, $3)")
            .bind(envelope.id.to_string())
            .bind(serde_json::to_string(envelope).unwrap())
            .bind(now_ms())
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM bus_delivery WHERE group_name = 'billing' AND seq = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE bus_delivery SET attempts = 1, in_flight = 1, available_at = $1 \
         WHERE group_name = 'billing' AND seq = 2",
    )
    .bind(now_ms() + 3_600_000)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE bus_delivery SET attempts = 2, available_at = 0, last_error = 'card declined' \
         WHERE group_name = 'billing' AND seq = 3",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    [acked, leased, failing, waiting]
}

#[tokio::test]
async fn a_file_of_the_first_layout_opens_with_its_groups_and_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.db");
    let [_, leased, failing, waiting] = first_layout_file(&path).await;

    let bus = EmbeddedBus::open(&path).await.unwrap();
    assert_eq!(bus.pending("billing").await.unwrap(), 3);
    assert_eq!(bus.pending("shipping").await.unwrap(), 4);
    let mut billing = bus
        .subscribe(
            "orders",
            "billing",
            SubscribeOptions {
                max_attempts: 2,
                ack_wait: Duration::from_secs(30),
            },
        )
        .await
        .unwrap();
    // The leased and the waiting order are handed out, the leased one as its second attempt;
    // the failing one is out of attempts.
    let mut attempts = HashMap::new();
    while attempts.len() < 2 {
        let batch = tokio::time::timeout(DEADLINE, billing.next_batch(10))
            .await
            .expect("deliveries within the deadline")
            .unwrap();
        for delivery in batch {
            attempts.insert(delivery.envelope.id, delivery.attempt);
            delivery.ack().await.unwrap();
        }
    }
    assert_eq!(
        attempts,
        HashMap::from([(leased.id, 2), (waiting.id, 1)]),
        "the leased and the waiting order, nothing else"
    );
    // The claim that finds nothing else ready dead-letters what is out of attempts.
    if let Ok(delivery) = tokio::time::timeout(QUIET, billing.next()).await {
        panic!("unexpected delivery: {delivery:?}");
    }
    let dead = bus.dead_letters("billing").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, failing.id);
    assert_eq!(dead[0].deadlettererror.as_deref(), Some("card declined"));
    assert_eq!(dead[0].deadletterattempts, Some(2));

    // Both migrated groups receive what is published now, and a second open migrates nothing.
    let fresh = ping(5);
    bus.publish("orders", std::slice::from_ref(&fresh))
        .await
        .unwrap();
    let delivery = tokio::time::timeout(DEADLINE, billing.next())
        .await
        .expect("the new order within the deadline")
        .unwrap();
    assert_eq!(delivery.envelope.id, fresh.id);
    delivery.ack().await.unwrap();
    bus.close().await;
    let bus = EmbeddedBus::open(&path).await.unwrap();
    assert_eq!(bus.pending("billing").await.unwrap(), 0);
    assert_eq!(bus.pending("shipping").await.unwrap(), 5);
    bus.close().await;
}

#[tokio::test]
async fn an_operator_tool_leaves_a_file_of_the_first_layout_to_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.db");
    first_layout_file(&path).await;

    let refused = EmbeddedBus::attach(&path).await.unwrap_err();
    assert!(
        matches!(&refused, BusError::Unavailable(message) if message.contains("earlier layout")),
        "{refused:?}"
    );
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    let untouched: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT user_version FROM pragma_user_version), \
             (SELECT COUNT(*) FROM bus_delivery WHERE group_name = 'shipping')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(untouched, (0, 4), "the file is as it was written");
    drop(conn);

    let owner = EmbeddedBus::open(&path).await.unwrap();
    let tool = EmbeddedBus::attach(&path).await.unwrap();
    assert_eq!(tool.pending("shipping").await.unwrap(), 4);
    tool.close().await;
    owner.close().await;
}
