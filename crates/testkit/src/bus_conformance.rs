//! The `Bus` conformance suite: one `pub async fn` per behaviour of the port, run unchanged
//! against every adapter (the embedded bus, NATS JetStream). Each check panics on a violation,
//! names its topics and groups with a fresh uuid so checks can share one bus, and waits with
//! deadlines, never with sleeps.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kernel::bus::dead_letter_topic;
use kernel::{
    Bus, Delivery, Envelope, EnvelopeContext, EnvelopeText, IntegrationEvent, SubscribeOptions,
    Subscription,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long a check waits for a delivery that must come.
const DEADLINE: Duration = Duration::from_secs(10);
/// How long a check listens to show that nothing (more) comes.
const QUIET: Duration = Duration::from_millis(300);

/// The payload the suite publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub n: u32,
}

impl IntegrationEvent for Probe {
    const TYPE: &'static str = "ConformanceProbe";
    const TOPIC: &'static str = "conformance";
    const VERSION: u32 = 1;

    fn subject(&self) -> String {
        self.n.to_string()
    }
}

/// A name no other check (or earlier run against the same broker) uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

fn probe(n: u32) -> Envelope {
    Envelope::wrap("conformance", &Probe { n }, EnvelopeContext::default())
}

fn probes(count: u32) -> Vec<Envelope> {
    (0..count).map(probe).collect()
}

fn options(max_attempts: u32, ack_wait: Duration) -> SubscribeOptions {
    SubscribeOptions {
        max_attempts,
        ack_wait,
    }
}

/// Patient enough that no check sees a redelivery it did not ask for.
fn patient() -> SubscribeOptions {
    options(5, Duration::from_secs(30))
}

async fn subscribe(
    bus: &dyn Bus,
    topic: &str,
    group: &str,
    options: SubscribeOptions,
) -> Box<dyn Subscription> {
    bus.subscribe(topic, group, options)
        .await
        .unwrap_or_else(|error| panic!("subscribing {group} to {topic} failed: {error}"))
}

async fn publish(bus: &dyn Bus, topic: &str, envelopes: &[Envelope]) {
    bus.publish(topic, envelopes)
        .await
        .unwrap_or_else(|error| panic!("publishing to {topic} failed: {error}"));
}

/// The next delivery, which must come within the deadline.
async fn next(subscription: &mut Box<dyn Subscription>, what: &str) -> Delivery {
    match tokio::time::timeout(DEADLINE, subscription.next()).await {
        Ok(Ok(delivery)) => delivery,
        Ok(Err(error)) => panic!("{what}: the bus failed: {error}"),
        Err(_) => panic!("{what}: nothing delivered within {DEADLINE:?}"),
    }
}

/// Asserts that nothing is delivered for `QUIET` (or `window`, when longer).
async fn assert_quiet(subscription: &mut Box<dyn Subscription>, window: Duration, what: &str) {
    match tokio::time::timeout(window.max(QUIET), subscription.next()).await {
        Err(_) => {}
        Ok(Ok(delivery)) => panic!("{what}: unexpected delivery {delivery:?}"),
        Ok(Err(error)) => panic!("{what}: the bus failed: {error}"),
    }
}

async fn ack(delivery: Delivery) {
    delivery.ack().await.expect("ack");
}

/// Takes `count` deliveries, acking each, and returns their ids in delivery order.
async fn take_and_ack(
    subscription: &mut Box<dyn Subscription>,
    count: usize,
    what: &str,
) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let delivery = next(subscription, what).await;
        ids.push(delivery.envelope.id);
        ack(delivery).await;
    }
    ids
}

