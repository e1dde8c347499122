//! `outbox`: events per second through the transactional outbox to the bus, in three steps
//! measured apart: appending envelopes to a fresh database's outbox (one transaction per
//! `batch` events, one by default as one business write each), the relay moving them to the
//! bus (`Relay::relay_once` until the backlog is empty), and a consumer group draining them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use embedded_bus::EmbeddedBus;
use kernel::{Bus, Envelope, SubscribeOptions};
use nats_bus::NatsBus;
use storage::outbox::{self, Relay};
use tokio::sync::Notify;

use crate::report::{millis, rate, Figure};
use crate::scratch::{BackendChoice, ScratchDb};

/// The topic every benchmark envelope goes to (one relay run per batch, as a busy topic has).
const TOPIC: &str = "microbench.outbox";
const GROUP: &str = "microbench";

/// How long the consumers may take to drain before the run is declared stuck.
const DRAIN_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BusChoice {
    Embedded,
    Nats,
}

impl std::fmt::Display for BusChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BusChoice::Embedded => "embedded",
            BusChoice::Nats => "nats",
        })
    }
}

#[derive(Debug, Clone)]
pub struct OutboxOptions {
    pub backend: BackendChoice,
    pub bus: BusChoice,
    pub events: usize,
    /// Envelopes per append transaction.
    pub batch: usize,
    /// Competing consumers of the group while draining.
    pub consumers: usize,
    pub postgres_server: String,
    pub nats_url: String,
}

/// The bus under test, kept concrete so it can be torn down after the run.
enum BusUnderTest {
    Embedded(EmbeddedBus),
    Nats(NatsBus),
}

impl BusUnderTest {
    async fn open(options: &OutboxOptions, scratch: &ScratchDb) -> anyhow::Result<Self> {
        Ok(match options.bus {
            BusChoice::Embedded => BusUnderTest::Embedded(
                EmbeddedBus::open(&scratch.dir.path().join("bus.db"))
                    .await
                    .context("opening the embedded bus")?,
            ),
            BusChoice::Nats => {
                let prefix = format!("microbench{}", uuid::Uuid::new_v4().simple());
                BusUnderTest::Nats(
                    NatsBus::connect(&options.nats_url, &prefix)
                        .await
                        .with_context(|| format!("connecting to NATS at {}", options.nats_url))?,
                )
            }
        })
    }

    fn shared(&self) -> Arc<dyn Bus> {
        match self {
            BusUnderTest::Embedded(bus) => Arc::new(bus.clone()),
            BusUnderTest::Nats(bus) => Arc::new(bus.clone()),
        }
    }

    async fn tear_down(self) -> anyhow::Result<()> {
        match self {
            BusUnderTest::Embedded(bus) => bus.close().await,
            BusUnderTest::Nats(bus) => {
                bus.delete_streams()
                    .await
                    .context("deleting the benchmark's streams")?;
                bus.close().await;
            }
        }
        Ok(())
    }
}

pub async fn run(options: &OutboxOptions) -> anyhow::Result<Vec<Figure>> {
    ensure!(
        options.events > 0 && options.batch > 0 && options.consumers > 0,
        "--events, --batch and --consumers must be positive"
    );
    let scratch = ScratchDb::create(options.backend, &options.postgres_server).await?;
    let bus = match BusUnderTest::open(options, &scratch).await {
        Ok(bus) => bus,
        Err(error) => {
            scratch.remove(false).await?;
            return Err(error);
        }
    };
    let measured = measure(options, &scratch, bus.shared()).await;
    let torn_down = bus.tear_down().await;
    scratch.remove(false).await?;
    torn_down?;
    measured
}

async fn measure(
    options: &OutboxOptions,
    scratch: &ScratchDb,
    bus: Arc<dyn Bus>,
) -> anyhow::Result<Vec<Figure>> {
    let db = &scratch.db;
    // The shared tables (outbox, inbox, idempotency) are all a service database needs here.
    db.migrate_with("microbench", &[])
        .await
        .context("migrating")?;
    let figure = |name: &str| {
        Figure::new(name)
            .label("backend", options.backend.to_string())
            .label("bus", options.bus.to_string())
            .label("events", options.events)
    };

    let envelopes: Vec<Envelope> = (0..options.events).map(envelope).collect();
    let started = Instant::now();
    for chunk in envelopes.chunks(options.batch) {
        let mut tx = db.begin().await?;
        for envelope in chunk {
            outbox::append(&mut tx, TOPIC, envelope);
        }
        tx.commit().await?;
    }
    let append_elapsed = started.elapsed();
    let backlog = outbox::backlog(db).await?;
    ensure!(
        backlog == options.events as i64,
        "the outbox holds {backlog} rows, not {}",
        options.events
    );

    // The group exists before anything is published, as a service's groups do in production,
    // so publishing pays for its fan-out; it is drained only after the relay finished.
    let mut subscriptions = Vec::with_capacity(options.consumers);
    for _ in 0..options.consumers {
        subscriptions.push(
            bus.subscribe(TOPIC, GROUP, SubscribeOptions::default())
                .await
                .context("subscribing the consumer group")?,
        );
    }

    let relay = Relay::new(db.clone(), bus.clone());
    let started = Instant::now();
    let mut relayed = 0;
    loop {
        match relay.relay_once().await.context("relaying")? {
            0 => break,
            published => relayed += published,
        }
    }
    let relay_elapsed = started.elapsed();
    ensure!(
        relayed == options.events,
        "the relay published {relayed} rows, not {}",
        options.events
    );
    ensure!(outbox::backlog(db).await? == 0, "the outbox is not empty");

    let drained = drain(subscriptions, options.events).await?;

    Ok(vec![
        figure("outbox.append")
            .label("batch", options.batch)
            .value("seconds", append_elapsed.as_secs_f64())
            .value("events_per_s", rate(options.events, append_elapsed))
            .value(
                "transactions_per_s",
                rate(options.events.div_ceil(options.batch), append_elapsed),
            ),
        figure("outbox.relay")
            .value("seconds", relay_elapsed.as_secs_f64())
            .value("events_per_s", rate(relayed, relay_elapsed)),
        figure("outbox.consume")
            .label("consumers", options.consumers)
            .value("seconds", drained.elapsed.as_secs_f64())
            .value("events_per_s", rate(drained.acked, drained.elapsed))
            .value("longest_wait_ms", millis(drained.longest_wait)),
    ])
}

