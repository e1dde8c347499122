//! The HTTP edge of the saga log: the `/sagas` router, its OpenAPI document, and what it adds
//! to `/ready` (its database, the bus) and `/metrics` (its outbox backlog, sagas by state).

pub mod dto;
pub mod error;
pub mod sagas;

use std::sync::Arc;

use async_trait::async_trait;
use axum::routing::{get, post};
use axum::Router;
use kernel::Bus;
use utoipa::OpenApi;
use web::ops::MetricsSource;

use crate::application::{Service, SERVICE};

/// The OpenAPI document of the saga log.
#[derive(OpenApi)]
#[openapi(
    info(title = "sagas", description = "The onboarding saga log"),
    paths(sagas::obtener_saga, sagas::listar_sagas, sagas::revisar_saga),
    components(schemas(
        dto::SagaDto,
        dto::SagaEventoDto,
        dto::SagaDetalleDto,
        dto::RevisionRequest,
        web::Problem,
        web::FieldError,
    )),
    tags((name = "sagas", description = "Onboarding sagas, their logs and manual reviews"))
)]
pub struct ApiDoc;

/// The `/sagas` API with what `/ready` and `/metrics` report about it.
pub fn parts(service: Arc<Service>, db: ::storage::Db, bus: Arc<dyn Bus>) -> web::ServiceParts {
    use sagas::*;
    let api = Router::new()
        .route("/sagas", get(listar_sagas))
        .route("/sagas/", get(listar_sagas))
        .route("/sagas/{saga_id}", get(obtener_saga))
        .route("/sagas/{saga_id}/revision", post(revisar_saga))
        .with_state(service);
    web::ServiceParts::new(SERVICE, api, ApiDoc::openapi())
        .with_database(db.clone())
        .with_bus(bus)
        .metrics(Arc::new(SagasByEstado(db)))
}

/// `alpes_sagas{estado=…}`: how many sagas are in each state.
struct SagasByEstado(::storage::Db);

#[async_trait]
impl MetricsSource for SagasByEstado {
    async fn render(&self) -> String {
        match crate::storage::count_by_estado(&self.0).await {
            Ok(counts) => {
                let mut text = String::from("# TYPE alpes_sagas gauge\n");
                for (estado, count) in counts {
                    text.push_str(&format!("alpes_sagas{{estado=\"{estado}\"}} {count}\n"));
                }
                text
            }
            Err(error) => {
                tracing::warn!(%error, "cannot count sagas");
                String::new()
            }
        }
    }
}
