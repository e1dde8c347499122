//! The inbox: a consumer group records each event id it handles in the same transaction as the
//! handler's effects. A redelivered event finds its id already there and changes nothing.

use std::collections::HashMap;

use uuid::Uuid;

use crate::db::Tx;

/// Inbox rows a batch inserted in one statement before its messages are applied: each
/// `first_delivery` of those ids answers from here instead of inserting again.
pub(crate) struct Prechecked {
    group: String,
    /// Event id → whether the up-front insert was its first (each answered once).
    first: HashMap<Uuid, bool>,
}

/// Inserts the inbox rows of every id in `event_ids` for `group` in one statement and
/// remembers, in `tx`, which were new: the batch's `first_delivery` calls then cost nothing.
pub async fn precheck(tx: &mut Tx, group: &str, event_ids: &[Uuid]) -> Result<(), sqlx::Error> {
    // Bare hex: SQLite stores ids as 16-byte blobs (`unhex`), PostgreSQL parses it as a uuid.
    let ids: Vec<String> = event_ids.iter().map(|id| id.simple().to_string()).collect();
    let ids = serde_json::to_string(&ids).expect("strings serialize to JSON");
    let sql = match tx.backend() {
        // `WHERE true` tells SQLite's parser the ON CONFLICT belongs to the INSERT.
        crate::Backend::Sqlite => {
            "INSERT INTO inbox (group_name, event_id, handled_at)
             SELECT $1, unhex(value), $2 FROM json_each($3) WHERE true
             ON CONFLICT (group_name, event_id) DO NOTHING RETURNING event_id"
        }
        crate::Backend::Postgres => {
            "INSERT INTO inbox (group_name, event_id, handled_at)
             SELECT $1, value::uuid, $2 FROM jsonb_array_elements_text($3::jsonb) AS value
             ON CONFLICT (group_name, event_id) DO NOTHING RETURNING event_id"
        }
    };
    let inserted: Vec<Uuid> = crate::with_tx!(&mut *tx, conn => sqlx::query_scalar(sql)
        .bind(group)
        .bind(kernel::now())
        .bind(ids)
        .fetch_all(conn)
        .await)?;
    let mut first: HashMap<Uuid, bool> = event_ids.iter().map(|id| (*id, false)).collect();
    for id in inserted {
        first.insert(id, true);
    }
    tx.inbox = Some(Prechecked {
        group: group.to_owned(),
        first,
    });
    Ok(())
}

/// Records that `group` handles `event_id` inside `tx`. Returns `false` when it was handled
/// before: the caller then drops `tx` and acknowledges without doing anything. Two replicas
/// handling the same event concurrently serialize on the primary key; the loser sees `false`.
pub async fn first_delivery(tx: &mut Tx, group: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
    if let Some(prechecked) = tx.inbox.as_mut().filter(|p| p.group == group) {
        if let Some(first) = prechecked.first.remove(&event_id) {
            return Ok(first);
        }
    }
    let inserted = crate::with_tx!(tx, conn => sqlx::query(
        "INSERT INTO inbox (group_name, event_id, handled_at) VALUES ($1, $2, $3)
         ON CONFLICT (group_name, event_id) DO NOTHING",
    )
    .bind(group)
    .bind(event_id)
    .bind(kernel::now())
    .execute(conn)
    .await
    .map(|result| result.rows_affected()))?;
    Ok(inserted == 1)
}

/// Whether `group` has handled `event_id`, for tests and diagnostics.
pub async fn contains(db: &crate::Db, group: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<i32> = crate::with_db!(db, conn => sqlx::query_scalar(
        "SELECT 1 FROM inbox WHERE group_name = $1 AND event_id = $2",
    )
    .bind(group)
    .bind(event_id)
    .fetch_optional(conn)
    .await)?;
    Ok(found.is_some())
}
