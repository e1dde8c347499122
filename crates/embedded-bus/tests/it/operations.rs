//! What only the embedded bus does: its inspection helpers, `close`, recovery of in-flight
//! deliveries on open, and leases that run out for the last time.

use std::time::Duration;

use embedded_bus::EmbeddedBus;
use kernel::bus::dead_letter_topic;
use kernel::{Bus, BusError, Delivery, Envelope, SubscribeOptions, Subscription};
use testkit::bus::{fresh_bus, ping};

const DEADLINE: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

fn options(max_attempts: u32, ack_wait: Duration) -> SubscribeOptions {
    SubscribeOptions {
        max_attempts,
        ack_wait,
    }
}

async fn next(subscription: &mut Box<dyn Subscription>) -> Delivery {
    tokio::time::timeout(DEADLINE, subscription.next())
        .await
        .expect("a delivery within the deadline")
        .expect("the bus works")
}

async fn assert_quiet(subscription: &mut Box<dyn Subscription>) {
    if let Ok(delivery) = tokio::time::timeout(QUIET, subscription.next()).await {
        panic!("unexpected delivery: {delivery:?}");
    }
}

#[tokio::test]
async fn pending_counts_what_a_group_has_not_acked() {
    let test = fresh_bus().await;
    let bus = &test.bus;
    let mut subscription = bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    bus.publish("orders", &[ping(1), ping(2), ping(3)])
        .await
        .unwrap();
    assert_eq!(bus.pending("billing").await.unwrap(), 3);

    next(&mut subscription).await.ack().await.unwrap();
    let held = next(&mut subscription).await;
    assert_eq!(bus.pending("billing").await.unwrap(), 2);
    held.nack(Duration::from_secs(60), "later").await.unwrap();
    assert_eq!(bus.pending("billing").await.unwrap(), 2);
    assert_eq!(bus.pending("nobody").await.unwrap(), 0);
}

