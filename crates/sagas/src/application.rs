//! The saga log's use cases: start a saga, apply an incoming event, fire a deadline, resolve a
//! review. Each runs in one transaction that holds the saga's lock and writes its new state,
//! its log rows, its outbox rows (and, for consumed events, the inbox row); the relay is woken
//! after the commit. Nothing is published any other way. The consumed events' use cases
//! (`*_in`) write into a transaction their caller owns, so a batch of events shares one commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ::storage::{inbox, is_unique_violation, outbox, Db, Tx};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use contracts::partners::{CreatePartner, DesactivarPartner};
use contracts::sagas as wire;
use kernel::{Envelope, EnvelopeContext, IntegrationEvent, Payload};
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{
    DecisionRevision, Efecto, EstadoProcesamiento, Hecho, Paso, Revision, Saga, TransicionInvalida,
};
use crate::storage::{
    self as repo, LogEntry, NewLogEntry, RepoError, SagaFilter, StoredSaga, Traza,
};

/// The `source` of every envelope this service writes, and its consumer group.
pub const SERVICE: &str = "sagas";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("saga not found")]
    SagaNotFound,
    #[error(transparent)]
    Transicion(#[from] TransicionInvalida),
    /// The event's saga, or the event that caused it, has not reached this service yet (each
    /// topic is consumed on its own, so order across topics is not guaranteed): retry later.
    #[error("not yet known: {0}")]
    NotYetKnown(String),
    #[error("a concurrent write kept conflicting; retry")]
    Contention,
    #[error(transparent)]
    Repo(RepoError),
}

impl From<RepoError> for AppError {
    fn from(error: RepoError) -> Self {
        AppError::Repo(error)
    }
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

/// What an incoming message led to (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new saga was started.
    Started(Uuid),
    /// The saga accepted the event.
    Applied(Uuid),
    /// The rules forbid the event after the saga's last step: logged `ERROR`, saga unchanged.
    Refused(Uuid),
    /// Not about any saga (e.g. a partner created through the API): acknowledged.
    Ignored,
    /// The inbox had this event id: nothing was done.
    Duplicate,
}

/// The ids an incoming event carries that may name its saga when its envelope has no
/// `sagaid`. Each consumer fills only the keys that identify the saga's own partner or
/// contract (a hand-made contract of an onboarded partner is not the saga's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claves {
    pub onboarding_id: Option<Uuid>,
    pub partner_id: Option<Uuid>,
    pub contrato_id: Option<Uuid>,
}

/// The saga log's use cases.
pub struct Service {
    db: Db,
    wake: Arc<Notify>,
    plazo: TimeDelta,
}

