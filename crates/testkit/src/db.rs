//! Fresh, migrated databases for tests on both backends: SQLite in a temporary directory that
//! lives as long as the `TestDb`, or a new PostgreSQL database (`crate::postgres`) that
//! `cleanup` drops again.

use storage::{Db, Migration};
use tempfile::TempDir;

/// What a service database holds: the component name its migrations are recorded under (also
/// the SQLite file name) and the migrations themselves.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub component: &'static str,
    pub migrations: &'static [Migration],
}

/// A migrated, empty database. On SQLite the directory holding the file is removed when the
/// `TestDb` is dropped; on PostgreSQL the database is dropped by `cleanup`.
pub struct TestDb {
    pub db: Db,
    /// The URL the database was opened with, for a second handle on it.
    pub url: String,
    postgres: bool,
    _dir: Option<TempDir>,
}

impl TestDb {
    /// A fresh SQLite file `<component>.db` in a new temporary directory.
    pub async fn sqlite(schema: Schema) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(format!("{}.db", schema.component));
        let url = format!("sqlite://{}", path.display());
        Self::open(schema, url, false, Some(dir)).await
    }

    /// A fresh PostgreSQL database. Fails (never skips) when the server is unreachable.
    pub async fn postgres(schema: Schema) -> TestDb {
        let url = crate::postgres::fresh_database_url(schema.component);
        Self::open(schema, url, true, None).await
    }

    async fn open(schema: Schema, url: String, postgres: bool, dir: Option<TempDir>) -> TestDb {
        let db = Db::connect(&url)
            .await
            .unwrap_or_else(|error| panic!("cannot open the test database {url}: {error}"));
        db.migrate_with(schema.component, schema.migrations)
            .await
            .unwrap_or_else(|error| panic!("cannot migrate the test database {url}: {error}"));
        TestDb {
            db,
            url,
            postgres,
            _dir: dir,
        }
    }

    /// Another handle on the same database, as a second replica would open it.
    pub async fn another_handle(&self) -> Db {
        Db::connect(&self.url).await.expect("second handle")
    }

    /// Closes the database and drops it on PostgreSQL.
    pub async fn cleanup(self) {
        self.db.close().await;
        if self.postgres {
            crate::postgres::drop_database(&self.url).await;
        }
    }
}

/// Runs each named `async fn(&Db)` of the calling module as two tests, one on a fresh SQLite
/// database and one on a fresh PostgreSQL database of `$schema`, each dropped afterwards.
#[macro_export]
macro_rules! on_both_backends {
    ($schema:path; $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let test_db = $crate::db::TestDb::sqlite($schema).await;
                    super::$name(&test_db.db).await;
                    test_db.cleanup().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let test_db = $crate::db::TestDb::postgres($schema).await;
                    super::$name(&test_db.db).await;
                    test_db.cleanup().await;
                }
            )+
        }
    };
}
