//! The HTTP side of `Idempotency-Key`: reading the key and fingerprinting the body, holding a
//! response as text so it can be stored with the write, and sending a stored response again.
//! The store and replay themselves are `storage::idempotency`, inside each service's write.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use storage::idempotency::{fingerprint, IdempotentRequest, StoredResponse, Written};

use crate::problem::{FieldError, Problem};

/// The header name, lower-case as axum's `HeaderMap` looks it up.
pub const HEADER: &str = "idempotency-key";

/// The longest `Idempotency-Key` accepted.
pub const MAX_KEY: usize = 255;

/// Reads the optional `Idempotency-Key` of a request whose body is `body`, scoped to `scope`
/// (method and path). A blank, over-long or non-ASCII key is 400 `DATOS_INVALIDOS`.
///
/// The fingerprint hashes `body`'s JSON serialization, so equal requests must serialize
/// equally: a typed DTO does (fixed field order); a service fingerprinting free-form JSON
/// passes it with its keys put in a canonical order first.
pub fn request(
    headers: &HeaderMap,
    scope: String,
    body: &impl Serialize,
) -> Result<Option<IdempotentRequest>, Problem> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_KEY)
        .ok_or_else(|| {
            Problem::invalid(vec![FieldError::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )])
        })?;
    let canonical = serde_json::to_vec(body).map_err(|error| Problem::internal(&error))?;
    Ok(Some(IdempotentRequest {
        scope,
        key: key.to_owned(),
        request_hash: fingerprint(&canonical),
    }))
}

/// A JSON response held as text, as it is stored for idempotent replays (the fingerprint is
/// filled in by `storage::idempotency::remember`).
pub fn stored(
    status: StatusCode,
    location: Option<String>,
    body: &impl Serialize,
) -> StoredResponse {
    StoredResponse {
        request_hash: String::new(),
        status: i32::from(status.as_u16()),
        location,
        body: serde_json::to_string(body).unwrap_or_default(),
    }
}

/// Sends a stored response exactly as it was first sent.
pub fn replay(response: StoredResponse) -> Response {
    let status = u16::try_from(response.status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::OK);
    let mut http = (status, response.body).into_response();
    http.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(location) = response
        .location
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        http.headers_mut().insert(header::LOCATION, location);
    }
    http
}

/// The answer to an idempotent write: a fresh result is rendered the way it was stored (so the
/// first answer and every replay are the same bytes), a replayed one is sent as stored.
pub fn respond<T>(written: Written<T>, render: impl FnOnce(&T) -> StoredResponse) -> Response {
    match written {
        Written::Done(value) => replay(render(&value)),
        Written::Replayed(response) => replay(response),
    }
}
