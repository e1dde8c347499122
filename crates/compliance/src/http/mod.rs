//! The HTTP edge of the service: the compliance API router (dry-run validation, financial
//! accounts, rule configuration, reports), its OpenAPI document, and the operational wiring
//! (readiness checks on the database and the bus, the outbox backlog metric).

pub mod cuentas;
pub mod dto;
pub mod error;
pub mod reglas;
pub mod reportes;
pub mod validacion;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use kernel::Bus;
use utoipa::OpenApi;

use crate::application::{Service, SERVICE};

/// The OpenAPI document of the compliance API.
#[derive(OpenApi)]
#[openapi(
    info(title = "compliance", description = "Compliance validation, financial registration and reports"),
    paths(
        validacion::validar_contrato,
        cuentas::registrar_cuenta,
        cuentas::obtener_cuenta,
        cuentas::listar_cuentas,
        reglas::obtener_reglas,
        reglas::actualizar_reglas,
        reportes::reporte_financiero,
    ),
    components(schemas(
        dto::ValidarContratoRequest,
        dto::ValidacionDto,
        dto::RegistrarCuentaRequest,
        dto::CuentaDto,
        dto::ImpuestoDto,
        dto::ReglasDto,
        dto::ActualizarReglasRequest,
        dto::ReporteDto,
        dto::TotalesDto,
        dto::TotalMonedaDto,
        web::Problem,
        web::FieldError,
    )),
    tags(
        (name = "validacion", description = "Dry-run of the compliance rules"),
        (name = "cuentas", description = "Financial accounts of partners"),
        (name = "reglas", description = "Rule configuration"),
        (name = "reportes", description = "Financial reports"),
    )
)]
pub struct ApiDoc;

/// The compliance API with what `/ready` and `/metrics` report about it.
pub fn parts(service: Arc<Service>, db: ::storage::Db, bus: Arc<dyn Bus>) -> web::ServiceParts {
    let api = Router::new()
        .route("/partners/validate", post(validacion::validar_contrato))
        .route("/compliance/register", post(cuentas::registrar_cuenta))
        .route(cuentas::CUENTAS, get(cuentas::listar_cuentas))
        .route(
            &format!("{}/{{partner_id}}", cuentas::CUENTAS),
            get(cuentas::obtener_cuenta),
        )
        .route(
            "/compliance/reglas",
            get(reglas::obtener_reglas).put(reglas::actualizar_reglas),
        )
        .route("/reportes/financieros", get(reportes::reporte_financiero))
        .with_state(service);
    web::ServiceParts::new(SERVICE, api, ApiDoc::openapi())
        .with_database(db)
        .with_bus(bus)
}
