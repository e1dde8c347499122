//! Group commit: many callers' writes in one transaction. A caller hands its item to a writer
//! task and waits; the task takes everything that has gathered by then and writes it in one
//! transaction — one commit, one disk sync, and a few statements for the whole group instead
//! of a few per caller — then tells every caller how that commit went.
//!
//! Why a task of its own: on SQLite every statement is a trip to the writer connection's
//! thread and back, and each trip wakes two threads; per-caller transactions spent most of a
//! write's CPU on those wake-ups. And the task, not the caller, owns the transaction: a caller
//! that goes away (a client hanging up) neither leaves the transaction half done nor hides its
//! outcome from the others, and a caller hears `Ok` only once its item is committed.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::StorageError;

/// Why a group's write did not commit. Every caller of the group gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupCommitError {
    /// The database could not be reached (a timeout, a lost connection, a closed pool) or the
    /// writer has stopped: worth a retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The write itself failed.
    #[error("the write failed: {0}")]
    Failed(String),
}

impl From<sqlx::Error> for GroupCommitError {
    fn from(error: sqlx::Error) -> Self {
        if crate::is_unavailable(&error) {
            GroupCommitError::Unavailable(error.to_string())
        } else {
            GroupCommitError::Failed(error.to_string())
        }
    }
}

impl From<StorageError> for GroupCommitError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Sqlx(error) => error.into(),
            other => GroupCommitError::Failed(other.to_string()),
        }
    }
}

type Waiting<T> = (T, oneshot::Sender<Result<(), GroupCommitError>>);

/// The handle callers submit through. Dropping the last one ends the writer task once it has
/// written what it holds.
pub struct GroupCommit<T> {
    queue: mpsc::UnboundedSender<Waiting<T>>,
}

impl<T: Send + 'static> GroupCommit<T> {
    /// Starts the writer task on the current runtime. `write` gets the items gathered (in
    /// arrival order, at most `max` at a time) and must write them all in one transaction or
    /// none. A `write` that panics fails its group, not the writer.
    pub fn spawn<F, Fut>(max: usize, mut write: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), GroupCommitError>> + Send + 'static,
    {
        let (queue, mut gathered) = mpsc::unbounded_channel::<Waiting<T>>();
        let max = max.max(1);
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(max);
            while gathered.recv_many(&mut group, max).await > 0 {
                let (items, callers): (Vec<T>, Vec<_>) = group.drain(..).unzip();
                let outcome = match tokio::spawn(write(items)).await {
                    Ok(outcome) => outcome,
                    Err(join) => {
                        tracing::error!(error = %join, "a group commit's write panicked");
                        Err(GroupCommitError::Failed("the write panicked".to_owned()))
                    }
                };
                for caller in callers {
                    // A caller that went away has nobody to tell.
                    let _ = caller.send(outcome.clone());
                }
            }
        });
        GroupCommit { queue }
    }

    /// Writes `item` with whatever else is waiting, and returns once that commit is over.
    /// Dropping the future does not withdraw the item: it is written (or not) with its group.
    pub async fn submit(&self, item: T) -> Result<(), GroupCommitError> {
        let (told, outcome) = oneshot::channel();
        self.queue.send((item, told)).map_err(|_| stopped())?;
        outcome.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> GroupCommitError {
    GroupCommitError::Unavailable("the writer has stopped".to_owned())
}
