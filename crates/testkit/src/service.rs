//! What a service under test runs on: a fresh migrated database, a fresh embedded bus, one
//! shutdown channel for its HTTP servers and workers, and an HTTP client. Each crate's
//! `spawn_app` starts its service on a `Stage` and serves the router with `Stage::serve`.

use std::sync::Arc;

use embedded_bus::EmbeddedBus;
use kernel::shutdown::ShutdownTrigger;
use kernel::{Shutdown, Subscription};
use storage::Db;

use crate::bus::TestBus;
use crate::db::TestDb;

pub struct Stage {
    pub test_db: TestDb,
    pub test_bus: TestBus,
    pub client: reqwest::Client,
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
}

impl Stage {
    /// A stage over `test_db` with a fresh bus; nothing runs on it yet.
    pub async fn new(test_db: TestDb) -> Stage {
        let test_bus = crate::bus::fresh_bus().await;
        let (trigger, shutdown) = kernel::shutdown::channel();
        Stage {
            test_db,
            test_bus,
            client: reqwest::Client::new(),
            trigger,
            shutdown,
        }
    }

    pub fn db(&self) -> &Db {
        &self.test_db.db
    }

    /// Another handle on the stage's bus, for a service to start on.
    pub fn bus(&self) -> Arc<EmbeddedBus> {
        self.test_bus.bus.clone()
    }

    /// The signal `cleanup` fires, for a service's workers.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Serves `router` on a free port until `cleanup`; returns its base URL.
    pub async fn serve(&self, router: axum::Router) -> String {
        crate::http::serve(router, self.shutdown.clone().wait()).await
    }

    /// Subscribes a fresh observer group to `topic`; returns it and its group name.
    pub async fn observe(&self, topic: &str) -> (Box<dyn Subscription>, String) {
        crate::bus::observe(self.test_bus.bus.as_ref(), topic).await
    }

    /// Stops the servers and workers, then closes the database (dropping it on PostgreSQL).
    pub async fn cleanup(self) {
        self.trigger.fire();
        self.test_db.cleanup().await;
    }
}
