//! The message handler this service runs under `kernel::run_consumer` for every topic it
//! follows: `PartnerCreado` creates the partner's contract; compliance outcomes and review
//! decisions move it through its lifecycle. Business outcomes become events; an event that
//! arrived before the state it builds on, and every database failure, is retried; an
//! undecodable payload is dead-lettered. Each message is applied inside a transaction it is
//! handed (`storage::Transactional` commits one per batch), so a batch costs one commit.

use std::sync::Arc;

use async_trait::async_trait;
use contracts::compliance::{ContratoAprobado, ContratoRechazado};
use contracts::partners::PartnerCreado;
use contracts::sagas::{RevisionAprobada, RevisionContrato, RevisionRechazada};
use kernel::{Envelope, HandlerError, IntegrationEvent};
use storage::{Transactional, Tx, TxHandler};
use tokio::sync::Notify;

use crate::application::{ConsumeError, Objetivo, Service};
use crate::domain::Motivo;

fn handler_error(error: ConsumeError) -> HandlerError {
    // Not-yet-applicable events and database or contention problems: retrying may succeed.
    match error {
        ConsumeError::NotYet(_) => HandlerError::Early(error.to_string()),
        other => HandlerError::Transient(other.to_string()),
    }
}

/// Consumes `PartnerCreado`, `ContratoAprobado`, `ContratoRechazado`, `RevisionContrato`,
/// `RevisionAprobada` and `RevisionRechazada`, dispatching on the envelope's type. Other
/// types on those topics are not for this service and are acknowledged untouched.
pub struct AlianzasHandler {
    service: Arc<Service>,
}

impl AlianzasHandler {
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    /// The handler as the consumers run it: one transaction per message or per batch on the
    /// service's database, waking `relay` (the outbox relay's waker) after each commit.
    pub fn transactional(service: Arc<Service>, relay: Arc<Notify>) -> Transactional<Self> {
        Transactional::new(service.db().clone(), relay, Self::new(service))
            .with_inbox(crate::application::SERVICE)
    }
}

#[async_trait]
impl TxHandler for AlianzasHandler {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError> {
        let service = &self.service;
        let outcome = match envelope.event_type.as_str() {
            PartnerCreado::TYPE => {
                let event: PartnerCreado = envelope.decode()?;
                service.crear_para_partner_in(tx, envelope, &event).await
            }
            ContratoAprobado::TYPE => {
                let event: ContratoAprobado = envelope.decode()?;
                service
                    .llevar_a_in(tx, envelope, event.contrato_id, Objetivo::Activo, None)
                    .await
            }
            ContratoRechazado::TYPE => {
                let event: ContratoRechazado = envelope.decode()?;
                let motivo = format!("{}: {}", event.validacion_fallida, event.causa_rechazo);
                service
                    .llevar_a_in(
                        tx,
                        envelope,
                        event.contrato_id,
                        Objetivo::EnRevision,
                        Motivo::lenient(Some(&motivo)),
                    )
                    .await
            }
            RevisionContrato::TYPE => {
                let event: RevisionContrato = envelope.decode()?;
                let motivo = format!("{}: {}", event.validacion_fallida, event.causa_rechazo);
                service
                    .llevar_a_in(
                        tx,
                        envelope,
                        event.contrato_id,
                        Objetivo::EnRevision,
                        Motivo::lenient(Some(&motivo)),
                    )
                    .await
            }
            RevisionAprobada::TYPE => {
                let event: RevisionAprobada = envelope.decode()?;
                service
                    .llevar_a_in(tx, envelope, event.contrato_id, Objetivo::Activo, None)
                    .await
            }
            RevisionRechazada::TYPE => {
                let event: RevisionRechazada = envelope.decode()?;
                service
                    .llevar_a_in(
                        tx,
                        envelope,
                        event.contrato_id,
                        Objetivo::Rechazado,
                        Motivo::lenient(event.comentarios.as_deref()),
                    )
                    .await
            }
            other => {
                tracing::debug!(id = %envelope.id, event_type = other, "not for alianzas; ignored");
                return Ok(());
            }
        }
        .map_err(handler_error)?;
        tracing::debug!(id = %envelope.id, event_type = %envelope.event_type, ?outcome, "handled");
        Ok(())
    }

    async fn prepare(&self, tx: &mut Tx, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        // A payload that does not decode is left to `apply`, which dead-letters it.
        let partner_ids: Vec<_> = envelopes
            .iter()
            .filter(|envelope| envelope.event_type == PartnerCreado::TYPE)
            .filter_map(|envelope| envelope.decode::<PartnerCreado>().ok())
            .map(|event| event.partner_id)
            .collect();
        self.service
            .prepare_batch(tx, &partner_ids)
            .await
            .map_err(|error| handler_error(error.into()))
    }

    async fn finish(&self, tx: &mut Tx) -> Result<(), HandlerError> {
        self.service
            .finish_batch(tx)
            .await
            .map_err(|error| handler_error(error.into()))
    }
}
