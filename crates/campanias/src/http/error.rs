//! The one HTTP error type of this service and its mapping to problem+json, in one place:
//! each application or domain error gets its status and `codigo` here and nowhere else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use web::Problem;

use crate::application::AppError;
use crate::domain::{DomainError, FieldIssue};
use crate::storage::RepoError;

#[derive(Debug)]
pub enum ApiError {
    App(AppError),
    /// Invalid input: 400 `DATOS_INVALIDOS` with every invalid field.
    Invalid(Vec<FieldIssue>),
    /// A problem built by a shared extractor or helper.
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

impl ApiError {
    pub fn into_problem(self) -> Problem {
        match self {
            ApiError::Problem(problem) => *problem,
            ApiError::Invalid(issues) => Problem::invalid(web::problem::field_errors(issues)),
            ApiError::App(error) => app_problem(error),
        }
    }
}

fn app_problem(error: AppError) -> Problem {
    let detail = error.to_string();
    let conflict = |codigo: &str| Problem::new(StatusCode::CONFLICT, codigo, detail.clone());
    match error {
        AppError::ProgramaNotFound => Problem::not_found("PROGRAMA_NO_ENCONTRADO", detail),
        AppError::Domain(DomainError::AfiliacionNoEncontrada) => {
            Problem::not_found("AFILIACION_NO_ENCONTRADA", detail)
        }
        AppError::Domain(DomainError::TransicionInvalida { .. }) => conflict("TRANSICION_INVALIDA"),
        AppError::Domain(DomainError::AfiliacionExistente) => conflict("AFILIACION_EXISTENTE"),
        AppError::Domain(DomainError::PartnerNoElegible) => conflict("PARTNER_NO_ELEGIBLE"),
        AppError::Domain(DomainError::ProgramaCerrado) => conflict("PROGRAMA_CERRADO"),
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
