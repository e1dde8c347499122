//! The inbox: a consumer group records each event id it handles in the same transaction as the
//! handler's effects. A redelivered event finds its id already there and changes nothing.

use uuid::Uuid;

use crate::db::Tx;

/// Records that `group` handles `event_id` inside `tx`. Returns `false` when it was handled
/// before: the caller then drops `tx` and acknowledges without doing anything. Two replicas
/// handling the same event concurrently serialize on the primary key; the loser sees `false`.
pub async fn first_delivery(tx: &mut Tx, group: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
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
