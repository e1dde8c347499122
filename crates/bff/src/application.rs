//! The BFF's one write: starting an onboarding. The onboarding row and its `CreatePartner`
//! command (in the outbox) are written in one transaction, with the idempotent response when
//! the client sent a key; then the relay is woken. Nothing is published any other way.

use std::sync::Arc;

use ::storage::idempotency::{self, StoredResponse};
use ::storage::{is_unique_violation, outbox, Db, Tx};
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

/// An `Idempotency-Key` request: its scope (method and path), key and body fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

/// The result of a write that may have been made before under the same idempotency key.
#[derive(Debug)]
pub enum Written<T> {
    Done(T),
    /// The first response to this key, to be sent again byte for byte.
    Replayed(StoredResponse),
}

/// The BFF's use cases: the onboarding write here, the aggregated reads in `queries`.
pub struct Service {
    db: Db,
    wake: Arc<Notify>,
    upstream: Upstream,
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
    pub fn new(db: Db, wake: Arc<Notify>, upstream: Upstream) -> Self {
        Self { db, wake, upstream }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The stored response for `request`, if its key was used before; the same key with
    /// another body is refused.
    async fn replay(
        &self,
        request: &IdempotentRequest,
    ) -> Result<Option<StoredResponse>, AppError> {
        match idempotency::find(&self.db, &request.scope, &request.key).await? {
            Some(stored) if stored.request_hash == request.request_hash => Ok(Some(stored)),
            Some(_) => Err(AppError::IdempotencyKeyReused),
            None => Ok(None),
        }
    }

    /// Stores the response in `tx`. `Ok(false)` means a concurrent twin with the same key
    /// committed first (the unique violation aborted `tx` on PostgreSQL): the caller drops
    /// `tx` and replays the twin's response.
    async fn remember(
        tx: &mut Tx,
        request: &IdempotentRequest,
        response: &StoredResponse,
    ) -> Result<bool, AppError> {
        let stored = StoredResponse {
            request_hash: request.request_hash.clone(),
            ..response.clone()
        };
        match idempotency::store(tx, &request.scope, &request.key, &stored).await {
            Ok(()) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
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
        if let Some(request) = idempotent {
            if let Some(stored) = self.replay(request).await? {
                return Ok(Written::Replayed(stored));
            }
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
        let mut tx = self.db.begin().await?;
        repo::insert_onboarding(&mut tx, &onboarding).await?;
        outbox::append(&mut tx, CreatePartner::TOPIC, &envelope).await?;
        if let Some(request) = idempotent {
            if !Self::remember(&mut tx, request, &render(&onboarding)).await? {
                drop(tx);
                let twin = self.replay(request).await?.ok_or(AppError::Contention)?;
                return Ok(Written::Replayed(twin));
            }
        }
        tx.commit().await?;
        self.wake.notify_one();
        Ok(Written::Done(onboarding))
    }
}
