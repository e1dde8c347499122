//! The database handle. SQLite gets a single-connection writer pool (one writer at a time is
//! SQLite's rule; queuing in-process avoids busy errors) and a reader pool; PostgreSQL one pool.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, Postgres, Sqlite, SqlitePool};

/// A pooled PostgreSQL connection idle this long is pinged before it is handed out again.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database url {0:?}: expected sqlite:// or postgres://")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How a SQLite write transaction starts. IMMEDIATE takes the write lock up front: a deferred
/// transaction that reads, then writes, fails at once if another connection wrote in between.
/// The pragma (in the same round trip) makes the commit synced to disk whatever an earlier
/// statement on the connection set: the outbox relay deletes published rows unsynced.
const BEGIN_SQLITE: &str = "PRAGMA synchronous = FULL; BEGIN IMMEDIATE";

/// Rows a SQLite connection's thread may hand over before it waits for them to be taken (sqlx
/// defaults to 50): a batch's read returns up to 64 rows and more, and a thread that stops
/// half-way costs two more wake-ups. Measured in BENCHMARKS.md (eleventh run) with the
/// embedded bus's, which is the same: more sagas per second under load in every pair.
const ROW_CHANNEL: usize = 256;

/// Prepared statements a SQLite connection keeps. A batch's writes go as one query of many
/// statements whose text changes with the batch's size, and a cached one holds a prepared
/// copy of every statement in it: the default (100) let those copies take most of the
/// process's memory under load.
const STATEMENT_CACHE: usize = 24;

/// Where SQLite keeps a connection's temporary files: in memory. A statement inside a
/// transaction keeps a journal of the pages it changes (to undo itself alone); past 64 KiB that
/// journal becomes a file in `TMPDIR`, created and deleted again, and a batch's writes passed
/// that mark dozens of times a second under load. On ext4 without a journal every file created
/// scans past the inodes deleted in the last minutes, which made those creations a seventh of
/// the platform's CPU (BENCHMARKS.md, twentieth run). The journals are as large as the pages one
/// statement changes, a few hundred KiB at most for a batch.
const TEMP_STORE: &str = "memory";

/// A service's database.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        /// Held by an outbox relay while it publishes: a SQLite database belongs to one
        /// process, so this lock alone keeps two relays from publishing the same rows and a
        /// relay needs no claim written (and synced) before it publishes. It guards what the
        /// relays published and have not deleted yet.
        relay: std::sync::Arc<tokio::sync::Mutex<crate::outbox::Published>>,
    },
    Postgres(PgPool),
}

/// An open write transaction. Dropping it without `commit` rolls back.
pub struct Tx {
    /// The backend's transaction; reached through `with_tx!`.
    #[doc(hidden)]
    pub conn: TxConn,
    /// Event ids whose inbox rows a batch inserted up front (see `inbox::first_delivery`).
    pub(crate) inbox: Option<crate::inbox::Prechecked>,
    /// Outbox rows appended and not yet written (event id, topic, envelope): `commit` writes
    /// them all in one statement (`outbox::flush`). Non-empty means the commit has something
    /// for the relay (see `outbox::commit_and_wake`).
    pub(crate) outbox: Vec<(uuid::Uuid, String, String)>,
    /// What a message handler keeps for the rest of the transaction (see [`Tx::scratch`]).
    scratch: Option<Box<dyn std::any::Any + Send>>,
}

