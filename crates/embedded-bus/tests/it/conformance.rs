//! Every check of `testkit::bus_conformance`, each against its own bus file.

use std::sync::Arc;

use embedded_bus::EmbeddedBus;
use kernel::Bus;
use testkit::bus::fresh_bus;
use testkit::bus_conformance as suite;

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let test = fresh_bus().await;
                suite::$check(test.bus.clone()).await;
                test.bus.close().await;
            }
        )*
    };
}

conformance!(
    ping_succeeds,
    publish_reaches_every_group,
    delivery_carries_the_published_envelope,
    envelopes_published_together_arrive_byte_for_byte,
    envelopes_published_as_text_arrive_as_envelopes,
    acked_message_is_not_redelivered,
    batches_are_taken_and_acked_together,
    nack_redelivers_after_the_delay,
    unsettled_delivery_is_redelivered_after_ack_wait,
    competing_consumers_share_a_group,
    duplicate_publish_is_ignored,
    new_group_starts_from_the_oldest_message,
    one_group_keeps_its_topics_apart,
    runs_published_together_land_on_their_topics_in_order,
    nack_dead_letters_after_max_attempts,
    dead_letter_sends_the_message_at_once,
);

/// Reopening the file without closing it is what a killed process leaves behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_messages_survive_a_restart() {
    let test = fresh_bus().await;
    test.bus.close().await;
    let path = test.path.clone();
    suite::unacked_messages_survive_a_restart(|| {
        let path = path.clone();
        async move {
            let bus = EmbeddedBus::open(&path).await.expect("reopen bus");
            Arc::new(bus) as Arc<dyn Bus>
        }
    })
    .await;
}
