//! Durability under a crash: `alpes up` is killed with SIGKILL in the middle of a burst of
//! partner creations and restarted. Every partner whose creation was answered 201 must exist,
//! and a subscriber registered before the burst must receive exactly one `PartnerCreado` per
//! partner after de-duplication by event id: none lost, none published twice under a new id.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use contracts::partners::PartnerCreado;
use futures_util::StreamExt;
use kernel::{Bus, IntegrationEvent, SubscribeOptions};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{alpes_up, outbox_backlog};

const BURST: usize = 1_000;
const KILL_AFTER: usize = 300;
const OBSERVER: &str = "crash-test-observer";

enum Outcome {
    Created(Uuid),
    Refused(u16),
    Lost,
}

async fn create(client: &reqwest::Client, base: &str, index: usize) -> Outcome {
    let response = client
        .post(format!("{base}/api/v1/partners"))
        .json(
            &json!({"nombre": format!("Partner {index}"), "email": format!("p{index}@crash.test")}),
        )
        .send()
        .await;
    match response {
        Ok(response) if response.status() == 201 => match response.json::<Value>().await {
            Ok(body) => Outcome::Created(body["id"].as_str().unwrap().parse().unwrap()),
            Err(_) => Outcome::Lost,
        },
        Ok(response) => Outcome::Refused(response.status().as_u16()),
        Err(_) => Outcome::Lost,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_burst_loses_no_created_partner_and_no_event() {
    let data = tempfile::tempdir().unwrap();
    let bus_path = data.path().join("bus.db");
    // The observer group exists before the first event, like any subscriber deployed first.
    let bus = embedded_bus::EmbeddedBus::open(&bus_path).await.unwrap();
    drop(
        bus.subscribe(PartnerCreado::TOPIC, OBSERVER, SubscribeOptions::default())
            .await
            .unwrap(),
    );
    bus.close().await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let alpes = alpes_up(data.path()).await;
    let base = alpes.url("integraciones").to_owned();
    let answered = Arc::new(AtomicUsize::new(0));
    let (killed_tx, killed_rx) = tokio::sync::oneshot::channel();
    let killer = {
        let answered = answered.clone();
        tokio::spawn(async move {
            testkit::eventually(Duration::from_secs(120), "the burst to get going", || {
                let done = answered.load(Ordering::SeqCst) >= KILL_AFTER;
                async move { done.then_some(()) }
            })
            .await;
            alpes.kill9().await;
            let _ = killed_tx.send(());
        })
    };
    let outcomes: Vec<(usize, Outcome)> = futures_util::stream::iter(0..BURST)
        .map(|index| {
            let client = client.clone();
            let base = base.clone();
            let answered = answered.clone();
            async move {
                let outcome = create(&client, &base, index).await;
                answered.fetch_add(1, Ordering::SeqCst);
                (index, outcome)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    killer.await.unwrap();
    killed_rx.await.unwrap();

    let created: HashMap<usize, Uuid> = outcomes
        .iter()
        .filter_map(|(index, outcome)| match outcome {
            Outcome::Created(id) => Some((*index, *id)),
            _ => None,
        })
        .collect();
    let lost: Vec<usize> = outcomes
        .iter()
        .filter_map(|(index, outcome)| matches!(outcome, Outcome::Lost).then_some(*index))
        .collect();
    assert!(
        outcomes
            .iter()
            .all(|(_, o)| !matches!(o, Outcome::Refused(_))),
        "no request is refused before the kill"
    );
    assert!(created.len() >= KILL_AFTER / 2, "the kill came mid-burst");
    assert!(!lost.is_empty(), "the kill came before the burst ended");

    // Restart and finish the burst: a lost request may or may not have committed; retrying it
    // either creates the partner or finds its e-mail taken.
    let alpes = alpes_up(data.path()).await;
    let base = alpes.url("integraciones").to_owned();
    for index in lost {
        match create(&client, &base, index).await {
            Outcome::Created(_) | Outcome::Refused(409) => {}
            Outcome::Refused(status) => panic!("retry of {index} answered {status}"),
            Outcome::Lost => panic!("retry of {index} got no answer"),
        }
    }

    let mut partners: HashMap<Uuid, String> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/partners?limit=500");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            partners.insert(
                item["id"].as_str().unwrap().parse().unwrap(),
                item["email"].as_str().unwrap().to_owned(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        partners.len(),
        BURST,
        "every e-mail of the burst has exactly one partner"
    );
    for (index, id) in &created {
        assert_eq!(
            partners.get(id).map(String::as_str),
            Some(format!("p{index}@crash.test").as_str()),
            "partner {id} was answered 201 and must exist"
        );
    }

    testkit::eventually(Duration::from_secs(60), "the outbox to drain", || {
        let client = client.clone();
        let base = base.clone();
        async move { (outbox_backlog(&client, &base, "integraciones").await? == 0).then_some(()) }
    })
    .await;
    assert!(alpes.terminate().await, "alpes exits 0 on SIGTERM");

    let bus = embedded_bus::EmbeddedBus::open(&bus_path).await.unwrap();
    let mut subscription = bus
        .subscribe(PartnerCreado::TOPIC, OBSERVER, SubscribeOptions::default())
        .await
        .unwrap();
    let mut seen_events = HashSet::new();
    let mut per_partner: HashMap<Uuid, usize> = HashMap::new();
    while bus.pending(OBSERVER).await.unwrap() > 0 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .expect("a pending message is delivered")
            .unwrap();
        if seen_events.insert(delivery.envelope.id) {
            let event: PartnerCreado = delivery.envelope.decode().unwrap();
            *per_partner.entry(event.partner_id).or_default() += 1;
        }
        delivery.ack().await.unwrap();
    }
    bus.close().await;

    let published: HashSet<Uuid> = per_partner.keys().copied().collect();
    let existing: HashSet<Uuid> = partners.keys().copied().collect();
    assert_eq!(
        published, existing,
        "one PartnerCreado per partner, none missing"
    );
    let twice: Vec<_> = per_partner.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "partners announced more than once: {twice:?}"
    );
}