/// Log rows and outbox envelopes one change produces, in order.
#[derive(Default)]
struct Plan {
    log: Vec<NewLogEntry>,
    outbox: Vec<(&'static str, Envelope)>,
}

fn wrap<E: IntegrationEvent>(event: &E, context: &EnvelopeContext) -> (&'static str, Envelope) {
    (E::TOPIC, Envelope::wrap(SERVICE, event, context.clone()))
}

fn processed(event_id: Uuid, tipo: &str, data: Payload, now: DateTime<Utc>) -> NewLogEntry {
    NewLogEntry {
        event_id,
        tipo_evento: tipo.to_owned(),
        evento_data: data,
        estado_procesamiento: EstadoProcesamiento::Procesado,
        error: None,
        recibido_en: now,
        procesado_en: Some(now),
    }
}

/// The context of messages the saga starts itself (not caused by an incoming envelope).
fn own_context(saga: &Saga, traza: &Traza) -> EnvelopeContext {
    EnvelopeContext {
        sagaid: Some(saga.saga_id),
        correlationid: traza.correlation_id,
        causationid: Some(traza.ultimo_evento_id),
        traceparent: traza.traceparent.clone(),
    }
}

/// Turns the domain's effects into log rows and outbox envelopes. A published step is caused
/// by what came before it, and what follows it is caused by it, so the causation chain reads
/// like the saga's log. The trace's last event id follows the saga's last step.
fn plan(
    stored: &mut StoredSaga,
    incoming: Option<NewLogEntry>,
    efectos: Vec<Efecto>,
    mut context: EnvelopeContext,
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let saga = stored.saga.clone();
    let ultimo = saga.ultimo_paso.as_str();
    if let Some(entry) = incoming {
        if entry.tipo_evento == ultimo {
            stored.traza.ultimo_evento_id = entry.event_id;
        }
        plan.log.push(entry);
    }
    for efecto in efectos {
        let published = match efecto {
            Efecto::RevisionContrato {
                contrato_id,
                partner_id,
                causa_rechazo,
                validacion_fallida,
            } => wrap(
                &wire::RevisionContrato {
                    saga_id: saga.saga_id,
                    contrato_id,
                    partner_id,
                    causa_rechazo,
                    validacion_fallida,
                },
                &context,
            ),
            Efecto::RevisionAprobada {
                contrato_id,
                partner_id,
                comentarios,
            } => wrap(
                &wire::RevisionAprobada {
                    saga_id: saga.saga_id,
                    contrato_id,
                    partner_id,
                    comentarios,
                },
                &context,
            ),
            Efecto::RevisionRechazada {
                contrato_id,
                partner_id,
                comentarios,
            } => wrap(
                &wire::RevisionRechazada {
                    saga_id: saga.saga_id,
                    contrato_id,
                    partner_id,
                    comentarios,
                },
                &context,
            ),
            Efecto::DesactivarPartner { partner_id, motivo } => wrap(
                &DesactivarPartner {
                    partner_id,
                    motivo: Some(motivo),
                },
                &context,
            ),
            Efecto::SagaTimeout { paso, deadline } => {
                // Logged, never published: the deadline is the saga's own business.
                let id = kernel::new_id();
                let data = json!({
                    "saga_id": saga.saga_id,
                    "paso": paso.as_str(),
                    "paso_deadline": deadline.to_rfc3339_opts(SecondsFormat::Micros, true),
                });
                plan.log
                    .push(processed(id, Paso::SagaTimeout.as_str(), data.into(), now));
                stored.traza.ultimo_evento_id = id;
                context.causationid = Some(id);
                continue;
            }
            Efecto::EstadoCambiado { estado, causa } => {
                // A notification for others, not a step of the saga: published, not logged.
                let (topic, envelope) = wrap(
                    &wire::OnboardingEstadoCambiado {
                        saga_id: saga.saga_id,
                        onboarding_id: saga.onboarding_id,
                        partner_id: saga.partner_id,
                        email: Some(saga.email.clone()),
                        nombre: Some(saga.nombre.clone()),
                        estado: estado.as_str().to_owned(),
                        causa,
                    },
                    &context,
                );
                plan.outbox.push((topic, envelope));
                continue;
            }
        };
        let (topic, envelope) = published;
        plan.log.push(processed(
            envelope.id,
            &envelope.event_type,
            envelope.data.clone(),
            now,
        ));
        if envelope.event_type == ultimo {
            stored.traza.ultimo_evento_id = envelope.id;
            context = EnvelopeContext::caused_by(&envelope);
        }
        plan.outbox.push((topic, envelope));
    }
    plan
}

impl Service {
    /// `step_timeout` is how long a waiting step may last before the saga times out.
    pub fn new(db: Db, wake: Arc<Notify>, step_timeout: std::time::Duration) -> Self {
        Self {
            db,
            wake,
            plazo: crate::domain::plazo(step_timeout),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Commits `tx` and wakes the relay so the new outbox rows leave at once.
    pub(crate) async fn commit(&self, mut tx: Tx) -> Result<(), AppError> {
        Prefetched::flush(&mut tx).await?;
        outbox::commit_and_wake(tx, &self.wake).await?;
        Ok(())
    }

    /// Writes a changed saga (guarded by the version it was loaded at), its log rows and its
    /// outbox rows into `tx`: at once, or, for a saga the batch holds, with the batch's other
    /// steps (see [`Prefetched`]).
    async fn save(
        tx: &mut Tx,
        stored: &StoredSaga,
        expected_version: Option<i64>,
        plan: Plan,
    ) -> Result<(), AppError> {
        let saga_id = stored.saga.saga_id;
        let prefetched = tx.scratch::<Prefetched>();
        let held = match expected_version {
            Some(_) => prefetched.sagas.contains_key(&saga_id),
            // A start the batch looked up (and found no saga for).
            None => prefetched.starts.contains_key(&saga_id),
        };
        if held {
            let onboarding_id = stored.saga.onboarding_id;
            prefetched.starts.insert(saga_id, Some(saga_id));
            prefetched.starts.insert(onboarding_id, Some(saga_id));
            prefetched
                .logged
                .extend(plan.log.iter().map(|entry| (saga_id, entry.event_id)));
            prefetched.sagas.insert(saga_id, stored.clone());
        } else {
            prefetched.sagas.remove(&saga_id);
        }
        prefetched.pending.push(Pending {
            stored: stored.clone(),
            expected_version,
            entries: plan.log,
        });
        outbox::append_all(tx, plan.outbox);
        if !held {
            // Not a saga the batch holds: written now, with any steps waiting before it.
            Prefetched::flush(tx).await?;
        }
        Ok(())
    }

    /// Handles `CreatePartner`: starts the saga (`INICIADA`, with its first deadline) and logs
    /// the command. A command for a saga or onboarding that exists already is logged `ERROR`
    /// in that saga (a saga starts once). Writes into `tx`, which the caller commits; on an
    /// error the caller must roll it back.
    pub async fn start_saga_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        command: CreatePartner,
    ) -> Result<Outcome, AppError> {
        let now = kernel::now();
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(Outcome::Duplicate);
        }
        let saga_id = envelope.sagaid.or(command.saga_id);
        let existing = match Prefetched::start_of(tx, saga_id, command.onboarding_id) {
            Some(known) => known,
            None => {
                Prefetched::flush(tx).await?;
                repo::saga_by_id_or_onboarding(tx, saga_id, command.onboarding_id).await?
            }
        };
        if let Some(existing) = existing {
            return self
                .apply(tx, envelope, existing, Hecho::CreatePartner, now)
                .await;
        }
        let saga = Saga::start(
            saga_id.unwrap_or_else(kernel::new_id),
            command.onboarding_id,
            command.nombre,
            command.email,
            now,
            self.plazo,
        );
        let stored = StoredSaga {
            traza: Traza {
                ultimo_evento_id: envelope.id,
                correlation_id: envelope.correlationid.or(Some(envelope.id)),
                traceparent: envelope.traceparent.clone(),
            },
            saga,
        };
        let plan = Plan {
            log: vec![processed(
                envelope.id,
                Paso::CreatePartner.as_str(),
                envelope.data.clone(),
                now,
            )],
            outbox: Vec::new(),
        };
        Self::save(tx, &stored, None, plan).await?;
        Ok(Outcome::Started(stored.saga.saga_id))
    }

