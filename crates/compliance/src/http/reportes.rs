//! `GET /reportes/financieros`: contracts approved and rejected, amounts committed and accounts
//! opened, by currency and state, over an optional period of days.

use std::sync::Arc;

use axum::extract::State;
use web::{Json, Problem, Query};

use crate::application::Service;
use crate::http::dto::{ReporteDto, ReporteParams};
use crate::http::error::ApiError;

/// Financial totals for the period (both ends inclusive, UTC days; either may be left out).
#[utoipa::path(
    get,
    path = "/reportes/financieros",
    tag = "reportes",
    params(ReporteParams),
    responses(
        (status = 200, body = ReporteDto),
        (status = 400, description = "DATOS_INVALIDOS (a bad date, or desde after hasta)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reporte_financiero(
    State(service): State<Arc<Service>>,
    Query(params): Query<ReporteParams>,
) -> Result<Json<ReporteDto>, ApiError> {
    let periodo = params.parse()?;
    let informe = service.report(periodo).await?;
    Ok(Json(ReporteDto::from_domain(&informe)))
}
