//! Stored responses of writes made with an `Idempotency-Key`. The response is stored in the same
//! transaction as the write, so a retry either finds the first response or finds nothing done.
//! Each service keeps only its own write; finding, fingerprinting and storing live here.

use sha2::{Digest, Sha256};

use crate::db::{is_unique_violation, Db, Tx};

/// An `Idempotency-Key` request: its scope (method and path), key and body fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

/// The result of a write that may have been made before under the same idempotency key.
#[derive(Debug)]
pub enum Written<T> {
    Done(T),
    /// The first response to this key, to be sent again byte for byte.
    Replayed(StoredResponse),
}

/// Why an idempotent write cannot go on; each service maps these onto its own error type.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The key was first used with another body: refused rather than answered with the other
    /// request's result.
    #[error("the idempotency key was used with a different request")]
    KeyReused,
    /// A twin with the same key won the race, yet its response cannot be read back.
    #[error("a concurrent write kept conflicting; retry")]
    Contention,
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// The fingerprint stored as `request_hash`: hex SHA-256 of the request's canonical bytes.
pub fn fingerprint(canonical: &[u8]) -> String {
    Sha256::digest(canonical)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The stored response for `request`, if its key was used before (never one without a
/// request). The same key with another body is `KeyReused`.
pub async fn replay(
    db: &Db,
    request: Option<&IdempotentRequest>,
) -> Result<Option<StoredResponse>, IdempotencyError> {
    let Some(request) = request else {
        return Ok(None);
    };
    match find(db, &request.scope, &request.key).await? {
        Some(stored) if stored.request_hash == request.request_hash => Ok(Some(stored)),
        Some(_) => Err(IdempotencyError::KeyReused),
        None => Ok(None),
    }
}

/// What [`remember`] left the write with.
pub enum Remembered {
    /// The response is stored in the transaction (or there was no key): commit it.
    Kept(Tx),
    /// A concurrent twin with the same key committed first; the transaction was rolled back and
    /// this is the twin's response, to send instead.
    Twin(StoredResponse),
}

/// Stores the response `render` builds inside `tx`, with the request's fingerprint, when the
/// write has a key. A unique violation means a twin committed first (on PostgreSQL it also
/// aborted `tx`): `tx` is dropped before reading the twin's response, since SQLite's single
/// writer connection is held by it.
pub async fn remember(
    db: &Db,
    mut tx: Tx,
    request: Option<&IdempotentRequest>,
    render: impl FnOnce() -> StoredResponse,
) -> Result<Remembered, IdempotencyError> {
    let Some(request) = request else {
        return Ok(Remembered::Kept(tx));
    };
    let response = StoredResponse {
        request_hash: request.request_hash.clone(),
        ..render()
    };
    match store(&mut tx, &request.scope, &request.key, &response).await {
        Ok(()) => Ok(Remembered::Kept(tx)),
        Err(error) if is_unique_violation(&error) => {
            drop(tx);
            replay(db, Some(request))
                .await?
                .map(Remembered::Twin)
                .ok_or(IdempotencyError::Contention)
        }
        Err(error) => Err(error.into()),
    }
}

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
