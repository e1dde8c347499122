//! The embedded bus's tables, created on open. The bus owns its own SQLite file, so there is no
//! migration history to share with a service: the file's `user_version` says which layout it
//! holds, and opening it brings an older layout up to date in the same transaction.

use sqlx::SqliteConnection;

/// The layout this code writes. 0 is a new file, or one written before layouts were numbered
/// (version 1: deliveries keyed by group name and topic, in a table with a rowid).
const VERSION: i64 = 2;

/// `bus_message` holds each published message once per topic (the de-duplication key is
/// `(topic, event_id)`).
const MESSAGES: &str = "
CREATE TABLE IF NOT EXISTS bus_message (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    event_id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    UNIQUE (topic, event_id)
);
";

/// `bus_group` holds the durable consumer groups, one row per group and topic; `bus_delivery`
/// one row per message a group has not yet acknowledged, which is the group's whole position.
///
/// Deliveries are the bus's hottest rows (inserted, claimed and deleted once per message and
/// group), so they are kept narrow: a group-and-topic is its integer `group_id`, and the table
/// has no rowid (its key is the only copy of the row's identity: two B-trees a delivery, not
/// three). `group_id` has no foreign key: only this crate writes it, from `bus_group`, and the
/// check would cost a lookup per delivery.
const GROUPS_AND_DELIVERIES: &str = "
CREATE TABLE bus_group (
    group_id INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL,
    topic TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (group_name, topic)
);
CREATE TABLE bus_delivery (
    group_id INTEGER NOT NULL,
    seq INTEGER NOT NULL REFERENCES bus_message (seq),
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL,
    in_flight INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (group_id, seq)
) WITHOUT ROWID;
";

/// What refers to the tables by name, created after them. Storing a message gives each group
/// of its topic a delivery, by trigger, so that a publish is a single statement. The ready
/// index carries `attempts` so that a claim picks its rows from the index alone.
const INDEXES: &str = "
CREATE INDEX bus_group_by_topic ON bus_group (topic);
CREATE INDEX bus_delivery_ready ON bus_delivery (group_id, available_at, seq, attempts);
CREATE TRIGGER bus_message_fan_out AFTER INSERT ON bus_message
BEGIN
    INSERT INTO bus_delivery (group_id, seq, attempts, available_at, in_flight)
    SELECT group_id, NEW.seq, 0, NEW.published_at, 0
    FROM bus_group WHERE topic = NEW.topic;
END;
";

/// Version 1 to 2, first step: the old tables set aside under other names, with what refers
/// to them dropped.
const SET_ASIDE_VERSION_1: &str = "
DROP TRIGGER bus_message_fan_out;
DROP INDEX bus_delivery_ready;
DROP INDEX bus_group_by_topic;
ALTER TABLE bus_group RENAME TO bus_group_v1;
ALTER TABLE bus_delivery RENAME TO bus_delivery_v1;
";

/// Version 1 to 2, once the new tables exist: every group, position and delivery state
/// (attempts, lease, last error) carries over. A delivery of a group missing from `bus_group`
/// (only a hand-edited file has one) gets its group back rather than being dropped.
const CARRY_OVER_VERSION_1: &str = "
INSERT INTO bus_group (group_name, topic, created_at)
SELECT group_name, topic, created_at FROM bus_group_v1 ORDER BY created_at, group_name, topic;
INSERT INTO bus_group (group_name, topic, created_at)
SELECT DISTINCT group_name, topic, 0 FROM bus_delivery_v1 WHERE true
ON CONFLICT DO NOTHING;
INSERT INTO bus_delivery (group_id, seq, attempts, available_at, in_flight, last_error)
SELECT g.group_id, d.seq, d.attempts, d.available_at, d.in_flight, d.last_error
FROM bus_delivery_v1 d JOIN bus_group g ON g.group_name = d.group_name AND g.topic = d.topic;
DROP TABLE bus_delivery_v1;
DROP TABLE bus_group_v1;
";

/// What opening a file finds: a layout to create or migrate, or the current one.
pub(crate) enum Layout {
    /// A new file: no tables yet.
    New,
    /// A file of an earlier layout, which [`create`] migrates.
    Earlier,
    /// The layout this code writes ([`VERSION`]), or a later one.
    Current,
}

/// The layout of the file `conn` is open on.
pub(crate) async fn layout(conn: &mut SqliteConnection) -> Result<Layout, sqlx::Error> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    if version >= VERSION {
        return Ok(Layout::Current);
    }
    // Unnumbered files before version 2 are recognised by their delivery table's group name.
    let version_1: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('bus_delivery') WHERE name = 'group_name')",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(if version_1 {
        Layout::Earlier
    } else {
        Layout::New
    })
}

/// Creates the tables of a new file, or brings an earlier layout (`layout`) up to [`VERSION`].
/// Runs inside the opening transaction, so a migration happens whole or not at all.
pub(crate) async fn create(conn: &mut SqliteConnection, layout: Layout) -> Result<(), sqlx::Error> {
    let steps = match layout {
        Layout::Current => return Ok(()),
        Layout::Earlier => {
            format!("{SET_ASIDE_VERSION_1}{GROUPS_AND_DELIVERIES}{CARRY_OVER_VERSION_1}{INDEXES}")
        }
        Layout::New => format!("{MESSAGES}{GROUPS_AND_DELIVERIES}{INDEXES}"),
    };
    sqlx::raw_sql(&steps).execute(&mut *conn).await?;
    sqlx::raw_sql(&format!("PRAGMA user_version = {VERSION}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
