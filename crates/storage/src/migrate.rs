//! Migrations: each component (a service, or this crate's shared tables) owns an ordered list
//! with one SQL text per backend, applied at start-up in a transaction and recorded so that a
//! migration runs once. An applied migration is never edited; a change is a new one.

use crate::db::{Db, StorageError};

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migration (
    component TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (component, version)
)";

/// Applies the migrations of `component` that `db` has not seen yet. Concurrent replicas are
/// safe: PostgreSQL serializes them with an advisory lock, SQLite with its single writer.
pub async fn migrate(
    db: &Db,
    component: &str,
    migrations: &[Migration],
) -> Result<(), StorageError> {
    let mut tx = db.begin().await?;
    if let crate::TxConn::Postgres(conn) = &mut tx.conn {
        sqlx::query("SELECT pg_advisory_xact_lock(7226150)")
            .execute(&mut **conn)
            .await?;
    }
    crate::with_tx!(&mut tx, conn => sqlx::raw_sql(LEDGER).execute(conn).await.map(|r| r.rows_affected()))?;
    for migration in migrations {
        let applied: Option<i64> = crate::with_tx!(&mut tx, conn => sqlx::query_scalar(
            "SELECT version FROM schema_migration WHERE component = $1 AND version = $2",
        )
        .bind(component)
        .bind(migration.version)
        .fetch_optional(conn)
        .await)?;
        if applied.is_some() {
            continue;
        }
        let sql = match db.backend() {
            crate::Backend::Sqlite => migration.sqlite,
            crate::Backend::Postgres => migration.postgres,
        };
        crate::with_tx!(&mut tx, conn => sqlx::raw_sql(sql).execute(conn).await.map(|r| r.rows_affected()))?;
        crate::with_tx!(&mut tx, conn => sqlx::query(
            "INSERT INTO schema_migration (component, version, name) VALUES ($1, $2, $3)",
        )
        .bind(component)
        .bind(migration.version)
        .bind(migration.name)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        tracing::info!(
            component,
            version = migration.version,
            name = migration.name,
            "migration applied"
        );
    }
    tx.commit().await
}

/// The shared tables (outbox, inbox, idempotency) every service database holds.
pub(crate) const SHARED: &[Migration] = &[Migration {
    version: 1,
    name: "outbox_inbox_idempotency",
    sqlite: include_str!("../migrations/sqlite/0001_shared.sql"),
    postgres: include_str!("../migrations/postgres/0001_shared.sql"),
}];

impl Db {
    /// Applies the shared tables' migrations, then `component`'s.
    pub async fn migrate_with(
        &self,
        component: &str,
        migrations: &[Migration],
    ) -> Result<(), StorageError> {
        migrate(self, "shared", SHARED).await?;
        migrate(self, component, migrations).await
    }
}
