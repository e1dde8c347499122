//! Use cases: load the aggregate, run the domain command, and save the new state with its
//! outbox rows and its notifications in one transaction (for retried writes, also the
//! idempotent response; for consumed events, the inbox row); then wake the relay and the
//! delivery worker. Nothing is published or sent any other way. The consumed events' use cases
//! (`on_*_in`) write into a transaction their caller owns and commits, so a batch of events
//! shares one commit; the caller wakes the relay and the delivery worker after it.

use std::sync::Arc;

use ::storage::idempotency::{self, IdempotencyError, Remembered, StoredResponse};
use ::storage::{inbox, outbox, Db, Tx};
use contracts::programas as wire;
use kernel::{Envelope, EnvelopeContext, IntegrationEvent};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{
    por_onboarding, por_programa, CambioPrograma, DomainError, Elegibilidad, EstadoAfiliacion,
    EstadoPedido, NuevoPrograma, PartnerConocido, Programa, ProgramaEvent, ResultadoOnboarding,
};
use crate::storage::{self as repo, Notificacion, NotificacionFilter, ProgramaFilter, RepoError};

pub use ::storage::idempotency::{IdempotentRequest, Written};

/// The `source` of every envelope this service writes, and its consumer group.
pub const SERVICE: &str = "campanias";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("program not found")]
    ProgramaNotFound,
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("a concurrent write kept conflicting; retry")]
    Contention,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::Repo(RepoError::Sqlx(error))
    }
}

impl From<::storage::StorageError> for AppError {
    fn from(error: ::storage::StorageError) -> Self {
        AppError::Repo(error.into())
    }
}

impl From<IdempotencyError> for AppError {
    fn from(error: IdempotencyError) -> Self {
        match error {
            IdempotencyError::KeyReused => AppError::IdempotencyKeyReused,
            IdempotencyError::Contention => AppError::Contention,
            IdempotencyError::Sqlx(error) => error.into(),
        }
    }
}

/// How a contract's new state bears on its partner: `activo` makes it eligible; a state in
/// which it cannot work makes it ineligible; `pendiente` says nothing new.
pub fn elegible_por_contrato(estado_nuevo: &str) -> Option<bool> {
    match estado_nuevo {
        "activo" => Some(true),
        "suspendido" | "cancelado" | "rechazado" | "vencido" | "inactivo" | "en_revision" => {
            Some(false)
        }
        _ => None,
    }
}

/// The campaigns service's use cases.
pub struct Service {
    db: Db,
    relay: Arc<Notify>,
    delivery: Arc<Notify>,
    operator_email: String,
}

fn wrap<E: IntegrationEvent>(event: E, context: &EnvelopeContext) -> (&'static str, Envelope) {
    (E::TOPIC, Envelope::wrap(SERVICE, &event, context.clone()))
}

fn to_envelope(event: &ProgramaEvent, context: &EnvelopeContext) -> (&'static str, Envelope) {
    match event.clone() {
        ProgramaEvent::Creado {
            programa_id,
            nombre,
            brand_id,
            tipo,
            estado,
        } => wrap(
            wire::ProgramaCreado {
                programa_id,
                nombre,
                brand_id,
                tipo: tipo.as_str().to_owned(),
                estado: estado.as_str().to_owned(),
            },
            context,
        ),
        ProgramaEvent::Activado {
            programa_id,
            nombre,
        } => wrap(
            wire::ProgramaActivado {
                programa_id,
                nombre,
            },
            context,
        ),
        ProgramaEvent::Suspendido {
            programa_id,
            nombre,
        } => wrap(
            wire::ProgramaSuspendido {
                programa_id,
                nombre,
            },
            context,
        ),
        ProgramaEvent::Cerrado {
            programa_id,
            nombre,
        } => wrap(
            wire::ProgramaCerrado {
                programa_id,
                nombre,
            },
            context,
        ),
        ProgramaEvent::AfiliacionCreada {
            programa_id,
            afiliado_id,
            estado,
        } => wrap(
            wire::AfiliacionCreada {
                programa_id,
                afiliado_id,
                estado: estado.as_str().to_owned(),
            },
            context,
        ),
        ProgramaEvent::AfiliacionActualizada {
            programa_id,
            afiliado_id,
            anterior,
            nuevo,
        } => wrap(
            wire::AfiliacionActualizada {
                programa_id,
                afiliado_id,
                estado_anterior: anterior.as_str().to_owned(),
                estado_nuevo: nuevo.as_str().to_owned(),
            },
            context,
        ),
    }
}