fn ids(envelopes: &[Envelope]) -> Vec<Uuid> {
    envelopes.iter().map(|envelope| envelope.id).collect()
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

/// `ping` answers on a healthy bus.
pub async fn ping_succeeds(bus: Arc<dyn Bus>) {
    bus.ping().await.expect("ping");
}

/// Separate groups each get every message of the topic.
pub async fn publish_reaches_every_group(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let mut first = subscribe(bus.as_ref(), &topic, &unique("first"), patient()).await;
    let mut second = subscribe(bus.as_ref(), &topic, &unique("second"), patient()).await;
    let sent = probes(3);
    publish(bus.as_ref(), &topic, &sent).await;

    for (name, subscription) in [("first group", &mut first), ("second group", &mut second)] {
        let got = take_and_ack(subscription, sent.len(), name).await;
        assert_eq!(sorted(got), sorted(ids(&sent)), "{name} got other messages");
        assert_quiet(subscription, QUIET, name).await;
    }
}

/// A delivery carries the envelope as published, its topic and attempt 1.
pub async fn delivery_carries_the_published_envelope(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let mut subscription = subscribe(bus.as_ref(), &topic, &unique("group"), patient()).await;
    let sent = probe(7);
    publish(bus.as_ref(), &topic, std::slice::from_ref(&sent)).await;

    let delivery = next(&mut subscription, "the message").await;
    assert_eq!(delivery.envelope, sent);
    assert_eq!(delivery.topic, topic);
    assert_eq!(delivery.attempt, 1);
    assert_eq!(
        delivery.envelope.decode::<Probe>().expect("decode"),
        Probe { n: 7 }
    );
    ack(delivery).await;
}

/// Envelopes published together arrive byte for byte, whatever their text holds: quotes,
/// backslashes, control characters and characters of several bytes in the subject and the
/// data (an adapter that cuts texts out of a batch by character instead of by byte, or
/// escapes them once too often or too few, garbles them).
pub async fn envelopes_published_together_arrive_byte_for_byte(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let mut subscription = subscribe(bus.as_ref(), &topic, &unique("group"), patient()).await;
    let texts = [
        "comillas \"dobles\", barra \\ y salto\nde línea",
        "ñandú, 東京, 🦙, \u{0001} y \t",
        "",
        "\\\"",
    ];
    let sent: Vec<Envelope> = texts
        .iter()
        .zip(probes(texts.len() as u32))
        .map(|(text, mut envelope)| {
            envelope.subject = (*text).to_owned();
            envelope.data = serde_json::json!({ "n": 0, "texto": text }).into();
            envelope
        })
        .collect();
    publish(bus.as_ref(), &topic, &sent).await;
    let mut got = Vec::new();
    for _ in 0..sent.len() {
        let delivery = next(&mut subscription, "an envelope of the batch").await;
        got.push(delivery.envelope.clone());
        ack(delivery).await;
    }
    assert_eq!(got, sent);
}

/// Envelopes published as the text they are stored as (what the outbox relay does) arrive as
/// the envelopes that text holds, on their runs' topics, in order.
pub async fn envelopes_published_as_text_arrive_as_envelopes(bus: Arc<dyn Bus>) {
    let group = unique("group");
    let (left_topic, right_topic) = (unique("left"), unique("right"));
    let mut left = subscribe(bus.as_ref(), &left_topic, &group, patient()).await;
    let mut right = subscribe(bus.as_ref(), &right_topic, &group, patient()).await;
    let mut sent = probes(3);
    sent[1].subject = "ñandú \"entre comillas\" 🦙".to_owned();
    let texts: Vec<String> = sent
        .iter()
        .map(|envelope| serde_json::to_string(envelope).expect("envelopes serialize"))
        .collect();
    let text = |i: usize| EnvelopeText {
        id: sent[i].id,
        text: &texts[i],
    };
    bus.publish_texts(&[
        (&left_topic, &[text(0), text(1)]),
        (&right_topic, &[text(2)]),
    ])
    .await
    .expect("publish the texts");
    for expected in &sent[0..2] {
        let delivery = next(&mut left, "left topic").await;
        assert_eq!(&delivery.envelope, expected);
        ack(delivery).await;
    }
    let delivery = next(&mut right, "right topic").await;
    assert_eq!(delivery.envelope, sent[2]);
    ack(delivery).await;
    assert_quiet(&mut left, QUIET, "left topic").await;
}

/// An acked message is never handed out again, not even after its ack wait, nor to a new
/// consumer of the same group.
pub async fn acked_message_is_not_redelivered(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let group = unique("group");
    let ack_wait = Duration::from_millis(300);
    let mut subscription = subscribe(bus.as_ref(), &topic, &group, options(5, ack_wait)).await;
    publish(bus.as_ref(), &topic, &[probe(1)]).await;

    ack(next(&mut subscription, "the message").await).await;
    assert_quiet(&mut subscription, ack_wait * 3, "after the ack").await;
    let mut again = subscribe(bus.as_ref(), &topic, &group, options(5, ack_wait)).await;
    assert_quiet(&mut again, QUIET, "a new consumer of the group").await;
}

/// `next_batch` hands out at least one and at most `max` deliveries, every message exactly once
/// across batches; `ack_all` settles a batch so that none of it comes back after its ack wait.
pub async fn batches_are_taken_and_acked_together(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let group = unique("group");
    let ack_wait = Duration::from_millis(500);
    let mut subscription = subscribe(bus.as_ref(), &topic, &group, options(5, ack_wait)).await;
    let sent = probes(20);
    publish(bus.as_ref(), &topic, &sent).await;

    let mut got = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while got.len() < sent.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let batch = match tokio::time::timeout(left, subscription.next_batch(8)).await {
            Ok(Ok(batch)) => batch,
            Ok(Err(error)) => panic!("a batch: the bus failed: {error}"),
            Err(_) => panic!(
                "only {} of {} delivered within {DEADLINE:?}",
                got.len(),
                sent.len()
            ),
        };
        assert!(
            (1..=8).contains(&batch.len()),
            "a batch of {} deliveries, asked for at most 8",
            batch.len()
        );
        got.extend(batch.iter().map(|delivery| delivery.envelope.id));
        subscription.ack_all(batch).await.expect("ack_all");
    }
    assert_eq!(
        sorted(got),
        sorted(ids(&sent)),
        "every message exactly once"
    );
    assert_quiet(&mut subscription, ack_wait * 3, "after acking every batch").await;
}

