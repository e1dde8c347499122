//! `event-store`: one alianzas contract with many events, built through the service's use cases
//! (`Service::crear`, then one `Service::actualizar` per event: a command per transaction, as
//! operators issue them), once with snapshots every 50 events and once without; reports the
//! append rate and the time to load the contract (`storage::load_latest`: snapshot + tail).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alianzas::application::{Service, Written, SERVICE};
use alianzas::domain::{CambiosContrato, Contrato, Moneda, Monto, NuevoContrato, TipoContrato};
use anyhow::{anyhow, ensure, Context};
use kernel::Amount;
use storage::idempotency::StoredResponse;
use tokio::sync::Notify;

use crate::report::{millis, rate, Figure};
use crate::scratch::{BackendChoice, ScratchDb};

#[derive(Debug, Clone)]
pub struct EventStoreOptions {
    pub backend: BackendChoice,
    /// Events in the contract's stream, its creation included.
    pub events: usize,
    /// Timed loads of the finished contract.
    pub loads: usize,
    pub postgres_server: String,
}

/// The two configurations compared: alianzas' default, and snapshots never taken.
const CONFIGURATIONS: [(&str, u32); 2] = [("every_50", 50), ("none", u32::MAX)];

pub async fn run(options: &EventStoreOptions) -> anyhow::Result<Vec<Figure>> {
    ensure!(
        options.events > 0 && options.loads > 0,
        "--events and --loads must be positive"
    );
    let mut figures = Vec::new();
    for (name, snapshot_every) in CONFIGURATIONS {
        let scratch = ScratchDb::create(options.backend, &options.postgres_server).await?;
        let measured = measure(options, &scratch, name, snapshot_every).await;
        scratch.remove(false).await?;
        figures.extend(measured?);
    }
    Ok(figures)
}

async fn measure(
    options: &EventStoreOptions,
    scratch: &ScratchDb,
    name: &str,
    snapshot_every: u32,
) -> anyhow::Result<Vec<Figure>> {
    let db = scratch.db.clone();
    db.migrate_with(SERVICE, alianzas::MIGRATIONS)
        .await
        .context("migrating alianzas")?;
    let service = Service::new(db.clone(), Arc::new(Notify::new()), snapshot_every);
    let figure = |benchmark: &str| {
        Figure::new(benchmark)
            .label("backend", options.backend.to_string())
            .label("snapshots", name)
            .label("events", options.events)
    };

    let started = Instant::now();
    let mut contrato = create(&service).await?;
    for index in 1..options.events {
        // Alternate between two amounts so that every command is a change, hence an event.
        let cents = if index % 2 == 0 { 15_000 } else { 15_100 };
        let cambios = CambiosContrato {
            monto: Some(Monto::new(Amount::from_cents(cents)).map_err(|e| anyhow!("{e}"))?),
            ..CambiosContrato::default()
        };
        contrato = service
            .actualizar(contrato.id(), contrato.version(), cambios)
            .await
            .with_context(|| format!("appending event {}", index + 1))?;
    }
    let append_elapsed = started.elapsed();
    ensure!(
        contrato.version() == options.events as i64,
        "the contract is at version {}, not {}",
        contrato.version(),
        options.events
    );
    let snapshots = alianzas::storage::snapshot_versions(&db, contrato.id()).await?;

    // One untimed load warms the connection and its prepared statements.
    let warm = alianzas::storage::load_latest(&db, contrato.id()).await?;
    ensure!(
        warm == contrato,
        "the loaded contract differs from the written one"
    );
    let mut loads: Vec<Duration> = Vec::with_capacity(options.loads);
    for _ in 0..options.loads {
        let started = Instant::now();
        let loaded = alianzas::storage::load_latest(&db, contrato.id()).await?;
        loads.push(started.elapsed());
        ensure!(loaded.version() == contrato.version(), "a load lost events");
    }

    Ok(vec![
        figure("event_store.append")
            .value("seconds", append_elapsed.as_secs_f64())
            .value("events_per_s", rate(options.events, append_elapsed))
            .value("mean_ms", millis(append_elapsed) / options.events as f64)
            .value("snapshots_stored", snapshots.len() as f64),
        figure("event_store.load").latencies(&loads),
    ])
}

/// Creates the contract (its first event) through `Service::crear`, without an idempotency key.
async fn create(service: &Service) -> anyhow::Result<Contrato> {
    let invalid = |e: alianzas::domain::ValueError| anyhow!("{e}");
    let datos = NuevoContrato {
        partner_id: kernel::new_id(),
        onboarding_id: None,
        tipo: TipoContrato::Cpa,
        monto: Monto::new(Amount::from_cents(15_000)).map_err(invalid)?,
        moneda: Moneda::parse("USD").map_err(invalid)?,
        condiciones: None,
        fecha_inicio: kernel::now().date_naive(),
        fecha_fin: None,
    };
    let render = |_: &Contrato| -> StoredResponse {
        unreachable!("no idempotency key is given, so no response is stored")
    };
    match service.crear(datos, None, &render).await? {
        Written::Done(contrato) => Ok(contrato),
        Written::Replayed(_) => Err(anyhow!("a write without a key was replayed")),
    }
}
