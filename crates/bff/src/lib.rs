//! The `bff` service (Partners BFF, DOMAIN §8): the single front door for clients. It starts
//! onboardings (its own table + `CreatePartner` through its outbox) and answers reads by
//! aggregating integraciones, alianzas (with the saga log) and compliance over HTTP. It
//! consumes no topic; its only worker is the outbox relay.

pub mod application;
pub mod config;
pub mod domain;
pub mod http;
pub mod queries;
pub mod storage;
pub mod upstream;

use std::sync::Arc;

use ::storage::outbox::Relay;
use ::storage::Db;
use kernel::{Bus, BusError, Shutdown};

use crate::application::{Service, SERVICE};
use crate::upstream::Upstream;

pub use crate::config::BffConfig;
pub use crate::storage::MIGRATIONS;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Storage(#[from] ::storage::StorageError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("http client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// The service, built once and shared by its router and workers.
pub struct Bff {
    db: Db,
    bus: Arc<dyn Bus>,
    relay: Relay,
    service: Arc<Service>,
    config: BffConfig,
}

impl Bff {
    /// Migrates the database and builds the service with its one pooled HTTP client. Fails
    /// when the database cannot be migrated or the client cannot be built.
    pub async fn start(db: Db, bus: Arc<dyn Bus>, config: BffConfig) -> Result<Self, StartError> {
        db.migrate_with(SERVICE, MIGRATIONS).await?;
        let client = upstream::build_client(config.upstream_timeout)?;
        let relay = Relay::new(db.clone(), bus.clone());
        let service = Arc::new(Service::new(
            db.clone(),
            relay.waker(),
            Upstream::new(client, &config),
        ));
        Ok(Self {
            db,
            bus,
            relay,
            service,
            config,
        })
    }

    /// The BFF's API with its readiness checks and metrics, to serve alone or beside another
    /// service.
    pub fn parts(&self) -> web::ServiceParts {
        http::parts(self.service.clone(), self.db.clone(), self.bus.clone())
    }

    /// The complete router: the API plus the operational routes.
    pub fn router(&self) -> axum::Router {
        self.parts().into_router()
    }

    /// Spawns the outbox relay, which stops when `shutdown` fires. The BFF consumes no topic.
    pub async fn spawn_workers(
        &self,
        shutdown: Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
        Ok(vec![tokio::spawn(self.relay.clone().run(shutdown.wait()))])
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &BffConfig {
        &self.config
    }
}