    /// Before a batch of events is applied in `tx`: looks up the sagas its `CreatePartner`
    /// commands name (by saga id or onboarding), and locks and reads the sagas its other
    /// events name with which of their causes are logged — three statements at most — so that
    /// applying each event needs no statement to find its saga (on SQLite each one is a trip
    /// to the connection's thread with the database's writer held).
    pub async fn prepare_batch(
        &self,
        tx: &mut Tx,
        envelopes: &[&Envelope],
    ) -> Result<(), AppError> {
        let commands: Vec<(Option<Uuid>, Uuid)> = envelopes
            .iter()
            .filter(|envelope| envelope.event_type == CreatePartner::TYPE)
            .filter_map(|envelope| {
                let command: CreatePartner = envelope.decode().ok()?;
                Some((envelope.sagaid.or(command.saga_id), command.onboarding_id))
            })
            .collect();
        if !commands.is_empty() {
            let saga_ids: Vec<Uuid> = commands.iter().filter_map(|(id, _)| *id).collect();
            let onboarding_ids: Vec<Uuid> = commands.iter().map(|(_, id)| *id).collect();
            let found = repo::sagas_by_ids_or_onboardings(tx, &saga_ids, &onboarding_ids).await?;
            let starts = &mut tx.scratch::<Prefetched>().starts;
            starts.extend(saga_ids.iter().chain(&onboarding_ids).map(|id| (*id, None)));
            for (saga_id, onboarding_id) in found {
                starts.insert(saga_id, Some(saga_id));
                starts.insert(onboarding_id, Some(saga_id));
            }
        }
        let named: Vec<(Uuid, Option<Uuid>)> = envelopes
            .iter()
            .filter(|envelope| envelope.event_type != CreatePartner::TYPE)
            .filter_map(|envelope| Some((envelope.sagaid?, envelope.causationid)))
            .collect();
        if named.is_empty() {
            return Ok(());
        }
        let mut saga_ids: Vec<Uuid> = named.iter().map(|(saga_id, _)| *saga_id).collect();
        saga_ids.sort_unstable();
        saga_ids.dedup();
        let sagas = repo::load_many_for_update(tx, &saga_ids).await?;
        let causes: Vec<(Uuid, Uuid)> = named
            .iter()
            .filter_map(|(saga_id, cause)| Some((*saga_id, (*cause)?)))
            .collect();
        let logged = if causes.is_empty() {
            HashSet::new()
        } else {
            repo::logged_among(tx, &causes).await?
        };
        let prefetched = tx.scratch::<Prefetched>();
        prefetched.sagas = sagas
            .into_iter()
            .map(|stored| (stored.saga.saga_id, stored))
            .collect();
        prefetched.logged = logged;
        Ok(())
    }

