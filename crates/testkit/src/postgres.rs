//! Fresh PostgreSQL databases for tests. The server is required, never optional: a test that
//! needs it fails when it is unreachable. `ALPES_TEST_POSTGRES_URL` overrides the server URL.

use sqlx::Connection;

/// The server URL without a database, e.g. `postgres://postgres@127.0.0.1:5432`.
pub fn server_url() -> String {
    std::env::var("ALPES_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A URL naming a database that does not exist yet (storage creates it on connect).
pub fn fresh_database_url(label: &str) -> String {
    format!(
        "{}/alpes_test_{label}_{}",
        server_url(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Drops the database `url` names, closing whatever connections are still open on it. Best
/// effort: a test's outcome never depends on the clean-up.
pub async fn drop_database(url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    let admin = format!("{}/postgres", server_url());
    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
        let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let _ = sqlx::query(&drop).execute(&mut conn).await;
        let _ = conn.close().await;
    }
}
