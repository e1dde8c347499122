//! Throw-away databases for one benchmark run: a SQLite file in a temporary directory, or a
//! fresh PostgreSQL database `microbench_<uuid>` that is dropped (with its connections) at the
//! end. Nothing a benchmark writes outlives it unless asked to.

use anyhow::Context;
use sqlx::Connection;
use storage::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendChoice::Sqlite => "sqlite",
            BackendChoice::Postgres => "postgres",
        })
    }
}

/// A fresh database and what it takes to remove it.
pub struct ScratchDb {
    pub db: Db,
    /// The temporary directory of a SQLite file (also usable for an embedded bus file).
    pub dir: tempfile::TempDir,
    /// `(server url, database name)` of a PostgreSQL database to drop.
    postgres: Option<(String, String)>,
}

impl ScratchDb {
    /// Creates a fresh database on `backend`; `server` is the PostgreSQL server URL without a
    /// database (`postgres://postgres@127.0.0.1:5432`).
    pub async fn create(backend: BackendChoice, server: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        match backend {
            BackendChoice::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("microbench.db").display());
                let db = Db::connect(&url)
                    .await
                    .with_context(|| format!("opening {url}"))?;
                Ok(Self {
                    db,
                    dir,
                    postgres: None,
                })
            }
            BackendChoice::Postgres => {
                let server = server.trim_end_matches('/').to_owned();
                let name = format!("microbench_{}", uuid::Uuid::new_v4().simple());
                let url = format!("{server}/{name}");
                let db = Db::connect(&url)
                    .await
                    .with_context(|| format!("creating the database {url}"))?;
                Ok(Self {
                    db,
                    dir,
                    postgres: Some((server, name)),
                })
            }
        }
    }

    /// Closes the pools and removes the database (the SQLite file goes with its directory).
    /// With `keep`, a PostgreSQL database is left in place and its name returned.
    pub async fn remove(self, keep: bool) -> anyhow::Result<Option<String>> {
        self.db.close().await;
        let Some((server, name)) = self.postgres else {
            return Ok(None);
        };
        if keep {
            return Ok(Some(name));
        }
        let admin = format!("{server}/postgres");
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .with_context(|| format!("connecting to {admin} to drop {name}"))?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("dropping the database {name}"))?;
        conn.close().await.ok();
        Ok(None)
    }
}
