//! Command handlers: load the aggregate, run the domain command, and save the new state with its
//! outbox rows (and, for retried writes, the idempotent response; for consumed commands, the
//! inbox row) in one transaction; then wake the relay. Consumed commands are handled inside a
//! transaction the caller owns (`storage::Transactional`), which commits a batch of them at once
//! and wakes the relay itself. Nothing is published any other way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ::storage::idempotency::{self, IdempotencyError, Remembered, StoredResponse};
use ::storage::{inbox, outbox, Db, Tx};
use contracts::partners as wire;
use kernel::{Envelope, EnvelopeContext, IntegrationEvent};
use serde_json::{Map, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{
    CambiosPartner, Comentarios, DomainError, Email, EstadoKyc, FieldIssue, Integracion, Motivo,
    NuevaIntegracion, NuevoPartner, Partner, PartnerEvent, RawPartner,
};
use crate::storage::{self as repo, PartnerFilter, RepoError};

/// The `source` of every envelope this service writes, and its consumer group.
pub const SERVICE: &str = "integraciones";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("partner not found")]
    PartnerNotFound,
    #[error("integration not found")]
    IntegracionNotFound,
    #[error("the e-mail is used by another live partner")]
    EmailTaken,
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("a concurrent write kept conflicting; retry")]
    Contention,
    #[error(transparent)]
    Repo(RepoError),
}

impl From<RepoError> for AppError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::EmailTaken => AppError::EmailTaken,
            other => AppError::Repo(other),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::Repo(RepoError::Sqlx(error))
    }
}

impl From<::storage::StorageError> for AppError {
    fn from(error: ::storage::StorageError) -> Self {
        match error {
            ::storage::StorageError::Sqlx(error) => error.into(),
            other => AppError::Repo(RepoError::Corrupt(other.to_string())),
        }
    }
}

/// The idempotent-write vocabulary is shared (`storage::idempotency`); re-exported here, where
/// callers of these use cases have always found it.
pub use ::storage::idempotency::{IdempotentRequest, Written};

impl From<IdempotencyError> for AppError {
    fn from(error: IdempotencyError) -> Self {
        match error {
            IdempotencyError::KeyReused => AppError::IdempotencyKeyReused,
            IdempotencyError::Contention => AppError::Contention,
            IdempotencyError::Sqlx(error) => error.into(),
        }
    }
}

/// What a `CreatePartner` command led to (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    Created(Uuid),
    /// The partner of this onboarding exists already; nothing is published again (its
    /// `PartnerCreado` left through the outbox when it was created).
    AlreadyCreated(Uuid),
    /// `PartnerCreationFailed` was published with this error code.
    Failed(&'static str),
    /// The inbox had this event id: nothing was done.
    Duplicate,
}

/// The partner service's use cases.
pub struct Service {
    db: Db,
    wake: Arc<Notify>,
}

/// How often a write that lost a unique-index race is retried before giving up.
const RACE_RETRIES: usize = 3;

fn wrap<E: IntegrationEvent>(event: E, context: &EnvelopeContext) -> (&'static str, Envelope) {
    (E::TOPIC, Envelope::wrap(SERVICE, &event, context.clone()))
}

/// The integration event for a domain event. `terminos` rides along on `PartnerCreado` for a
/// partner created by the saga.
fn to_envelope(
    event: PartnerEvent,
    terminos: Option<Value>,
    context: &EnvelopeContext,
) -> (&'static str, Envelope) {
    match event {
        PartnerEvent::Creado {
            partner_id,
            nombre,
            tipo,
            email,
            onboarding_id,
        } => wrap(
            wire::PartnerCreado {
                partner_id,
                nombre,
                tipo: tipo.as_str().to_owned(),
                email,
                onboarding_id,
                terminos,
            },
            context,
        ),
        PartnerEvent::Actualizado {
            partner_id,
            nombre,
            tipo,
        } => wrap(
            wire::PartnerActualizado {
                partner_id,
                nombre,
                tipo: tipo.as_str().to_owned(),
            },
            context,
        ),
        PartnerEvent::Eliminado { partner_id } => {
            wrap(wire::PartnerEliminado { partner_id }, context)
        }
        PartnerEvent::KycVerificado {
            partner_id,
            anterior,
            nuevo,
            observaciones,
        } => wrap(
            wire::KycVerificado {
                partner_id,
                estado_kyc_anterior: anterior.as_str().to_owned(),
                estado_kyc_nuevo: nuevo.as_str().to_owned(),
                observaciones,
            },
            context,
        ),
        PartnerEvent::IntegracionCreada {
            partner_id,
            integracion_id,
            tipo,
            nombre,
        } => wrap(
            wire::IntegracionCreada {
                partner_id,
                integracion_id,
                tipo: tipo.as_str().to_owned(),
                nombre,
            },
            context,
        ),
        PartnerEvent::IntegracionRevocada {
            partner_id,
            integracion_id,
            motivo,
        } => wrap(
            wire::IntegracionRevocada {
                partner_id,
                integracion_id,
                motivo,
            },
            context,
        ),
        PartnerEvent::Desactivado { partner_id, motivo } => {
            wrap(wire::PartnerDesactivado { partner_id, motivo }, context)
        }
    }
}

