//! Handlers of `/programas`: each parses its input once, calls one use case and renders the
//! answer. Creating a program honours an `Idempotency-Key` header by replaying the first
//! stored response.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;
use web::idempotency::{self, stored};
use web::{Json, Page, Path, Problem, Query};

use crate::application::Service;
use crate::domain::{DomainError, Programa};
use crate::http::dto::{
    AfiliacionDto, AfiliarRequest, CambiarAfiliacionRequest, CrearProgramaRequest,
    ListarProgramasParams, ProgramaDto,
};
use crate::http::error::ApiError;

pub const BASE: &str = "/programas";

fn location(programa_id: Uuid) -> String {
    format!("{BASE}/{programa_id}")
}

/// Create a program (nested or flat body), optionally with its first affiliations.
#[utoipa::path(
    post,
    path = "/programas",
    tag = "programas",
    request_body = CrearProgramaRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: the same key and body returns the first response")),
    responses(
        (status = 201, description = "Created", body = ProgramaDto, headers(("Location" = String, description = "URL of the new program"))),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUTILIZADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn crear_programa(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Json(body): Json<CrearProgramaRequest>,
) -> Result<Response, ApiError> {
    let (datos, afiliados) = body.parse()?;
    let idempotent = idempotency::request(&headers, format!("POST {BASE}"), &body)?;
    let render = |programa: &Programa| {
        stored(
            StatusCode::CREATED,
            Some(location(programa.id())),
            &ProgramaDto::from(programa),
        )
    };
    let written = service
        .crear_programa(datos, &afiliados, idempotent.as_ref(), &render)
        .await?;
    Ok(idempotency::respond(written, render))
}

/// List programs; `afiliado_id` gives a partner's programs.
#[utoipa::path(
    get,
    path = "/programas",
    tag = "programas",
    params(ListarProgramasParams),
    responses(
        (status = 200, description = "A page of programs with their affiliations", body = Page<ProgramaDto>),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn listar_programas(
    State(service): State<Arc<Service>>,
    Query(params): Query<ListarProgramasParams>,
) -> Result<Json<Page<ProgramaDto>>, ApiError> {
    let (filter, page) = params.parse()?;
    let (programas, total) = service
        .list_programas(&filter, page.limit, page.after)
        .await?;
    let page = Page::from_rows(programas, page, total, Programa::id);
    Ok(Json(page.map(|programa| ProgramaDto::from(&programa))))
}

/// One program with its affiliations.
#[utoipa::path(
    get,
    path = "/programas/{programa_id}",
    tag = "programas",
    params(("programa_id" = Uuid, Path)),
    responses(
        (status = 200, body = ProgramaDto),
        (status = 404, description = "PROGRAMA_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn obtener_programa(
    State(service): State<Arc<Service>>,
    Path(programa_id): Path<Uuid>,
) -> Result<Json<ProgramaDto>, ApiError> {
    let programa = service.get_programa(programa_id).await?;
    Ok(Json(ProgramaDto::from(&programa)))
}

async fn lifecycle(
    service: &Service,
    programa_id: Uuid,
    command: fn(
        &mut Programa,
        chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::domain::ProgramaEvent, DomainError>,
) -> Result<Json<ProgramaDto>, ApiError> {
    let programa = service.cambiar_estado(programa_id, command).await?;
    Ok(Json(ProgramaDto::from(&programa)))
}

/// Activate a program (`BORRADOR` or `SUSPENDIDO` → `ACTIVO`).
#[utoipa::path(
    post,
    path = "/programas/{programa_id}/activar",
    tag = "programas",
    params(("programa_id" = Uuid, Path)),
    responses(
        (status = 200, body = ProgramaDto),
        (status = 404, description = "PROGRAMA_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TRANSICION_INVALIDA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn activar(
    State(service): State<Arc<Service>>,
    Path(programa_id): Path<Uuid>,
) -> Result<Json<ProgramaDto>, ApiError> {
    lifecycle(&service, programa_id, Programa::activar).await
}

/// Suspend a program (`ACTIVO` → `SUSPENDIDO`).
#[utoipa::path(
    post,
    path = "/programas/{programa_id}/suspender",
    tag = "programas",
    params(("programa_id" = Uuid, Path)),
    responses(
        (status = 200, body = ProgramaDto),
        (status = 404, description = "PROGRAMA_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TRANSICION_INVALIDA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn suspender(
    State(service): State<Arc<Service>>,
    Path(programa_id): Path<Uuid>,
) -> Result<Json<ProgramaDto>, ApiError> {
    lifecycle(&service, programa_id, Programa::suspender).await
}

/// Close a program for good (`ACTIVO` or `SUSPENDIDO` → `CERRADO`).
#[utoipa::path(
    post,
    path = "/programas/{programa_id}/cerrar",
    tag = "programas",
    params(("programa_id" = Uuid, Path)),
    responses(
        (status = 200, body = ProgramaDto),
        (status = 404, description = "PROGRAMA_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TRANSICION_INVALIDA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cerrar(
    State(service): State<Arc<Service>>,
    Path(programa_id): Path<Uuid>,
) -> Result<Json<ProgramaDto>, ApiError> {
    lifecycle(&service, programa_id, Programa::cerrar).await
}

fn afiliacion_of(programa: &Programa, afiliado_id: Uuid) -> Result<AfiliacionDto, ApiError> {
    programa
        .afiliacion(afiliado_id)
        .map(|afiliacion| AfiliacionDto::new(programa.id(), afiliacion))
        .ok_or_else(|| ApiError::App(DomainError::AfiliacionNoEncontrada.into()))
}

/// Affiliate a partner: `ACTIVA` if its onboarding completed, else `PENDIENTE` until it does.
#[utoipa::path(
    post,
    path = "/programas/{programa_id}/afiliaciones",
    tag = "afiliaciones",
    params(("programa_id" = Uuid, Path)),
    request_body = AfiliarRequest,
    responses(
        (status = 201, body = AfiliacionDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "PROGRAMA_NO_ENCONTRADO", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "AFILIACION_EXISTENTE or PROGRAMA_CERRADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn afiliar(
    State(service): State<Arc<Service>>,
    Path(programa_id): Path<Uuid>,
    Json(body): Json<AfiliarRequest>,
) -> Result<Response, ApiError> {
    let afiliado_id = body.parse()?;
    let programa = service.afiliar(programa_id, afiliado_id).await?;
    let dto = afiliacion_of(&programa, afiliado_id)?;
    Ok((StatusCode::CREATED, Json(dto)).into_response())
}

/// Change an affiliation: `BAJA`, `SUSPENDIDA`, or `ACTIVA` for an eligible partner.
#[utoipa::path(
    put,
    path = "/programas/{programa_id}/afiliaciones/{afiliado_id}",
    tag = "afiliaciones",
    params(("programa_id" = Uuid, Path), ("afiliado_id" = Uuid, Path)),
    request_body = CambiarAfiliacionRequest,
    responses(
        (status = 200, body = AfiliacionDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "PROGRAMA_NO_ENCONTRADO or AFILIACION_NO_ENCONTRADA", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "PARTNER_NO_ELEGIBLE, TRANSICION_INVALIDA or PROGRAMA_CERRADO", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn cambiar_afiliacion(
    State(service): State<Arc<Service>>,
    Path((programa_id, afiliado_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<CambiarAfiliacionRequest>,
) -> Result<Json<AfiliacionDto>, ApiError> {
    let pedido = body.parse()?;
    let programa = service
        .cambiar_afiliacion(programa_id, afiliado_id, pedido)
        .await?;
    Ok(Json(afiliacion_of(&programa, afiliado_id)?))
}