#[tokio::test]
async fn dead_letters_lists_the_groups_dead_letter_topic() {
    let test = fresh_bus().await;
    let bus = &test.bus;
    let mut subscription = bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let poison = ping(1);
    bus.publish("orders", std::slice::from_ref(&poison))
        .await
        .unwrap();
    next(&mut subscription)
        .await
        .dead_letter("bad payload")
        .await
        .unwrap();

    let dead = bus.dead_letters("billing").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, poison.id);
    assert_eq!(dead[0].deadlettererror.as_deref(), Some("bad payload"));
    assert_eq!(dead[0].deadlettertopic.as_deref(), Some("orders"));
    assert_eq!(bus.pending("billing").await.unwrap(), 0);
    assert!(bus.dead_letters("shipping").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lease_running_out_on_the_last_attempt_dead_letters_the_message() {
    let test = fresh_bus().await;
    let bus = &test.bus;
    let mut subscription = bus
        .subscribe("orders", "billing", options(2, Duration::from_millis(100)))
        .await
        .unwrap();
    bus.publish("orders", &[ping(1)]).await.unwrap();

    // A handler that never settles, as if it hung or took the process down each time.
    let first = next(&mut subscription).await;
    let second = next(&mut subscription).await;
    assert_eq!(second.attempt, 2);
    drop((first, second));
    let mut dead_letters = bus
        .subscribe(
            &dead_letter_topic("billing"),
            "operator",
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    // Looking for a third attempt is what notices the expired lease.
    assert_quiet(&mut subscription).await;

    let dead = next(&mut dead_letters).await;
    assert_eq!(dead.envelope.deadletterattempts, Some(2));
    let error = dead.envelope.deadlettererror.clone().unwrap_or_default();
    assert!(error.contains("not acknowledged"), "{error}");
    assert_eq!(bus.pending("billing").await.unwrap(), 0);
}

#[tokio::test]
async fn a_consumer_whose_lease_ran_out_cannot_nack_the_new_holders_delivery() {
    let test = fresh_bus().await;
    let bus = &test.bus;
    let mut hasty = bus
        .subscribe("orders", "billing", options(5, Duration::from_millis(100)))
        .await
        .unwrap();
    let mut patient = bus
        .subscribe("orders", "billing", options(5, Duration::from_secs(60)))
        .await
        .unwrap();
    bus.publish("orders", &[ping(1)]).await.unwrap();
    let stale = next(&mut hasty).await;
    let current = next(&mut patient).await;
    assert_eq!(current.attempt, 2);

    stale.nack(Duration::ZERO, "stale").await.unwrap();
    assert_quiet(&mut hasty).await;
    current.ack().await.unwrap();
    assert_eq!(bus.pending("billing").await.unwrap(), 0);
    assert!(bus.dead_letters("billing").await.unwrap().is_empty());
}

#[tokio::test]
async fn close_fails_every_later_operation_and_wakes_waiting_consumers() {
    let test = fresh_bus().await;
    let bus = test.bus.clone();
    let mut subscription = bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let waiting = tokio::spawn(async move { subscription.next().await });
    // Let the consumer start waiting; the outcome is the same if it has not yet.
    tokio::task::yield_now().await;

    bus.close().await;
    let woken = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("the waiting consumer wakes")
        .expect("the consumer task");
    assert!(matches!(woken, Err(BusError::Closed)), "{woken:?}");
    assert!(matches!(
        bus.publish("orders", &[ping(1)]).await,
        Err(BusError::Closed)
    ));
    assert!(matches!(bus.ping().await, Err(BusError::Closed)));
}

#[tokio::test]
async fn a_clean_reopen_keeps_groups_positions_and_messages() {
    let test = fresh_bus().await;
    let first = ping(1);
    let second = ping(2);
    {
        let bus = &test.bus;
        let mut subscription = bus
            .subscribe("orders", "billing", SubscribeOptions::default())
            .await
            .unwrap();
        bus.publish("orders", &[first.clone(), second.clone()])
            .await
            .unwrap();
        next(&mut subscription).await.ack().await.unwrap();
        bus.close().await;
    }

    let bus = EmbeddedBus::open(&test.path).await.unwrap();
    assert_eq!(bus.pending("billing").await.unwrap(), 1);
    // The id is still known, so a relay re-publishing after a crash duplicates nothing.
    bus.publish("orders", &[first]).await.unwrap();
    let mut subscription = bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let delivery = next(&mut subscription).await;
    assert_eq!(delivery.envelope.id, second.id);
    delivery.ack().await.unwrap();
    assert_quiet(&mut subscription).await;
    bus.close().await;
}

#[tokio::test]
async fn reopening_hands_out_in_flight_deliveries_at_once_not_after_the_ack_wait() {
    let test = fresh_bus().await;
    let sent = ping(1);
    {
        let bus = &test.bus;
        let mut subscription = bus
            .subscribe("orders", "billing", options(5, Duration::from_secs(3600)))
            .await
            .unwrap();
        bus.publish("orders", std::slice::from_ref(&sent))
            .await
            .unwrap();
        let _unsettled = next(&mut subscription).await;
        // No close: a killed process does not get to clean up.
    }

    let bus = EmbeddedBus::open(&test.path).await.unwrap();
    let mut subscription = bus
        .subscribe("orders", "billing", options(5, Duration::from_secs(3600)))
        .await
        .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(2), subscription.next())
        .await
        .expect("redelivered well before the hour-long ack wait")
        .unwrap();
    assert_eq!(delivery.envelope.id, sent.id);
    assert_eq!(delivery.attempt, 2);
    delivery.ack().await.unwrap();
}

#[tokio::test]
async fn prune_drops_only_old_messages_no_group_still_needs() {
    let test = fresh_bus().await;
    let bus = &test.bus;
    let mut subscription = bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let (acked, poison, waiting) = (ping(1), ping(2), ping(3));
    bus.publish("orders", &[acked.clone(), poison.clone(), waiting.clone()])
        .await
        .unwrap();
    next(&mut subscription).await.ack().await.unwrap();
    next(&mut subscription)
        .await
        .dead_letter("bad payload")
        .await
        .unwrap();

    assert_eq!(bus.prune(Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(bus.prune(Duration::ZERO).await.unwrap(), 2);
    assert_eq!(bus.dead_letters("billing").await.unwrap()[0].id, poison.id);
    assert_eq!(bus.pending("billing").await.unwrap(), 1);
    let delivery = next(&mut subscription).await;
    assert_eq!(delivery.envelope.id, waiting.id);
    delivery.ack().await.unwrap();
}

/// Groups `billing` and `shipping` on `orders`, and one message that shipping acknowledged
/// and billing dead-lettered.
async fn poison_dead_lettered_by_billing(
    bus: &EmbeddedBus,
) -> (Box<dyn Subscription>, Box<dyn Subscription>, Envelope) {
    let mut billing = bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let mut shipping = bus
        .subscribe("orders", "shipping", SubscribeOptions::default())
        .await
        .unwrap();
    let poison = ping(1);
    bus.publish("orders", std::slice::from_ref(&poison))
        .await
        .unwrap();
    next(&mut shipping).await.ack().await.unwrap();
    next(&mut billing)
        .await
        .dead_letter("downstream was down")
        .await
        .unwrap();
    (billing, shipping, poison)
}

#[tokio::test]
async fn replaying_dead_letters_hands_them_back_to_their_group_only() {
    let test = fresh_bus().await;
    let bus = &test.bus;
    let (mut billing, mut shipping, poison) = poison_dead_lettered_by_billing(bus).await;
    assert_eq!(
        bus.dead_letter_counts().await.unwrap(),
        vec![("billing".to_owned(), 1)]
    );

    // An operator tool attaches beside the owner and replays.
    let operator = EmbeddedBus::attach(&test.path).await.unwrap();
    assert_eq!(operator.replay_dead_letters("billing").await.unwrap(), 1);
    operator.close().await;

    let again = next(&mut billing).await;
    assert_eq!(again.envelope.id, poison.id);
    assert_eq!(
        again.attempt, 1,
        "a replay starts a fresh round of attempts"
    );
    assert_eq!(again.envelope.deadlettererror, None);
    again.ack().await.unwrap();
    assert!(bus.dead_letters("billing").await.unwrap().is_empty());
    assert_quiet(&mut shipping).await;
    assert_eq!(bus.replay_dead_letters("billing").await.unwrap(), 0);
}

#[tokio::test]
async fn a_pruned_dead_letter_is_stored_again_for_its_group_only() {
    let test = fresh_bus().await;
    let bus = &test.bus;
    let (mut billing, mut shipping, poison) = poison_dead_lettered_by_billing(bus).await;
    // No group still needs the original: pruning removes it, the dead letter stays.
    assert_eq!(bus.prune(Duration::ZERO).await.unwrap(), 1);

    assert_eq!(bus.replay_dead_letters("billing").await.unwrap(), 1);
    let again = next(&mut billing).await;
    assert_eq!(again.envelope.id, poison.id);
    again.ack().await.unwrap();
    assert_quiet(&mut shipping).await;
    assert_eq!(bus.pending("shipping").await.unwrap(), 0);
    assert_eq!(bus.pending("billing").await.unwrap(), 0);
}

#[tokio::test]
async fn a_batch_ack_is_written_with_the_next_claim_or_when_the_consumer_goes() {
    let test = fresh_bus().await;
    let bus = &test.bus;
    let ack_wait = Duration::from_millis(200);
    let mut consumer = bus
        .subscribe("orders", "billing", options(5, ack_wait))
        .await
        .unwrap();
    bus.publish("orders", &[ping(1), ping(2), ping(3)])
        .await
        .unwrap();
    let mut batch = Vec::new();
    while batch.len() < 3 {
        let more = tokio::time::timeout(DEADLINE, consumer.next_batch(3))
            .await
            .expect("a batch within the deadline")
            .unwrap();
        batch.extend(more);
    }
    consumer.ack_all(batch).await.unwrap();
    // The consumer's next claim deletes the acknowledged rows in the same query.
    assert_quiet(&mut consumer).await;
    assert_eq!(bus.pending("billing").await.unwrap(), 0);

    bus.publish("orders", &[ping(4)]).await.unwrap();
    let last = next(&mut consumer).await;
    consumer.ack_all(vec![last]).await.unwrap();
    // A consumer that goes away after its last ack still writes it.
    drop(consumer);
    testkit::eventually(
        DEADLINE,
        "the last acknowledgement to be written",
        || async { (bus.pending("billing").await.unwrap() == 0).then_some(()) },
    )
    .await;
    let mut sibling = bus
        .subscribe("orders", "billing", options(5, ack_wait))
        .await
        .unwrap();
    // Nothing comes back, not even once the acknowledged deliveries' leases have run out.
    if let Ok(delivery) = tokio::time::timeout(ack_wait * 3, sibling.next()).await {
        panic!("an acknowledged delivery came back: {delivery:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_to_several_topics_each_arrive_once() {
    let test = fresh_bus().await;
    let bus = test.bus.clone();
    let topics = ["orders", "payments", "refunds"];
    let mut consumers = Vec::new();
    for topic in topics {
        consumers.push(
            bus.subscribe(topic, "audit", SubscribeOptions::default())
                .await
                .unwrap(),
        );
    }
    // Publishers that overlap share commits; every message must land on its own topic once.
    let mut publishers = Vec::new();
    for n in 0..30u32 {
        let bus = bus.clone();
        let topic = topics[n as usize % topics.len()];
        publishers.push(tokio::spawn(async move {
            let message = ping(n);
            bus.publish(topic, std::slice::from_ref(&message))
                .await
                .unwrap();
            // Published twice: the second copy is dropped.
            bus.publish(topic, std::slice::from_ref(&message))
                .await
                .unwrap();
            (topic, message.id)
        }));
    }
    let mut sent = std::collections::BTreeSet::new();
    for publisher in publishers {
        sent.insert(publisher.await.unwrap());
    }
    let mut got = std::collections::BTreeSet::new();
    for (topic, consumer) in topics.iter().zip(consumers.iter_mut()) {
        for _ in 0..10 {
            let delivery = next(consumer).await;
            assert!(
                got.insert((*topic, delivery.envelope.id)),
                "delivered twice"
            );
            delivery.ack().await.unwrap();
        }
        assert_quiet(consumer).await;
    }
    assert_eq!(got, sent);
}

#[tokio::test]
async fn attaching_to_a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.db");
    assert!(matches!(
        EmbeddedBus::attach(&missing).await,
        Err(BusError::Unavailable(_))
    ));
    assert!(!missing.exists());
}
