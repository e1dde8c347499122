//! RFC 9457 problem details with the platform's `codigo` and, for validation, `errores`.
//! Every error a service returns goes through `Problem`; a 5xx never carries internal text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub campo: String,
    pub mensaje: String,
}

impl FieldError {
    pub fn new(campo: impl Into<String>, mensaje: impl Into<String>) -> Self {
        Self {
            campo: campo.into(),
            mensaje: mensaje.into(),
        }
    }
}

impl From<kernel::FieldIssue> for FieldError {
    fn from(issue: kernel::FieldIssue) -> Self {
        FieldError::new(issue.campo, issue.mensaje)
    }
}

/// The domain's field issues as they are sent.
pub fn field_errors(issues: Vec<kernel::FieldIssue>) -> Vec<FieldError> {
    issues.into_iter().map(FieldError::from).collect()
}

/// An `application/problem+json` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub codigo: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errores: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: StatusCode, codigo: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("urn:alpes:problema:{}", codigo.to_lowercase()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            codigo: codigo.to_owned(),
            errores: Vec::new(),
        }
    }

    /// 400 `DATOS_INVALIDOS` listing every invalid field.
    pub fn invalid(errores: Vec<FieldError>) -> Self {
        let detail = errores
            .iter()
            .map(|e| format!("{}: {}", e.campo, e.mensaje))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errores,
            ..Self::new(StatusCode::BAD_REQUEST, "DATOS_INVALIDOS", detail)
        }
    }

    pub fn not_found(codigo: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codigo, detail)
    }

    /// A 500 whose cause is logged here and never sent to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERROR_INTERNO",
            "an internal error occurred; it has been logged",
        )
    }

    /// 503 for a dependency (database, broker) that is down; the cause is logged.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICIO_NO_DISPONIBLE",
            "a dependency is unavailable; retry later",
        )
    }

    /// A failed database call: 503 when the database is out of reach (retry later), else 500.
    /// Either way the cause is logged, never sent.
    pub fn database(cause: &sqlx::Error) -> Self {
        if storage::is_unavailable(cause) {
            Self::unavailable(cause)
        } else {
            Self::internal(cause)
        }
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.codigo, self.detail)
    }
}
