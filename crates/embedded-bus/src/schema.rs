//! The embedded bus's tables, created on open. The bus owns its own SQLite file, so there is no
//! migration history to share with a service: the schema is created idempotently instead.

use sqlx::SqliteConnection;

/// `bus_message` holds each published message once per topic (the de-duplication key is
/// `(topic, event_id)`); `bus_group` the durable consumer groups; `bus_delivery` one row per
/// message a group has not yet acknowledged, which is the group's whole position. Storing a
/// message gives each group of its topic a delivery, by trigger, so that a publish is a single
/// statement.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bus_message (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    event_id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    UNIQUE (topic, event_id)
);
CREATE TABLE IF NOT EXISTS bus_group (
    group_name TEXT NOT NULL,
    topic TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_name, topic)
);
CREATE INDEX IF NOT EXISTS bus_group_by_topic ON bus_group (topic);
CREATE TABLE IF NOT EXISTS bus_delivery (
    group_name TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES bus_message (seq),
    topic TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,
    in_flight INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (group_name, seq)
);
CREATE INDEX IF NOT EXISTS bus_delivery_ready ON bus_delivery (group_name, topic, available_at, seq);
CREATE TRIGGER IF NOT EXISTS bus_message_fan_out AFTER INSERT ON bus_message
BEGIN
    INSERT INTO bus_delivery (group_name, seq, topic, attempts, available_at, in_flight)
    SELECT group_name, NEW.seq, NEW.topic, 0, NEW.published_at, 0
    FROM bus_group WHERE topic = NEW.topic;
END;
";

pub(crate) async fn create(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(SCHEMA).execute(conn).await?;
    Ok(())
}
