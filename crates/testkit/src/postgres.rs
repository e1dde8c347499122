//! Fresh PostgreSQL databases for tests. The server is required, never optional: a test that
//! needs it fails when it is unreachable. `ALPES_TEST_POSTGRES_URL` overrides the server URL.

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
