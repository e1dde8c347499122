//! The HTTP edge of the service: the partners API router, its OpenAPI document, and the
//! operational wiring (readiness checks on the database and the bus, the outbox backlog metric).

pub mod dto;
pub mod error;
pub mod partners;

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;
use kernel::Bus;
use utoipa::OpenApi;

use crate::application::{Service, SERVICE};

/// The OpenAPI document of the partners API.
#[derive(OpenApi)]
#[openapi(
    info(title = "integraciones", description = "Partners, KYC and technical integrations"),
    paths(
        partners::crear_partner,
        partners::listar_partners,
        partners::obtener_partner,
        partners::actualizar_partner,
        partners::eliminar_partner,
        partners::verificar_kyc,
        partners::crear_integracion,
        partners::revocar_integracion,
        partners::revocar_integracion_de_partner,
    ),
    components(schemas(
        dto::CrearPartnerRequest,
        dto::ActualizarPartnerRequest,
        dto::KycRequest,
        dto::CrearIntegracionRequest,
        dto::RevocarRequest,
        dto::PartnerDto,
        dto::IntegracionDto,
        dto::PartnerEliminadoDto,
        web::Problem,
        web::FieldError,
    )),
    tags(
        (name = "partners", description = "Partners and their KYC"),
        (name = "integraciones", description = "Technical integrations of a partner"),
    )
)]
pub struct ApiDoc;

/// The partners API with what `/ready` and `/metrics` report about it.
pub fn parts(service: Arc<Service>, db: ::storage::Db, bus: Arc<dyn Bus>) -> web::ServiceParts {
    use partners::*;
    let api = Router::new()
        .route(BASE, post(crear_partner).get(listar_partners))
        .route(
            &format!("{BASE}/"),
            post(crear_partner).get(listar_partners),
        )
        .route(
            &format!("{BASE}/{{partner_id}}"),
            get(obtener_partner)
                .put(actualizar_partner)
                .delete(eliminar_partner),
        )
        .route(&format!("{BASE}/{{partner_id}}/kyc"), put(verificar_kyc))
        .route(
            &format!("{BASE}/{{partner_id}}/integraciones"),
            post(crear_integracion),
        )
        .route(
            &format!("{BASE}/integraciones/{{integracion_id}}/revocar"),
            put(revocar_integracion),
        )
        .route(
            &format!("{BASE}/{{partner_id}}/integraciones/{{integracion_id}}/revocar"),
            put(revocar_integracion_de_partner),
        )
        .with_state(service);
    web::ServiceParts::new(SERVICE, api, ApiDoc::openapi())
        .with_database(db)
        .with_bus(bus)
}
