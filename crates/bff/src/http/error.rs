//! The one HTTP error type of the BFF and its mapping to problem+json, in one place: each
//! application error gets its status and `codigo` here and nowhere else. Upstream failures
//! are 502 `UPSTREAM_ERROR` or 504 `UPSTREAM_TIMEOUT`, never a 200 and never internal text.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use storage::GroupCommitError;
use web::Problem;

use crate::application::AppError;
use crate::domain::FieldIssue;
use crate::storage::RepoError;
use crate::upstream::UpstreamError;

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

impl ApiError {
    pub fn into_problem(self) -> Problem {
        match self {
            ApiError::Problem(problem) => *problem,
            ApiError::Invalid(issues) => Problem::invalid(web::field_errors(issues)),
            ApiError::App(error) => app_problem(error),
        }
    }
}

fn upstream_problem(error: &UpstreamError) -> Problem {
    match error {
        UpstreamError::Timeout { servicio, timeout } => {
            tracing::warn!(%servicio, ?timeout, "upstream timed out");
            Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "UPSTREAM_TIMEOUT",
                format!("{servicio} did not answer in time; retry later"),
            )
        }
        UpstreamError::Failed { servicio, cause } => {
            tracing::warn!(%servicio, %cause, "upstream failed");
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "UPSTREAM_ERROR",
                format!("{servicio} failed to answer; retry later"),
            )
        }
    }
}

fn app_problem(error: AppError) -> Problem {
    let detail = error.to_string();
    match error {
        AppError::OnboardingNotFound => Problem::not_found("ONBOARDING_NO_ENCONTRADO", detail),
        AppError::PartnerNotFound => Problem::not_found("PARTNER_NO_ENCONTRADO", detail),
        AppError::IdempotencyKeyReused => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUTILIZADA",
            detail,
        ),
        AppError::Upstream(ref upstream) => upstream_problem(upstream),
        AppError::Rejected(problem) => *problem,
        AppError::Contention => Problem::unavailable(&error),
        AppError::Repo(RepoError::Sqlx(ref cause)) => Problem::database(cause),
        AppError::Write(ref cause @ GroupCommitError::Unavailable(_)) => {
            Problem::unavailable(cause)
        }
        AppError::Write(ref cause @ GroupCommitError::Failed(_)) => Problem::internal(cause),
        AppError::Repo(ref cause) => Problem::internal(cause),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_problem().into_response()
    }
}