    /// After a batch's events were applied in `tx`, before it commits: writes the steps they
    /// left waiting (see [`Prefetched`]).
    pub async fn finish_batch(&self, tx: &mut Tx) -> Result<(), AppError> {
        Prefetched::flush(tx).await
    }

    /// Handles an event of the onboarding: finds its saga, checks that its cause has been
    /// seen, and applies it — or logs it `ERROR` when the rules forbid it. An event about no
    /// saga is acknowledged; one whose saga or cause has not arrived yet is
    /// [`AppError::NotYetKnown`] (a retry will find them). Writes into `tx`, which the caller
    /// commits; on an error the caller must roll it back, so an early event leaves nothing,
    /// not even its inbox row.
    pub async fn handle_event_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        hecho: Hecho,
        claves: Claves,
    ) -> Result<Outcome, AppError> {
        let now = kernel::now();
        if !inbox::first_delivery(tx, SERVICE, envelope.id).await? {
            return Ok(Outcome::Duplicate);
        }
        if let Some(saga_id) = envelope.sagaid {
            // Usually names the saga itself: found, locked and read in one statement.
            if let Some(locked) = lock(tx, envelope, saga_id, hecho.paso()).await? {
                return self.apply_locked(tx, envelope, locked, hecho, now).await;
            }
            if let Some(onboarding_id) = claves.onboarding_id {
                if let Some(found) = repo::saga_of_onboarding(tx, onboarding_id).await? {
                    return self.apply(tx, envelope, found, hecho, now).await;
                }
            }
            return Err(AppError::NotYetKnown(format!("saga {saga_id}")));
        }
        let Some(saga_id) = correlate(tx, claves).await? else {
            // The inbox row stays, so a redelivery is a cheap no-op.
            return Ok(Outcome::Ignored);
        };
        self.apply(tx, envelope, saga_id, hecho, now).await
    }

    async fn apply(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        saga_id: Uuid,
        hecho: Hecho,
        now: DateTime<Utc>,
    ) -> Result<Outcome, AppError> {
        let Some(locked) = lock(tx, envelope, saga_id, hecho.paso()).await? else {
            return Err(AppError::NotYetKnown(format!("saga {saga_id}")));
        };
        self.apply_locked(tx, envelope, locked, hecho, now).await
    }

    async fn apply_locked(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
        (mut stored, cause_logged): (StoredSaga, Option<bool>),
        hecho: Hecho,
        now: DateTime<Utc>,
    ) -> Result<Outcome, AppError> {
        let saga_id = stored.saga.saga_id;
        if let (Some(cause), Some(false)) = (envelope.causationid, cause_logged) {
            return Err(AppError::NotYetKnown(format!(
                "cause {cause} of {} {} in saga {saga_id}",
                envelope.event_type, envelope.id
            )));
        }
        let expected_version = stored.saga.version;
        match stored.saga.handle(hecho, now, self.plazo) {
            Ok(efectos) => {
                let mut context = EnvelopeContext::caused_by(envelope);
                context.sagaid = Some(saga_id);
                let incoming = processed(
                    envelope.id,
                    &envelope.event_type,
                    envelope.data.clone(),
                    now,
                );
                let plan = plan(&mut stored, Some(incoming), efectos, context, now);
                Self::save(tx, &stored, Some(expected_version), plan).await?;
                Ok(Outcome::Applied(saga_id))
            }
            Err(rechazo) => {
                tracing::warn!(%saga_id, id = %envelope.id, event_type = %envelope.event_type, %rechazo, "event refused by the saga rules");
                let entry = NewLogEntry {
                    event_id: envelope.id,
                    tipo_evento: envelope.event_type.clone(),
                    evento_data: envelope.data.clone(),
                    estado_procesamiento: EstadoProcesamiento::Error,
                    error: Some(rechazo.motivo),
                    recibido_en: now,
                    procesado_en: None,
                };
                // `handle` left the saga as it was; only the log grows.
                Prefetched::flush(tx).await?;
                Prefetched::forget(tx, saga_id);
                repo::append_log(tx, &stored.saga, &[entry]).await?;
                Ok(Outcome::Refused(saga_id))
            }
        }
    }

