//! Handlers of `/contratos` and the original's `/posts` aliases: each parses its input once,
//! calls one use case and renders the answer.

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

use crate::application::{Accion, IdempotentRequest, Service, Written};
use crate::domain::{Contrato, FieldIssue};
use crate::http::dto::{
    ActualizarContratoRequest, ContratoDto, CrearContratoRequest, EventoDto, EventosDto,
    ListarContratosParams, MotivoRequest, ObtenerParams,
};
use crate::http::error::ApiError;

fn render(contrato: &Contrato) -> Result<ContratoDto, ApiError> {
    ContratoDto::from_domain(contrato).ok_or(ApiError::App(
        crate::application::AppError::ContratoNotFound,
    ))
}

/// Create a contract by hand; `ContratoCreado` goes to compliance like any other.
#[utoipa::path(
    post,
    path = "/contratos",
    tag = "contratos",
    request_body = CrearContratoRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: the same key and body returns the first response")),
    responses(
        (status = 201, description = "Created", body = ContratoDto, headers(("Location" = String, description = "URL of the new contract"))),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUTILIZADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn crear_contrato(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Json(body): Json<CrearContratoRequest>,
) -> Result<Response, ApiError> {
    let datos = body.parse(kernel::now().date_naive())?;
    let idempotent = idempotent_request(&headers, "POST /contratos".to_owned(), &body)?;
    let render = |contrato: &Contrato| StoredResponse {
        request_hash: String::new(),
        status: i32::from(StatusCode::CREATED.as_u16()),
        location: Some(format!("/contratos/{}", contrato.id())),
        body: ContratoDto::from_domain(contrato)
            .and_then(|dto| serde_json::to_string(&dto).ok())
            .unwrap_or_default(),
    };
    Ok(
        match service.crear(datos, idempotent.as_ref(), &render).await? {
            Written::Done(contrato) => replay(render(&contrato)),
            Written::Replayed(response) => replay(response),
        },
    )
}

/// The longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Reads the optional `Idempotency-Key` of a request whose body is `body`, scoped to `scope`.
fn idempotent_request(
    headers: &HeaderMap,
    scope: String,
    body: &impl Serialize,
) -> Result<Option<IdempotentRequest>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::Invalid(vec![FieldIssue::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )])
        })?;
    // The DTO's serialization is canonical (fixed field order), so equal requests hash equally
    // however their JSON was laid out.
    let canonical =
        serde_json::to_vec(body).map_err(|error| ApiError::from(Problem::internal(&error)))?;
    let request_hash = Sha256::digest(&canonical)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(Some(IdempotentRequest {
        scope,
        key: key.to_owned(),
        request_hash,
    }))
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

/// The original's `POST /posts/`: creates a contract like `POST /contratos`.
#[utoipa::path(
    post,
    path = "/posts/",
    tag = "legacy",
    request_body = CrearContratoRequest,
    responses(
        (status = 201, description = "Created", body = ContratoDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn crear_post(
    state: State<Arc<Service>>,
    headers: HeaderMap,
    body: Json<CrearContratoRequest>,
) -> Result<Response, ApiError> {
    crear_contrato(state, headers, body).await
}

/// The original's liveness ping.
#[utoipa::path(
    get,
    path = "/posts/ping",
    tag = "legacy",
    responses((status = 200, description = "pong", body = String, content_type = "text/plain"))
)]
pub async fn ping() -> &'static str {
    "pong"
}