fn append_all(tx: &mut Tx, events: Vec<PartnerEvent>, context: &EnvelopeContext) {
    let rows = events
        .into_iter()
        .map(|event| to_envelope(event, None, context));
    outbox::append_all(tx, rows)
}

impl Service {
    pub fn new(db: Db, wake: Arc<Notify>) -> Self {
        Self { db, wake }
    }

    /// Commits `tx` and wakes the relay so the new outbox rows leave at once.
    async fn commit(&self, tx: Tx) -> Result<(), AppError> {
        outbox::commit_and_wake(tx, &self.wake).await?;
        Ok(())
    }

    /// Registers a partner from the API. With an idempotency key, the response `render` builds
    /// is stored with the write, and a retry gets it back instead of a second partner.
    pub async fn create_partner(
        &self,
        datos: NuevoPartner,
        idempotent: Option<&IdempotentRequest>,
        render: &(dyn Fn(&Partner) -> StoredResponse + Send + Sync),
    ) -> Result<Written<Partner>, AppError> {
        if let Some(stored) = idempotency::replay(&self.db, idempotent).await? {
            return Ok(Written::Replayed(stored));
        }
        let (partner, event) = Partner::register(kernel::new_id(), datos, None, kernel::now());
        if let (None, Db::Postgres(pool)) = (idempotent, &self.db) {
            // Nothing else to write in the transaction: the partner and its event go as one
            // statement that commits on its own.
            let (topic, envelope) = to_envelope(event, None, &EnvelopeContext::default());
            let row = outbox::row(topic, &envelope);
            if !repo::insert_new_partner_committed(pool, &partner, &row).await? {
                return Err(AppError::EmailTaken);
            }
            self.wake.notify_one();
            return Ok(Written::Done(partner));
        }
        let mut tx = self.db.begin().await?;
        match repo::insert_partner(&mut tx, &partner).await {
            Ok(()) => {}
            Err(RepoError::EmailTaken) => {
                drop(tx);
                // A twin request with the same key may have taken the e-mail: answer as it did.
                if let Some(stored) = idempotency::replay(&self.db, idempotent).await? {
                    return Ok(Written::Replayed(stored));
                }
                return Err(AppError::EmailTaken);
            }
            Err(error) => return Err(error.into()),
        }
        append_all(&mut tx, vec![event], &EnvelopeContext::default());
        let tx = match idempotency::remember(&self.db, tx, idempotent, || render(&partner)).await? {
            Remembered::Kept(tx) => tx,
            Remembered::Twin(stored) => return Ok(Written::Replayed(stored)),
        };
        self.commit(tx).await?;
        Ok(Written::Done(partner))
    }

    /// One partner with its integrations.
    pub async fn get_partner(&self, partner_id: Uuid) -> Result<Partner, AppError> {
        repo::find(&self.db, partner_id)
            .await?
            .ok_or(AppError::PartnerNotFound)
    }