    /// Fires the deadline of one saga if it is still due at `now`: `SagaTimeout` logged,
    /// `FALLIDA`/`TIMEOUT`, compensation and notification queued, in one transaction under
    /// the saga's lock and version guard, so two replicas never fire it twice.
    pub async fn time_out(&self, saga_id: Uuid, now: DateTime<Utc>) -> Result<bool, AppError> {
        let mut tx = self.db.begin().await?;
        let Some(mut stored) = repo::load_for_update(&mut tx, saga_id).await? else {
            return Ok(false);
        };
        let expected_version = stored.saga.version;
        let context = own_context(&stored.saga, &stored.traza);
        let Some(efectos) = stored.saga.time_out(now) else {
            // It advanced, or another replica fired it first.
            return Ok(false);
        };
        let plan = plan(&mut stored, None, efectos, context, now);
        Self::save(&mut tx, &stored, Some(expected_version), plan).await?;
        self.commit(tx).await?;
        tracing::info!(%saga_id, "saga timed out");
        Ok(true)
    }

    /// Fires every deadline that passed before now; returns how many sagas timed out here.
    /// Fails only when the due sagas cannot be listed.
    pub async fn time_out_due(&self) -> Result<usize, AppError> {
        const BATCH: i64 = 100;
        let mut fired = 0;
        loop {
            let now = kernel::now();
            let due = repo::due(&self.db, now, BATCH).await?;
            for saga_id in &due {
                match self.time_out(*saga_id, now).await {
                    Ok(true) => fired += 1,
                    Ok(false) => {}
                    // Lost a race with another replica's change: it is not due any more, or
                    // the next pass fires it.
                    Err(AppError::Contention) => {}
                    // One unreadable saga must not hold back the others; the next pass retries.
                    Err(error) => tracing::warn!(%saga_id, %error, "cannot time out saga"),
                }
            }
            if (due.len() as i64) < BATCH {
                return Ok(fired);
            }
        }
    }

    /// The operator's decision on a saga `PENDIENTE_REVISION`: publishes `RevisionAprobada`
    /// (→ `COMPLETADA`) or `RevisionRechazada` with the compensation (→ `FALLIDA`), logging
    /// both. The same decision again on a saga resolved that way returns it unchanged.
    pub async fn resolve_review(
        &self,
        saga_id: Uuid,
        decision: DecisionRevision,
        comentarios: Option<String>,
    ) -> Result<StoredSaga, AppError> {
        let now = kernel::now();
        let mut tx = self.db.begin().await?;
        let mut stored = repo::load_for_update(&mut tx, saga_id)
            .await?
            .ok_or(AppError::SagaNotFound)?;
        let expected_version = stored.saga.version;
        let context = own_context(&stored.saga, &stored.traza);
        match stored.saga.resolve_review(decision, comentarios, now)? {
            Revision::YaResuelta => Ok(stored),
            Revision::Resuelta(efectos) => {
                let plan = plan(&mut stored, None, efectos, context, now);
                Self::save(&mut tx, &stored, Some(expected_version), plan).await?;
                self.commit(tx).await?;
                Ok(stored)
            }
        }
    }

    /// A saga with its log, oldest row first.
    pub async fn get(&self, saga_id: Uuid) -> Result<(StoredSaga, Vec<LogEntry>), AppError> {
        let stored = repo::find(&self.db, saga_id)
            .await?
            .ok_or(AppError::SagaNotFound)?;
        let log = repo::log(&self.db, saga_id).await?;
        Ok((stored, log))
    }

