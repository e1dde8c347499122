//! The `alianzas` service (Gestión Integral de Alianzas): event-sourced contracts with
//! snapshots and a read model, and the contract templates per partner kind. It owns its
//! database, publishes through the outbox, creates each new partner's contract from
//! `PartnerCreado`, follows compliance outcomes and review decisions, and serves `/contratos`,
//! `/plantillas` and the original's `/posts` aliases. The saga log is another crate.

pub mod application;
pub mod consumers;
pub mod domain;
pub mod events;
pub mod http;
pub mod storage;

use std::sync::Arc;
use std::time::Duration;

use ::storage::outbox::Relay;
use ::storage::Db;
use kernel::{Bus, BusError, Consumes, MessageHandler, Shutdown, SubscribeOptions};

use crate::application::{AppError, Service, SERVICE};
use crate::consumers::AlianzasHandler;

pub use crate::storage::MIGRATIONS;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Storage(#[from] ::storage::StorageError),
    #[error("database: {0}")]
    Repo(#[from] crate::storage::RepoError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// The service's settings.
#[derive(Debug, Clone)]
pub struct AlianzasConfig {
    /// A snapshot of a contract is stored every this many events (at least 1).
    pub snapshot_every: u32,
}

impl Default for AlianzasConfig {
    fn default() -> Self {
        Self { snapshot_every: 50 }
    }
}

/// Competing consumers per subscribed topic in one process.
const CONSUMERS_PER_TOPIC: usize = 2;

/// Deliveries before a message is dead-lettered. Higher than the bus default because an event
/// that overtook the one it builds on (another topic) is retried until that one is handled.
const MAX_ATTEMPTS: u32 = 20;

/// How often the sweep looks for contracts whose `fecha_fin` passed.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// The topics this service follows; one handler dispatches on the event type.
pub const TOPICS: [&str; 5] = [
    contracts::topics::PARTNER_CREATED,
    contracts::topics::CONTRACT_APPROVED,
    contracts::topics::CONTRACT_REJECTED,
    contracts::topics::CONTRACT_REVIEW,
    contracts::topics::REVIEW_RESOLVED,
];

/// The service, built once and shared by its router and workers.
pub struct Alianzas {
    db: Db,
    bus: Arc<dyn Bus>,
    relay: Relay,
    service: Arc<Service>,
}

impl Alianzas {
    /// Migrates the database, inserts the default templates that are missing, and builds the
    /// service. Fails when the database cannot be migrated or written.
    pub async fn start(
        db: Db,
        bus: Arc<dyn Bus>,
        config: AlianzasConfig,
    ) -> Result<Self, StartError> {
        db.migrate_with(SERVICE, MIGRATIONS).await?;
        crate::storage::seed_plantillas(&db, &domain::plantillas_por_defecto()).await?;
        let relay = Relay::new(db.clone(), bus.clone());
        let service = Arc::new(Service::new(
            db.clone(),
            relay.waker(),
            config.snapshot_every,
        ));
        Ok(Self {
            db,
            bus,
            relay,
            service,
        })
    }

    /// The contracts and templates API with its readiness checks and metrics, to serve alone
    /// or beside the saga log.
    pub fn parts(&self) -> web::ServiceParts {
        http::parts(self.service.clone(), self.db.clone(), self.bus.clone())
    }

    /// The complete router: the API plus the operational routes.
    pub fn router(&self) -> axum::Router {
        self.parts().into_router()
    }

    /// Spawns the outbox relay, the consumers and the expiry sweep; they stop when `shutdown`
    /// fires. Fails when the bus refuses a subscription.
    pub async fn spawn_workers(
        &self,
        shutdown: Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
        let handler = self.handler();
        let options = SubscribeOptions {
            max_attempts: MAX_ATTEMPTS,
            ..SubscribeOptions::default()
        };
        let topics =
            TOPICS.map(|topic| Consumes::new(topic, handler.clone()).with_options(options.clone()));
        let mut handles = self
            .relay
            .spawn_with_consumers(
                self.bus.as_ref(),
                SERVICE,
                topics,
                CONSUMERS_PER_TOPIC,
                &shutdown,
            )
            .await?;
        handles.push(tokio::spawn(sweep(self.service.clone(), shutdown.clone())));
        Ok(handles)
    }

    /// The handler the consumers run, for tests and tools that deliver messages themselves
    /// (e.g. to redeliver one twice).
    pub fn handler(&self) -> Arc<dyn MessageHandler> {
        Arc::new(AlianzasHandler::transactional(
            self.service.clone(),
            self.relay.waker(),
        ))
    }

    /// Expires now every live contract whose `fecha_fin` is before `hoy`; returns how many.
    pub async fn vencer_expirados(&self, hoy: chrono::NaiveDate) -> Result<usize, AppError> {
        self.service.vencer_expirados(hoy).await
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// Expires contracts whose `fecha_fin` passed, at start and then every `SWEEP_INTERVAL`.
async fn sweep(service: Arc<Service>, shutdown: Shutdown) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        match service.vencer_expirados(kernel::now().date_naive()).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "contracts expired"),
            Err(error) => tracing::warn!(%error, "expiry sweep failed; will retry"),
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
    }
}
