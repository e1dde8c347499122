//! `ServiceParts`: what a service contributes to an HTTP server (its API router, its OpenAPI
//! document, readiness checks and metrics), so that the binary can serve one service alone or
//! merge two on one port (alianzas and the saga log) with one set of operational routes.

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use kernel::Bus;
use storage::Db;

use crate::ops::{MetricsSource, OpsRoutes, ReadinessCheck};

pub struct ServiceParts {
    name: &'static str,
    api: Router,
    openapi: utoipa::openapi::OpenApi,
    checks: Vec<Arc<dyn ReadinessCheck>>,
    metrics: Vec<Arc<dyn MetricsSource>>,
}

impl ServiceParts {
    pub fn new(name: &'static str, api: Router, openapi: utoipa::openapi::OpenApi) -> Self {
        Self {
            name,
            api,
            openapi,
            checks: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// The service's database: checked by `/ready`, its outbox backlog reported on `/metrics`.
    pub fn with_database(mut self, db: Db) -> Self {
        self.checks.push(Arc::new(DbCheck {
            service: self.name,
            db: db.clone(),
        }));
        self.metrics.push(Arc::new(OutboxBacklog {
            service: self.name,
            db,
        }));
        self
    }

    /// The bus: checked by `/ready`.
    pub fn with_bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.checks.push(Arc::new(BusCheck(bus)));
        self
    }

    pub fn check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    pub fn metrics(mut self, source: Arc<dyn MetricsSource>) -> Self {
        self.metrics.push(source);
        self
    }

    /// Serves `other` on the same port: routes, documents, checks and metrics combined; the
    /// name stays this service's.
    pub fn merge(mut self, other: ServiceParts) -> Self {
        self.api = self.api.merge(other.api);
        self.openapi.merge(other.openapi);
        self.checks.extend(other.checks);
        self.metrics.extend(other.metrics);
        self
    }

    /// The complete router: the API plus the operational routes and shared layers.
    pub fn into_router(self) -> Router {
        let mut ops = OpsRoutes::new(self.name, self.openapi);
        for check in self.checks {
            ops = ops.check(check);
        }
        for source in self.metrics {
            ops = ops.metrics(source);
        }
        ops.finish(self.api)
    }
}

struct DbCheck {
    service: &'static str,
    db: Db,
}

#[async_trait]
impl ReadinessCheck for DbCheck {
    fn name(&self) -> String {
        format!("{}-database", self.service)
    }

    async fn check(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|error| error.to_string())
    }
}

struct BusCheck(Arc<dyn Bus>);

#[async_trait]
impl ReadinessCheck for BusCheck {
    fn name(&self) -> String {
        "bus".to_owned()
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| error.to_string())
    }
}

/// `alpes_outbox_backlog`: outbox rows not yet published. Crash tests poll it to know when
/// everything committed has reached the bus.
struct OutboxBacklog {
    service: &'static str,
    db: Db,
}

#[async_trait]
impl MetricsSource for OutboxBacklog {
    async fn render(&self) -> String {
        match storage::outbox::backlog(&self.db).await {
            Ok(backlog) => format!(
                "# TYPE alpes_outbox_backlog gauge\nalpes_outbox_backlog{{service=\"{}\"}} {backlog}\n",
                self.service
            ),
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox backlog");
                String::new()
            }
        }
    }
}
