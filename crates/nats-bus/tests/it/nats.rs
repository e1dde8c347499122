//! What only the NATS bus does: several clients on one prefix, the streams and consumers it
//! lays out, leases that run out for the last time, `close`, bad settings, and a broker that
//! goes away and comes back.

use std::collections::HashSet;
use std::time::Duration;

use kernel::bus::dead_letter_topic;
use kernel::{Bus, BusError, Delivery, Envelope, SubscribeOptions, Subscription};
use nats_bus::{NatsBus, NatsBusConfig};
use testkit::bus::ping;

use crate::helpers::{connect, fresh_prefix, nats_url, PrivateServer, TestNats};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_in_one_group_share_the_messages() {
    let test = TestNats::start().await;
    let other = test.another_client().await;
    let mut first = test
        .bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let mut second = other
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let sent: Vec<Envelope> = (0..10).map(ping).collect();
    test.bus.publish("orders", &sent).await.unwrap();

    // While one client holds a message, the other gets another one.
    let held = next(&mut first).await;
    let other_one = next(&mut second).await;
    assert_ne!(held.envelope.id, other_one.envelope.id);
    let mut seen = vec![held.envelope.id, other_one.envelope.id];
    held.ack().await.unwrap();
    other_one.ack().await.unwrap();
    while seen.len() < sent.len() {
        let delivery = tokio::select! {
            delivery = next(&mut first) => delivery,
            delivery = next(&mut second) => delivery,
        };
        seen.push(delivery.envelope.id);
        delivery.ack().await.unwrap();
    }
    let distinct: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), sent.len(), "a message was handed out twice");
    assert_eq!(distinct, sent.iter().map(|envelope| envelope.id).collect());
    assert_quiet(&mut first).await;
    assert_quiet(&mut second).await;
    other.close().await;
    test.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_published_by_two_clients_is_delivered_once() {
    let test = TestNats::start().await;
    let other = test.another_client().await;
    let mut subscription = test
        .bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let (event, later) = (ping(1), ping(2));
    test.bus
        .publish("orders", std::slice::from_ref(&event))
        .await
        .unwrap();
    // A second relay replica publishing the same outbox row.
    other
        .publish("orders", &[event.clone(), later.clone()])
        .await
        .unwrap();

    let first = next(&mut subscription).await;
    assert_eq!(first.envelope.id, event.id);
    first.ack().await.unwrap();
    let second = next(&mut subscription).await;
    assert_eq!(second.envelope.id, later.id);
    second.ack().await.unwrap();
    assert_quiet(&mut subscription).await;
    other.close().await;
    test.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_streams_and_groups_durable_consumers() {
    let test = TestNats::start().await;
    let _subscription = test
        .bus
        .subscribe("orders", "billing", options(4, Duration::from_secs(7)))
        .await
        .unwrap();
    test.bus.publish("billing.dlq", &[ping(1)]).await.unwrap();

    let client = async_nats::connect(&test.url).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut orders = jetstream
        .get_stream(format!("{}_orders", test.prefix))
        .await
        .unwrap();
    let info = orders.info().await.unwrap().clone();
    assert_eq!(
        info.config.subjects,
        vec![format!("{}.orders", test.prefix)]
    );
    assert_eq!(info.config.max_age, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    let consumer = orders.consumer_info("billing").await.unwrap().clone();
    assert_eq!(consumer.config.ack_wait, Duration::from_secs(7));
    assert_eq!(
        consumer.config.ack_policy,
        async_nats::jetstream::consumer::AckPolicy::Explicit
    );
    assert_eq!(
        consumer.config.deliver_policy,
        async_nats::jetstream::consumer::DeliverPolicy::All
    );
    // A deployment that changes a group's settings updates its consumer in place.
    let _again = test
        .bus
        .subscribe("orders", "billing", options(4, Duration::from_secs(9)))
        .await
        .unwrap();
    let consumer = orders.consumer_info("billing").await.unwrap().clone();
    assert_eq!(consumer.config.ack_wait, Duration::from_secs(9));

    // A dead-letter topic keeps its messages until an operator removes them, and its stream name
    // is sanitized (no '.').
    let names: Vec<String> = futures_util::TryStreamExt::try_collect(jetstream.stream_names())
        .await
        .unwrap();
    let dead = names
        .iter()
        .find(|name| name.starts_with(&format!("{}_billing_dlq_", test.prefix)))
        .expect("the dead-letter topic's stream");
    let mut dead = jetstream.get_stream(dead).await.unwrap();
    assert_eq!(dead.info().await.unwrap().config.max_age, Duration::ZERO);
    test.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_running_out_on_the_last_attempt_dead_letters_the_message() {
    let test = TestNats::start().await;
    let bus = &test.bus;
    let mut subscription = bus
        .subscribe("orders", "billing", options(2, Duration::from_millis(300)))
        .await
        .unwrap();
    let mut dead_letters = bus
        .subscribe(
            &dead_letter_topic("billing"),
            "operator",
            SubscribeOptions::default(),
        )
        .await
        .unwrap();
    let sent = ping(1);
    bus.publish("orders", std::slice::from_ref(&sent))
        .await
        .unwrap();

    // A handler that never settles, as if it hung or took the process down each time.
    let first = next(&mut subscription).await;
    let second = next(&mut subscription).await;
    assert_eq!(second.attempt, 2);
    drop((first, second));
    // The consumer keeps looking, as a consumer loop does: the third delivery the server makes
    // is not handed out but dead-lettered.
    let looking = tokio::spawn(async move {
        let third = tokio::time::timeout(Duration::from_secs(3), subscription.next()).await;
        (
            third.map(|delivery| delivery.map(|delivery| delivery.attempt)),
            subscription,
        )
    });

    let dead = next(&mut dead_letters).await;
    assert_eq!(dead.envelope.id, sent.id);
    assert_eq!(dead.envelope.deadletterattempts, Some(2));
    assert_eq!(dead.envelope.deadlettertopic.as_deref(), Some("orders"));
    let error = dead.envelope.deadlettererror.clone().unwrap_or_default();
    assert!(error.contains("not acknowledged"), "{error}");
    dead.ack().await.unwrap();
    let (third, mut subscription) = looking.await.expect("the consumer task");
    assert!(third.is_err(), "a third attempt was handed out: {third:?}");
    assert_quiet(&mut subscription).await;
    test.bus.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_fails_every_later_operation_and_wakes_waiting_consumers() {
    let test = TestNats::start().await;
    let bus = test.bus.clone();
    let mut subscription = bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    bus.publish("orders", &[ping(1)]).await.unwrap();
    let delivery = next(&mut subscription).await;
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
        bus.publish("orders", &[ping(2)]).await,
        Err(BusError::Closed)
    ));
    assert!(matches!(
        bus.subscribe("orders", "billing", SubscribeOptions::default())
            .await
            .map(|_| ()),
        Err(BusError::Closed)
    ));
    assert!(matches!(bus.ping().await, Err(BusError::Closed)));
    assert!(matches!(delivery.ack().await, Err(BusError::Closed)));
}

#[tokio::test]
async fn an_unreachable_server_or_bad_settings_fail_to_connect() {
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let unreachable = NatsBus::connect(&format!("nats://127.0.0.1:{free_port}"), "alpes").await;
    assert!(
        matches!(unreachable, Err(BusError::Unavailable(_))),
        "{unreachable:?}"
    );

    let url = nats_url();
    for prefix in ["", "a.b", "a*", "a b"] {
        let refused = NatsBus::connect(&url, prefix).await;
        assert!(
            matches!(refused, Err(BusError::Unavailable(_))),
            "prefix {prefix:?}: {refused:?}"
        );
    }
    let mut config = NatsBusConfig::new(&fresh_prefix());
    config.max_age = Duration::from_secs(60);
    assert!(matches!(
        NatsBus::connect_with(&url, config).await,
        Err(BusError::Unavailable(_))
    ));

    let test = TestNats::start().await;
    for topic in ["", "a.*", "a.>", "a..b", "a b"] {
        assert!(
            matches!(
                test.bus.publish(topic, &[ping(1)]).await,
                Err(BusError::Unavailable(_))
            ),
            "topic {topic:?} was accepted"
        );
    }
    test.bus.close().await;
}

/// The broker dies (kill -9) and comes back on the same address and store: the client
/// reconnects by itself, a waiting subscription keeps working, and nothing acked comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_keeps_working_across_a_broker_restart() {
    let mut server = PrivateServer::start().await;
    let bus = connect(&server.url, &fresh_prefix()).await;
    let mut subscription = bus
        .subscribe("orders", "billing", SubscribeOptions::default())
        .await
        .unwrap();
    let before = ping(1);
    bus.publish("orders", std::slice::from_ref(&before))
        .await
        .unwrap();
    let delivery = next(&mut subscription).await;
    assert_eq!(delivery.envelope.id, before.id);
    delivery.ack().await.unwrap();

    server.kill().await;
    assert!(
        bus.ping().await.is_err(),
        "ping answered with the broker down"
    );
    let waiting = tokio::spawn(async move {
        let delivery = tokio::time::timeout(Duration::from_secs(30), subscription.next())
            .await
            .expect("a delivery after the restart")
            .expect("the subscription survives the restart");
        let envelope = delivery.envelope.clone();
        delivery.ack().await.expect("ack after the restart");
        (envelope, subscription)
    });
    server.restart().await;

    // Publishing fails until the client has reconnected; a relay retries, and so does this.
    let after = ping(2);
    testkit::eventually(
        Duration::from_secs(30),
        "publishing to succeed after the restart",
        || async {
            bus.publish("orders", std::slice::from_ref(&after))
                .await
                .ok()
        },
    )
    .await;
    let (received, mut subscription) = waiting.await.expect("the consumer task");
    assert_eq!(received.id, after.id);
    assert_quiet(&mut subscription).await;
    bus.ping().await.expect("ping after the restart");
    bus.close().await;
}
