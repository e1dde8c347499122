//! Wiring: builds each service from its database and the bus, binds its port, spawns its
//! workers, and stops everything in order (servers stop accepting and finish in-flight requests,
//! workers stop, databases close). alianzas and the saga log share one port, as deployed in the
//! original: their routers are merged here, so neither imports the other.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kernel::{Bus, Shutdown, ShutdownTrigger};
use storage::Db;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::settings::Settings;

/// A deployable unit, as `alpes serve <service>` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum ServiceName {
    Integraciones,
    /// Contracts, with the saga log on the same port.
    Alianzas,
    /// The saga log alone (normally deployed with alianzas).
    Sagas,
    Compliance,
    /// Programs, campaigns and notifications.
    Campanias,
    Bff,
}

impl ServiceName {
    /// Everything `alpes up` runs.
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Integraciones,
        ServiceName::Alianzas,
        ServiceName::Compliance,
        ServiceName::Campanias,
        ServiceName::Bff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Integraciones => "integraciones",
            ServiceName::Alianzas => "alianzas",
            ServiceName::Sagas => "sagas",
            ServiceName::Compliance => "compliance",
            ServiceName::Campanias => "campanias",
            ServiceName::Bff => "bff",
        }
    }

    fn default_port(self, settings: &Settings) -> u16 {
        match self {
            ServiceName::Integraciones => settings.ports.integraciones,
            ServiceName::Alianzas | ServiceName::Sagas => settings.ports.alianzas,
            ServiceName::Compliance => settings.ports.compliance,
            ServiceName::Campanias => settings.ports.campanias,
            ServiceName::Bff => settings.ports.bff,
        }
    }
}

/// How the units are deployed, which decides where each context's database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `alpes up`: every context in this process, each with its own database: a SQLite file
    /// in the data directory, or, when `database_url` names a PostgreSQL server, a database
    /// per context named after it (`…/alpes` → `alpes_integraciones`, `alpes_alianzas`, …).
    Up,
    /// `alpes serve`: the unit's database from the settings (SQLite in the data directory when
    /// unset); the saga log's is its own setting or derived from alianzas'.
    Serve,
}

/// The bus the platform runs on: the embedded one in the data directory, or NATS JetStream
/// when `bus_url` is set.
#[derive(Clone)]
pub enum BusHandle {
    Embedded(embedded_bus::EmbeddedBus),
    Nats(nats_bus::NatsBus),
}

impl BusHandle {
    pub async fn open(settings: &Settings) -> anyhow::Result<BusHandle> {
        match &settings.bus_url {
            Some(url) => nats_bus::NatsBus::connect(url, &settings.bus_prefix)
                .await
                .map(BusHandle::Nats)
                .with_context(|| format!("connecting to NATS JetStream at {url}")),
            None => open_embedded_bus(&settings.data_dir)
                .await
                .map(BusHandle::Embedded),
        }
    }

    pub fn shared(&self) -> Arc<dyn Bus> {
        match self {
            BusHandle::Embedded(bus) => Arc::new(bus.clone()),
            BusHandle::Nats(bus) => Arc::new(bus.clone()),
        }
    }

    pub async fn close(&self) {
        match self {
            BusHandle::Embedded(bus) => bus.close().await,
            BusHandle::Nats(bus) => bus.close().await,
        }
    }
}

/// A running set of services in this process.
pub struct Platform {
    units: Vec<Unit>,
    trigger: ShutdownTrigger,
    bus: Option<BusHandle>,
}

struct Unit {
    name: &'static str,
    address: SocketAddr,
    dbs: Vec<Db>,
    tasks: Vec<JoinHandle<()>>,
    /// The runtime the unit's tasks run on when it is not the caller's
    /// ([`start_on_own_runtime`]).
    runtime: Option<OwnRuntime>,
}

