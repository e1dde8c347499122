//! Handler of `/notificaciones`: the stored notifications with their delivery state.

use std::sync::Arc;

use axum::extract::State;
use web::{Json, Page, Problem, Query};

use crate::application::Service;
use crate::http::dto::{ListarNotificacionesParams, NotificacionDto};
use crate::http::error::ApiError;

/// List notifications with their delivery state and attempts.
#[utoipa::path(
    get,
    path = "/notificaciones",
    tag = "notificaciones",
    params(ListarNotificacionesParams),
    responses(
        (status = 200, description = "A page of notifications", body = Page<NotificacionDto>),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn listar_notificaciones(
    State(service): State<Arc<Service>>,
    Query(params): Query<ListarNotificacionesParams>,
) -> Result<Json<Page<NotificacionDto>>, ApiError> {
    let (filter, page) = params.parse()?;
    let (notificaciones, total) = service
        .list_notificaciones(&filter, page.limit, page.after)
        .await?;
    let page = Page::from_rows(notificaciones, page, total, |n| n.id);
    Ok(Json(page.map(|n| NotificacionDto::from(&n))))
}
