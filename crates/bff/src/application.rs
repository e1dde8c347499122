//! The BFF's one write: starting an onboarding. The onboarding row and its `CreatePartner`
//! command (in the outbox) are written in one transaction, with the idempotent response when
//! the client sent a key; without a key, the onboardings started meanwhile share that
//! transaction (a group commit). Then the relay is woken. Nothing is published any other way.

use std::sync::Arc;

use ::storage::idempotency::{self, IdempotencyError, Remembered, StoredResponse};
use ::storage::{outbox, Db, GroupCommit, GroupCommitError};
use contracts::partners::CreatePartner;
use kernel::{Envelope, EnvelopeContext, IntegrationEvent};
use tokio::sync::Notify;
use web::Problem;

use crate::domain::{Onboarding, SolicitudPartner};
use crate::storage::{self as repo, RepoError};
use crate::upstream::{Upstream, UpstreamError};

/// The `source` of every envelope this service writes, and its name on `/metrics`.
pub const SERVICE: &str = "bff";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no onboarding with this id was started here")]
    OnboardingNotFound,
    #[error("partner not found")]
    PartnerNotFound,
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a concurrent write kept conflicting; retry")]
    Contention,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// An upstream service refused the request (4xx): its problem, passed on as it is.
    #[error("refused upstream: {0}")]
    Rejected(Box<Problem>),
    #[error(transparent)]
    Repo(RepoError),
    /// The group commit that carried this write did not commit.
    #[error(transparent)]
    Write(#[from] GroupCommitError),
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
        match error {
            ::storage::StorageError::Sqlx(error) => error.into(),
            other => AppError::Repo(RepoError::Corrupt(uuid::Uuid::nil(), other.to_string())),
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

/// The BFF's use cases: the onboarding write here, the aggregated reads in `queries`.
pub struct Service {
    db: Db,
    wake: Arc<Notify>,
    upstream: Upstream,
    /// Onboardings started without an idempotency key, written in groups.
    started: GroupCommit<Started>,
}

/// An onboarding and its `CreatePartner`, waiting for their group's commit.
struct Started {
    onboarding: Onboarding,
    command: Envelope,
}

/// The most onboardings one commit carries.
const GROUP_MAX: usize = 128;

/// Writes a group of onboardings and their commands in one transaction, sent as one query
/// (`repo::insert_started`) however many there are, where one transaction each cost four trips
/// to the database per request. Then wakes the relay.
async fn write_started(
    db: Db,
    wake: Arc<Notify>,
    started: Vec<Started>,
) -> Result<(), GroupCommitError> {
    let onboardings: Vec<&Onboarding> = started.iter().map(|s| &s.onboarding).collect();
    repo::insert_started(
        &db,
        &onboardings,
        started.iter().map(|s| (CreatePartner::TOPIC, &s.command)),
    )
    .await?;
    wake.notify_one();
    Ok(())
}

/// The command that starts the saga, as published.
pub fn create_partner_command(onboarding: &Onboarding) -> CreatePartner {
    let solicitud = &onboarding.solicitud;
    CreatePartner {
        onboarding_id: onboarding.onboarding_id,
        saga_id: Some(onboarding.saga_id),
        nombre: solicitud.nombre.as_str().to_owned(),
        email: solicitud.email.as_str().to_owned(),
        telefono: solicitud.telefono.as_ref().map(|t| t.as_str().to_owned()),
        direccion: solicitud.direccion.as_ref().map(|d| d.as_str().to_owned()),
        tipo: Some(solicitud.tipo.as_str().to_owned()),
        terminos: solicitud.terminos.as_ref().map(|t| t.to_value()),
    }
}

impl Service {
    /// Starts the writer task of the onboarding writes: call it inside the runtime.
    pub fn new(db: Db, wake: Arc<Notify>, upstream: Upstream) -> Self {
        let started = {
            let (db, wake) = (db.clone(), wake.clone());
            GroupCommit::spawn(GROUP_MAX, move |started| {
                write_started(db.clone(), wake.clone(), started)
            })
        };
        Self {
            db,
            wake,
            upstream,
            started,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Starts an onboarding: a fresh temporary id and saga id, the onboarding row and its
    /// `CreatePartner` (envelope `sagaid` = the saga id) committed together. With an
    /// idempotency key, the response `render` builds is stored with them and a retry gets it
    /// back instead of a second onboarding.
    pub async fn start_onboarding(
        &self,
        solicitud: SolicitudPartner,
        idempotent: Option<&IdempotentRequest>,
        render: &(dyn Fn(&Onboarding) -> StoredResponse + Send + Sync),
    ) -> Result<Written<Onboarding>, AppError> {
        if let Some(stored) = idempotency::replay(&self.db, idempotent).await? {
            return Ok(Written::Replayed(stored));
        }
        let onboarding =
            Onboarding::iniciar(kernel::new_id(), kernel::new_id(), solicitud, kernel::now());
        let command = create_partner_command(&onboarding);
        let envelope = Envelope::wrap(
            SERVICE,
            &command,
            EnvelopeContext {
                sagaid: Some(onboarding.saga_id),
                ..EnvelopeContext::default()
            },
        );
        let Some(idempotent) = idempotent else {
            // Nothing to answer from inside the transaction: the write joins a group commit.
            self.started
                .submit(Started {
                    onboarding: onboarding.clone(),
                    command: envelope,
                })
                .await?;
            return Ok(Written::Done(onboarding));
        };
        let mut tx = self.db.begin().await?;
        repo::insert_onboarding(&mut tx, &onboarding).await?;
        outbox::append(&mut tx, CreatePartner::TOPIC, &envelope);
        let tx = match idempotency::remember(&self.db, tx, Some(idempotent), || render(&onboarding))
            .await?
        {
            Remembered::Kept(tx) => tx,
            Remembered::Twin(stored) => return Ok(Written::Replayed(stored)),
        };
        outbox::commit_and_wake(tx, &self.wake).await?;
        Ok(Written::Done(onboarding))
    }
}
