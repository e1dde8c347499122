//! `GET /api/v1/onboarding/{onboarding_id}`: where an onboarding this BFF started stands.

use std::sync::Arc;

use axum::extract::State;
use uuid::Uuid;
use web::{Json, Path, Problem};

use crate::application::Service;
use crate::http::error::ApiError;
use crate::queries::EstadoOnboarding;

pub const BASE: &str = "/api/v1/onboarding";

/// Where the client follows an onboarding (the 202's `status_url` and `Location`).
pub fn status_url(onboarding_id: Uuid) -> String {
    format!("{BASE}/{onboarding_id}")
}

/// An onboarding's state: the saga's state, the real partner id once known, the contract,
/// compliance's outcome and the saga log's timeline.
#[utoipa::path(
    get,
    path = "/api/v1/onboarding/{onboarding_id}",
    tag = "onboarding",
    params(("onboarding_id" = Uuid, Path)),
    responses(
        (status = 200, body = EstadoOnboarding),
        (status = 404, description = "ONBOARDING_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "UPSTREAM_ERROR", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "UPSTREAM_TIMEOUT", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn estado_onboarding(
    State(service): State<Arc<Service>>,
    Path(onboarding_id): Path<Uuid>,
) -> Result<Json<EstadoOnboarding>, ApiError> {
    Ok(Json(service.onboarding_status(onboarding_id).await?))
}
