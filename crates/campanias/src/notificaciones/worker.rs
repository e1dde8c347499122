//! The delivery worker: claims due notifications (a lease, like the outbox relay's), sends each
//! through the configured [`Sender`], and records the attempt: `ENVIADA`, or retried after an
//! exponential back-off with jitter, or `FALLIDA` after `max_intentos` or a permanent failure.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kernel::retry::Backoff;
use storage::Db;
use tokio::sync::Notify;

use super::{Email, SendError, Sender};
use crate::storage::{self as repo, Intento, Notificacion};

/// Notifications claimed per round.
const BATCH: i64 = 32;

#[derive(Clone)]
pub struct DeliveryWorker {
    db: Db,
    sender: Arc<dyn Sender>,
    wake: Arc<Notify>,
    max_intentos: u32,
    backoff: Backoff,
    lease: Duration,
    poll_interval: Duration,
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl DeliveryWorker {
    /// A worker retrying up to `max_intentos` attempts, the first retry after about
    /// `retry_base`, each next one about twice as late (capped at five minutes).
    pub fn new(
        db: Db,
        sender: Arc<dyn Sender>,
        wake: Arc<Notify>,
        max_intentos: u32,
        retry_base: Duration,
    ) -> Self {
        let retry_base = retry_base.max(Duration::from_millis(1));
        Self {
            db,
            sender,
            wake,
            max_intentos: max_intentos.max(1),
            backoff: Backoff {
                base: retry_base,
                max: Duration::from_secs(300).max(retry_base),
            },
            // Longer than an SMTP conversation may take, so a live worker never loses its claim.
            lease: super::smtp::SMTP_TIMEOUT * 2,
            // Retries fall due on their own; poll often enough to honour short back-offs.
            poll_interval: (retry_base / 2)
                .clamp(Duration::from_millis(5), Duration::from_millis(500)),
        }
    }

    fn email_of(notificacion: &Notificacion) -> Email {
        Email {
            id: notificacion.id,
            destinatario: notificacion.destinatario.clone(),
            asunto: notificacion.asunto.clone(),
            contenido: notificacion.contenido.clone(),
            prioridad: notificacion.prioridad,
            creada_en: notificacion.creada_en,
        }
    }

    /// Claims the due notifications and attempts each once; returns how many it attempted.
    pub async fn deliver_once(&self) -> Result<usize, repo::RepoError> {
        let claim_id = kernel::new_id();
        let now = kernel::now();
        let until = now + chrono_duration(self.lease);
        let claimed = repo::claim_due(&self.db, claim_id, now, until, BATCH).await?;
        // Recorded together once the batch was attempted: one commit for the batch. Should
        // the process stop in between, the lease runs out and they are sent again, as they
        // would be if it stopped between one send and its record.
        let emails: Vec<Email> = claimed.iter().map(Self::email_of).collect();
        let outcomes = self.sender.send_all(&emails).await;
        let sent_at = kernel::now();
        let mut attempts = Vec::with_capacity(claimed.len());
        for (notificacion, outcome) in claimed.iter().zip(outcomes) {
            let intento = notificacion.intentos.max(0) as u32 + 1;
            let record = match outcome {
                Ok(()) => Intento::Enviada { at: sent_at },
                Err(SendError::Permanent(error)) => Intento::Fallida { error },
                Err(SendError::Transient(error)) if intento >= self.max_intentos => {
                    Intento::Fallida { error }
                }
                Err(SendError::Transient(error)) => Intento::Reintentar {
                    error,
                    proximo: kernel::now() + chrono_duration(self.backoff.delay(intento)),
                },
            };
            tracing::debug!(id = %notificacion.id, intento, ?record, "notification attempt");
            attempts.push((notificacion.id, record));
        }
        let recorded = repo::record_attempts(&self.db, claim_id, &attempts).await?;
        for ((id, _), recorded) in attempts.iter().zip(recorded) {
            if !recorded {
                tracing::warn!(%id, "notification claim lost before recording");
            }
        }
        Ok(claimed.len())
    }

    /// Delivers until `shutdown` resolves: at once when woken (a notification was stored),
    /// otherwise every poll interval (which picks up retries falling due).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        loop {
            let wait = match self.deliver_once().await {
                Ok(n) if n as i64 >= BATCH => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    self.poll_interval
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, failures, "notification delivery failed; backing off");
                    Backoff::default().delay(failures)
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