    /// A page of sagas (without their logs) and the total matching `filter`.
    pub async fn list(
        &self,
        filter: &SagaFilter,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<(Vec<StoredSaga>, i64), AppError> {
        Ok(repo::list(&self.db, filter, limit, after).await?)
    }
}

/// What a batch of events read up front ([`Service::prepare_batch`]) and what it wrote since:
/// the sagas its events name, locked, as the transaction has left them; which `(saga, event)`
/// pairs their logs hold; and their steps not yet written. [`lock`] answers from it without a
/// statement, and a step of a saga held here waits in `pending` until the batch ends (or
/// until anything else is about to read or write the saga tables), so a batch's steps travel
/// in one query (`repo::save_steps`) instead of one each.
///
/// For a batch of `CreatePartner` commands it holds which saga each command's saga id or
/// onboarding already has (`starts`: every id the batch asked about, with its saga if any),
/// so a new saga's start is taken without a statement and written with the rest.
#[derive(Default)]
struct Prefetched {
    sagas: HashMap<Uuid, StoredSaga>,
    logged: HashSet<(Uuid, Uuid)>,
    starts: HashMap<Uuid, Option<Uuid>>,
    pending: Vec<Pending>,
}

/// A step of a saga held in [`Prefetched`], not yet written (`expected_version` `None`: a new
/// saga).
struct Pending {
    stored: StoredSaga,
    expected_version: Option<i64>,
    entries: Vec<NewLogEntry>,
}

impl Prefetched {
    /// What `repo::saga_by_id_or_onboarding` would answer for a command of the batch, when
    /// the batch looked it up: the saga of `saga_id` first, else that of the onboarding.
    fn start_of(tx: &mut Tx, saga_id: Option<Uuid>, onboarding_id: Uuid) -> Option<Option<Uuid>> {
        let starts = &tx.scratch::<Prefetched>().starts;
        let by_id = saga_id.map(|saga_id| starts.get(&saga_id).copied());
        match (by_id, starts.get(&onboarding_id).copied()) {
            (Some(Some(Some(found))), _) => Some(Some(found)),
            (Some(None), _) | (_, None) => None,
            (_, Some(by_onboarding)) => Some(by_onboarding),
        }
    }

    fn forget(tx: &mut Tx, saga_id: Uuid) {
        tx.scratch::<Prefetched>().sagas.remove(&saga_id);
    }

    /// Writes the steps waiting in `tx`, in the order they were taken.
    async fn flush(tx: &mut Tx) -> Result<(), AppError> {
        let pending = std::mem::take(&mut tx.scratch::<Prefetched>().pending);
        if pending.is_empty() {
            return Ok(());
        }
        let steps: Vec<repo::Step<'_>> = pending
            .iter()
            .map(|step| repo::Step {
                stored: &step.stored,
                expected_version: step.expected_version,
                entries: &step.entries,
            })
            .collect();
        match repo::save_steps(tx, &steps).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AppError::Contention),
            // A concurrent twin started the same saga or onboarding first (on PostgreSQL this
            // aborted `tx`): a retry finds it.
            Err(error) if is_unique_violation(&error) => Err(AppError::Contention),
            Err(error) => Err(error.into()),
        }
    }
}

/// Locks and loads saga `saga_id` for `envelope`; beside it, whether the saga has logged the
/// envelope's cause, when that matters: an event of the saga's own conversation names its
/// cause, and until the cause is in the log the event is early, not wrong. (An event
/// correlated only by its ids may come from outside the conversation, so its causation says
/// nothing about the saga.)
async fn lock(
    tx: &mut Tx,
    envelope: &Envelope,
    saga_id: Uuid,
    paso: Paso,
) -> Result<Option<(StoredSaga, Option<bool>)>, AppError> {
    let cause = envelope
        .causationid
        .filter(|_| envelope.sagaid.is_some() && paso != Paso::CreatePartner);
    let prefetched = tx.scratch::<Prefetched>();
    if let Some(stored) = prefetched.sagas.get(&saga_id) {
        let logged = cause.map(|cause| prefetched.logged.contains(&(saga_id, cause)));
        return Ok(Some((stored.clone(), logged)));
    }
    Prefetched::flush(tx).await?;
    let locked = repo::load_for_update_after(tx, saga_id, cause).await?;
    Ok(locked.map(|(stored, logged)| (stored, cause.map(|_| logged))))
}

/// The saga an event without a `sagaid` belongs to, by the ids it carries. `None`: not a
/// saga's event.
async fn correlate(tx: &mut Tx, claves: Claves) -> Result<Option<Uuid>, AppError> {
    Prefetched::flush(tx).await?;
    if let Some(onboarding_id) = claves.onboarding_id {
        if let Some(found) = repo::saga_of_onboarding(tx, onboarding_id).await? {
            return Ok(Some(found));
        }
    }
    if let Some(partner_id) = claves.partner_id {
        if let Some(found) = repo::saga_of_partner(tx, partner_id).await? {
            return Ok(Some(found));
        }
    }
    if let Some(contrato_id) = claves.contrato_id {
        if let Some(found) = repo::saga_of_contrato(tx, contrato_id).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}