/// A unit's own runtime. Dropped, it shuts down in the background: async code may not block
/// on a runtime's end, and a platform may be dropped there without [`Platform::stop`] (a test
/// that fails half-way), where a plain `Runtime` would panic.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Platform {
    /// Opens the bus the settings name and starts `units` on it.
    pub async fn start(
        settings: &Settings,
        units: &[ServiceName],
        mode: Mode,
    ) -> anyhow::Result<Platform> {
        let bus = BusHandle::open(settings).await?;
        match Platform::start_with_bus(settings, units, mode, bus.shared()).await {
            Ok(mut platform) => {
                platform.bus = Some(bus);
                Ok(platform)
            }
            Err(error) => {
                bus.close().await;
                Err(error)
            }
        }
    }

    /// Starts `units` on `bus` (tests pass a wrapped bus here).
    pub async fn start_with_bus(
        settings: &Settings,
        units: &[ServiceName],
        mode: Mode,
        bus: Arc<dyn Bus>,
    ) -> anyhow::Result<Platform> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        let (trigger, shutdown) = kernel::shutdown::channel();
        let mut platform = Platform {
            units: Vec::new(),
            trigger,
            bus: None,
        };
        let mut wanted: Vec<ServiceName> = units.to_vec();
        wanted.sort();
        wanted.dedup();
        // Dependencies first: the BFF needs the others' addresses.
        for unit in wanted {
            let urls = platform.urls();
            let started = if mode == Mode::Up && unit == ServiceName::Bff {
                start_on_own_runtime(unit, settings, mode, bus.clone(), shutdown.clone(), urls)
                    .await
            } else {
                start_unit(unit, settings, mode, bus.clone(), shutdown.clone(), &urls).await
            };
            match started {
                Ok(unit) => platform.units.push(unit),
                Err(error) => {
                    platform.stop().await;
                    return Err(error);
                }
            }
        }
        Ok(platform)
    }

    /// Base URLs by unit name, e.g. `"bff" → "http://127.0.0.1:8080"`.
    pub fn urls(&self) -> BTreeMap<&'static str, String> {
        self.units
            .iter()
            .map(|unit| (unit.name, format!("http://{}", unit.address)))
            .collect()
    }

    pub fn url(&self, unit: &str) -> Option<String> {
        self.units
            .iter()
            .find(|running| running.name == unit)
            .map(|running| format!("http://{}", running.address))
    }

    /// The lines `alpes up` prints: one per service, with its docs.
    pub fn banner(&self) -> String {
        let mut text = String::new();
        for unit in &self.units {
            text.push_str(&format!(
                "  {:<14} http://{}  (docs: http://{}/docs)\n",
                unit.name, unit.address, unit.address
            ));
            if unit.name == "alianzas" {
                text.push_str(&format!(
                    "  {:<14} http://{}/sagas  (saga log)\n",
                    "sagas", unit.address
                ));
            }
            if unit.name == "bff" {
                text.push_str(&format!(
                    "  {:<14} http://{}/api/v1/partners  (onboard partners here)\n",
                    "", unit.address
                ));
            }
        }
        text
    }

    /// Stops every unit: servers drain, workers end, databases and the bus close.
    pub async fn stop(self) {
        self.trigger.fire();
        for unit in self.units.into_iter().rev() {
            for task in unit.tasks {
                if let Err(error) = task.await {
                    tracing::error!(service = unit.name, %error, "task ended abnormally");
                }
            }
            for db in unit.dbs {
                db.close().await;
            }
            // Its tasks have ended; what is left (idle timers, the pool's reaper) goes with it.
            drop(unit.runtime);
            tracing::info!(service = unit.name, "stopped");
        }
        if let Some(bus) = self.bus {
            bus.close().await;
        }
    }
}

/// Opens (creating the data directory and file if needed) the durable bus of embedded mode.
pub async fn open_embedded_bus(data_dir: &Path) -> anyhow::Result<embedded_bus::EmbeddedBus> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let path = data_dir.join("bus.db");
    embedded_bus::EmbeddedBus::open(&path)
        .await
        .with_context(|| format!("opening the embedded bus at {}", path.display()))
}

fn sqlite_url(data_dir: &Path, context: &str) -> String {
    format!(
        "sqlite://{}",
        data_dir.join(format!("{context}.db")).display()
    )
}

/// The database URL of `context` when `unit` is deployed.
fn database_url(settings: &Settings, mode: Mode, unit: ServiceName, context: &str) -> String {
    let embedded = || sqlite_url(&settings.data_dir, context);
    match mode {
        Mode::Up => match &settings.database_url {
            Some(server) if !server.starts_with("sqlite:") => derived_url(server, context),
            _ => embedded(),
        },
        Mode::Serve if context == "sagas" && unit == ServiceName::Alianzas => {
            match (&settings.sagas.database_url, &settings.database_url) {
                (Some(url), _) => url.clone(),
                (None, Some(alianzas)) => derived_url(alianzas, "sagas"),
                (None, None) => embedded(),
            }
        }
        Mode::Serve => settings.database_url.clone().unwrap_or_else(embedded),
    }
}

/// A sibling database for `context`: `…/alianzas` → `…/alianzas_sagas` on PostgreSQL, a file
/// beside the given one on SQLite.
fn derived_url(url: &str, context: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let derived = if base.starts_with("sqlite:") {
        match base.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{context}.db"),
            None => format!("sqlite://{context}.db"),
        }
    } else {
        format!("{base}_{context}")
    };
    match query {
        Some(query) => format!("{derived}?{query}"),
        None => derived,
    }
}