/// A nacked message comes back after the delay, with its attempt incremented.
pub async fn nack_redelivers_after_the_delay(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let mut subscription = subscribe(bus.as_ref(), &topic, &unique("group"), patient()).await;
    let sent = probe(1);
    publish(bus.as_ref(), &topic, std::slice::from_ref(&sent)).await;

    let first = next(&mut subscription, "first attempt").await;
    assert_eq!(first.attempt, 1);
    let delay = Duration::from_millis(400);
    let nacked_at = Instant::now();
    first.nack(delay, "try later").await.expect("nack");

    let second = next(&mut subscription, "second attempt").await;
    // A little slack for brokers whose timers have coarser resolution than ours.
    assert!(
        nacked_at.elapsed() >= delay - Duration::from_millis(100),
        "redelivered after {:?}, before the {delay:?} delay",
        nacked_at.elapsed()
    );
    assert_eq!(second.envelope.id, sent.id);
    assert_eq!(second.attempt, 2);
    ack(second).await;
    assert_quiet(&mut subscription, QUIET, "after the ack").await;
}

/// A delivery neither acked nor nacked is handed out again once its ack wait runs out.
pub async fn unsettled_delivery_is_redelivered_after_ack_wait(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let ack_wait = Duration::from_millis(500);
    let mut subscription =
        subscribe(bus.as_ref(), &topic, &unique("group"), options(5, ack_wait)).await;
    let sent = probe(1);
    publish(bus.as_ref(), &topic, std::slice::from_ref(&sent)).await;

    let first = next(&mut subscription, "first attempt").await;
    let taken_at = Instant::now();
    let second = next(&mut subscription, "redelivery after the ack wait").await;
    assert!(
        taken_at.elapsed() >= ack_wait - Duration::from_millis(100),
        "redelivered after {:?}, within the {ack_wait:?} ack wait",
        taken_at.elapsed()
    );
    assert_eq!(second.envelope.id, sent.id);
    assert_eq!(second.attempt, 2);
    ack(second).await;
    drop(first);
    assert_quiet(&mut subscription, ack_wait, "after the ack").await;
}

