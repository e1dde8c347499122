//! The `sagas` service: the onboarding saga log (DOMAIN §9). It has its own database, follows
//! the onboarding's events (consumer group `sagas`), enforces the rules table, fires step
//! deadlines, publishes the review request, the operator's decisions, the compensation and the
//! saga's outcome through its outbox, and serves `/sagas`. The binary serves it on alianzas'
//! port by merging [`Sagas::parts`] into alianzas' parts.

pub mod application;
pub mod consumers;
pub mod domain;
pub mod http;
pub mod storage;
pub mod timeouts;

use std::sync::Arc;
use std::time::Duration;

use ::storage::outbox::Relay;
use ::storage::{Db, Transactional};
use kernel::retry::Backoff;
use kernel::{Bus, BusError, Consumes, MessageHandler, Shutdown, SubscribeOptions};

use crate::application::{AppError, Service, SERVICE};
use crate::consumers::{SagaHandler, TOPICS};

pub use crate::storage::MIGRATIONS;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Storage(#[from] ::storage::StorageError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// The saga log's settings.
#[derive(Debug, Clone)]
pub struct SagasConfig {
    /// How long a saga may wait for its next step (not for a review) before it times out.
    pub step_timeout: Duration,
    /// How often the deadline worker looks for sagas past their deadline.
    pub timeout_check_interval: Duration,
}

impl Default for SagasConfig {
    fn default() -> Self {
        Self {
            step_timeout: Duration::from_secs(300),
            timeout_check_interval: Duration::from_secs(1),
        }
    }
}

/// Competing consumers per subscribed topic in one process.
const CONSUMERS_PER_TOPIC: usize = 2;

/// Events may arrive before their saga or their cause (topics are consumed independently) and
/// are then retried. This budget (about two minutes of back-off) leaves the other services time
/// to catch up before an event is dead-lettered.
fn subscribe_options() -> SubscribeOptions {
    SubscribeOptions {
        max_attempts: 30,
        ..SubscribeOptions::default()
    }
}

fn backoff() -> Backoff {
    Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_secs(5),
    }
}

/// The service, built once and shared by its router and workers.
pub struct Sagas {
    db: Db,
    bus: Arc<dyn Bus>,
    relay: Relay,
    service: Arc<Service>,
    config: SagasConfig,
}

impl Sagas {
    /// Migrates the database and builds the service. Fails when the database cannot be
    /// migrated.
    pub async fn start(db: Db, bus: Arc<dyn Bus>, config: SagasConfig) -> Result<Self, StartError> {
        db.migrate_with(SERVICE, MIGRATIONS).await?;
        let relay = Relay::new(db.clone(), bus.clone());
        let service = Arc::new(Service::new(db.clone(), relay.waker(), config.step_timeout));
        Ok(Self {
            db,
            bus,
            relay,
            service,
            config,
        })
    }

    /// The `/sagas` API with its readiness checks and metrics, to serve beside alianzas (no
    /// operational routes: the binary adds them once for the merged server).
    pub fn parts(&self) -> web::ServiceParts {
        http::parts(self.service.clone(), self.db.clone(), self.bus.clone())
    }

    /// The complete router: the `/sagas` API plus the operational routes.
    pub fn router(&self) -> axum::Router {
        self.parts().into_router()
    }

    /// Spawns the outbox relay, the consumers and the deadline worker; they stop when
    /// `shutdown` fires. Fails when the bus refuses a subscription.
    pub async fn spawn_workers(
        &self,
        shutdown: Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
        let handler = self.handler();
        let topics = TOPICS.map(|topic| {
            Consumes::new(topic, handler.clone())
                .with_options(subscribe_options())
                .with_backoff(backoff())
        });
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
        handles.push(tokio::spawn(timeouts::run(
            self.service.clone(),
            self.config.timeout_check_interval,
            shutdown.clone().wait(),
        )));
        Ok(handles)
    }

    /// The handler the consumers run, for tests and tools that deliver messages themselves
    /// (e.g. to redeliver one twice): a batch of messages is applied in one transaction.
    pub fn handler(&self) -> Arc<dyn MessageHandler> {
        Arc::new(
            Transactional::new(
                self.db.clone(),
                self.relay.waker(),
                SagaHandler::new(self.service.clone()),
            )
            .with_inbox(SERVICE),
        )
    }

    /// The same handler, typed, to see what a delivery led to (each `dispatch` in a
    /// transaction of its own).
    pub fn saga_handler(&self) -> SagaHandler {
        SagaHandler::new(self.service.clone())
    }

    /// One pass of the deadline worker; returns how many sagas timed out in it.
    pub async fn check_timeouts(&self) -> Result<usize, AppError> {
        self.service.time_out_due().await
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}