    /// A page of partners (without integrations) and the total matching `filter`.
    pub async fn list_partners(
        &self,
        filter: &PartnerFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<(Vec<Partner>, i64), AppError> {
        Ok(repo::list(&self.db, filter, limit, after).await?)
    }

    /// Loads a partner for a change inside a new transaction.
    async fn load(&self, partner_id: Uuid) -> Result<(Tx, Partner), AppError> {
        let mut tx = self.db.begin().await?;
        let partner = repo::load_for_update(&mut tx, partner_id)
            .await?
            .ok_or(AppError::PartnerNotFound)?;
        Ok((tx, partner))
    }

    /// Saves `partner` with `events`, or does nothing when there are no events.
    async fn save(
        &self,
        mut tx: Tx,
        partner: &Partner,
        events: Vec<PartnerEvent>,
    ) -> Result<(), AppError> {
        if events.is_empty() {
            return Ok(());
        }
        repo::update_partner(&mut tx, partner).await?;
        append_all(&mut tx, events, &EnvelopeContext::default());
        self.commit(tx).await
    }

    pub async fn update_partner(
        &self,
        partner_id: Uuid,
        cambios: CambiosPartner,
    ) -> Result<Partner, AppError> {
        let (tx, mut partner) = self.load(partner_id).await?;
        let event = partner.update(cambios, kernel::now())?;
        self.save(tx, &partner, event.into_iter().collect()).await?;
        Ok(partner)
    }

    /// Soft-deletes a partner and revokes its integrations.
    pub async fn delete_partner(&self, partner_id: Uuid) -> Result<Partner, AppError> {
        let (tx, mut partner) = self.load(partner_id).await?;
        let events = partner.delete(kernel::now())?;
        self.save(tx, &partner, events).await?;
        Ok(partner)
    }

    pub async fn verify_kyc(
        &self,
        partner_id: Uuid,
        estado: EstadoKyc,
        documentos: Option<Map<String, Value>>,
        comentarios: Option<Comentarios>,
    ) -> Result<Partner, AppError> {
        let (tx, mut partner) = self.load(partner_id).await?;
        let event = partner.verify_kyc(estado, documentos, comentarios, kernel::now())?;
        self.save(tx, &partner, vec![event]).await?;
        Ok(partner)
    }

    /// Adds an integration; idempotent like [`Service::create_partner`].
    pub async fn add_integracion(
        &self,
        partner_id: Uuid,
        datos: NuevaIntegracion,
        idempotent: Option<&IdempotentRequest>,
        render: &(dyn Fn(&Integracion) -> StoredResponse + Send + Sync),
    ) -> Result<Written<Integracion>, AppError> {
        if let Some(stored) = idempotency::replay(&self.db, idempotent).await? {
            return Ok(Written::Replayed(stored));
        }
        let (mut tx, mut partner) = self.load(partner_id).await?;
        let integracion_id = kernel::new_id();
        let event = partner.add_integracion(integracion_id, datos, kernel::now())?;
        let integracion = partner
            .integracion(integracion_id)
            .cloned()
            .ok_or(AppError::IntegracionNotFound)?;
        repo::update_partner(&mut tx, &partner).await?;
        append_all(&mut tx, vec![event], &EnvelopeContext::default());
        let remembered =
            idempotency::remember(&self.db, tx, idempotent, || render(&integracion)).await?;
        let tx = match remembered {
            Remembered::Kept(tx) => tx,
            Remembered::Twin(stored) => return Ok(Written::Replayed(stored)),
        };
        self.commit(tx).await?;
        Ok(Written::Done(integracion))
    }

    /// Revokes an integration found by its id; with `partner_id` (the nested route) it must
    /// belong to that partner.
    pub async fn revoke_integracion(
        &self,
        partner_id: Option<Uuid>,
        integracion_id: Uuid,
        motivo: Option<Motivo>,
    ) -> Result<Integracion, AppError> {
        let mut tx = self.db.begin().await?;
        let owner = repo::partner_of_integracion(&mut tx, integracion_id).await?;
        if let Some(expected) = partner_id {
            if owner != Some(expected) {
                let partner_exists = repo::load_for_update(&mut tx, expected).await?.is_some();
                return Err(if partner_exists {
                    AppError::IntegracionNotFound
                } else {
                    AppError::PartnerNotFound
                });
            }
        }
        let owner = owner.ok_or(AppError::IntegracionNotFound)?;
        let mut partner = repo::load_for_update(&mut tx, owner)
            .await?
            .ok_or(AppError::IntegracionNotFound)?;
        let event = partner.revoke_integracion(integracion_id, motivo, kernel::now())?;
        let integracion = partner
            .integracion(integracion_id)
            .cloned()
            .ok_or(AppError::IntegracionNotFound)?;
        self.save(tx, &partner, vec![event]).await?;
        Ok(integracion)
    }

    /// Handles the saga's `CreatePartner` inside `tx`: creates the partner and appends
    /// `PartnerCreado`, or appends `PartnerCreationFailed` for a business failure — together
    /// with the inbox row, so a redelivered command changes nothing. A second command for an
    /// onboarding that already has its partner is recorded and otherwise ignored. Nothing is
    /// committed here: the caller commits `tx`, possibly with other commands.
    pub async fn create_from_command_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        command: wire::CreatePartner,
    ) -> Result<CommandOutcome, AppError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(CommandOutcome::Duplicate);
        }
        let context = EnvelopeContext::caused_by(envelope);
        let parsed = NuevoPartner::parse(RawPartner {
            nombre: Some(&command.nombre),
            email: Some(&command.email),
            telefono: command.telefono.as_deref(),
            direccion: command.direccion.as_deref(),
            tipo: command.tipo.as_deref(),
        });
        let held = Prefetched::partner_of(tx, command.onboarding_id);
        for _ in 0..RACE_RETRIES {
            let email = parsed.as_ref().ok().map(|datos| &datos.email);
            let (existing, email_taken) = match held {
                Some(existing) => (existing, Prefetched::taken(tx, email)),
                None => {
                    self.flush(tx).await?;
                    repo::onboarding_partner_and_email(tx, command.onboarding_id, email).await?
                }
            };
            if let Some(existing) = existing {
                return Ok(CommandOutcome::AlreadyCreated(existing));
            }
            let datos = match &parsed {
                Ok(datos) => datos.clone(),
                Err(issues) => {
                    let message = describe(issues);
                    return fail(tx, &command, "DATOS_INVALIDOS", message, &context).await;
                }
            };
            if email_taken {
                let message = format!("a partner with e-mail {} already exists", datos.email);
                return fail(tx, &command, "EMAIL_EXISTENTE", message, &context).await;
            }
            let (partner, event) = Partner::register(
                kernel::new_id(),
                datos,
                Some(command.onboarding_id),
                kernel::now(),
            );
            if held.is_some() {
                // The batch knows this onboarding: the partner joins the batch's waiting writes.
                let (topic, created) = to_envelope(event, command.terminos.clone(), &context);
                outbox::append(tx, topic, &created);
                let prefetched = tx.scratch::<Prefetched>();
                prefetched
                    .onboardings
                    .insert(command.onboarding_id, Some(partner.id()));
                prefetched.emails.insert(partner.state().email.normalized());
                let id = partner.id();
                prefetched.pending.push(partner);
                return Ok(CommandOutcome::Created(id));
            }
            if !repo::insert_partner_unless_taken(tx, &partner).await? {
                // A concurrent twin committed the same e-mail or onboarding between the checks
                // and the insert. `tx` is intact: the checks, run again, now see the twin.
                continue;
            }
            let (topic, created) = to_envelope(event, command.terminos.clone(), &context);
            outbox::append(tx, topic, &created);
            return Ok(CommandOutcome::Created(partner.id()));
        }
        Err(AppError::Contention)
    }

    /// Handles the saga's compensation `DesactivarPartner` inside `tx` (the caller commits):
    /// the partner becomes `INACTIVO` (a deleted one stays deleted) and `PartnerDesactivado` is
    /// appended every time, even for an unknown partner, so the saga always hears back.
    /// Returns whether this delivery was the first.
    pub async fn deactivate_from_command_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        command: wire::DesactivarPartner,
    ) -> Result<bool, AppError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(false);
        }
        self.flush(tx).await?;
        let context = EnvelopeContext::caused_by(envelope);
        // The reason is only echoed back; an over-long one is dropped rather than refused.
        let motivo = Motivo::parse(command.motivo.as_deref()).unwrap_or(None);
        let event = match repo::load_for_update(tx, command.partner_id).await? {
            Some(mut partner) => {
                let event = partner.deactivate(motivo, kernel::now());
                repo::update_partner(tx, &partner).await?;
                event
            }
            None => {
                tracing::warn!(partner_id = %command.partner_id, "DesactivarPartner for an unknown partner");
                PartnerEvent::Desactivado {
                    partner_id: command.partner_id,
                    motivo: motivo.map(|m| m.as_str().to_owned()),
                }
            }
        };
        append_all(tx, vec![event], &context);
        Ok(true)
    }

    /// Before a batch of `CreatePartner` commands is applied in `tx`: reads, in one
    /// statement, which of their onboardings have a partner and which of their e-mails a live
    /// partner holds, so that creating each partner needs no statement of its own until the
    /// batch ends (on SQLite each one is a trip to the connection's thread with the
    /// database's writer held).
    pub async fn prepare_batch(
        &self,
        tx: &mut Tx,
        commands: &[wire::CreatePartner],
    ) -> Result<(), AppError> {
        if commands.is_empty() {
            return Ok(());
        }
        let onboarding_ids: Vec<Uuid> = commands.iter().map(|c| c.onboarding_id).collect();
        let emails: Vec<String> = commands
            .iter()
            .filter_map(|command| Email::parse(&command.email).ok())
            .map(|email| email.normalized())
            .collect();
        let (found, taken) =
            repo::onboardings_and_emails_taken(tx, &onboarding_ids, &emails).await?;
        let prefetched = tx.scratch::<Prefetched>();
        prefetched.onboardings = ::storage::looked_up(&onboarding_ids, found);
        prefetched.emails = taken.into_iter().collect();
        Ok(())
    }

    /// After a batch's commands were applied in `tx`, before it commits: writes the partners
    /// they left waiting (see [`Prefetched`]).
    pub async fn finish_batch(&self, tx: &mut Tx) -> Result<(), AppError> {
        self.flush(tx).await
    }

    /// Writes the partners waiting in `tx`, in one query on SQLite.
    async fn flush(&self, tx: &mut Tx) -> Result<(), AppError> {
        let pending = std::mem::take(&mut tx.scratch::<Prefetched>().pending);
        if pending.is_empty() {
            return Ok(());
        }
        let partners: Vec<&Partner> = pending.iter().collect();
        if repo::insert_partners_unless_taken(tx, &partners).await? {
            Ok(())
        } else {
            // A concurrent twin (another replica, PostgreSQL) took an e-mail or an onboarding
            // first: the batch's commands are retried one by one, and that one sees it.
            Err(AppError::Contention)
        }
    }
}