/// Consumers of one group compete: a message held by one is not handed to another, each message
/// is handled once across them, and all are handled.
pub async fn competing_consumers_share_a_group(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let group = unique("group");
    let mut first = subscribe(bus.as_ref(), &topic, &group, patient()).await;
    let mut second = subscribe(bus.as_ref(), &topic, &group, patient()).await;
    let sent = probes(20);
    let total = sent.len();
    publish(bus.as_ref(), &topic, &sent).await;

    // While the first consumer holds a message, the second gets another one.
    let held = next(&mut first, "first consumer").await;
    let other = next(&mut second, "second consumer, while the first holds one").await;
    assert_ne!(held.envelope.id, other.envelope.id);
    let seen = Arc::new(Mutex::new(vec![held.envelope.id, other.envelope.id]));
    ack(held).await;
    ack(other).await;

    let drain = |mut subscription: Box<dyn Subscription>, seen: Arc<Mutex<Vec<Uuid>>>| async move {
        let started = Instant::now();
        loop {
            if seen.lock().expect("seen lock").len() >= total {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "competing consumers did not handle every message within {DEADLINE:?}"
            );
            if let Ok(delivery) = tokio::time::timeout(QUIET, subscription.next()).await {
                let delivery = delivery.expect("the bus failed");
                seen.lock().expect("seen lock").push(delivery.envelope.id);
                ack(delivery).await;
            }
        }
    };
    let tasks = [
        tokio::spawn(drain(first, seen.clone())),
        tokio::spawn(drain(second, seen.clone())),
    ];
    for task in tasks {
        task.await.expect("a consumer task panicked");
    }

    let seen = seen.lock().expect("seen lock").clone();
    let unique_seen: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique_seen.len(), seen.len(), "a message was handled twice");
    assert_eq!(sorted(seen), sorted(ids(&sent)));
    let mut late = subscribe(bus.as_ref(), &topic, &group, patient()).await;
    assert_quiet(&mut late, QUIET, "after every message was acked").await;
}

/// Publishing an id the topic already holds is a no-op, alone or inside a batch.
pub async fn duplicate_publish_is_ignored(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let mut subscription = subscribe(bus.as_ref(), &topic, &unique("group"), patient()).await;
    let first = probe(1);
    let second = probe(2);
    publish(bus.as_ref(), &topic, std::slice::from_ref(&first)).await;
    publish(bus.as_ref(), &topic, &[first.clone(), second.clone()]).await;
    publish(bus.as_ref(), &topic, std::slice::from_ref(&first)).await;

    let got = take_and_ack(&mut subscription, 2, "the two distinct messages").await;
    assert_eq!(sorted(got), sorted(vec![first.id, second.id]));
    assert_quiet(&mut subscription, QUIET, "after the duplicates").await;

    // A group created later also sees each message once.
    let mut late = subscribe(bus.as_ref(), &topic, &unique("late"), patient()).await;
    let got = take_and_ack(&mut late, 2, "a later group").await;
    assert_eq!(sorted(got), sorted(vec![first.id, second.id]));
    assert_quiet(&mut late, QUIET, "a later group, after the duplicates").await;
}

/// A new group starts from the oldest message the topic retains, in publication order.
pub async fn new_group_starts_from_the_oldest_message(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let sent = probes(3);
    publish(bus.as_ref(), &topic, &sent[..1]).await;
    publish(bus.as_ref(), &topic, &sent[1..]).await;

    let mut subscription = subscribe(bus.as_ref(), &topic, &unique("group"), patient()).await;
    let got = take_and_ack(&mut subscription, sent.len(), "messages published before").await;
    assert_eq!(got, ids(&sent));
    assert_quiet(&mut subscription, QUIET, "after the backlog").await;
}

