//! The one HTTP error type of this service and its mapping to problem+json, in one place:
//! each application or domain error gets its status and `codigo` here and nowhere else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use web::{FieldError, Problem};

use crate::application::AppError;
use crate::domain::{DomainError, FieldIssue};
use crate::storage::RepoError;

#[derive(Debug)]
pub enum ApiError {
    App(AppError),
    /// Invalid input: 400 `DATOS_INVALIDOS` with every invalid field.
    Invalid(Vec<FieldIssue>),
    /// A problem built by a shared extractor or helper (boxed: it is large).
    Problem(Box<Problem>),
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        ApiError::App(error)
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        ApiError::Problem(Box::new(problem))
    }
}

pub use web::field_errors;

impl ApiError {
    pub fn into_problem(self) -> Problem {
        match self {
            ApiError::Problem(problem) => *problem,
            ApiError::Invalid(issues) => Problem::invalid(field_errors(issues)),
            ApiError::App(error) => app_problem(error),
        }
    }
}

fn app_problem(error: AppError) -> Problem {
    let detail = error.to_string();
    match error {
        AppError::ContratoNotFound | AppError::Domain(DomainError::NoExiste) => {
            Problem::not_found("CONTRATO_NO_ENCONTRADO", detail)
        }
        AppError::PlantillaNotFound(_) => Problem::not_found("PLANTILLA_NO_ENCONTRADA", detail),
        AppError::VersionConflict { .. } | AppError::Domain(DomainError::YaExiste) => {
            Problem::new(StatusCode::CONFLICT, "CONFLICTO_VERSION", detail)
        }
        AppError::Domain(DomainError::TransicionInvalida { .. }) => {
            Problem::new(StatusCode::CONFLICT, "TRANSICION_INVALIDA", detail)
        }
        AppError::Domain(DomainError::FechaFinAntesDeInicio { .. }) => {
            Problem::invalid(vec![FieldError::new("fecha_fin", detail)])
        }
        AppError::VersionBeyondStream(_) => {
            Problem::invalid(vec![FieldError::new("version", detail)])
        }
        AppError::IdempotencyKeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUTILIZADA",
            detail,
        ),
        AppError::Contention => Problem::unavailable(&error),
        AppError::Repo(RepoError::Sqlx(ref cause)) => Problem::database(cause),
        AppError::Repo(ref cause) => Problem::internal(cause),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_problem().into_response()
    }
}
