//! Financial accounts: register one by hand (never a duplicate), read one, list them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;
use web::{Json, Page, Path, Problem, Query};

use crate::application::Service;
use crate::http::dto::{CuentaDto, ListarCuentasParams, RegistrarCuentaRequest};
use crate::http::error::ApiError;

pub const CUENTAS: &str = "/compliance/cuentas";

/// Register a partner's financial account. An account that exists already is returned as it
/// is (200), never duplicated.
#[utoipa::path(
    post,
    path = "/compliance/register",
    tag = "cuentas",
    request_body = RegistrarCuentaRequest,
    responses(
        (status = 201, description = "Created", body = CuentaDto, headers(("Location" = String, description = "URL of the account"))),
        (status = 200, description = "The partner already had this account", body = CuentaDto),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn registrar_cuenta(
    State(service): State<Arc<Service>>,
    Json(body): Json<RegistrarCuentaRequest>,
) -> Result<Response, ApiError> {
    let nueva = body.parse()?;
    let (cuenta, created) = service
        .register_account(nueva.partner_id, nueva.moneda, nueva.metodo_pago)
        .await?;
    let dto = Json(CuentaDto::from_domain(&cuenta));
    if !created {
        return Ok((StatusCode::OK, dto).into_response());
    }
    let mut response = (StatusCode::CREATED, dto).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("{CUENTAS}/{}", cuenta.partner_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A partner's financial account.
#[utoipa::path(
    get,
    path = "/compliance/cuentas/{partner_id}",
    tag = "cuentas",
    params(("partner_id" = Uuid, Path)),
    responses(
        (status = 200, body = CuentaDto),
        (status = 400, description = "DATOS_INVALIDOS (not a UUID)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "CUENTA_NO_ENCONTRADA", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn obtener_cuenta(
    State(service): State<Arc<Service>>,
    Path(partner_id): Path<Uuid>,
) -> Result<Json<CuentaDto>, ApiError> {
    let cuenta = service.get_account(partner_id).await?;
    Ok(Json(CuentaDto::from_domain(&cuenta)))
}

/// List financial accounts, in partner id order.
#[utoipa::path(
    get,
    path = "/compliance/cuentas",
    tag = "cuentas",
    params(ListarCuentasParams),
    responses(
        (status = 200, description = "A page of accounts", body = Page<CuentaDto>),
        (status = 400, description = "DATOS_INVALIDOS", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn listar_cuentas(
    State(service): State<Arc<Service>>,
    Query(params): Query<ListarCuentasParams>,
) -> Result<Json<Page<CuentaDto>>, ApiError> {
    let (filter, page) = params.parse()?;
    let (cuentas, total) = service
        .list_accounts(&filter, page.limit, page.after)
        .await?;
    let page = Page::from_rows(cuentas, page, total, |cuenta| cuenta.partner_id);
    Ok(Json(page.map(|cuenta| CuentaDto::from_domain(&cuenta))))
}
