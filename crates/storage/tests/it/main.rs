//! The storage conformance suite: outbox, relay, inbox, idempotency and migrations behave the
//! same on SQLite and on PostgreSQL. Each behaviour is one async fn run against both backends.

mod suite;

use storage::Db;

/// A fresh SQLite database in a temp dir (kept alive by the returned guard).
async fn sqlite() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let db = Db::connect(&url).await.unwrap();
    db.migrate_with("test", &[]).await.unwrap();
    (db, dir)
}

/// A fresh PostgreSQL database. PostgreSQL must be running: this fails, never skips.
async fn postgres() -> Db {
    let url = testkit::postgres::fresh_database_url("storage");
    let db = Db::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable for this suite ({url}): {e}"));
    db.migrate_with("test", &[]).await.unwrap();
    db
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (db, _dir) = crate::sqlite().await;
                    crate::suite::$name(db).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::postgres().await;
                    crate::suite::$name(db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_run_once_and_again_is_a_no_op,
    the_relay_publishes_committed_rows_in_order_and_empties_the_outbox,
    rolled_back_outbox_rows_are_never_published,
    concurrent_relays_never_publish_a_row_twice,
    a_failed_publish_releases_the_claim_for_a_retry,
    an_expired_claim_of_a_dead_relay_is_taken_over,
    the_inbox_admits_an_event_once_per_group,
    an_inbox_row_rolls_back_with_the_effects,
    idempotency_responses_are_stored_and_a_twin_key_conflicts,
    orphaned_claims_are_released_at_start_only_where_one_process_owns_the_db,
);
