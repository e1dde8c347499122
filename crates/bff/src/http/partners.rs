//! `/api/v1/partners`: the onboarding form (answered 202: the partner is created by the saga,
//! not here), the partner list proxied to integraciones, and one partner aggregated from every
//! service. The form honours an `Idempotency-Key` header by replaying the first response.

use std::sync::Arc;

use ::storage::idempotency::StoredResponse;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};
use uuid::Uuid;
use web::idempotency;
use web::{Json, Path, Problem};

use crate::application::{IdempotentRequest, Service};
use crate::domain::Onboarding;
use crate::http::dto::{CrearPartnerRequest, OnboardingIniciado};
use crate::http::error::ApiError;
use crate::http::onboarding::status_url;
use crate::queries::PartnerAgregado;

pub const BASE: &str = "/api/v1/partners";

/// `value` with every object's keys sorted, so that two bodies that differ only in key order
/// fingerprint alike whatever map order serde_json was built with.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, canonical(value)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Reads the optional `Idempotency-Key`. The form holds raw JSON values (`terminos` is any
/// object), so it is fingerprinted with its keys sorted: equal forms match however they were
/// laid out.
fn idempotent_request(
    headers: &HeaderMap,
    scope: String,
    body: &CrearPartnerRequest,
) -> Result<Option<IdempotentRequest>, ApiError> {
    if headers.get(idempotency::HEADER).is_none() {
        return Ok(None);
    }
    let canonical = serde_json::to_value(body)
        .map(canonical)
        .map_err(|error| ApiError::from(Problem::internal(&error)))?;
    Ok(idempotency::request(headers, scope, &canonical)?)
}

/// The 202 of a started onboarding, held as text, as it is stored for idempotent replays.
fn accepted(onboarding: &Onboarding) -> StoredResponse {
    let location = status_url(onboarding.onboarding_id);
    let body = OnboardingIniciado {
        onboarding_id: onboarding.onboarding_id,
        saga_id: onboarding.saga_id,
        estado: "INICIADA".to_owned(),
        status_url: location.clone(),
    };
    idempotency::stored(StatusCode::ACCEPTED, Some(location), &body)
}

/// Start the onboarding of a partner.
///
/// Validates the form and issues `CreatePartner`; the partner, its contract and its compliance
/// check follow asynchronously (the saga). Poll `status_url` for the outcome.
#[utoipa::path(
    post,
    path = "/api/v1/partners",
    tag = "onboarding",
    request_body = CrearPartnerRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: the same key and body returns the first response")),
    responses(
        (status = 202, description = "Onboarding started", body = OnboardingIniciado, headers(("Location" = String, description = "The onboarding's status URL"))),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUTILIZADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn crear_partner(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Json(body): Json<CrearPartnerRequest>,
) -> Result<Response, ApiError> {
    let solicitud = body.parse()?;
    let idempotent = idempotent_request(&headers, format!("POST {BASE}"), &body)?;
    Ok(idempotency::respond(
        service
            .start_onboarding(solicitud, idempotent.as_ref(), &accepted)
            .await?,
        accepted,
    ))
}

/// List partners (proxied to integraciones with the same query string).
#[utoipa::path(
    get,
    path = "/api/v1/partners",
    tag = "partners",
    params(
        ("estado" = Option<String>, Query, description = "ACTIVO, INACTIVO, SUSPENDIDO or ELIMINADO"),
        ("tipo" = Option<String>, Query, description = "AFILIADO, INFLUENCER, EMBAJADOR or CORPORATIVO"),
        ("estado_kyc" = Option<String>, Query, description = "PENDIENTE, APROBADO, RECHAZADO or REQUIERE_DOCUMENTOS"),
        ("q" = Option<String>, Query, description = "Case-insensitive substring of the name or the e-mail"),
        ("limit" = Option<i64>, Query, description = "Items per page, 1 to 500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page `{items, total, next_cursor}` as integraciones answers it", body = Object),
        (status = 400, description = "DATOS_INVALIDOS (from integraciones)", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "UPSTREAM_ERROR", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "UPSTREAM_TIMEOUT", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn listar_partners(
    State(service): State<Arc<Service>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(service.list_partners(query.as_deref()).await?))
}

/// One partner with its contracts, financial account and onboarding saga.
#[utoipa::path(
    get,
    path = "/api/v1/partners/{partner_id}",
    tag = "partners",
    params(("partner_id" = Uuid, Path)),
    responses(
        (status = 200, body = PartnerAgregado),
        (status = 404, description = "PARTNER_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "UPSTREAM_ERROR", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "UPSTREAM_TIMEOUT", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn obtener_partner(
    State(service): State<Arc<Service>>,
    Path(partner_id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(service.partner_detail(partner_id).await?))
}
