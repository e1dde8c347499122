//! The message handlers this service runs under `kernel::run_consumer`: the saga's
//! `CreatePartner` command and its `DesactivarPartner` compensation. Business failures are
//! answered with events; only infrastructure failures are retried, and undecodable payloads are
//! dead-lettered. Each is a `storage::TxHandler`: its effects, inbox row and outbox rows go into
//! the transaction `storage::Transactional` gives it, so a batch of commands costs one commit.

use std::sync::Arc;

use ::storage::{Tx, TxHandler};
use async_trait::async_trait;
use contracts::partners::{CreatePartner, DesactivarPartner};
use kernel::{Envelope, HandlerError};

use crate::application::{AppError, Service};

fn handler_error(error: AppError) -> HandlerError {
    // Every error that reaches here is a database or contention problem: retrying may succeed.
    // Business outcomes were already turned into events by the service.
    HandlerError::Transient(error.to_string())
}

/// Consumes `CreatePartner` (topic `comando-crear-partner`).
pub struct CreatePartnerHandler {
    service: Arc<Service>,
}

impl CreatePartnerHandler {
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl TxHandler for CreatePartnerHandler {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError> {
        let command: CreatePartner = envelope.decode()?;
        let outcome = self
            .service
            .create_from_command_in(tx, envelope, command)
            .await
            .map_err(handler_error)?;
        tracing::debug!(id = %envelope.id, ?outcome, "CreatePartner handled");
        Ok(())
    }

    async fn prepare(&self, tx: &mut Tx, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        // A payload that does not decode is left to `apply`, which dead-letters it.
        let commands: Vec<CreatePartner> = envelopes
            .iter()
            .filter_map(|envelope| envelope.decode().ok())
            .collect();
        self.service
            .prepare_batch(tx, &commands)
            .await
            .map_err(handler_error)
    }

    async fn finish(&self, tx: &mut Tx) -> Result<(), HandlerError> {
        self.service.finish_batch(tx).await.map_err(handler_error)
    }
}

/// Consumes `DesactivarPartner` (topic `comando-desactivar-partner`).
pub struct DesactivarPartnerHandler {
    service: Arc<Service>,
}

impl DesactivarPartnerHandler {
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl TxHandler for DesactivarPartnerHandler {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError> {
        let command: DesactivarPartner = envelope.decode()?;
        let first = self
            .service
            .deactivate_from_command_in(tx, envelope, command)
            .await
            .map_err(handler_error)?;
        tracing::debug!(id = %envelope.id, first, "DesactivarPartner handled");
        Ok(())
    }
}
