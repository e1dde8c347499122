//! Storage adapters over sqlx: one `Db` handle that is either SQLite (embedded mode) or
//! PostgreSQL (distributed mode), migrations, and the outbox, inbox and idempotency tables every
//! service shares. Queries are written once with `$n` placeholders; the two backends differ only
//! where a dialect forces it, in the smallest place possible.

pub mod consume;
mod db;
pub mod idempotency;
pub mod inbox;
mod migrate;
pub mod outbox;
mod repo;

pub use consume::{Transactional, TxCounts, TxHandler};
pub use db::{is_unavailable, is_unique_violation, Backend, Db, StorageError, Tx, TxConn};
pub use migrate::{migrate, Migration};
pub use repo::RepoError;

/// Runs `$body` with `$conn` bound to the backend-specific connection (or pool) of a `Db` or
/// `Tx`: the same SQL text and binds type-check once per backend.
#[macro_export]
macro_rules! with_db {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite { writer: $conn, .. } => $body,
            $crate::Db::Postgres($conn) => $body,
        }
    };
}

/// Like [`with_db!`] but reads from SQLite's reader pool, so queries never wait for the writer.
#[macro_export]
macro_rules! with_reader {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite { reader: $conn, .. } => $body,
            $crate::Db::Postgres($conn) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the open transaction's connection.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut ($tx).conn {
            $crate::TxConn::Sqlite(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
            $crate::TxConn::Postgres(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
        }
    };
}
