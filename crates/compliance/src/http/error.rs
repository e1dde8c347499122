//! The one HTTP error type of this service and its mapping to problem+json, in one place:
//! each application error gets its status and `codigo` here and nowhere else.

use axum::response::{IntoResponse, Response};
use web::Problem;

use crate::application::AppError;
use crate::domain::FieldIssue;
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
        AppError::CuentaNoEncontrada => Problem::not_found("CUENTA_NO_ENCONTRADA", detail),
        AppError::ReglasInvalidas(invalid) => Problem::invalid(field_errors(invalid.0)),
        AppError::Repo(RepoError::Sqlx(ref cause)) => Problem::database(cause),
        AppError::Contention => Problem::unavailable(&error),
        // Only the consumer waits for partners; reaching here is a bug.
        AppError::PartnerAunDesconocido { .. } | AppError::Repo(_) => Problem::internal(&error),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_problem().into_response()
    }
}
