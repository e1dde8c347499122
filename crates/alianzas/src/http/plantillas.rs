//! Handlers of `/plantillas`: the contract templates per partner kind, read and edited by an
//! operator. A new partner's contract copies its kind's template unless terms were proposed.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use web::{Json, Path, Problem};

use crate::application::Service;
use crate::domain::{FieldIssue, TipoPartner};
use crate::http::dto::{PlantillaDto, PlantillaRequest, PlantillasDto};
use crate::http::error::ApiError;

fn tipo_partner(raw: &str) -> Result<TipoPartner, ApiError> {
    TipoPartner::parse(raw.trim())
        .map_err(|error| ApiError::Invalid(vec![FieldIssue::new("tipo_partner", error.0)]))
}

/// Every template.
#[utoipa::path(
    get,
    path = "/plantillas",
    tag = "plantillas",
    responses((status = 200, body = PlantillasDto))
)]
pub async fn listar_plantillas(
    State(service): State<Arc<Service>>,
) -> Result<Json<PlantillasDto>, ApiError> {
    let items: Vec<PlantillaDto> = service
        .plantillas()
        .await?
        .iter()
        .map(PlantillaDto::from)
        .collect();
    Ok(Json(PlantillasDto {
        total: items.len() as i64,
        items,
        next_cursor: None,
    }))
}

/// The template of one partner kind.
#[utoipa::path(
    get,
    path = "/plantillas/{tipo_partner}",
    tag = "plantillas",
    params(("tipo_partner" = String, Path, description = "AFILIADO, INFLUENCER, EMBAJADOR or CORPORATIVO")),
    responses(
        (status = 200, body = PlantillaDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "PLANTILLA_NO_ENCONTRADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn obtener_plantilla(
    State(service): State<Arc<Service>>,
    Path(raw): Path<String>,
) -> Result<Json<PlantillaDto>, ApiError> {
    let plantilla = service.plantilla(tipo_partner(&raw)?).await?;
    Ok(Json(PlantillaDto::from(&plantilla)))
}

/// Create or replace the template of the body's `tipo_partner` (201 when new, 200 when
/// replaced).
#[utoipa::path(
    post,
    path = "/plantillas",
    tag = "plantillas",
    request_body = PlantillaRequest,
    responses(
        (status = 201, body = PlantillaDto),
        (status = 200, description = "Replaced", body = PlantillaDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn crear_plantilla(
    State(service): State<Arc<Service>>,
    Json(body): Json<PlantillaRequest>,
) -> Result<Response, ApiError> {
    let plantilla = body.parse(None)?;
    let created = service.guardar_plantilla(&plantilla).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/plantillas/{}", plantilla.tipo_partner.as_str());
    Ok((
        status,
        [(header::LOCATION, location)],
        Json(PlantillaDto::from(&plantilla)),
    )
        .into_response())
}

/// Replace the template of a partner kind (every term; `condiciones` may be left out).
#[utoipa::path(
    put,
    path = "/plantillas/{tipo_partner}",
    tag = "plantillas",
    params(("tipo_partner" = String, Path, description = "AFILIADO, INFLUENCER, EMBAJADOR or CORPORATIVO")),
    request_body = PlantillaRequest,
    responses(
        (status = 200, body = PlantillaDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn actualizar_plantilla(
    State(service): State<Arc<Service>>,
    Path(raw): Path<String>,
    Json(body): Json<PlantillaRequest>,
) -> Result<Json<PlantillaDto>, ApiError> {
    let tipo = tipo_partner(&raw)?;
    let plantilla = body.parse(Some(tipo.as_str()))?;
    service.guardar_plantilla(&plantilla).await?;
    Ok(Json(PlantillaDto::from(&plantilla)))
}