/// What draining the group took.
struct Drained {
    acked: usize,
    elapsed: Duration,
    /// The longest single wait for a delivery: a stall shows here, not in the average.
    longest_wait: Duration,
}

/// Receives and acks with every subscription until `expected` messages were acked.
async fn drain(
    subscriptions: Vec<Box<dyn kernel::Subscription>>,
    expected: usize,
) -> anyhow::Result<Drained> {
    let acked = Arc::new(AtomicUsize::new(0));
    let longest_wait_us = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for mut subscription in subscriptions {
        let counters = Counters {
            acked: acked.clone(),
            longest_wait_us: longest_wait_us.clone(),
        };
        let done = done.clone();
        workers
            .spawn(async move { consume(subscription.as_mut(), &counters, &done, expected).await });
    }
    let finished = tokio::select! {
        _ = done.notified() => Ok(()),
        Some(joined) = workers.join_next() => match joined {
            Ok(Err(error)) => Err(anyhow::Error::new(error).context("consuming")),
            Ok(Ok(())) => Err(anyhow::anyhow!("a consumer stopped")),
            Err(error) => Err(anyhow::Error::new(error).context("a consumer panicked")),
        },
        _ = tokio::time::sleep(DRAIN_DEADLINE) => Err(anyhow::anyhow!(
            "the group acked {} of {expected} messages within {DRAIN_DEADLINE:?}",
            acked.load(Ordering::SeqCst)
        )),
    };
    let elapsed = started.elapsed();
    workers.shutdown().await;
    finished?;
    let consumed = acked.load(Ordering::SeqCst);
    if consumed != expected {
        bail!("the group acked {consumed} messages, not {expected}");
    }
    Ok(Drained {
        acked: consumed,
        elapsed,
        longest_wait: Duration::from_micros(longest_wait_us.load(Ordering::SeqCst)),
    })
}

/// What the consumers of one drain share.
struct Counters {
    acked: Arc<AtomicUsize>,
    longest_wait_us: Arc<AtomicU64>,
}

/// Acks every delivery of one consumer, signalling `done` at the `expected`-th ack overall;
/// returns only when the bus fails.
async fn consume(
    subscription: &mut dyn kernel::Subscription,
    counters: &Counters,
    done: &Notify,
    expected: usize,
) -> Result<(), kernel::BusError> {
    loop {
        let waited = Instant::now();
        // As the services' consumers take them: a batch per claim, acked together.
        let deliveries = subscription
            .next_batch(kernel::consumer::DEFAULT_BATCH)
            .await?;
        let wait_us = u64::try_from(waited.elapsed().as_micros()).unwrap_or(u64::MAX);
        counters
            .longest_wait_us
            .fetch_max(wait_us, Ordering::SeqCst);
        let count = deliveries.len();
        subscription.ack_all(deliveries).await?;
        let before = counters.acked.fetch_add(count, Ordering::SeqCst);
        if before < expected && before + count >= expected {
            done.notify_one();
        }
    }
}

/// A realistic envelope: the size and shape of a `PartnerCreado` (about 600 bytes of JSON).
fn envelope(index: usize) -> Envelope {
    let id = kernel::new_id();
    let partner_id = kernel::new_id();
    Envelope {
        specversion: "1.0".to_owned(),
        id,
        source: "/alpes/microbench".to_owned(),
        event_type: "PartnerCreado".to_owned(),
        time: kernel::now(),
        subject: partner_id.to_string(),
        datacontenttype: "application/json".to_owned(),
        dataschema: "urn:alpes:PartnerCreado:v1".to_owned(),
        sagaid: Some(kernel::new_id()),
        correlationid: Some(id),
        causationid: None,
        traceparent: Some(format!(
            "00-{}-{:016x}-01",
            uuid::Uuid::new_v4().simple(),
            index as u64 + 1
        )),
        deadlettertopic: None,
        deadlettererror: None,
        deadletterattempts: None,
        data: serde_json::json!({
            "partner_id": partner_id,
            "nombre": format!("Partner de prueba {index}"),
            "email": format!("partner{index}@example.com"),
            "tipo": "INFLUENCER",
            "estado": "ACTIVO",
            "onboarding_id": kernel::new_id(),
            "terminos": {"tipo": "CPA", "monto": "150.00", "moneda": "USD"},
        })
        .into(),
    }
}