async fn connect(url: &str, context: &str) -> anyhow::Result<Db> {
    Db::connect(url)
        .await
        .with_context(|| format!("connecting {context} to its database"))
}

async fn start_unit(
    unit: ServiceName,
    settings: &Settings,
    mode: Mode,
    bus: Arc<dyn Bus>,
    shutdown: Shutdown,
    started: &BTreeMap<&'static str, String>,
) -> anyhow::Result<Unit> {
    let name = unit.as_str();
    let url_of = |context: &str| database_url(settings, mode, unit, context);
    let mut dbs = Vec::new();
    let mut tasks = Vec::new();
    let parts = match unit {
        ServiceName::Integraciones => {
            let db = connect(&url_of("integraciones"), "integraciones").await?;
            dbs.push(db.clone());
            let service = integraciones::Integraciones::start(db, bus)
                .await
                .context("starting integraciones")?;
            tasks.extend(
                service
                    .spawn_workers(shutdown.clone())
                    .await
                    .context("starting integraciones workers")?,
            );
            service.parts()
        }
        ServiceName::Alianzas => {
            let db = connect(&url_of("alianzas"), "alianzas").await?;
            dbs.push(db.clone());
            let config = alianzas::AlianzasConfig {
                snapshot_every: settings.alianzas.snapshot_every,
            };
            let contracts = alianzas::Alianzas::start(db, bus.clone(), config)
                .await
                .context("starting alianzas")?;
            tasks.extend(
                contracts
                    .spawn_workers(shutdown.clone())
                    .await
                    .context("starting alianzas workers")?,
            );
            let (saga_log, saga_tasks, saga_db) =
                start_sagas(settings, &url_of("sagas"), bus, shutdown.clone()).await?;
            dbs.push(saga_db);
            tasks.extend(saga_tasks);
            contracts.parts().merge(saga_log)
        }
        ServiceName::Sagas => {
            let (parts, saga_tasks, db) =
                start_sagas(settings, &url_of("sagas"), bus, shutdown.clone()).await?;
            dbs.push(db);
            tasks.extend(saga_tasks);
            parts
        }
        ServiceName::Compliance => {
            let db = connect(&url_of("compliance"), "compliance").await?;
            dbs.push(db.clone());
            let config = compliance::ComplianceConfig {
                unknown_partner_grace: Duration::from_secs(
                    settings.compliance.unknown_partner_grace_secs,
                ),
            };
            let service = compliance::Compliance::start(db, bus, config)
                .await
                .context("starting compliance")?;
            tasks.extend(
                service
                    .spawn_workers(shutdown.clone())
                    .await
                    .context("starting compliance workers")?,
            );
            service.parts()
        }
        ServiceName::Campanias => {
            let db = connect(&url_of("campanias"), "campanias").await?;
            dbs.push(db.clone());
            let service = campanias::Campanias::start(db, bus, campanias_config(settings))
                .await
                .context("starting campanias")?;
            tasks.extend(
                service
                    .spawn_workers(shutdown.clone())
                    .await
                    .context("starting campanias workers")?,
            );
            service.parts()
        }
        ServiceName::Bff => {
            let db = connect(&url_of("bff"), "bff").await?;
            dbs.push(db.clone());
            // In one process the BFF talks to the addresses just bound; alone, to the settings'.
            let upstream = |unit: &str, configured: &str| {
                started
                    .get(unit)
                    .cloned()
                    .unwrap_or_else(|| configured.to_owned())
            };
            let config = bff::BffConfig {
                integraciones_url: upstream("integraciones", &settings.bff.integraciones_url),
                alianzas_url: upstream("alianzas", &settings.bff.alianzas_url),
                compliance_url: upstream("compliance", &settings.bff.compliance_url),
                campanias_url: started
                    .get("campanias")
                    .cloned()
                    .or_else(|| settings.bff.campanias_url.clone()),
                upstream_timeout: Duration::from_millis(settings.bff.upstream_timeout_ms),
            };
            let service = bff::Bff::start(db, bus, config)
                .await
                .context("starting bff")?;
            tasks.extend(
                service
                    .spawn_workers(shutdown.clone())
                    .await
                    .context("starting bff workers")?,
            );
            service.parts()
        }
    };
    let port = match mode {
        Mode::Serve => settings.port.unwrap_or_else(|| unit.default_port(settings)),
        Mode::Up => unit.default_port(settings),
    };
    let host = settings.host.as_str();
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {name} to {host}:{port}"))?;
    let address = listener.local_addr()?;
    let router = parts.into_router();
    tasks.push(tokio::spawn(async move {
        if let Err(error) = web::serve(listener, router, shutdown.wait()).await {
            tracing::error!(service = name, %error, "server failed");
        }
    }));
    tracing::info!(service = name, %address, "listening");
    Ok(Unit {
        name,
        address,
        dbs,
        tasks,
        runtime: None,
    })
}

