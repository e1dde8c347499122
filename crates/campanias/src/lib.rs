//! The `campanias` service (Administración de Campañas): brands' programs and their partners'
//! affiliations, which only a partner whose onboarding completed may hold active, and the
//! e-mail notifications of saga outcomes and program changes. It owns its database, learns
//! about partners only from events, and publishes through its outbox on `eventos-programas`.

pub mod application;
pub mod consumers;
pub mod domain;
pub mod http;
pub mod notificaciones;
pub mod storage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::storage::outbox::Relay;
use ::storage::{Db, Transactional};
use kernel::{Bus, BusError, Consumes, MessageHandler, Shutdown};
use tokio::sync::Notify;

use crate::application::{Service, SERVICE};
use crate::consumers::PartnerEventsHandler;
use crate::notificaciones::{DeliveryWorker, FileSender, Sender, SmtpSender};

pub use crate::storage::MIGRATIONS;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Storage(#[from] ::storage::StorageError),
    #[error("bus: {0}")]
    Bus(#[from] BusError),
}

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderConfig {
    /// One `.eml` file per message in `dir` (embedded mode's default).
    File { dir: PathBuf },
    /// Plain SMTP to a relay at `host:port`, sent from `from`.
    Smtp {
        host: String,
        port: u16,
        from: String,
    },
}

/// The service's settings.
#[derive(Debug, Clone)]
pub struct CampaniasConfig {
    /// Who gets the operator's notifications (reviews, failures without an address, programs).
    pub operator_email: String,
    pub sender: SenderConfig,
    /// Delivery attempts of a notification before it is `FALLIDA`.
    pub max_intentos: u32,
    /// The delay before the first retry; each next one is about twice as long.
    pub retry_base: Duration,
}

/// The operator's address when none is configured.
pub const DEFAULT_OPERATOR_EMAIL: &str = "operaciones@alpespartners.local";

impl Default for CampaniasConfig {
    fn default() -> Self {
        Self {
            operator_email: DEFAULT_OPERATOR_EMAIL.to_owned(),
            sender: SenderConfig::File {
                dir: PathBuf::from(".alpes/notificaciones"),
            },
            max_intentos: 5,
            retry_base: Duration::from_secs(1),
        }
    }
}

impl CampaniasConfig {
    /// The defaults, writing notifications as `.eml` files into `dir`.
    pub fn with_file_sender(dir: impl Into<PathBuf>) -> Self {
        Self {
            sender: SenderConfig::File { dir: dir.into() },
            ..Self::default()
        }
    }

    /// The defaults, sending notifications by SMTP to `host:port` from `from`.
    pub fn with_smtp_sender(host: impl Into<String>, port: u16, from: impl Into<String>) -> Self {
        Self {
            sender: SenderConfig::Smtp {
                host: host.into(),
                port,
                from: from.into(),
            },
            ..Self::default()
        }
    }

    fn build_sender(&self) -> Arc<dyn Sender> {
        match &self.sender {
            SenderConfig::File { dir } => Arc::new(FileSender::new(dir.clone())),
            SenderConfig::Smtp { host, port, from } => {
                Arc::new(SmtpSender::new(host, *port, from.clone()))
            }
        }
    }
}

/// Competing consumers per subscribed topic in one process.
const CONSUMERS_PER_TOPIC: usize = 2;

/// The topics whose events tell campanias about partners.
const CONSUMED_TOPICS: [&str; 4] = [
    contracts::topics::ONBOARDING_EVENTS,
    contracts::topics::CONTRACT_EVENTS,
    contracts::topics::PARTNER_EVENTS,
    contracts::topics::PARTNER_DEACTIVATED,
];

/// The service, built once and shared by its router and workers.
pub struct Campanias {
    db: Db,
    bus: Arc<dyn Bus>,
    relay: Relay,
    service: Arc<Service>,
    delivery: DeliveryWorker,
}

impl Campanias {
    /// Migrates the database and builds the service with the sender `config` names. Fails
    /// when the database cannot be migrated.
    pub async fn start(
        db: Db,
        bus: Arc<dyn Bus>,
        config: CampaniasConfig,
    ) -> Result<Self, StartError> {
        let sender = config.build_sender();
        Self::start_with_sender(db, bus, config, sender).await
    }

    /// Like [`Campanias::start`], delivering through `sender` instead of the configured one.
    pub async fn start_with_sender(
        db: Db,
        bus: Arc<dyn Bus>,
        config: CampaniasConfig,
        sender: Arc<dyn Sender>,
    ) -> Result<Self, StartError> {
        db.migrate_with(SERVICE, MIGRATIONS).await?;
        let relay = Relay::new(db.clone(), bus.clone());
        let wake_delivery = Arc::new(Notify::new());
        let service = Arc::new(Service::new(
            db.clone(),
            relay.waker(),
            wake_delivery.clone(),
            config.operator_email.clone(),
        ));
        let delivery = DeliveryWorker::new(
            db.clone(),
            sender,
            wake_delivery,
            config.max_intentos,
            config.retry_base,
        );
        Ok(Self {
            db,
            bus,
            relay,
            service,
            delivery,
        })
    }

    /// The programs and notifications API with its readiness checks and metrics, to serve
    /// alone or beside another service.
    pub fn parts(&self) -> web::ServiceParts {
        http::parts(self.service.clone(), self.db.clone(), self.bus.clone())
    }

    /// The complete router: the API plus the operational routes.
    pub fn router(&self) -> axum::Router {
        self.parts().into_router()
    }

    /// Spawns the outbox relay, the notification delivery worker and the consumers; they stop
    /// when `shutdown` fires. Fails when the bus refuses a subscription.
    pub async fn spawn_workers(
        &self,
        shutdown: Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
        let mut handles = vec![
            tokio::spawn(self.relay.clone().run(shutdown.clone().wait())),
            tokio::spawn(self.delivery.clone().run(shutdown.clone().wait())),
        ];
        let handler = self.handler();
        let topics = CONSUMED_TOPICS.map(|topic| Consumes::new(topic, handler.clone()));
        handles.extend(
            kernel::spawn_consumers(
                self.bus.as_ref(),
                SERVICE,
                topics,
                CONSUMERS_PER_TOPIC,
                &shutdown,
            )
            .await?,
        );
        Ok(handles)
    }

    /// The handler the consumers run, for tests and tools that deliver messages themselves: a
    /// batch of messages is applied in one transaction, after which the delivery worker is
    /// woken for the notifications it stored.
    pub fn handler(&self) -> Arc<dyn MessageHandler> {
        Arc::new(
            Transactional::new(
                self.db.clone(),
                self.relay.waker(),
                PartnerEventsHandler::new(self.service.clone()),
            )
            .waking(self.service.delivery_waker())
            .with_inbox(SERVICE),
        )
    }

    /// The delivery worker, for tests that drive deliveries one round at a time.
    pub fn delivery_worker(&self) -> &DeliveryWorker {
        &self.delivery
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}
