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
    /// Invalid input: 400 with every invalid field, under `codigo`.
    Invalid {
        codigo: &'static str,
        issues: Vec<FieldIssue>,
    },
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

pub const DATOS_INVALIDOS: &str = "DATOS_INVALIDOS";

/// A 400 listing `issues` under `codigo` (which defaults to `DATOS_INVALIDOS`).
pub fn invalid_problem(codigo: &str, issues: Vec<FieldError>) -> Problem {
    let mut problem = Problem::invalid(issues);
    if codigo != DATOS_INVALIDOS {
        problem.problem_type = format!("urn:alpes:problema:{}", codigo.to_lowercase());
        problem.codigo = codigo.to_owned();
    }
    problem
}

pub use web::field_errors;

impl ApiError {
    pub fn invalid(issues: Vec<FieldIssue>) -> Self {
        ApiError::Invalid {
            codigo: DATOS_INVALIDOS,
            issues,
        }
    }

    pub fn into_problem(self) -> Problem {
        match self {
            ApiError::Problem(problem) => *problem,
            ApiError::Invalid { codigo, issues } => invalid_problem(codigo, field_errors(issues)),
            ApiError::App(error) => app_problem(error),
        }
    }
}

fn app_problem(error: AppError) -> Problem {
    let detail = error.to_string();
    match error {
        AppError::PartnerNotFound => Problem::not_found("PARTNER_NO_ENCONTRADO", detail),
        AppError::IntegracionNotFound | AppError::Domain(DomainError::IntegracionNoEncontrada) => {
            Problem::not_found("INTEGRACION_NO_ENCONTRADA", detail)
        }
        AppError::EmailTaken => Problem::new(StatusCode::CONFLICT, "EMAIL_EXISTENTE", detail),
        AppError::IdempotencyKeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUTILIZADA",
            detail,
        ),
        AppError::Domain(DomainError::PartnerEliminado) => {
            Problem::new(StatusCode::GONE, "PARTNER_ELIMINADO", detail)
        }
        AppError::Domain(DomainError::PartnerYaEliminado) => {
            Problem::new(StatusCode::GONE, "PARTNER_YA_ELIMINADO", detail)
        }
        AppError::Domain(DomainError::IntegracionYaRevocada) => {
            Problem::new(StatusCode::GONE, "INTEGRACION_YA_REVOCADA", detail)
        }
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