impl Service {
    pub fn new(db: Db, relay: Arc<Notify>, delivery: Arc<Notify>, operator_email: String) -> Self {
        Self {
            db,
            relay,
            delivery,
            operator_email,
        }
    }

    pub fn operator_email(&self) -> &str {
        &self.operator_email
    }

    /// What wakes the delivery worker, for a caller that commits notifications itself.
    pub(crate) fn delivery_waker(&self) -> Arc<Notify> {
        self.delivery.clone()
    }

    /// Commits `tx` and wakes the relay (new outbox rows) and the delivery worker (new
    /// notifications) so they act at once.
    async fn commit(&self, tx: Tx) -> Result<(), AppError> {
        outbox::commit_and_wake(tx, &self.relay).await?;
        self.delivery.notify_one();
        Ok(())
    }

    /// Appends each event to the outbox and, for a program's activation, suspension or
    /// closing, stores the operator's notification keyed by that event's id.
    async fn append_all(
        &self,
        tx: &mut Tx,
        events: &[ProgramaEvent],
        context: &EnvelopeContext,
    ) -> Result<(), AppError> {
        for event in events {
            let (topic, envelope) = to_envelope(event, context);
            outbox::append(tx, topic, &envelope);
            let cambio = match event {
                ProgramaEvent::Activado {
                    programa_id,
                    nombre,
                } => Some((CambioPrograma::Activado, programa_id, nombre)),
                ProgramaEvent::Suspendido {
                    programa_id,
                    nombre,
                } => Some((CambioPrograma::Suspendido, programa_id, nombre)),
                ProgramaEvent::Cerrado {
                    programa_id,
                    nombre,
                } => Some((CambioPrograma::Cerrado, programa_id, nombre)),
                _ => None,
            };
            if let Some((cambio, programa_id, nombre)) = cambio {
                let mensaje = por_programa(cambio, *programa_id, nombre, &self.operator_email);
                repo::insert_notificacion(tx, envelope.id, &envelope.event_type, &mensaje).await?;
            }
        }
        Ok(())
    }

    /// Creates a program with its first affiliations (each partner's standing decides its
    /// state). With an idempotency key, the response `render` builds is stored with the write,
    /// and a retry gets it back instead of a second program.
    pub async fn crear_programa(
        &self,
        datos: NuevoPrograma,
        afiliados: &[Uuid],
        idempotent: Option<&IdempotentRequest>,
        render: &(dyn Fn(&Programa) -> StoredResponse + Send + Sync),
    ) -> Result<Written<Programa>, AppError> {
        if let Some(stored) = idempotency::replay(&self.db, idempotent).await? {
            return Ok(Written::Replayed(stored));
        }
        let mut tx = self.db.begin().await?;
        // Partners are locked in id order, so two creations never wait on each other in a cycle.
        let mut ordered = afiliados.to_vec();
        ordered.sort();
        let mut standing = Vec::with_capacity(ordered.len());
        for afiliado_id in &ordered {
            let partner = repo::lock_partner(&mut tx, *afiliado_id).await?;
            standing.push((*afiliado_id, partner.elegibilidad()));
        }
        // Affiliations keep the order the client gave.
        let en_orden: Vec<(Uuid, Elegibilidad)> = afiliados
            .iter()
            .filter_map(|id| standing.iter().find(|(a, _)| a == id).copied())
            .collect();
        let (programa, events) = Programa::crear(kernel::new_id(), datos, &en_orden, kernel::now());
        repo::insert_programa(&mut tx, &programa).await?;
        self.append_all(&mut tx, &events, &EnvelopeContext::default())
            .await?;
        let tx = match idempotency::remember(&self.db, tx, idempotent, || render(&programa)).await?
        {
            Remembered::Kept(tx) => tx,
            Remembered::Twin(stored) => return Ok(Written::Replayed(stored)),
        };
        self.commit(tx).await?;
        Ok(Written::Done(programa))
    }

    pub async fn get_programa(&self, programa_id: Uuid) -> Result<Programa, AppError> {
        repo::find(&self.db, programa_id)
            .await?
            .ok_or(AppError::ProgramaNotFound)
    }

