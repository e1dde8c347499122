//! The HTTP edge of the service: the contracts, templates and legacy routers, their OpenAPI
//! document, and the operational wiring (readiness of the database and the bus, the outbox
//! backlog metric).

pub mod contratos;
pub mod dto;
pub mod error;
pub mod plantillas;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use kernel::Bus;
use utoipa::OpenApi;

use crate::application::{Service, SERVICE};

/// The OpenAPI document of the contracts API.
#[derive(OpenApi)]
#[openapi(
    info(title = "alianzas", description = "Event-sourced contracts and contract templates"),
    paths(
        contratos::crear_contrato,
        contratos::listar_contratos,
        contratos::obtener_contrato,
        contratos::actualizar_contrato,
        contratos::suspender,
        contratos::reactivar,
        contratos::terminar,
        contratos::eventos,
        contratos::ping,
        contratos::crear_post,
        plantillas::listar_plantillas,
        plantillas::obtener_plantilla,
        plantillas::crear_plantilla,
        plantillas::actualizar_plantilla,
    ),
    components(schemas(
        dto::CrearContratoRequest,
        dto::ActualizarContratoRequest,
        dto::MotivoRequest,
        dto::ContratoDto,
        dto::EventoDto,
        dto::EventosDto,
        dto::PlantillaRequest,
        dto::PlantillaDto,
        dto::PlantillasDto,
        web::Problem,
        web::FieldError,
    )),
    tags(
        (name = "contratos", description = "Event-sourced contracts"),
        (name = "plantillas", description = "Contract templates per partner kind"),
        (name = "legacy", description = "The original's aliases"),
    )
)]
pub struct ApiDoc;

/// The contracts API with what `/ready` and `/metrics` report about it.
pub fn parts(service: Arc<Service>, db: ::storage::Db, bus: Arc<dyn Bus>) -> web::ServiceParts {
    use contratos::*;
    use plantillas::*;
    let api = Router::new()
        .route("/contratos", post(crear_contrato).get(listar_contratos))
        .route(
            "/contratos/{contrato_id}",
            get(obtener_contrato).put(actualizar_contrato),
        )
        .route("/contratos/{contrato_id}/suspender", post(suspender))
        .route("/contratos/{contrato_id}/reactivar", post(reactivar))
        .route("/contratos/{contrato_id}/terminar", post(terminar))
        .route("/contratos/{contrato_id}/eventos", get(eventos))
        .route("/plantillas", get(listar_plantillas).post(crear_plantilla))
        .route(
            "/plantillas/{tipo_partner}",
            get(obtener_plantilla).put(actualizar_plantilla),
        )
        .route("/posts/ping", get(ping))
        .route("/posts/", post(crear_post))
        .route("/posts", post(crear_post))
        .with_state(service);
    web::ServiceParts::new(SERVICE, api, ApiDoc::openapi())
        .with_database(db)
        .with_bus(bus)
}
