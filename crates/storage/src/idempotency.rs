//! Stored responses of writes made with an `Idempotency-Key`. The response is stored in the same
//! transaction as the write, so a retry either finds the first response or finds nothing done.

use crate::db::{Db, Tx};

/// A response to replay. `request_hash` fingerprints the request body, so the same key with a
/// different body is refused instead of silently answered with another request's result.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: i32,
    pub location: Option<String>,
    pub body: String,
}

pub async fn find(db: &Db, scope: &str, key: &str) -> Result<Option<StoredResponse>, sqlx::Error> {
    crate::with_db!(db, conn => sqlx::query_as(
        "SELECT request_hash, status, location, body FROM idempotency
         WHERE scope = $1 AND idempotency_key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(conn)
    .await)
}

/// Stores the response inside `tx`. A unique violation means a concurrent request with the same
/// key won; the caller rolls back and replays that one.
pub async fn store(
    tx: &mut Tx,
    scope: &str,
    key: &str,
    response: &StoredResponse,
) -> Result<(), sqlx::Error> {
    crate::with_tx!(tx, conn => sqlx::query(
        "INSERT INTO idempotency (scope, idempotency_key, request_hash, status, location, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(scope)
    .bind(key)
    .bind(&response.request_hash)
    .bind(response.status)
    .bind(&response.location)
    .bind(&response.body)
    .bind(kernel::now())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
