//! The storage conformance suite: outbox, relay, inbox, idempotency and migrations behave the
//! same on SQLite and on PostgreSQL. Each behaviour is one async fn run against both backends.

mod suite;

use testkit::db::Schema;

/// The storage tables only: outbox, inbox, idempotency keys and the migration ledger.
const SCHEMA: Schema = Schema {
    component: "test",
    migrations: &[],
};

/// What only SQLite has: the relay's unsynced delete, its deletes put off while a backlog
/// remains, and temporary files kept in memory.
mod sqlite_only {
    use testkit::db::TestDb;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_relay_keeps_publishing_a_backlog_while_the_writer_is_busy() {
        let test_db = TestDb::sqlite(crate::SCHEMA).await;
        crate::suite::the_relay_keeps_publishing_a_backlog_while_the_writer_is_busy(
            test_db.db.clone(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_is_synced_again_after_the_relay_and_in_every_transaction() {
        let test_db = TestDb::sqlite(crate::SCHEMA).await;
        crate::suite::the_writer_is_synced_again_after_the_relay_and_in_every_transaction(
            test_db.db.clone(),
        )
        .await;
    }

    /// Statement journals and sorts stay in memory on the writer and the readers: a file
    /// created and deleted per large statement costs a file system dearly under load.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_connection_keeps_its_temporary_files_in_memory() {
        let test_db = TestDb::sqlite(crate::SCHEMA).await;
        let storage::Db::Sqlite { writer, reader, .. } = &test_db.db else {
            panic!("a SQLite database");
        };
        const MEMORY: i64 = 2;
        for pool in [writer, reader] {
            let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(temp_store, MEMORY);
        }
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            use testkit::db::TestDb;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    // Held so that the directory outlives the database.
                    let test_db = TestDb::sqlite(crate::SCHEMA).await;
                    crate::suite::$name(test_db.db.clone()).await;
                }
            )*
        }
        mod postgres_backend {
            use testkit::db::TestDb;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test_db = TestDb::postgres(crate::SCHEMA).await;
                    crate::suite::$name(test_db.db.clone()).await;
                    // A failing test leaves its database behind to look at.
                    test_db.cleanup().await;
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_run_once_and_again_is_a_no_op,
    the_relay_publishes_committed_rows_in_order_and_empties_the_outbox,
    envelopes_leave_the_outbox_exactly_as_appended_in_append_order,
    rolled_back_outbox_rows_are_never_published,
    concurrent_relays_never_publish_a_row_twice,
    a_failed_publish_leaves_the_rows_for_a_retry,
    a_claim_left_by_an_earlier_relay_is_honoured_until_it_expires,
    the_inbox_admits_an_event_once_per_group,
    an_inbox_row_rolls_back_with_the_effects,
    a_batch_inserts_its_inbox_rows_up_front,
    a_batch_commits_together_and_a_failing_message_goes_alone,
    many_early_messages_split_a_batch_instead_of_going_one_by_one,
    idempotency_responses_are_stored_and_a_twin_key_conflicts,
    orphaned_claims_are_released_at_start_only_where_one_process_owns_the_db,
    writes_dropped_at_any_point_leave_the_writer_usable,
    a_group_commit_writes_every_caller_once_and_tells_each,
    a_failed_group_fails_all_its_callers_and_the_next_group_commits,
    a_caller_that_goes_away_still_has_its_item_written,
    a_batch_of_ids_is_looked_up_in_the_index_even_under_or,
    a_batch_of_unique_keys_is_looked_up_in_the_index_even_by_a_generic_plan,
);
