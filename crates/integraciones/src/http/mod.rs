//! The HTTP edge of the service: the partners API router, its OpenAPI document, and the
//! operational wiring (readiness checks on the database and the bus, the outbox backlog metric).

pub mod dto;
pub mod error;
pub mod partners;

use std::sync::Arc;

use async_trait::async_trait;
use axum::routing::{get, post, put};
use axum::Router;
use kernel::Bus;
use utoipa::OpenApi;
use web::ops::MetricsSource;
use web::{OpsRoutes, ReadinessCheck};

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

/// The partners API with the operational routes and shared layers.
pub fn router(service: Arc<Service>, db: ::storage::Db, bus: Arc<dyn Bus>) -> Router {
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
    OpsRoutes::new(SERVICE, ApiDoc::openapi())
        .check(Arc::new(DbCheck(db.clone())))
        .check(Arc::new(BusCheck(bus)))
        .metrics(Arc::new(OutboxBacklog(db)))
        .finish(api)
}

struct DbCheck(::storage::Db);

#[async_trait]
impl ReadinessCheck for DbCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| error.to_string())
    }
}

struct BusCheck(Arc<dyn Bus>);

#[async_trait]
impl ReadinessCheck for BusCheck {
    fn name(&self) -> &'static str {
        "bus"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| error.to_string())
    }
}

/// `alpes_outbox_backlog`: outbox rows not yet published. Crash tests poll it to know when
/// everything committed has reached the bus.
struct OutboxBacklog(::storage::Db);

#[async_trait]
impl MetricsSource for OutboxBacklog {
    async fn render(&self) -> String {
        match ::storage::outbox::backlog(&self.0).await {
            Ok(backlog) => format!(
                "# TYPE alpes_outbox_backlog gauge\nalpes_outbox_backlog{{service=\"{SERVICE}\"}} {backlog}\n"
            ),
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox backlog");
                String::new()
            }
        }
    }
}
