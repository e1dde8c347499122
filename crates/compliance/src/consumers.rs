//! The message handlers this service runs under `kernel::run_consumer`: `PartnerCreado` (a
//! partner becomes known), `ContratoCreado` (the rules decide), and `RevisionAprobada` on the
//! review topic (the account is opened). Business outcomes are events; every error that reaches
//! here is retried, and undecodable payloads are dead-lettered. Each is a `storage::TxHandler`:
//! its effects, inbox row and outbox rows go into the transaction `storage::Transactional` gives
//! it, so a batch of events costs one commit.

use std::sync::Arc;

use ::storage::{Tx, TxHandler};
use async_trait::async_trait;
use contracts::contratos::ContratoCreado;
use contracts::partners::PartnerCreado;
use contracts::sagas::RevisionAprobada;
use kernel::{Envelope, HandlerError, IntegrationEvent};

use crate::application::{AppError, Service};

fn handler_error(error: AppError) -> HandlerError {
    // A database failure, contention, or a partner not known yet: retrying may succeed. A
    // technical failure is never turned into a rejection.
    match error {
        AppError::PartnerAunDesconocido { .. } => HandlerError::Early(error.to_string()),
        other => HandlerError::Transient(other.to_string()),
    }
}

/// Consumes `PartnerCreado` (topic `PartnerCreado`).
pub struct PartnerCreadoHandler {
    service: Arc<Service>,
}

impl PartnerCreadoHandler {
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl TxHandler for PartnerCreadoHandler {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError> {
        let event: PartnerCreado = envelope.decode()?;
        let first = self
            .service
            .record_partner_in(tx, envelope, event)
            .await
            .map_err(handler_error)?;
        tracing::debug!(id = %envelope.id, first, "PartnerCreado handled");
        Ok(())
    }

    async fn prepare(&self, tx: &mut Tx, _envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        self.service.prepare_partners(tx);
        Ok(())
    }

    async fn finish(&self, tx: &mut Tx) -> Result<(), HandlerError> {
        self.service.finish_batch(tx).await.map_err(handler_error)
    }
}

/// Consumes `ContratoCreado` (topic `ContratoCreado`).
pub struct ContratoCreadoHandler {
    service: Arc<Service>,
}

impl ContratoCreadoHandler {
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl TxHandler for ContratoCreadoHandler {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError> {
        let event: ContratoCreado = envelope.decode()?;
        let decision = self
            .service
            .evaluate_contract_in(tx, envelope, event)
            .await
            .map_err(handler_error)?;
        tracing::debug!(id = %envelope.id, ?decision, "ContratoCreado handled");
        Ok(())
    }

    async fn prepare(&self, tx: &mut Tx, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        // A payload that does not decode is left to `apply`, which dead-letters it.
        let events: Vec<ContratoCreado> = envelopes
            .iter()
            .filter_map(|envelope| envelope.decode().ok())
            .collect();
        self.service
            .prepare_evaluations(tx, &events)
            .await
            .map_err(handler_error)
    }

    async fn finish(&self, tx: &mut Tx) -> Result<(), HandlerError> {
        self.service.finish_batch(tx).await.map_err(handler_error)
    }
}

/// Consumes the review topic (`revision-resuelta`): `RevisionAprobada` opens the account;
/// `RevisionRechazada` (same topic) concerns other services and is acknowledged untouched.
pub struct RevisionResueltaHandler {
    service: Arc<Service>,
}

impl RevisionResueltaHandler {
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl TxHandler for RevisionResueltaHandler {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError> {
        if envelope.event_type != RevisionAprobada::TYPE {
            tracing::debug!(id = %envelope.id, event_type = %envelope.event_type, "not for compliance; ignored");
            return Ok(());
        }
        let event: RevisionAprobada = envelope.decode()?;
        let opened = self
            .service
            .open_account_after_review_in(tx, envelope, event)
            .await
            .map_err(handler_error)?;
        tracing::debug!(id = %envelope.id, opened, "RevisionAprobada handled");
        Ok(())
    }
}
