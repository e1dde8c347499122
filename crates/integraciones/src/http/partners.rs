//! Handlers of `/api/v1/partners`: each parses its input once, calls one use case and renders
//! the answer. Writes a client may retry (`POST` of a partner or an integration) honour an
//! `Idempotency-Key` header by replaying the first stored response.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use uuid::Uuid;
use web::idempotency::{self, stored};
use web::{Json, OptionalJson, Page, Path, Problem, Query};

use crate::application::Service;
use crate::http::dto::{
    ActualizarPartnerRequest, CrearIntegracionRequest, CrearPartnerRequest, IntegracionDto,
    KycRequest, ListarPartnersParams, PartnerDto, PartnerEliminadoDto, RevocarRequest,
};
use crate::http::error::ApiError;

pub const BASE: &str = "/api/v1/partners";
fn partner_location(partner_id: Uuid) -> String {
    format!("{BASE}/{partner_id}")
}

/// Register a partner.
#[utoipa::path(
    post,
    path = "/api/v1/partners",
    tag = "partners",
    request_body = CrearPartnerRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: the same key and body returns the first response")),
    responses(
        (status = 201, description = "Created", body = PartnerDto, headers(("Location" = String, description = "URL of the new partner"))),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "EMAIL_EXISTENTE", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUTILIZADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn crear_partner(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Json(body): Json<CrearPartnerRequest>,
) -> Result<Response, ApiError> {
    let datos = body.parse()?;
    let idempotent = idempotency::request(&headers, format!("POST {BASE}"), &body)?;
    let render = |partner: &crate::domain::Partner| {
        stored(
            StatusCode::CREATED,
            Some(partner_location(partner.id())),
            &PartnerDto::detail(partner),
        )
    };
    let written = service
        .create_partner(datos, idempotent.as_ref(), &render)
        .await?;
    Ok(idempotency::respond(written, render))
}

/// List partners.
#[utoipa::path(
    get,
    path = "/api/v1/partners",
    tag = "partners",
    params(ListarPartnersParams),
    responses(
        (status = 200, description = "A page of partners (no integrations)", body = Page<PartnerDto>),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn listar_partners(
    State(service): State<Arc<Service>>,
    Query(params): Query<ListarPartnersParams>,
) -> Result<Json<Page<PartnerDto>>, ApiError> {
    let (filter, page) = params.parse()?;
    let (partners, total) = service
        .list_partners(&filter, page.limit, page.after)
        .await?;
    let page = Page::from_rows(partners, page, total, |partner| partner.id());
    Ok(Json(page.map(|partner| PartnerDto::summary(&partner))))
}

/// One partner with its integrations.
#[utoipa::path(
    get,
    path = "/api/v1/partners/{partner_id}",
    tag = "partners",
    params(("partner_id" = Uuid, Path)),
    responses(
        (status = 200, body = PartnerDto),
        (status = 404, description = "PARTNER_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn obtener_partner(
    State(service): State<Arc<Service>>,
    Path(partner_id): Path<Uuid>,
) -> Result<Json<PartnerDto>, ApiError> {
    let partner = service.get_partner(partner_id).await?;
    Ok(Json(PartnerDto::detail(&partner)))
}

/// Update `nombre`, `telefono`, `direccion`, `tipo`; a field sent as null is cleared.
#[utoipa::path(
    put,
    path = "/api/v1/partners/{partner_id}",
    tag = "partners",
    params(("partner_id" = Uuid, Path)),
    request_body = ActualizarPartnerRequest,
    responses(
        (status = 200, body = PartnerDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "PARTNER_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "PARTNER_ELIMINADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn actualizar_partner(
    State(service): State<Arc<Service>>,
    Path(partner_id): Path<Uuid>,
    Json(body): Json<ActualizarPartnerRequest>,
) -> Result<Json<PartnerDto>, ApiError> {
    let cambios = body.parse()?;
    let partner = service.update_partner(partner_id, cambios).await?;
    Ok(Json(PartnerDto::detail(&partner)))
}

/// Soft-delete a partner; its integrations are revoked.
#[utoipa::path(
    delete,
    path = "/api/v1/partners/{partner_id}",
    tag = "partners",
    params(("partner_id" = Uuid, Path)),
    responses(
        (status = 200, body = PartnerEliminadoDto),
        (status = 404, description = "PARTNER_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "PARTNER_YA_ELIMINADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn eliminar_partner(
    State(service): State<Arc<Service>>,
    Path(partner_id): Path<Uuid>,
) -> Result<Json<PartnerEliminadoDto>, ApiError> {
    let partner = service.delete_partner(partner_id).await?;
    Ok(Json(PartnerEliminadoDto {
        partner_id: partner.id(),
    }))
}

/// Record a KYC decision (publishes `KYCVerificado`).
#[utoipa::path(
    put,
    path = "/api/v1/partners/{partner_id}/kyc",
    tag = "partners",
    params(("partner_id" = Uuid, Path)),
    request_body = KycRequest,
    responses(
        (status = 200, body = PartnerDto),
        (status = 400, description = "ESTADO_KYC_INVALIDO or DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "PARTNER_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "PARTNER_ELIMINADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verificar_kyc(
    State(service): State<Arc<Service>>,
    Path(partner_id): Path<Uuid>,
    Json(body): Json<KycRequest>,
) -> Result<Json<PartnerDto>, ApiError> {
    let decision = body.parse()?;
    let partner = service
        .verify_kyc(
            partner_id,
            decision.estado,
            decision.documentos,
            decision.comentarios,
        )
        .await?;
    Ok(Json(PartnerDto::detail(&partner)))
}

/// Add a technical integration to a partner.
#[utoipa::path(
    post,
    path = "/api/v1/partners/{partner_id}/integraciones",
    tag = "integraciones",
    params(
        ("partner_id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: the same key and body returns the first response"),
    ),
    request_body = CrearIntegracionRequest,
    responses(
        (status = 201, body = IntegracionDto),
        (status = 400, description = "TIPO_INTEGRACION_INVALIDO or DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "PARTNER_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "PARTNER_ELIMINADO", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUTILIZADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn crear_integracion(
    State(service): State<Arc<Service>>,
    Path(partner_id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<CrearIntegracionRequest>,
) -> Result<Response, ApiError> {
    let datos = body.parse()?;
    let scope = format!("POST {BASE}/{partner_id}/integraciones");
    let idempotent = idempotency::request(&headers, scope, &body)?;
    let render = |integracion: &crate::domain::Integracion| {
        stored(
            StatusCode::CREATED,
            None,
            &IntegracionDto::from(integracion),
        )
    };
    let written = service
        .add_integracion(partner_id, datos, idempotent.as_ref(), &render)
        .await?;
    Ok(idempotency::respond(written, render))
}

/// Revoke an integration by its id.
#[utoipa::path(
    put,
    path = "/api/v1/partners/integraciones/{integracion_id}/revocar",
    tag = "integraciones",
    params(("integracion_id" = Uuid, Path)),
    request_body(content = Option<RevocarRequest>, description = "Optional"),
    responses(
        (status = 200, body = IntegracionDto),
        (status = 404, description = "INTEGRACION_NO_ENCONTRADA", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "INTEGRACION_YA_REVOCADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revocar_integracion(
    State(service): State<Arc<Service>>,
    Path(integracion_id): Path<Uuid>,
    OptionalJson(body): OptionalJson<RevocarRequest>,
) -> Result<Json<IntegracionDto>, ApiError> {
    let motivo = body.unwrap_or_default().parse()?;
    let integracion = service
        .revoke_integracion(None, integracion_id, motivo)
        .await?;
    Ok(Json(IntegracionDto::from(&integracion)))
}

/// Revoke an integration of a given partner.
#[utoipa::path(
    put,
    path = "/api/v1/partners/{partner_id}/integraciones/{integracion_id}/revocar",
    tag = "integraciones",
    params(("partner_id" = Uuid, Path), ("integracion_id" = Uuid, Path)),
    request_body(content = Option<RevocarRequest>, description = "Optional"),
    responses(
        (status = 200, body = IntegracionDto),
        (status = 404, description = "PARTNER_NO_ENCONTRADO or INTEGRACION_NO_ENCONTRADA", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "INTEGRACION_YA_REVOCADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revocar_integracion_de_partner(
    State(service): State<Arc<Service>>,
    Path((partner_id, integracion_id)): Path<(Uuid, Uuid)>,
    OptionalJson(body): OptionalJson<RevocarRequest>,
) -> Result<Json<IntegracionDto>, ApiError> {
    let motivo = body.unwrap_or_default().parse()?;
    let integracion = service
        .revoke_integracion(Some(partner_id), integracion_id, motivo)
        .await?;
    Ok(Json(IntegracionDto::from(&integracion)))
}