/// A page of contracts from the read model.
#[utoipa::path(
    get,
    path = "/contratos",
    tag = "contratos",
    params(ListarContratosParams),
    responses(
        (status = 200, description = "A page of contracts", body = Page<ContratoDto>),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn listar_contratos(
    State(service): State<Arc<Service>>,
    Query(params): Query<ListarContratosParams>,
) -> Result<Json<Page<ContratoDto>>, ApiError> {
    let (filter, page) = params.parse()?;
    let (contratos, total) = service.listar(&filter, page.limit, page.after).await?;
    let page = Page::from_rows(contratos, page, total, Contrato::id);
    let items = page
        .items
        .iter()
        .filter_map(ContratoDto::from_domain)
        .collect();
    Ok(Json(Page {
        items,
        total: page.total,
        next_cursor: page.next_cursor,
    }))
}

/// A contract: its current state from the read model, or with `version`/`at` the stream
/// replayed to that point.
#[utoipa::path(
    get,
    path = "/contratos/{contrato_id}",
    tag = "contratos",
    params(("contrato_id" = Uuid, Path), ObtenerParams),
    responses(
        (status = 200, body = ContratoDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "CONTRATO_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn obtener_contrato(
    State(service): State<Arc<Service>>,
    Path(contrato_id): Path<Uuid>,
    Query(params): Query<ObtenerParams>,
) -> Result<Json<ContratoDto>, ApiError> {
    let contrato = match params.parse()? {
        None => service.obtener(contrato_id).await?,
        Some(punto) => service.obtener_en(contrato_id, punto).await?,
    };
    Ok(Json(render(&contrato)?))
}

/// Change terms; the body carries the version the client last read.
#[utoipa::path(
    put,
    path = "/contratos/{contrato_id}",
    tag = "contratos",
    params(("contrato_id" = Uuid, Path)),
    request_body = ActualizarContratoRequest,
    responses(
        (status = 200, body = ContratoDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "CONTRATO_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "CONFLICTO_VERSION or TRANSICION_INVALIDA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn actualizar_contrato(
    State(service): State<Arc<Service>>,
    Path(contrato_id): Path<Uuid>,
    Json(body): Json<ActualizarContratoRequest>,
) -> Result<Json<ContratoDto>, ApiError> {
    let (version, cambios) = body.parse()?;
    let contrato = service.actualizar(contrato_id, version, cambios).await?;
    Ok(Json(render(&contrato)?))
}

async fn lifecycle(
    service: Arc<Service>,
    contrato_id: Uuid,
    accion: Accion,
    body: Option<MotivoRequest>,
) -> Result<Json<ContratoDto>, ApiError> {
    let motivo = body.unwrap_or_default().parse()?;
    let contrato = service.transicion(contrato_id, accion, motivo).await?;
    Ok(Json(render(&contrato)?))
}

/// Suspend an active contract.
#[utoipa::path(
    post,
    path = "/contratos/{contrato_id}/suspender",
    tag = "contratos",
    params(("contrato_id" = Uuid, Path)),
    request_body(content = Option<MotivoRequest>, description = "Optional"),
    responses(
        (status = 200, body = ContratoDto),
        (status = 404, description = "CONTRATO_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TRANSICION_INVALIDA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn suspender(
    State(service): State<Arc<Service>>,
    Path(contrato_id): Path<Uuid>,
    OptionalJson(body): OptionalJson<MotivoRequest>,
) -> Result<Json<ContratoDto>, ApiError> {
    lifecycle(service, contrato_id, Accion::Suspender, body).await
}

/// Reactivate a suspended contract.
#[utoipa::path(
    post,
    path = "/contratos/{contrato_id}/reactivar",
    tag = "contratos",
    params(("contrato_id" = Uuid, Path)),
    request_body(content = Option<MotivoRequest>, description = "Optional"),
    responses(
        (status = 200, body = ContratoDto),
        (status = 404, description = "CONTRATO_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TRANSICION_INVALIDA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reactivar(
    State(service): State<Arc<Service>>,
    Path(contrato_id): Path<Uuid>,
    OptionalJson(body): OptionalJson<MotivoRequest>,
) -> Result<Json<ContratoDto>, ApiError> {
    lifecycle(service, contrato_id, Accion::Reactivar, body).await
}

/// Terminate an active or suspended contract (`cancelado`, final).
#[utoipa::path(
    post,
    path = "/contratos/{contrato_id}/terminar",
    tag = "contratos",
    params(("contrato_id" = Uuid, Path)),
    request_body(content = Option<MotivoRequest>, description = "Optional"),
    responses(
        (status = 200, body = ContratoDto),
        (status = 404, description = "CONTRATO_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TRANSICION_INVALIDA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn terminar(
    State(service): State<Arc<Service>>,
    Path(contrato_id): Path<Uuid>,
    OptionalJson(body): OptionalJson<MotivoRequest>,
) -> Result<Json<ContratoDto>, ApiError> {
    lifecycle(service, contrato_id, Accion::Terminar, body).await
}

/// The contract's event stream, oldest first, as stored.
#[utoipa::path(
    get,
    path = "/contratos/{contrato_id}/eventos",
    tag = "contratos",
    params(("contrato_id" = Uuid, Path)),
    responses(
        (status = 200, body = EventosDto),
        (status = 404, description = "CONTRATO_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn eventos(
    State(service): State<Arc<Service>>,
    Path(contrato_id): Path<Uuid>,
) -> Result<Json<EventosDto>, ApiError> {
    let stream = service.eventos(contrato_id).await?;
    let items: Vec<EventoDto> = stream.iter().map(EventoDto::from).collect();
    Ok(Json(EventosDto {
        contrato_id,
        total: items.len() as i64,
        items,
    }))
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
