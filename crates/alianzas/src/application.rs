//! Use cases: load a contract (snapshot + tail), run a domain command, and write its events,
//! the snapshot, the read model and the outbox rows in one transaction. Commands from HTTP
//! and the sweep own that transaction and wake the relay after committing it; consumed events
//! are applied, with their inbox row, inside the consumer's transaction (`*_in`), which may
//! hold a whole batch. Nothing is published any other way.

use std::collections::HashMap;
use std::sync::Arc;

use ::storage::idempotency::{self, IdempotencyError, Remembered, StoredResponse};
use ::storage::{inbox, outbox, Db, Tx};
use chrono::{DateTime, NaiveDate, Utc};
use contracts::contratos as wire;
use kernel::{Envelope, EnvelopeContext, IntegrationEvent};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{
    plantillas_por_defecto, terminos_para, CambiosContrato, Contrato, ContratoEvent, DomainError,
    EstadoContrato, FieldIssue, Motivo, NuevoContrato, Plantilla, TipoPartner,
};
use crate::storage::{self as repo, ContratoFilter, RepoError, StoredEvent};

/// The `source` of every envelope this service writes, and its consumer group.
pub const SERVICE: &str = "alianzas";

/// How often a command that lost a race to another writer of its contract is retried.
const RACE_RETRIES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("contract not found")]
    ContratoNotFound,
    #[error("no template for partner kind {0}")]
    PlantillaNotFound(TipoPartner),
    #[error("the contract is not at version {expected}; reload it and retry")]
    VersionConflict { expected: i64 },
    #[error("version {0} is beyond the contract's stream")]
    VersionBeyondStream(i64),
    #[error(transparent)]
    Domain(DomainError),
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a concurrent write kept conflicting; retry")]
    Contention,
    #[error(transparent)]
    Repo(RepoError),
}

impl From<DomainError> for AppError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::NoExiste => AppError::ContratoNotFound,
            other => AppError::Domain(other),
        }
    }
}

impl From<RepoError> for AppError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::Conflict { expected } => AppError::VersionConflict { expected },
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

/// A lifecycle command an operator issues over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accion {
    Suspender,
    Reactivar,
    Terminar,
}

/// The point of a stream to replay to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Punto {
    Version(i64),
    At(DateTime<Utc>),
}

/// The state an incoming event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objetivo {
    /// `ContratoAprobado` or `RevisionAprobada`.
    Activo,
    /// `ContratoRechazado` or `RevisionContrato`.
    EnRevision,
    /// `RevisionRechazada`.
    Rechazado,
}

/// What a consumed event led to (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created(Uuid),
    /// The partner has its contract already; nothing is published again.
    AlreadyCreated(Uuid),
    /// `ContratoCreadoFailed` was published.
    Failed,
    Changed(EstadoContrato),
    /// The transition was applied before, or cannot apply any more: nothing changed.
    NoOp,
    /// The inbox had this event id: nothing was done.
    Duplicate,
}

