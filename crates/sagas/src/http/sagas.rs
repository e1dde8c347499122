//! Handlers of `/sagas`: each parses its input once, calls one use case and renders the
//! answer. The review decision needs no `Idempotency-Key`: repeating a decision on a saga
//! already resolved that way answers its current state and does nothing.

use std::sync::Arc;

use axum::extract::State;
use uuid::Uuid;
use web::{Json, Page, Path, Problem, Query};

use crate::application::Service;
use crate::http::dto::{ListarSagasParams, RevisionRequest, SagaDetalleDto, SagaDto};
use crate::http::error::ApiError;

/// A saga's state and its ordered log.
#[utoipa::path(
    get,
    path = "/sagas/{saga_id}",
    tag = "sagas",
    params(("saga_id" = Uuid, Path)),
    responses(
        (status = 200, body = SagaDetalleDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "SAGA_NO_ENCONTRADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn obtener_saga(
    State(service): State<Arc<Service>>,
    Path(saga_id): Path<Uuid>,
) -> Result<Json<SagaDetalleDto>, ApiError> {
    let (stored, log) = service.get(saga_id).await?;
    Ok(Json(SagaDetalleDto::new(&stored, &log)))
}

/// List sagas (without their logs).
#[utoipa::path(
    get,
    path = "/sagas",
    tag = "sagas",
    params(ListarSagasParams),
    responses(
        (status = 200, description = "A page of sagas", body = Page<SagaDto>),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn listar_sagas(
    State(service): State<Arc<Service>>,
    Query(params): Query<ListarSagasParams>,
) -> Result<Json<Page<SagaDto>>, ApiError> {
    let (filter, page) = params.parse()?;
    let (sagas, total) = service.list(&filter, page.limit, page.after).await?;
    let page = Page::from_rows(sagas, page, total, |stored| stored.saga.saga_id);
    Ok(Json(page.map(|stored| SagaDto::from_stored(&stored))))
}

/// Resolve the manual review of a saga `PENDIENTE_REVISION`: `aprobar` publishes
/// `RevisionAprobada` (saga `COMPLETADA`); `rechazar` publishes `RevisionRechazada` and the
/// compensation `DesactivarPartner` (saga `FALLIDA`, causa `REVISION_RECHAZADA`).
#[utoipa::path(
    post,
    path = "/sagas/{saga_id}/revision",
    tag = "sagas",
    params(("saga_id" = Uuid, Path)),
    request_body = RevisionRequest,
    responses(
        (status = 200, description = "Resolved (or already resolved with the same decision)", body = SagaDetalleDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "SAGA_NO_ENCONTRADA", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TRANSICION_INVALIDA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revisar_saga(
    State(service): State<Arc<Service>>,
    Path(saga_id): Path<Uuid>,
    Json(body): Json<RevisionRequest>,
) -> Result<Json<SagaDetalleDto>, ApiError> {
    let (decision, comentarios) = body.parse()?;
    service
        .resolve_review(saga_id, decision, comentarios)
        .await?;
    let (stored, log) = service.get(saga_id).await?;
    Ok(Json(SagaDetalleDto::new(&stored, &log)))
}
