//! The HTTP edge of the BFF: its router, its OpenAPI document, and the operational wiring
//! (readiness checks on the database and the bus, the outbox backlog metric).

pub mod dto;
pub mod error;
pub mod onboarding;
pub mod partners;

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use kernel::Bus;
use utoipa::OpenApi;

use crate::application::{Service, SERVICE};

/// The OpenAPI document of the BFF's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "bff", description = "Partners BFF: the front door for onboarding and partner views"),
    paths(
        ping,
        partners::crear_partner,
        partners::listar_partners,
        partners::obtener_partner,
        onboarding::estado_onboarding,
    ),
    components(schemas(
        dto::CrearPartnerRequest,
        dto::OnboardingIniciado,
        crate::queries::EstadoOnboarding,
        crate::queries::ComplianceOnboarding,
        crate::queries::EventoTimeline,
        crate::queries::PartnerAgregado,
        web::Problem,
        web::FieldError,
    )),
    tags(
        (name = "onboarding", description = "Start an onboarding and follow its saga"),
        (name = "partners", description = "Partners as aggregated from every service"),
        (name = "ops", description = "Liveness of the original API"),
    )
)]
pub struct ApiDoc;

/// The original's liveness probe.
#[utoipa::path(
    get,
    path = "/ping",
    tag = "ops",
    responses((status = 200, description = "pong", body = String, content_type = "text/plain"))
)]
pub async fn ping() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "pong",
    )
}

/// The BFF's API with what `/ready` and `/metrics` report about it.
pub fn parts(service: Arc<Service>, db: ::storage::Db, bus: Arc<dyn Bus>) -> web::ServiceParts {
    use partners::{crear_partner, listar_partners, obtener_partner, BASE};
    let api = Router::new()
        .route("/ping", get(ping))
        .route(BASE, get(listar_partners).post(crear_partner))
        .route(
            &format!("{BASE}/"),
            get(listar_partners).post(crear_partner),
        )
        .route(&format!("{BASE}/{{partner_id}}"), get(obtener_partner))
        .route(
            &format!("{}/{{onboarding_id}}", onboarding::BASE),
            get(onboarding::estado_onboarding),
        )
        .with_state(service);
    web::ServiceParts::new(SERVICE, api, ApiDoc::openapi())
        .with_database(db)
        .with_bus(bus)
}