/// One group consuming two topics gets each topic's messages only on that topic's subscription.
pub async fn one_group_keeps_its_topics_apart(bus: Arc<dyn Bus>) {
    let group = unique("group");
    let (left_topic, right_topic) = (unique("left"), unique("right"));
    let mut left = subscribe(bus.as_ref(), &left_topic, &group, patient()).await;
    let mut right = subscribe(bus.as_ref(), &right_topic, &group, patient()).await;
    let (left_sent, right_sent) = (probe(1), probe(2));
    publish(bus.as_ref(), &left_topic, std::slice::from_ref(&left_sent)).await;
    publish(
        bus.as_ref(),
        &right_topic,
        std::slice::from_ref(&right_sent),
    )
    .await;

    let delivery = next(&mut left, "left topic").await;
    assert_eq!(
        (delivery.envelope.id, &*delivery.topic),
        (left_sent.id, &*left_topic)
    );
    ack(delivery).await;
    let delivery = next(&mut right, "right topic").await;
    assert_eq!(
        (delivery.envelope.id, &*delivery.topic),
        (right_sent.id, &*right_topic)
    );
    ack(delivery).await;
    assert_quiet(&mut left, QUIET, "left topic").await;
    assert_quiet(&mut right, QUIET, "right topic").await;
}

/// Runs published in one call each land on their own topic, in order, as separate publishes
/// would; an empty run is nothing.
pub async fn runs_published_together_land_on_their_topics_in_order(bus: Arc<dyn Bus>) {
    let group = unique("group");
    let (left_topic, right_topic) = (unique("left"), unique("right"));
    let mut left = subscribe(bus.as_ref(), &left_topic, &group, patient()).await;
    let mut right = subscribe(bus.as_ref(), &right_topic, &group, patient()).await;
    let sent = probes(5);
    bus.publish_runs(&[
        (&left_topic, &sent[0..2]),
        (&right_topic, &sent[2..3]),
        (&right_topic, &[]),
        (&left_topic, &sent[3..5]),
    ])
    .await
    .expect("publish the runs");
    let mut got = Vec::new();
    for _ in 0..4 {
        let delivery = next(&mut left, "left topic").await;
        got.push(delivery.envelope.id);
        ack(delivery).await;
    }
    assert_eq!(
        got,
        ids(&[
            sent[0].clone(),
            sent[1].clone(),
            sent[3].clone(),
            sent[4].clone()
        ])
    );
    let delivery = next(&mut right, "right topic").await;
    assert_eq!(delivery.envelope.id, sent[2].id);
    ack(delivery).await;
    assert_quiet(&mut left, QUIET, "left topic").await;
    assert_quiet(&mut right, QUIET, "right topic").await;
}

/// After `max_attempts` nacks the message goes to the group's dead-letter topic, carrying the
/// last error, the topic it came from and the attempts; it is not handed out again.
pub async fn nack_dead_letters_after_max_attempts(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let group = unique("group");
    let max_attempts = 3;
    let mut dead_letters = subscribe(
        bus.as_ref(),
        &dead_letter_topic(&group),
        &unique("dlq-reader"),
        patient(),
    )
    .await;
    let mut subscription = subscribe(
        bus.as_ref(),
        &topic,
        &group,
        options(max_attempts, Duration::from_secs(30)),
    )
    .await;
    let sent = probe(1);
    publish(bus.as_ref(), &topic, std::slice::from_ref(&sent)).await;

    for attempt in 1..=max_attempts {
        let delivery = next(&mut subscription, "an attempt").await;
        assert_eq!(delivery.attempt, attempt);
        delivery
            .nack(Duration::ZERO, &format!("failure {attempt}"))
            .await
            .expect("nack");
    }
    assert_quiet(&mut subscription, QUIET, "after the last attempt").await;

    let dead = next(&mut dead_letters, "the dead-lettered copy").await;
    assert_eq!(dead.envelope.id, sent.id);
    assert_eq!(dead.envelope.data, sent.data);
    assert_eq!(
        dead.envelope.deadlettertopic.as_deref(),
        Some(topic.as_str())
    );
    assert_eq!(
        dead.envelope.deadlettererror.as_deref(),
        Some(format!("failure {max_attempts}").as_str())
    );
    assert_eq!(dead.envelope.deadletterattempts, Some(max_attempts));
    ack(dead).await;
    assert_quiet(&mut dead_letters, QUIET, "a single dead letter").await;
}