/// Starts `unit` on a runtime of its own with one thread. `alpes up` runs the BFF this way: its
/// `POST`s are answered on their own thread instead of waiting, on the shared runtime's, behind
/// the consumers' batches (decoding, applying and encoding up to 64 messages at a time between
/// two awaits). Measured in BENCHMARKS.md (eleventh run): `POST` p99 at 1,000 offered/s 22–35 →
/// 12–15 ms, the same sagas per second. One runtime per unit measured worse (more CPU, no more
/// sagas), so only the front door gets one. Where the process runs as batch work
/// (`Settings::batch_scheduling`), this runtime's thread and the SQLite threads the unit opens
/// go back to the default policy: requests preempt the pipeline, not the other way round.
async fn start_on_own_runtime(
    unit: ServiceName,
    settings: &Settings,
    mode: Mode,
    bus: Arc<dyn Bus>,
    shutdown: Shutdown,
    started: BTreeMap<&'static str, String>,
) -> anyhow::Result<Unit> {
    let interactive = settings.batch_scheduling;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("alpes-{}", unit.as_str()))
        .on_thread_start(move || {
            if interactive {
                answer_promptly();
            }
        })
        .enable_all()
        .build()
        .with_context(|| format!("starting {}'s runtime", unit.as_str()))?;
    let settings = settings.clone();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    // A thread only to wait for the start (whose future is not `Send`, so it cannot be spawned
    // onto the runtime); every task it spawns runs on the runtime's own worker.
    std::thread::Builder::new()
        .name(format!("alpes-{}-start", unit.as_str()))
        .spawn(move || {
            // The unit's SQLite connections open from here, and their threads inherit this:
            // the group commit that answers a `POST` is the front door's too.
            if interactive {
                answer_promptly();
            }
            let result =
                runtime.block_on(start_unit(unit, &settings, mode, bus, shutdown, &started));
            let _ = sender.send((runtime, result));
        })
        .with_context(|| format!("starting {}'s thread", unit.as_str()))?;
    let (runtime, result) = receiver
        .await
        .with_context(|| format!("starting {}: its thread ended", unit.as_str()))?;
    let runtime = OwnRuntime(Some(runtime));
    result.map(|mut started| {
        started.runtime = Some(runtime);
        started
    })
}

/// Puts the calling thread (a front door's) back to the default scheduling policy where the
/// process runs as batch work (`scheduling.rs`): a request then preempts the pipeline.
fn answer_promptly() {
    if let Err(error) = crate::scheduling::set_current_thread(crate::scheduling::Class::Interactive)
    {
        tracing::debug!(%error, "the front door keeps the process's scheduling policy");
    }
}

/// Notifications go to SMTP when a server is configured, else to `.eml` files in the data
/// directory.
fn campanias_config(settings: &Settings) -> campanias::CampaniasConfig {
    let campanias = &settings.campanias;
    let mut config = match &campanias.smtp_host {
        Some(host) => campanias::CampaniasConfig::with_smtp_sender(
            host.clone(),
            campanias.smtp_port,
            campanias.smtp_from.clone(),
        ),
        None => {
            campanias::CampaniasConfig::with_file_sender(settings.data_dir.join("notificaciones"))
        }
    };
    config.operator_email = campanias.operator_email.clone();
    config.max_intentos = campanias.max_intentos;
    config
}

async fn start_sagas(
    settings: &Settings,
    url: &str,
    bus: Arc<dyn Bus>,
    shutdown: Shutdown,
) -> anyhow::Result<(web::ServiceParts, Vec<JoinHandle<()>>, Db)> {
    let db = connect(url, "sagas").await?;
    let config = sagas::SagasConfig {
        step_timeout: Duration::from_secs(settings.sagas.step_timeout_secs),
        ..sagas::SagasConfig::default()
    };
    let service = sagas::Sagas::start(db.clone(), bus, config)
        .await
        .context("starting the saga log")?;
    let tasks = service
        .spawn_workers(shutdown)
        .await
        .context("starting the saga log's workers")?;
    Ok((service.parts(), tasks, db))
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saga_log_database_is_derived_from_alianzas() {
        assert_eq!(
            derived_url("postgres://u@h:5432/alianzas", "sagas"),
            "postgres://u@h:5432/alianzas_sagas"
        );
        assert_eq!(
            derived_url("postgres://u@h/alianzas?sslmode=disable", "sagas"),
            "postgres://u@h/alianzas_sagas?sslmode=disable"
        );
        assert_eq!(
            derived_url("sqlite:///srv/data/alianzas.db", "sagas"),
            "sqlite:///srv/data/sagas.db"
        );
    }
}