/// Why a consumed event must be retried later.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The event arrived before the state it builds on (out of order across topics).
    #[error("not yet applicable: {0}")]
    NotYet(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<RepoError> for ConsumeError {
    fn from(error: RepoError) -> Self {
        ConsumeError::App(error.into())
    }
}

impl From<sqlx::Error> for ConsumeError {
    fn from(error: sqlx::Error) -> Self {
        ConsumeError::App(error.into())
    }
}

impl From<::storage::StorageError> for ConsumeError {
    fn from(error: ::storage::StorageError) -> Self {
        ConsumeError::App(error.into())
    }
}

fn wrap<E: IntegrationEvent>(event: E, context: &EnvelopeContext) -> (&'static str, Envelope) {
    (E::TOPIC, Envelope::wrap(SERVICE, &event, context.clone()))
}

/// The integration event published for a contract event, if any. A change of terms is not
/// published (no consumer needs it); every lifecycle change is.
fn integration_event(
    before: &Contrato,
    after: &Contrato,
    event: &ContratoEvent,
    context: &EnvelopeContext,
) -> Option<(&'static str, Envelope)> {
    let state = after.state()?;
    match event {
        ContratoEvent::Creado(datos) => Some(wrap(
            wire::ContratoCreado {
                contrato_id: after.id(),
                partner_id: datos.partner_id,
                onboarding_id: datos.onboarding_id,
                tipo: datos.tipo.as_str().to_owned(),
                monto: datos.monto.amount(),
                moneda: datos.moneda.as_str().to_owned(),
                condiciones: datos.condiciones.as_ref().map(|c| c.as_str().to_owned()),
                fecha_inicio: datos.fecha_inicio.to_string(),
                fecha_fin: datos.fecha_fin.map(|f| f.to_string()),
                estado: EstadoContrato::Pendiente.as_str().to_owned(),
            },
            context,
        )),
        ContratoEvent::Actualizado { .. } => None,
        lifecycle => Some(wrap(
            wire::ContratoEstadoCambiado {
                contrato_id: after.id(),
                partner_id: state.partner_id,
                evento: lifecycle.tipo().to_owned(),
                estado_anterior: before.estado()?.as_str().to_owned(),
                estado_nuevo: lifecycle.estado_nuevo()?.as_str().to_owned(),
                motivo: lifecycle.motivo().map(|m| m.as_str().to_owned()),
            },
            context,
        )),
    }
}

/// Appends to `tx`'s outbox the integration events of `events` applied to `contrato` at `at`:
/// one per event, each with the state just before it, so each lifecycle change names the
/// state it left.
fn announce(
    tx: &mut Tx,
    contrato: &Contrato,
    events: &[ContratoEvent],
    at: DateTime<Utc>,
    context: &EnvelopeContext,
) {
    let mut step = contrato.clone();
    for event in events {
        let mut next = step.clone();
        next.apply(event, at);
        if let Some((topic, envelope)) = integration_event(&step, &next, event, context) {
            outbox::append(tx, topic, &envelope);
        }
        step = next;
    }
}

/// The contracts service's use cases.
pub struct Service {
    db: Db,
    wake: Arc<Notify>,
    snapshot_every: u32,
}

impl Service {
    pub fn new(db: Db, wake: Arc<Notify>, snapshot_every: u32) -> Self {
        Self {
            db,
            wake,
            snapshot_every: snapshot_every.max(1),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Commits `tx` and wakes the relay so the new outbox rows leave at once.
    async fn commit(&self, tx: Tx) -> Result<(), AppError> {
        outbox::commit_and_wake(tx, &self.wake).await?;
        Ok(())
    }

    /// Appends `events` to `contrato` in `tx` with their outbox rows; returns the new state.
    async fn record(
        &self,
        tx: &mut Tx,
        contrato: &Contrato,
        events: &[ContratoEvent],
        context: &EnvelopeContext,
    ) -> Result<Contrato, RepoError> {
        let at = kernel::now();
        let after = repo::commit_events(tx, contrato, events, at, self.snapshot_every).await?;
        announce(tx, contrato, events, at, context);
        Ok(after)
    }

    /// Creates a contract by hand; `ContratoCreado` goes to compliance like any other. With an
    /// idempotency key, the response `render` builds is stored with the write, and a retry
    /// gets it back instead of a second contract.
    pub async fn crear(
        &self,
        datos: NuevoContrato,
        idempotent: Option<&IdempotentRequest>,
        render: &(dyn Fn(&Contrato) -> StoredResponse + Send + Sync),
    ) -> Result<Written<Contrato>, AppError> {
        if let Some(stored) = idempotency::replay(&self.db, idempotent).await? {
            return Ok(Written::Replayed(stored));
        }
        let contrato = Contrato::new(kernel::new_id());
        let events = contrato.crear(datos)?;
        let mut tx = self.db.begin().await?;
        let after = self
            .record(&mut tx, &contrato, &events, &EnvelopeContext::default())
            .await?;
        let tx = match idempotency::remember(&self.db, tx, idempotent, || render(&after)).await? {
            Remembered::Kept(tx) => tx,
            // A concurrent twin with the same key committed first: answer as it did.
            Remembered::Twin(stored) => return Ok(Written::Replayed(stored)),
        };
        self.commit(tx).await?;
        Ok(Written::Done(after))
    }

    /// The current state from the read model.
    pub async fn obtener(&self, id: Uuid) -> Result<Contrato, AppError> {
        repo::find(&self.db, id)
            .await?
            .ok_or(AppError::ContratoNotFound)
    }

    /// The state at a point of the stream, by replaying it from the start.
    pub async fn obtener_en(&self, id: Uuid, punto: Punto) -> Result<Contrato, AppError> {
        let stream = repo::read_stream(&self.db, id).await?;
        if stream.is_empty() {
            return Err(AppError::ContratoNotFound);
        }
        let upto: Vec<&StoredEvent> = match punto {
            Punto::Version(version) => {
                if version > stream.len() as i64 {
                    return Err(AppError::VersionBeyondStream(version));
                }
                stream.iter().filter(|e| e.version <= version).collect()
            }
            Punto::At(at) => stream.iter().filter(|e| e.ocurrido_en <= at).collect(),
        };
        let contrato = Contrato::replay(id, upto.iter().map(|e| (&e.event, e.ocurrido_en)));
        if contrato.state().is_none() {
            // It did not exist yet at that instant.
            return Err(AppError::ContratoNotFound);
        }
        Ok(contrato)
    }

    pub async fn listar(
        &self,
        filter: &ContratoFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<(Vec<Contrato>, i64), AppError> {
        Ok(repo::list(&self.db, filter, limit, after).await?)
    }

    /// The stream, oldest first; an unknown contract is not found.
    pub async fn eventos(&self, id: Uuid) -> Result<Vec<StoredEvent>, AppError> {
        let stream = repo::read_stream(&self.db, id).await?;
        if stream.is_empty() {
            return Err(AppError::ContratoNotFound);
        }
        Ok(stream)
    }

    /// Runs `decide` on contract `id` (locked, loaded from its snapshot and tail) and records
    /// what it produced. With `expected`, a contract at another version is a conflict.
    async fn execute(
        &self,
        id: Uuid,
        expected: Option<i64>,
        decide: impl Fn(&Contrato) -> Result<Vec<ContratoEvent>, DomainError>,
    ) -> Result<Contrato, AppError> {
        for _ in 0..RACE_RETRIES {
            let mut tx = self.db.begin().await?;
            repo::lock(&mut tx, id).await?;
            let contrato = repo::load(&mut tx, id).await?;
            if contrato.state().is_none() {
                return Err(AppError::ContratoNotFound);
            }
            if let Some(expected) = expected {
                if expected != contrato.version() {
                    return Err(AppError::VersionConflict { expected });
                }
            }
            let events = decide(&contrato)?;
            if events.is_empty() {
                return Ok(contrato);
            }
            match self
                .record(&mut tx, &contrato, &events, &EnvelopeContext::default())
                .await
            {
                Ok(after) => {
                    self.commit(tx).await?;
                    return Ok(after);
                }
                // A writer slipped in between load and append: with an expected version the
                // client must decide again; without one, decide again on the new state.
                Err(RepoError::Conflict { .. }) if expected.is_none() => continue,
                Err(RepoError::Conflict { expected }) => {
                    return Err(AppError::VersionConflict { expected })
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Contention)
    }

    /// Changes terms; `expected_version` must be the contract's current version.
    pub async fn actualizar(
        &self,
        id: Uuid,
        expected_version: i64,
        cambios: CambiosContrato,
    ) -> Result<Contrato, AppError> {
        self.execute(id, Some(expected_version), |c| {
            c.actualizar(cambios.clone())
        })
        .await
    }

    pub async fn transicion(
        &self,
        id: Uuid,
        accion: Accion,
        motivo: Option<Motivo>,
    ) -> Result<Contrato, AppError> {
        self.execute(id, None, |c| match accion {
            Accion::Suspender => c.suspender(motivo.clone()),
            Accion::Reactivar => c.reactivar(motivo.clone()),
            Accion::Terminar => c.terminar(motivo.clone()),
        })
        .await
    }

    /// Expires one contract whose `fecha_fin` is before `hoy` (the sweep's unit of work).
    pub async fn vencer(&self, id: Uuid, hoy: NaiveDate) -> Result<Contrato, AppError> {
        self.execute(id, None, |c| c.vencer(hoy)).await
    }

    /// Expires every live contract whose `fecha_fin` passed; returns how many.
    pub async fn vencer_expirados(&self, hoy: NaiveDate) -> Result<usize, AppError> {
        let mut count = 0;
        for id in repo::expired(&self.db, hoy, 500).await? {
            match self.vencer(id, hoy).await {
                Ok(_) => count += 1,
                // Changed meanwhile (e.g. terminated): nothing to expire.
                Err(AppError::Domain(DomainError::TransicionInvalida { .. })) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(count)
    }

    pub async fn plantillas(&self) -> Result<Vec<Plantilla>, AppError> {
        Ok(repo::list_plantillas(&self.db).await?)
    }

    pub async fn plantilla(&self, tipo: TipoPartner) -> Result<Plantilla, AppError> {
        repo::find_plantilla(&self.db, tipo)
            .await?
            .ok_or(AppError::PlantillaNotFound(tipo))
    }

    /// Creates or replaces a template; returns whether it was new.
    pub async fn guardar_plantilla(&self, plantilla: &Plantilla) -> Result<bool, AppError> {
        let mut tx = self.db.begin().await?;
        let created = repo::write_plantilla(&mut tx, plantilla, true).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Handles `PartnerCreado` inside `tx` (the consumer's transaction, committed by the
    /// caller): exactly one contract per partner, on the proposed terms merged over the partner
    /// kind's template, announced with `ContratoCreado`; unusable terms are answered with
    /// `ContratoCreadoFailed`. The inbox row, the stream, the read model, the partner link and
    /// the outbox row are written in `tx`; a duplicate writes nothing.
    pub async fn crear_para_partner_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        partner: &contracts::partners::PartnerCreado,
    ) -> Result<Outcome, ConsumeError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(Outcome::Duplicate);
        }
        let tipo_partner = TipoPartner::parse(&partner.tipo).unwrap_or_else(|_| {
            tracing::warn!(tipo = %partner.tipo, "unknown partner kind; using the AFILIADO template");
            TipoPartner::Afiliado
        });
        let held = Prefetched::contrato_of(tx, partner.partner_id);
        let (existing, plantilla) = match held {
            Some(existing) => (existing, Prefetched::plantilla(tx, tipo_partner)),
            None => {
                self.flush(tx).await?;
                // Read through `tx`: a second pool connection while the transaction holds one
                // could wait for ever on an exhausted pool.
                repo::contrato_y_plantilla_in(tx, partner.partner_id, tipo_partner).await?
            }
        };
        if let Some(existing) = existing {
            return Ok(Outcome::AlreadyCreated(existing));
        }
        let context = EnvelopeContext::caused_by(envelope);
        let plantilla = match plantilla {
            Some(plantilla) => plantilla,
            None => plantillas_por_defecto()
                .into_iter()
                .find(|p| p.tipo_partner == tipo_partner)
                .ok_or(AppError::PlantillaNotFound(tipo_partner))?,
        };
        let hoy = kernel::now().date_naive();
        let terminos = match terminos_para(&plantilla, partner.terminos.as_ref(), hoy) {
            Ok(terminos) => terminos,
            Err(issues) => {
                self.fail(tx, partner, describe(&issues), &context).await?;
                return Ok(Outcome::Failed);
            }
        };
        let contrato = Contrato::new(kernel::new_id());
        let events = match contrato.crear(NuevoContrato {
            partner_id: partner.partner_id,
            onboarding_id: partner.onboarding_id,
            tipo: terminos.tipo,
            monto: terminos.monto,
            moneda: terminos.moneda,
            condiciones: terminos.condiciones,
            fecha_inicio: terminos.fecha_inicio,
            fecha_fin: terminos.fecha_fin,
        }) {
            Ok(events) => events,
            Err(error) => {
                self.fail(tx, partner, error.to_string(), &context).await?;
                return Ok(Outcome::Failed);
            }
        };
        if held.is_some() {
            // The batch knows this partner: the contract joins the batch's waiting writes.
            let at = kernel::now();
            announce(tx, &contrato, &events, at, &context);
            let prefetched = tx.scratch::<Prefetched>();
            prefetched
                .contratos
                .insert(partner.partner_id, Some(contrato.id()));
            prefetched.pending.push(Pending {
                partner_id: partner.partner_id,
                contrato: contrato.clone(),
                events,
                at,
            });
            return Ok(Outcome::Created(contrato.id()));
        }
        match repo::link_partner(tx, partner.partner_id, contrato.id()).await {
            Ok(()) => {}
            // A concurrent twin linked first and committed (the link waited for it); `tx` is
            // still usable, and this statement sees the winner's row.
            Err(RepoError::PartnerTaken) => {
                return match repo::contrato_of_partner(tx, partner.partner_id).await? {
                    Some(existing) => Ok(Outcome::AlreadyCreated(existing)),
                    None => Err(AppError::Contention.into()),
                };
            }
            Err(error) => return Err(error.into()),
        }
        self.record(tx, &contrato, &events, &context).await?;
        Ok(Outcome::Created(contrato.id()))
    }

    /// Before a batch of events is applied in `tx`: reads, in two statements, the contracts
    /// the `PartnerCreado` events' partners (`partner_ids`) have and every template, so that
    /// creating each contract needs no statement of its own until the batch ends (on SQLite
    /// each one is a trip to the connection's thread with the database's writer held).
    pub async fn prepare_batch(&self, tx: &mut Tx, partner_ids: &[Uuid]) -> Result<(), AppError> {
        if partner_ids.is_empty() {
            return Ok(());
        }
        let found = repo::contratos_of_partners(tx, partner_ids).await?;
        let plantillas = repo::plantillas_in(tx).await?;
        let prefetched = tx.scratch::<Prefetched>();
        prefetched.contratos = ::storage::looked_up(partner_ids, found);
        prefetched.plantillas = plantillas;
        Ok(())
    }

    /// After a batch's events were applied in `tx`, before it commits: writes the contracts
    /// they left waiting (see [`Prefetched`]).
    pub async fn finish_batch(&self, tx: &mut Tx) -> Result<(), AppError> {
        self.flush(tx).await
    }

    /// Writes the contracts waiting in `tx`, in one query on SQLite.
    async fn flush(&self, tx: &mut Tx) -> Result<(), AppError> {
        let pending = std::mem::take(&mut tx.scratch::<Prefetched>().pending);
        if pending.is_empty() {
            return Ok(());
        }
        let writes: Vec<repo::Write<'_>> = pending
            .iter()
            .map(|pending| repo::Write {
                contrato: &pending.contrato,
                events: &pending.events,
                at: pending.at,
                partner: Some(pending.partner_id),
            })
            .collect();
        match repo::commit_many(tx, &writes, self.snapshot_every).await {
            Ok(_) => Ok(()),
            // A concurrent twin linked one of the partners first (PostgreSQL, another
            // replica): the batch's messages are retried one by one, and that one finds it.
            Err(RepoError::Conflict { .. } | RepoError::PartnerTaken) => Err(AppError::Contention),
            Err(error) => Err(error.into()),
        }
    }

    async fn fail(
        &self,
        tx: &mut Tx,
        partner: &contracts::partners::PartnerCreado,
        error_message: String,
        context: &EnvelopeContext,
    ) -> Result<(), AppError> {
        tracing::info!(partner_id = %partner.partner_id, %error_message, "contract not created");
        let (topic, envelope) = wrap(
            wire::ContratoCreadoFailed {
                partner_id: partner.partner_id,
                onboarding_id: partner.onboarding_id,
                error_code: "DATOS_INVALIDOS".to_owned(),
                error_message,
            },
            context,
        );
        outbox::append(tx, topic, &envelope);
        Ok(())
    }

    /// Handles a compliance outcome or a review decision for contract `id` inside `tx` (the
    /// consumer's transaction, committed by the caller). An unknown contract, or one not yet
    /// in the state the event builds on, is retried later (events from different topics may
    /// overtake each other); a transition already made, or one overtaken by a later decision,
    /// changes nothing. The contract is loaded through `tx`, so an earlier message of the same
    /// transaction that moved it is seen.
    pub async fn llevar_a_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        id: Uuid,
        objetivo: Objetivo,
        motivo: Option<Motivo>,
    ) -> Result<Outcome, ConsumeError> {
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(Outcome::Duplicate);
        }
        self.flush(tx).await?;
        repo::lock(tx, id).await?;
        let contrato = repo::load(tx, id).await?;
        let Some(estado) = contrato.estado() else {
            return Err(ConsumeError::NotYet(format!(
                "contract {id} is not known yet"
            )));
        };
        use EstadoContrato::*;
        let decision = match (objetivo, estado) {
            (Objetivo::Activo, Activo)
            | (Objetivo::EnRevision, EnRevision)
            | (Objetivo::Rechazado, Rechazado) => None,
            (Objetivo::Activo, Pendiente | EnRevision) => Some(contrato.aprobar()),
            (Objetivo::EnRevision, Pendiente) => Some(contrato.poner_en_revision(motivo)),
            (Objetivo::Rechazado, EnRevision) => Some(contrato.rechazar(motivo)),
            (Objetivo::Rechazado, Pendiente) => {
                return Err(ConsumeError::NotYet(format!(
                    "contract {id} is not in review yet"
                )))
            }
            (objetivo, estado) => {
                tracing::warn!(%id, ?objetivo, %estado, "transition overtaken; ignored");
                None
            }
        };
        let events = match decision {
            None => return Ok(Outcome::NoOp),
            Some(result) => result.map_err(AppError::from)?,
        };
        let context = EnvelopeContext::caused_by(envelope);
        match self.record(tx, &contrato, &events, &context).await {
            Ok(after) => Ok(Outcome::Changed(after.estado().unwrap_or(estado))),
            // The row lock (PostgreSQL) and the single writer (SQLite) leave no room for another
            // writer; should one slip in anyway, `tx` may be aborted: the message is retried in
            // a fresh transaction.
            Err(RepoError::Conflict { .. }) => Err(AppError::Contention.into()),
            Err(error) => Err(error.into()),
        }
    }
}

fn describe(issues: &[FieldIssue]) -> String {
    issues
        .iter()
        .map(|issue| format!("{}: {}", issue.campo, issue.mensaje))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a batch of `PartnerCreado` events read up front ([`Service::prepare_batch`]) and what
/// it created since: every partner the batch names with its contract (`None`: none yet), kept
/// up to date as the batch creates them; every template; and the created contracts not yet
/// written. A contract of a partner held here waits in `pending` until the batch ends (or
/// until anything else is about to read or write the contract tables), so a batch's
/// contracts travel in one query (`repo::commit_many`) instead of three statements each.
#[derive(Default)]
struct Prefetched {
    contratos: HashMap<Uuid, Option<Uuid>>,
    plantillas: Vec<Plantilla>,
    pending: Vec<Pending>,
}

/// A partner's contract created by a batch, not yet written.
struct Pending {
    partner_id: Uuid,
    contrato: Contrato,
    events: Vec<ContratoEvent>,
    at: DateTime<Utc>,
}

impl Prefetched {
    /// The contract of `partner_id` if the batch holds the partner (`None`: not held).
    fn contrato_of(tx: &mut Tx, partner_id: Uuid) -> Option<Option<Uuid>> {
        tx.scratch::<Prefetched>()
            .contratos
            .get(&partner_id)
            .copied()
    }

    /// The stored template of `tipo`, as `repo::contrato_y_plantilla_in` would read it.
    fn plantilla(tx: &mut Tx, tipo: TipoPartner) -> Option<Plantilla> {
        tx.scratch::<Prefetched>()
            .plantillas
            .iter()
            .find(|plantilla| plantilla.tipo_partner == tipo)
            .cloned()
    }
}
