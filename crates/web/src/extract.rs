//! Extractors wrapping axum's so that a malformed body, a wrong content type, an oversized body,
//! a bad query string or a malformed path id comes back as problem+json, never as plain text.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::problem::Problem;

/// A JSON body (request) or a JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "TIPO_CONTENIDO_NO_SOPORTADO",
            "the body must be JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(error) => Problem::new(
            StatusCode::BAD_REQUEST,
            "JSON_INVALIDO",
            format!("the body is not valid JSON: {}", error.body_text()),
        ),
        JsonRejection::JsonDataError(error) => Problem::new(
            StatusCode::BAD_REQUEST,
            "DATOS_INVALIDOS",
            format!(
                "the body does not match the expected shape: {}",
                error.body_text()
            ),
        ),
        JsonRejection::BytesRejection(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "CUERPO_DEMASIADO_GRANDE",
                format!("the body exceeds {} bytes", crate::MAX_BODY_BYTES),
            )
        }
        other => Problem::new(other.status(), "SOLICITUD_INVALIDA", other.body_text()),
    }
}

/// A JSON body that may be left out entirely (no bytes, or only white space); when present it
/// must be JSON, with the same problem+json answers as [`Json`].
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "CUERPO_DEMASIADO_GRANDE",
                        format!("the body exceeds {} bytes", crate::MAX_BODY_BYTES),
                    )
                } else {
                    Problem::new(
                        rejection.status(),
                        "SOLICITUD_INVALIDA",
                        rejection.body_text(),
                    )
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        // Rebuilt with its content type so that `Json` judges it exactly as a required body.
        let mut request = Request::new(axum::body::Body::from(bytes));
        if let Some(content_type) = content_type {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(OptionalJson(Some(value)))
    }
}

/// A query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection: QueryRejection| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "DATOS_INVALIDOS",
                    format!("invalid query string: {}", rejection.body_text()),
                )
            })
    }
}

/// Path parameters; a malformed id is 400 rather than axum's plain-text answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection: PathRejection| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "DATOS_INVALIDOS",
                    format!("invalid path: {}", rejection.body_text()),
                )
            })
    }
}
