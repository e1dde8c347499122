//! Handlers of `/contratos` and the original's `/posts` aliases: each parses its input once,
//! calls one use case and renders the answer.

use std::sync::Arc;

use ::storage::idempotency::StoredResponse;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use uuid::Uuid;
use web::idempotency;
use web::{Json, OptionalJson, Page, Path, Problem, Query};

use crate::application::{Accion, Service};
use crate::domain::Contrato;
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
    let idempotent = idempotency::request(&headers, "POST /contratos".to_owned(), &body)?;
    let render = |contrato: &Contrato| StoredResponse {
        request_hash: String::new(),
        status: i32::from(StatusCode::CREATED.as_u16()),
        location: Some(format!("/contratos/{}", contrato.id())),
        body: ContratoDto::from_domain(contrato)
            .and_then(|dto| serde_json::to_string(&dto).ok())
            .unwrap_or_default(),
    };
    let written = service.crear(datos, idempotent.as_ref(), &render).await?;
    Ok(idempotency::respond(written, render))
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