#[doc(hidden)]
pub enum TxConn {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). A missing SQLite file or PostgreSQL
    /// database is created.
    pub async fn connect(url: &str) -> Result<Db, StorageError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a committed business fact survives power loss, not only a process crash.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // Statement journals and sorts in memory (see `TEMP_STORE`).
                .pragma("temp_store", TEMP_STORE)
                .statement_cache_capacity(STATEMENT_CACHE)
                .row_buffer_size(ROW_CHANNEL)
                .disable_statement_logging();
            // No ping before each acquire: a SQLite connection is a file in this process, and
            // a ping is a round trip to the connection's worker thread on every statement
            // that borrows it.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await?;
            let reader = SqlitePoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect_with(options.read_only(true))
                .await?;
            Ok(Db::Sqlite {
                writer,
                reader,
                relay: Default::default(),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
            create_pg_database_if_missing(&options).await?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                // A ping before every acquire doubles the round trips of a one-query request;
                // only a connection idle long enough to have been dropped (a server restart,
                // a proxy's idle timeout) is checked before it is handed out.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_IF_IDLE_FOR {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(StorageError::UnsupportedUrl(url.to_owned()))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Opens a write transaction. On SQLite it waits for the single writer connection.
    ///
    /// The `BEGIN` runs in a task of its own, so dropping this future (a client that went away
    /// takes its request's future with it) never strands a transaction: sqlx begins before it
    /// hands back the `Transaction` whose drop would roll it back, and a `BEGIN` whose answer
    /// nobody read left SQLite's single writer inside it for good — every later write of the
    /// service failed. Here the task receives the `Transaction` whatever happens to the caller,
    /// and drops it (rolling back) when the caller is gone.
    pub async fn begin(&self) -> Result<Tx, StorageError> {
        let db = self.clone();
        let begun = tokio::spawn(async move {
            match db {
                Db::Sqlite { writer, .. } => {
                    writer.begin_with(BEGIN_SQLITE).await.map(TxConn::Sqlite)
                }
                Db::Postgres(pool) => pool.begin().await.map(TxConn::Postgres),
            }
        })
        .await;
        let conn = match begun {
            Ok(begun) => begun?,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // Only a runtime shutting down cancels the task.
            Err(_) => return Err(sqlx::Error::PoolClosed.into()),
        };
        Ok(Tx {
            conn,
            inbox: None,
            outbox: Vec::new(),
            scratch: None,
        })
    }

    /// Writes that read nothing back, as one transaction in one trip to the database where a
    /// [`Tx`] costs four (`BEGIN`, the writes, the outbox rows, `COMMIT`): on SQLite each is a
    /// trip to the writer connection's thread and back, and wakes two threads each way.
    ///
    /// On SQLite `sqlite` may hold several statements: they run after the `BEGIN` and before
    /// the `COMMIT` of the same query, so they commit together or not at all. Should one fail,
    /// the transaction is rolled back before the connection goes back to the pool (a
    /// connection that cannot roll back is closed instead). On PostgreSQL `postgres` must be a
    /// single statement (data-modifying `WITH` clauses chain the writes), which commits on its
    /// own. The query runs in a task of its own, as `begin` does: a caller that goes away
    /// cannot stop it between the `BEGIN` and the `COMMIT`.
    pub async fn write_once(
        &self,
        sqlite: &str,
        postgres: &str,
        args: Vec<Arg>,
    ) -> Result<(), StorageError> {
        let db = self.clone();
        let sql = match self {
            Db::Sqlite { .. } => format!("{BEGIN_SQLITE}; {sqlite}; COMMIT"),
            Db::Postgres(_) => postgres.to_owned(),
        };
        let written = tokio::spawn(async move {
            match db {
                Db::Sqlite { writer, .. } => {
                    let mut conn = writer.acquire().await?;
                    let written = Arg::bind_all(sqlx::query(&sql), args)
                        .execute(&mut *conn)
                        .await;
                    if written.is_err() {
                        roll_back_or_close(conn).await;
                    }
                    written.map(drop)
                }
                Db::Postgres(pool) => Arg::bind_all(sqlx::query(&sql), args)
                    .execute(&pool)
                    .await
                    .map(drop),
            }
        })
        .await;
        match written {
            Ok(written) => Ok(written?),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            // Only a runtime shutting down cancels the task.
            Err(_) => Err(sqlx::Error::PoolClosed.into()),
        }
    }

    /// A trivial round-trip, for `/ready`.
    pub async fn ping(&self) -> Result<(), StorageError> {
        crate::with_reader!(self, conn => sqlx::query("SELECT 1").execute(conn).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { writer, reader, .. } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    /// State a message handler keeps for the rest of this transaction: what it read up front
    /// for a whole batch (`TxHandler::prepare`) and answers later messages from. One value,
    /// of one type: asking for another type starts that one afresh.
    pub fn scratch<T: std::any::Any + Send + Default>(&mut self) -> &mut T {
        if !self.scratch.as_ref().is_some_and(|value| value.is::<T>()) {
            self.scratch = Some(Box::new(T::default()));
        }
        self.scratch
            .as_mut()
            .and_then(|value| value.downcast_mut::<T>())
            .expect("set to a T just above")
    }

    /// Writes the outbox rows appended so far, then commits.
    pub async fn commit(mut self) -> Result<(), StorageError> {
        crate::outbox::flush(&mut self).await?;
        match self.conn {
            TxConn::Sqlite(tx) => tx.commit().await?,
            TxConn::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Rolls back at once. Dropping a `Tx` also rolls back, but a pooled PostgreSQL connection
    /// only sends the rollback when it is next used, and until then its row locks stand in the
    /// way of a retry on another connection.
    pub async fn rollback(self) -> Result<(), StorageError> {
        match self.conn {
            TxConn::Sqlite(tx) => tx.rollback().await?,
            TxConn::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.conn {
            TxConn::Sqlite(_) => Backend::Sqlite,
            TxConn::Postgres(_) => Backend::Postgres,
        }
    }
}

/// An argument of [`Db::write_once`], bound as each backend binds its type.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Time(DateTime<Utc>),
    Bytes(Vec<u8>),
}

impl Arg {
    fn bind_all<'q, DB>(
        mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
        args: Vec<Arg>,
    ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
    where
        DB: sqlx::Database,
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        for arg in args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Time(time) => query.bind(time),
                Arg::Bytes(bytes) => query.bind(bytes),
            };
        }
        query
    }
}

/// After a failed [`Db::write_once`] on SQLite: ends the transaction its query began, if it
/// is still open (SQLite rolls back by itself after some errors, and then `ROLLBACK` answers
/// that none is active). A connection that cannot say either way is closed rather than handed
/// to the next writer inside a transaction.
async fn roll_back_or_close(mut conn: sqlx::pool::PoolConnection<Sqlite>) {
    match sqlx::query("ROLLBACK").execute(&mut *conn).await {
        Ok(_) => {}
        Err(sqlx::Error::Database(error)) if error.message().contains("no transaction") => {}
        Err(error) => {
            tracing::error!(%error, "could not roll back a failed write; closing its connection");
            conn.close_on_drop();
        }
    }
}

/// Whether `error` is a unique-constraint violation, which callers turn into a domain error.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether the database itself is out of reach (pool exhausted or closed, connection lost):
/// worth retrying later, unlike a failing query.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    )
}

async fn create_pg_database_if_missing(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&statement).execute(&mut admin).await {
            Ok(_) => {}
            // Another replica created it first.
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("42P04") || db.is_unique_violation() => {}
            Err(error) => return Err(error),
        }
    }
    admin.close().await?;
    Ok(())
}