/// What a batch of `CreatePartner` commands read up front ([`Service::prepare_batch`]) and
/// what it created since: every onboarding the batch names with its partner (`None`: none
/// yet) and the normalized e-mails live partners hold among the batch's, both kept up to date
/// as the batch creates partners; and the created partners not yet written. A partner of an
/// onboarding held here waits in `pending` until the batch ends (or until anything else is
/// about to read or write the partner table), so a batch's partners travel in one query
/// (`repo::insert_partners_unless_taken`) instead of two statements each.
#[derive(Default)]
struct Prefetched {
    onboardings: HashMap<Uuid, Option<Uuid>>,
    emails: HashSet<String>,
    pending: Vec<Partner>,
}

impl Prefetched {
    /// The partner of `onboarding_id` if the batch holds the onboarding (`None`: not held).
    fn partner_of(tx: &mut Tx, onboarding_id: Uuid) -> Option<Option<Uuid>> {
        tx.scratch::<Prefetched>()
            .onboardings
            .get(&onboarding_id)
            .copied()
    }

    /// Whether a live partner holds `email`, as `repo::onboarding_partner_and_email` would say.
    fn taken(tx: &mut Tx, email: Option<&Email>) -> bool {
        email.is_some_and(|email| {
            tx.scratch::<Prefetched>()
                .emails
                .contains(&email.normalized())
        })
    }
}

/// Appends `PartnerCreationFailed` for `command` to `tx`.
async fn fail(
    tx: &mut Tx,
    command: &wire::CreatePartner,
    error_code: &'static str,
    error_message: String,
    context: &EnvelopeContext,
) -> Result<CommandOutcome, AppError> {
    let (topic, envelope) = wrap(
        wire::PartnerCreationFailed {
            onboarding_id: command.onboarding_id,
            error_code: error_code.to_owned(),
            error_message,
        },
        context,
    );
    outbox::append(tx, topic, &envelope);
    Ok(CommandOutcome::Failed(error_code))
}

fn describe(issues: &[FieldIssue]) -> String {
    issues
        .iter()
        .map(|issue| format!("{}: {}", issue.campo, issue.mensaje))
        .collect::<Vec<_>>()
        .join("; ")
}
