//! The `compliance` service (Administración Financiera y Compliance): runs the four compliance
//! rules on every `ContratoCreado` and publishes exactly one outcome per contract, keeps the
//! partners' financial accounts, lets an operator change the rules at run time, and reports
//! financial totals. It owns its database and publishes only through its outbox.

pub mod application;
pub mod consumers;
pub mod domain;
pub mod http;
pub mod storage;

use std::sync::Arc;
use std::time::Duration;

use ::storage::outbox::Relay;
use ::storage::{Db, Transactional, TxHandler};
use kernel::retry::Backoff;
use kernel::{Bus, BusError, Consumes, MessageHandler, Shutdown, SubscribeOptions};

use crate::application::{Service, SERVICE};
use crate::consumers::{ContratoCreadoHandler, PartnerCreadoHandler, RevisionResueltaHandler};
use crate::domain::ReglasCompliance;

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
pub struct ComplianceConfig {
    /// How long a `ContratoCreado` whose partner is unknown here is retried before it is
    /// rejected with `PARTNER_INVALIDO`: the partner's `PartnerCreado` travels on another topic
    /// and may arrive later.
    pub unknown_partner_grace: Duration,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self {
            unknown_partner_grace: Duration::from_secs(30),
        }
    }
}

/// Competing consumers per subscribed topic in one process.
const CONSUMERS_PER_TOPIC: usize = 2;

/// Retries of a contract waiting for its partner: short enough that an approval follows the
/// partner's arrival within about two seconds.
const CONTRATO_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(2),
};

/// Deliveries a message gets for technical failures, beyond those spent waiting for a partner.
const TECHNICAL_ATTEMPTS: u32 = 10;

/// Deliveries that surely span `grace` under `backoff` (counting each delay at its jittered
/// minimum, half its cap), plus one to decide after it.
fn attempts_covering(grace: Duration, backoff: Backoff) -> u32 {
    let mut waited = Duration::ZERO;
    let mut attempts: u32 = 1;
    while waited < grace && attempts < 10_000 {
        let exponent = (attempts - 1).min(20);
        let cap = backoff.base.saturating_mul(1 << exponent).min(backoff.max);
        waited += cap / 2;
        attempts += 1;
    }
    attempts
}

/// The service, built once and shared by its router and workers.
pub struct Compliance {
    db: Db,
    bus: Arc<dyn Bus>,
    relay: Relay,
    service: Arc<Service>,
    config: ComplianceConfig,
}

impl Compliance {
    /// Migrates the database, writes the default rules on first start, and builds the service.
    /// Fails when the database cannot be migrated or written.
    pub async fn start(
        db: Db,
        bus: Arc<dyn Bus>,
        config: ComplianceConfig,
    ) -> Result<Self, StartError> {
        db.migrate_with(SERVICE, MIGRATIONS).await?;
        crate::storage::ensure_rules(&db, &ReglasCompliance::default()).await?;
        let relay = Relay::new(db.clone(), bus.clone());
        let service = Arc::new(Service::new(
            db.clone(),
            relay.waker(),
            config.unknown_partner_grace,
        ));
        Ok(Self {
            db,
            bus,
            relay,
            service,
            config,
        })
    }

    /// The compliance API with its readiness checks and metrics, to serve alone or beside
    /// another service.
    pub fn parts(&self) -> web::ServiceParts {
        http::parts(self.service.clone(), self.db.clone(), self.bus.clone())
    }

    /// The complete router: the API plus the operational routes.
    pub fn router(&self) -> axum::Router {
        self.parts().into_router()
    }

    /// Spawns the outbox relay and the consumers; they stop when `shutdown` fires. Fails when
    /// the bus refuses a subscription.
    pub async fn spawn_workers(
        &self,
        shutdown: Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
        let contrato_options = SubscribeOptions {
            max_attempts: attempts_covering(self.config.unknown_partner_grace, CONTRATO_BACKOFF)
                .saturating_add(TECHNICAL_ATTEMPTS),
            ..SubscribeOptions::default()
        };
        let topics = [
            Consumes::new(
                contracts::topics::PARTNER_CREATED,
                self.partner_creado_handler(),
            ),
            Consumes::new(
                contracts::topics::CONTRACT_CREATED,
                self.contrato_creado_handler(),
            )
            .with_options(contrato_options)
            .with_backoff(CONTRATO_BACKOFF),
            Consumes::new(
                contracts::topics::REVIEW_RESOLVED,
                self.revision_resuelta_handler(),
            ),
        ];
        Ok(self
            .relay
            .spawn_with_consumers(
                self.bus.as_ref(),
                SERVICE,
                topics,
                CONSUMERS_PER_TOPIC,
                &shutdown,
            )
            .await?)
    }

    /// The `PartnerCreado` handler the consumers run, for tests and tools that deliver
    /// messages themselves (e.g. to redeliver one twice).
    pub fn partner_creado_handler(&self) -> Arc<dyn MessageHandler> {
        self.transactional(PartnerCreadoHandler::new(self.service.clone()))
    }

    /// The `ContratoCreado` handler the consumers run.
    pub fn contrato_creado_handler(&self) -> Arc<dyn MessageHandler> {
        self.transactional(ContratoCreadoHandler::new(self.service.clone()))
    }

    /// The handler of the review topic (`RevisionAprobada`) the consumers run.
    pub fn revision_resuelta_handler(&self) -> Arc<dyn MessageHandler> {
        self.transactional(RevisionResueltaHandler::new(self.service.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_contract_gets_enough_deliveries_to_outlast_the_grace_period() {
        for grace in [0, 1, 30, 300] {
            let grace = Duration::from_secs(grace);
            let attempts = attempts_covering(grace, CONTRATO_BACKOFF);
            let minimum_wait: Duration = (1..attempts)
                .map(|attempt| CONTRATO_BACKOFF.delay(attempt))
                .sum();
            assert!(minimum_wait >= grace, "{grace:?}: {attempts} attempts");
        }
        assert_eq!(attempts_covering(Duration::ZERO, CONTRATO_BACKOFF), 1);
    }
}
