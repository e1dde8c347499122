//! The rule configuration, read and changed at run time by an operator; the next evaluation
//! uses the change.

use std::sync::Arc;

use axum::extract::State;
use web::{Json, Problem};

use crate::application::Service;
use crate::http::dto::{ActualizarReglasRequest, ReglasDto};
use crate::http::error::ApiError;

/// The current rule configuration.
#[utoipa::path(
    get,
    path = "/compliance/reglas",
    tag = "reglas",
    responses((status = 200, body = ReglasDto))
)]
pub async fn obtener_reglas(
    State(service): State<Arc<Service>>,
) -> Result<Json<ReglasDto>, ApiError> {
    let (reglas, at) = service.rules().await?;
    Ok(Json(ReglasDto::from_domain(&reglas, at)))
}

/// Change the rule configuration; fields left out keep their value.
#[utoipa::path(
    put,
    path = "/compliance/reglas",
    tag = "reglas",
    request_body = ActualizarReglasRequest,
    responses(
        (status = 200, description = "The configuration now in force", body = ReglasDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn actualizar_reglas(
    State(service): State<Arc<Service>>,
    Json(body): Json<ActualizarReglasRequest>,
) -> Result<Json<ReglasDto>, ApiError> {
    let cambios = body.parse()?;
    let (reglas, at) = service.update_rules(cambios).await?;
    Ok(Json(ReglasDto::from_domain(&reglas, Some(at))))
}
