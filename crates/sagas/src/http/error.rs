//! The one HTTP error type of this service and its mapping to problem+json, in one place:
//! each application error gets its status and `codigo` here and nowhere else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use web::{FieldError, Problem};

use crate::application::AppError;
use crate::storage::RepoError;

#[derive(Debug)]
pub enum ApiError {
    App(AppError),
    /// A problem built by a shared extractor or a request parser (boxed: it is large).
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
    /// 400 `DATOS_INVALIDOS` listing every invalid field.
    pub fn invalid(errores: Vec<FieldError>) -> Self {
        Problem::invalid(errores).into()
    }

    pub fn into_problem(self) -> Problem {
        match self {
            ApiError::Problem(problem) => *problem,
            ApiError::App(error) => app_problem(error),
        }
    }
}

fn app_problem(error: AppError) -> Problem {
    let detail = error.to_string();
    match error {
        AppError::SagaNotFound => Problem::not_found("SAGA_NO_ENCONTRADA", detail),
        AppError::Transicion(_) => {
            Problem::new(StatusCode::CONFLICT, "TRANSICION_INVALIDA", detail)
        }
        // Only consumers meet these; over HTTP they mean "busy, try again".
        AppError::Contention | AppError::NotYetKnown(_) => Problem::unavailable(&error),
        AppError::Repo(RepoError::Sqlx(ref cause)) => Problem::database(cause),
        AppError::Repo(ref cause) => Problem::internal(cause),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_problem().into_response()
    }
}