/// An explicit dead-letter sends the message to the dead-letter topic at once, whatever
/// attempts remain.
pub async fn dead_letter_sends_the_message_at_once(bus: Arc<dyn Bus>) {
    let topic = unique("topic");
    let group = unique("group");
    let mut subscription = subscribe(bus.as_ref(), &topic, &group, patient()).await;
    let sent = probe(1);
    publish(bus.as_ref(), &topic, std::slice::from_ref(&sent)).await;

    let delivery = next(&mut subscription, "the poison message").await;
    delivery.dead_letter("poison").await.expect("dead letter");
    assert_quiet(&mut subscription, QUIET, "after dead-lettering").await;

    // Created after the fact: a new group starts from the oldest message, so it sees it.
    let mut dead_letters = subscribe(
        bus.as_ref(),
        &dead_letter_topic(&group),
        &unique("dlq-reader"),
        patient(),
    )
    .await;
    let dead = next(&mut dead_letters, "the dead-lettered copy").await;
    assert_eq!(dead.envelope.id, sent.id);
    assert_eq!(
        dead.envelope.deadlettertopic.as_deref(),
        Some(topic.as_str())
    );
    assert_eq!(dead.envelope.deadlettererror.as_deref(), Some("poison"));
    assert_eq!(dead.envelope.deadletterattempts, Some(1));
    ack(dead).await;
}

/// What a crash leaves: `open` returns a bus over the same durable state each time it is called
/// (the same file, or the same broker). The check drops every handle on the first bus without
/// settling a delivery it holds, then opens it again: the unacked message is delivered again,
/// the acked one is not, and a group that subscribed before gets every message published before.
pub async fn unacked_messages_survive_a_restart<Open, Opened>(open: Open)
where
    Open: Fn() -> Opened,
    Opened: Future<Output = Arc<dyn Bus>>,
{
    let topic = unique("topic");
    let group = unique("group");
    let idle_group = unique("idle");
    // Short, so that a broker which learns of the crash only by the lease running out still
    // redelivers well within the deadline.
    let restart_options = || options(5, Duration::from_secs(1));
    let sent = probes(3);
    let (acked, held, untouched) = (sent[0].id, sent[1].id, sent[2].id);

    let bus = open().await;
    let mut subscription = subscribe(bus.as_ref(), &topic, &group, restart_options()).await;
    let idle = subscribe(bus.as_ref(), &topic, &idle_group, restart_options()).await;
    publish(bus.as_ref(), &topic, &sent).await;
    let first = next(&mut subscription, "before the restart").await;
    assert_eq!(first.envelope.id, acked);
    ack(first).await;
    let unsettled = next(&mut subscription, "before the restart").await;
    assert_eq!(unsettled.envelope.id, held);
    drop((unsettled, subscription, idle, bus));

    let bus = open().await;
    let mut subscription = subscribe(bus.as_ref(), &topic, &group, restart_options()).await;
    let mut after = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut subscription, "after the restart").await;
        if delivery.envelope.id == held {
            assert!(delivery.attempt >= 2, "the held message kept attempt 1");
        }
        after.push(delivery.envelope.id);
        ack(delivery).await;
    }
    assert_eq!(sorted(after), sorted(vec![held, untouched]));
    assert_quiet(
        &mut subscription,
        QUIET,
        "the acked message after the restart",
    )
    .await;

    let mut idle = subscribe(bus.as_ref(), &topic, &idle_group, restart_options()).await;
    let got = take_and_ack(
        &mut idle,
        sent.len(),
        "a group subscribed before the restart",
    )
    .await;
    assert_eq!(sorted(got), sorted(ids(&sent)));
}
