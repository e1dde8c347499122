//! Handlers of `/api/v1/partners`: each parses its input once, calls one use case and renders
//! the answer. Writes a client may retry (`POST` of a partner or an integration) honour an
//! `Idempotency-Key` header by replaying the first stored response.

use std::sync::Arc;

use ::storage::idempotency::StoredResponse;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use web::{Json, Page, Path, Problem, Query};

use crate::application::{IdempotentRequest, Service, Written};
use crate::domain::FieldIssue;
use crate::http::dto::{
    ActualizarPartnerRequest, CrearIntegracionRequest, CrearPartnerRequest, IntegracionDto,
    KycRequest, ListarPartnersParams, PartnerDto, PartnerEliminadoDto, RevocarRequest,
};
use crate::http::error::ApiError;

pub const BASE: &str = "/api/v1/partners";
const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Reads the optional `Idempotency-Key` of a request whose body is `body`, scoped to `scope`.
fn idempotent_request(
    headers: &HeaderMap,
    scope: String,
    body: &impl Serialize,
) -> Result<Option<IdempotentRequest>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::invalid(vec![FieldIssue::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )])
        })?;
    // The DTO's serialization is canonical (fixed field order), so equal requests hash equally
    // however their JSON was laid out.
    let canonical =
        serde_json::to_vec(body).map_err(|error| ApiError::from(Problem::internal(&error)))?;
    let digest = Sha256::digest(&canonical);
    let request_hash = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(Some(IdempotentRequest {
        scope,
        key: key.to_owned(),
        request_hash,
    }))
}

/// A JSON response held as text, as it is stored for idempotent replays.
fn stored(status: StatusCode, location: Option<String>, body: &impl Serialize) -> StoredResponse {
    StoredResponse {
        request_hash: String::new(),
        status: i32::from(status.as_u16()),
        location,
        body: serde_json::to_string(body).unwrap_or_default(),
    }
}

/// Sends a stored response exactly as it was first sent.
fn replay(response: StoredResponse) -> Response {
    let status = u16::try_from(response.status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::OK);
    let mut http = (status, response.body).into_response();
    http.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(location) = response
        .location
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        http.headers_mut().insert(header::LOCATION, location);
    }
    http
}

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
    let idempotent = idempotent_request(&headers, format!("POST {BASE}"), &body)?;
    let render = |partner: &crate::domain::Partner| {
        stored(
            StatusCode::CREATED,
            Some(partner_location(partner.id())),
            &PartnerDto::detail(partner),
        )
    };
    Ok(
        match service
            .create_partner(datos, idempotent.as_ref(), &render)
            .await?
        {
            Written::Done(partner) => replay(render(&partner)),
            Written::Replayed(response) => replay(response),
        },
    )
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
    let idempotent = idempotent_request(&headers, scope, &body)?;
    let render = |integracion: &crate::domain::Integracion| {
        stored(
            StatusCode::CREATED,
            None,
            &IntegracionDto::from(integracion),
        )
    };
    Ok(
        match service
            .add_integracion(partner_id, datos, idempotent.as_ref(), &render)
            .await?
        {
            Written::Done(integracion) => replay(render(&integracion)),
            Written::Replayed(response) => replay(response),
        },
    )
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

/// A JSON body that may be left out entirely (no bytes); when present it must be JSON, with
/// the same problem+json answers as `web::Json`.
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "CUERPO_DEMASIADO_GRANDE",
                        format!("the body exceeds {} bytes", web::MAX_BODY_BYTES),
                    )
                } else {
                    Problem::new(
                        rejection.status(),
                        "SOLICITUD_INVALIDA",
                        rejection.body_text(),
                    )
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        let mut request = Request::new(axum::body::Body::from(bytes));
        if let Some(content_type) = content_type {
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(OptionalJson(Some(value)))
    }
}