    /// A page of programs with their affiliations and the total matching `filter`.
    pub async fn list_programas(
        &self,
        filter: &ProgramaFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<(Vec<Programa>, i64), AppError> {
        Ok(repo::list(&self.db, filter, limit, after).await?)
    }

    async fn load(&self, tx: &mut Tx, programa_id: Uuid) -> Result<Programa, AppError> {
        repo::load_for_update(tx, programa_id)
            .await?
            .ok_or(AppError::ProgramaNotFound)
    }

    async fn save(
        &self,
        mut tx: Tx,
        programa: &Programa,
        events: Vec<ProgramaEvent>,
    ) -> Result<(), AppError> {
        if events.is_empty() {
            return Ok(());
        }
        repo::update_programa(&mut tx, programa).await?;
        self.append_all(&mut tx, &events, &EnvelopeContext::default())
            .await?;
        self.commit(tx).await
    }

    /// Runs a lifecycle command (`activar`, `suspender`, `cerrar`) on a program.
    pub async fn cambiar_estado(
        &self,
        programa_id: Uuid,
        command: fn(
            &mut Programa,
            chrono::DateTime<chrono::Utc>,
        ) -> Result<ProgramaEvent, DomainError>,
    ) -> Result<Programa, AppError> {
        let mut tx = self.db.begin().await?;
        let mut programa = self.load(&mut tx, programa_id).await?;
        let event = command(&mut programa, kernel::now())?;
        self.save(tx, &programa, vec![event]).await?;
        Ok(programa)
    }

    /// Affiliates a partner: `ACTIVA` if its onboarding completed, else `PENDIENTE` (promoted
    /// when it completes), or `SUSPENDIDA` if it was removed upstream.
    pub async fn afiliar(
        &self,
        programa_id: Uuid,
        afiliado_id: Uuid,
    ) -> Result<Programa, AppError> {
        // A missing program rolls the transaction back, partner record included.
        let mut tx = self.db.begin().await?;
        let partner = repo::lock_partner(&mut tx, afiliado_id).await?;
        let mut programa = self.load(&mut tx, programa_id).await?;
        let event = programa.afiliar(afiliado_id, partner.elegibilidad(), kernel::now())?;
        self.save(tx, &programa, vec![event]).await?;
        Ok(programa)
    }

    /// An operator's change of an affiliation (`ACTIVA` only for an eligible partner).
    pub async fn cambiar_afiliacion(
        &self,
        programa_id: Uuid,
        afiliado_id: Uuid,
        pedido: EstadoPedido,
    ) -> Result<Programa, AppError> {
        let mut tx = self.db.begin().await?;
        let partner = repo::lock_partner(&mut tx, afiliado_id).await?;
        let mut programa = self.load(&mut tx, programa_id).await?;
        let event = programa.cambiar_afiliacion(
            afiliado_id,
            pedido,
            partner.elegibilidad(),
            kernel::now(),
        )?;
        self.save(tx, &programa, event.into_iter().collect())
            .await?;
        Ok(programa)
    }

    pub async fn list_notificaciones(
        &self,
        filter: &NotificacionFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<(Vec<Notificacion>, i64), AppError> {
        Ok(repo::list_notificaciones(&self.db, filter, limit, after).await?)
    }

    /// What is known of a partner, for tests and diagnostics.
    pub async fn partner(&self, partner_id: Uuid) -> Result<Option<PartnerConocido>, AppError> {
        Ok(repo::find_partner(&self.db, partner_id).await?)
    }

    /// Applies `change` to every program where the partner has an affiliation in one of
    /// `estados`, saving each with its events (caused by `context`).
    async fn cambiar_afiliaciones_de(
        &self,
        tx: &mut Tx,
        partner_id: Uuid,
        estados: &[EstadoAfiliacion],
        context: &EnvelopeContext,
        change: fn(&mut Programa, Uuid, chrono::DateTime<chrono::Utc>) -> Option<ProgramaEvent>,
    ) -> Result<usize, AppError> {
        let mut changed = 0;
        for programa_id in repo::programas_con_afiliado(tx, partner_id, estados).await? {
            let mut programa = self.load(tx, programa_id).await?;
            if let Some(event) = change(&mut programa, partner_id, kernel::now()) {
                repo::update_programa(tx, &programa).await?;
                self.append_all(tx, &[event], context).await?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Records an eligibility signal for a partner (`elegible` from an event that happened
    /// `at`), promoting its pending affiliations when it becomes eligible.
    async fn senal_elegibilidad(
        &self,
        tx: &mut Tx,
        partner: &mut PartnerConocido,
        elegible: bool,
        envelope: &Envelope,
    ) -> Result<(), AppError> {
        if partner.senal_elegibilidad(elegible, envelope.time) {
            let context = EnvelopeContext::caused_by(envelope);
            let promoted = self
                .cambiar_afiliaciones_de(
                    tx,
                    partner.partner_id,
                    &[EstadoAfiliacion::Pendiente],
                    &context,
                    Programa::promover,
                )
                .await?;
            tracing::debug!(partner_id = %partner.partner_id, promoted, "partner became eligible");
        }
        Ok(())
    }

    /// Handles the saga's `OnboardingEstadoCambiado`: the partner's standing (`COMPLETADA`
    /// makes it eligible, a failure or a review does not) and the notification of the outcome,
    /// with the inbox row. Returns `false` for a redelivery, which changes nothing. Writes into
    /// `tx`, which the caller commits.
    pub async fn on_onboarding_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        event: &contracts::sagas::OnboardingEstadoCambiado,
    ) -> Result<bool, AppError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(false);
        }
        let mut email = event.email.clone();
        let mut nombre = event.nombre.clone();
        if let Some(partner_id) = event.partner_id {
            let mut partner = repo::lock_partner(tx, partner_id).await?;
            partner.contacto(event.email.as_deref(), event.nombre.as_deref());
            let elegible = match event.estado.as_str() {
                "COMPLETADA" => Some(true),
                "FALLIDA" | "PENDIENTE_REVISION" => Some(false),
                _ => None,
            };
            if let Some(elegible) = elegible {
                self.senal_elegibilidad(tx, &mut partner, elegible, envelope)
                    .await?;
            }
            repo::save_partner(tx, &partner).await?;
            email = email.or(partner.email.clone());
            nombre = nombre.or(partner.nombre.clone());
        }
        let resultado = ResultadoOnboarding {
            estado: &event.estado,
            nombre: nombre.as_deref(),
            email: email.as_deref(),
            causa: event.causa.as_deref(),
            saga_id: event.saga_id,
            partner_id: event.partner_id,
        };
        if let Some(mensaje) = por_onboarding(&resultado, &self.operator_email) {
            repo::insert_notificacion(tx, envelope.id, &envelope.event_type, &mensaje).await?;
        }
        Ok(true)
    }

    /// Handles `ContratoEstadoCambiado`: an active contract makes its partner eligible (and
    /// promotes its pending affiliations), a suspended, cancelled, rejected or expired one
    /// makes it ineligible for new active affiliations. Writes into `tx`, which the caller
    /// commits.
    pub async fn on_contrato_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        event: &contracts::contratos::ContratoEstadoCambiado,
    ) -> Result<bool, AppError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(false);
        }
        if let Some(elegible) = elegible_por_contrato(&event.estado_nuevo) {
            let mut partner = repo::lock_partner(tx, event.partner_id).await?;
            self.senal_elegibilidad(tx, &mut partner, elegible, envelope)
                .await?;
            repo::save_partner(tx, &partner).await?;
        }
        Ok(true)
    }

    /// Handles `PartnerEliminado` and `PartnerDesactivado`: the partner is never eligible
    /// again and its pending or active affiliations are suspended. Writes into `tx`, which the
    /// caller commits.
    pub async fn on_partner_retirado_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        partner_id: Uuid,
    ) -> Result<bool, AppError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(false);
        }
        let mut partner = repo::lock_partner(tx, partner_id).await?;
        partner.bloquear();
        repo::save_partner(tx, &partner).await?;
        let context = EnvelopeContext::caused_by(envelope);
        let suspended = self
            .cambiar_afiliaciones_de(
                tx,
                partner_id,
                &[EstadoAfiliacion::Pendiente, EstadoAfiliacion::Activa],
                &context,
                Programa::suspender_afiliado,
            )
            .await?;
        tracing::debug!(%partner_id, suspended, "partner removed upstream");
        Ok(true)
    }
}
