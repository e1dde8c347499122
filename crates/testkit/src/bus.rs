//! Bus support for tests: a fresh embedded bus in a temporary directory, observer groups that
//! see every message of a topic, waiting for a matching envelope with a deadline, and a
//! throwaway event to publish.

use std::path::PathBuf;
use std::sync::Arc;

use embedded_bus::EmbeddedBus;
use kernel::{Bus, Envelope, EnvelopeContext, SubscribeOptions, Subscription};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

/// The event adapter and storage tests publish when only its envelope matters; its payload
/// tells messages apart.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ping {
    pub n: u32,
}

impl kernel::IntegrationEvent for Ping {
    const TYPE: &'static str = "Ping";
    const TOPIC: &'static str = "pings";
    const VERSION: u32 = 1;

    fn subject(&self) -> String {
        self.n.to_string()
    }
}

/// Ping number `n`, wrapped as a fresh envelope.
pub fn ping(n: u32) -> Envelope {
    Envelope::wrap("test", &Ping { n }, EnvelopeContext::default())
}

/// An embedded bus whose file lives in a temporary directory removed when this is dropped.
pub struct TestBus {
    pub bus: Arc<EmbeddedBus>,
    /// The bus file, to reopen or attach to it.
    pub path: PathBuf,
    // Held so that the directory outlives the bus.
    _dir: TempDir,
}

/// Opens a fresh bus file `bus.db` in a new temporary directory.
pub async fn fresh_bus() -> TestBus {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bus.db");
    let bus = Arc::new(EmbeddedBus::open(&path).await.expect("open bus"));
    TestBus {
        bus,
        path,
        _dir: dir,
    }
}

/// Subscribes a fresh observer group to `topic` (it sees every message of the topic); returns
/// the subscription and the group's name.
pub async fn observe(bus: &dyn Bus, topic: &str) -> (Box<dyn Subscription>, String) {
    let group = format!("test-{}", uuid::Uuid::new_v4().simple());
    let subscription = bus
        .subscribe(topic, &group, SubscribeOptions::default())
        .await
        .expect("subscribe observer");
    (subscription, group)
}

/// Publishes one envelope to `topic`.
pub async fn publish(bus: &dyn Bus, topic: &str, envelope: &Envelope) {
    bus.publish(topic, std::slice::from_ref(envelope))
        .await
        .expect("publish");
}

/// Waits for the first message on `subscription` that `accept` takes, acking every message
/// seen; fails after `crate::DEADLINE`.
pub async fn next_matching(
    subscription: &mut Box<dyn Subscription>,
    what: &str,
    mut accept: impl FnMut(&Envelope) -> bool,
) -> Envelope {
    let deadline = tokio::time::Instant::now() + crate::DEADLINE;
    loop {
        let delivery = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("bus delivery");
        let envelope = delivery.envelope.clone();
        delivery.ack().await.expect("ack");
        if accept(&envelope) {
            return envelope;
        }
    }
}
