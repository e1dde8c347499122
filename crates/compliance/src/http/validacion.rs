//! `POST /partners/validate`: the rules run on a proposed contract without side effects.

use std::sync::Arc;

use axum::extract::State;
use web::{Json, Problem};

use crate::application::Service;
use crate::http::dto::{ValidacionDto, ValidarContratoRequest};
use crate::http::error::ApiError;

/// Dry-run the compliance rules on a proposed contract (nothing is recorded or published).
#[utoipa::path(
    post,
    path = "/partners/validate",
    tag = "validacion",
    request_body = ValidarContratoRequest,
    responses(
        (status = 200, description = "The rules' verdict (approved or not)", body = ValidacionDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn validar_contrato(
    State(service): State<Arc<Service>>,
    Json(body): Json<ValidarContratoRequest>,
) -> Result<Json<ValidacionDto>, ApiError> {
    let contrato = body.parse()?;
    let veredicto = service.dry_run(&contrato).await?;
    Ok(Json(ValidacionDto::from_domain(&veredicto)))
}
