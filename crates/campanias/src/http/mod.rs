//! The HTTP edge of the service: the programs and notifications API router, its OpenAPI
//! document, and the operational wiring (readiness of the database and the bus, outbox backlog).

pub mod dto;
pub mod error;
pub mod notificaciones;
pub mod programas;

use std::sync::Arc;

use axum::routing::{get, post, put};
use axum::Router;
use kernel::Bus;
use utoipa::OpenApi;

use crate::application::{Service, SERVICE};

/// The OpenAPI document of the campaigns API.
#[derive(OpenApi)]
#[openapi(
    info(title = "campanias", description = "Programs, affiliations and notifications"),
    paths(
        programas::crear_programa,
        programas::listar_programas,
        programas::obtener_programa,
        programas::activar,
        programas::suspender,
        programas::cerrar,
        programas::afiliar,
        programas::cambiar_afiliacion,
        notificaciones::listar_notificaciones,
    ),
    components(schemas(
        dto::CrearProgramaRequest,
        dto::VigenciaRequest,
        dto::TerminosRequest,
        dto::AfiliarRequest,
        dto::CambiarAfiliacionRequest,
        dto::ProgramaDto,
        dto::VigenciaDto,
        dto::TerminosDto,
        dto::AfiliacionDto,
        dto::NotificacionDto,
        web::Problem,
        web::FieldError,
    )),
    tags(
        (name = "programas", description = "Brands' programs and their lifecycle"),
        (name = "afiliaciones", description = "Partners in a program"),
        (name = "notificaciones", description = "E-mails and their delivery"),
    )
)]
pub struct ApiDoc;

/// The campaigns API with what `/ready` and `/metrics` report about it.
pub fn parts(service: Arc<Service>, db: ::storage::Db, bus: Arc<dyn Bus>) -> web::ServiceParts {
    use programas::*;
    let api = Router::new()
        .route(BASE, post(crear_programa).get(listar_programas))
        .route(&format!("{BASE}/{{programa_id}}"), get(obtener_programa))
        .route(&format!("{BASE}/{{programa_id}}/activar"), post(activar))
        .route(
            &format!("{BASE}/{{programa_id}}/suspender"),
            post(suspender),
        )
        .route(&format!("{BASE}/{{programa_id}}/cerrar"), post(cerrar))
        .route(
            &format!("{BASE}/{{programa_id}}/afiliaciones"),
            post(afiliar),
        )
        .route(
            &format!("{BASE}/{{programa_id}}/afiliaciones/{{afiliado_id}}"),
            put(cambiar_afiliacion),
        )
        .route(
            "/notificaciones",
            get(notificaciones::listar_notificaciones),
        )
        .with_state(service);
    web::ServiceParts::new(SERVICE, api, ApiDoc::openapi())
        .with_database(db)
        .with_bus(bus)
}
