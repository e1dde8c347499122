//! The `integraciones` service (Gestión de Integraciones): partners, their KYC and technical
//! integrations. It owns its database, publishes through the outbox, consumes the onboarding
//! saga's `CreatePartner` and `DesactivarPartner`, and serves `/api/v1/partners`.

pub mod application;
pub mod consumers;
pub mod domain;
pub mod http;
pub mod storage;

use std::sync::Arc;
use std::time::Duration;

use ::storage::outbox::Relay;
use ::storage::{Db, Transactional, TxHandler};
use kernel::{Bus, BusError, Consumes, MessageHandler, Shutdown};

use crate::application::{Service, SERVICE};
use crate::consumers::{CreatePartnerHandler, DesactivarPartnerHandler};

pub use crate::storage::MIGRATIONS;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Storage(#[from] ::storage::StorageError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// Competing consumers per subscribed topic in one process.
const CONSUMERS_PER_TOPIC: usize = 2;

/// How often the partner counts' appended changes are folded on PostgreSQL
/// ([`storage::fold_counts`]): a count sums the rows appended since the last fold, so this
/// bounds that part of a list's work (a second of creates), at one small write a second.
const FOLD_INTERVAL: Duration = Duration::from_secs(1);

/// The service, built once and shared by its router and workers.
pub struct Integraciones {
    db: Db,
    bus: Arc<dyn Bus>,
    relay: Relay,
    service: Arc<Service>,
}

impl Integraciones {
    /// Migrates the database and builds the service. Fails when the database cannot be
    /// migrated.
    pub async fn start(db: Db, bus: Arc<dyn Bus>) -> Result<Self, StartError> {
        db.migrate_with(SERVICE, MIGRATIONS).await?;
        let relay = Relay::new(db.clone(), bus.clone());
        let service = Arc::new(Service::new(db.clone(), relay.waker()));
        Ok(Self {
            db,
            bus,
            relay,
            service,
        })
    }

    /// The partners API with its readiness checks and metrics, to serve alone or beside
    /// another service.
    pub fn parts(&self) -> web::ServiceParts {
        http::parts(self.service.clone(), self.db.clone(), self.bus.clone())
    }

    /// The complete router: the partners API plus the operational routes.
    pub fn router(&self) -> axum::Router {
        self.parts().into_router()
    }

    /// Spawns the outbox relay and the consumers; they stop when `shutdown` fires. Fails when
    /// the bus refuses a subscription.
    pub async fn spawn_workers(
        &self,
        shutdown: Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
        let topics = [
            Consumes::new(
                contracts::topics::CREATE_PARTNER,
                self.create_partner_handler(),
            ),
            Consumes::new(
                contracts::topics::DEACTIVATE_PARTNER,
                self.desactivar_partner_handler(),
            ),
        ];
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
        if matches!(self.db, Db::Postgres(_)) {
            handles.push(tokio::spawn(fold_counts_until(self.db.clone(), shutdown)));
        }
        Ok(handles)
    }

    /// The `CreatePartner` handler the consumers run, for tests and tools that deliver
    /// messages themselves (e.g. to redeliver one twice). A batch of commands is applied in
    /// one transaction.
    pub fn create_partner_handler(&self) -> Arc<dyn MessageHandler> {
        self.transactional(CreatePartnerHandler::new(self.service.clone()))
    }

    /// The `DesactivarPartner` handler the consumers run.
    pub fn desactivar_partner_handler(&self) -> Arc<dyn MessageHandler> {
        self.transactional(DesactivarPartnerHandler::new(self.service.clone()))
    }

    /// `handler` run in transactions on this service's database: one per message, or one per
    /// batch the consumer hands over; the relay is woken after each commit.
    fn transactional(&self, handler: impl TxHandler) -> Arc<dyn MessageHandler> {
        Arc::new(
            Transactional::new(self.db.clone(), self.relay.waker(), handler).with_inbox(SERVICE),
        )
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// Folds the partner counts' appended changes every [`FOLD_INTERVAL`] until `shutdown` fires.
/// A failed fold leaves the rows for the next one; counts stay exact meanwhile.
async fn fold_counts_until(db: Db, shutdown: Shutdown) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(FOLD_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = storage::fold_counts(&db).await {
            tracing::warn!(%error, "could not fold the partner counts; the next tick retries");
        }
    }
}
