//! The error a service's repository returns: a stored row that no longer reads back into the
//! domain, or the database's own error. Services whose repositories add outcomes of their own
//! (a conflict, a taken key) keep an enum with those beside these two.

use std::fmt::Display;

use uuid::Uuid;

use crate::db::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A stored row no longer parses into the domain (a manual edit or a bug).
    #[error("stored row is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

impl RepoError {
    /// `what` no longer reads back, because of `error`: `"{what}: {error}"`.
    pub fn corrupt(what: impl Display, error: impl Display) -> Self {
        RepoError::Corrupt(format!("{what}: {error}"))
    }

    /// The row of `what` keyed by `id` no longer reads back: `"{what} {id}: {error}"`.
    pub fn corrupt_row(what: &str, id: Uuid, error: impl Display) -> Self {
        RepoError::Corrupt(format!("{what} {id}: {error}"))
    }
}

/// A database error stays one; anything else the storage layer reports means the stored state
/// cannot be used.
impl From<StorageError> for RepoError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Sqlx(error) => RepoError::Sqlx(error),
            other => RepoError::Corrupt(other.to_string()),
        }
    }
}
