//! Wiring: builds each service from its database and the bus, binds its port, spawns its
//! workers, and stops everything in order when the process is asked to stop (servers stop
//! accepting and finish in-flight requests, workers stop, databases close).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use kernel::{Bus, Shutdown};
use storage::Db;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceName {
    Integraciones,
}

impl ServiceName {
    fn as_str(self) -> &'static str {
        match self {
            ServiceName::Integraciones => "integraciones",
        }
    }

    fn default_port(self, settings: &Settings) -> u16 {
        match self {
            ServiceName::Integraciones => settings.ports.integraciones,
        }
    }
}

/// A service running in this process.
struct Running {
    name: &'static str,
    address: SocketAddr,
    db: Db,
    tasks: Vec<JoinHandle<()>>,
}

/// `alpes up`: every service, embedded mode.
pub async fn up(settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let bus = open_embedded_bus(&settings.data_dir).await?;
    let (trigger, shutdown) = kernel::shutdown::channel();

    let mut running = Vec::new();
    for service in [ServiceName::Integraciones] {
        let url = sqlite_url(&settings.data_dir, service.as_str());
        let port = service.default_port(&settings);
        running.push(
            start(
                service,
                &url,
                bus.clone(),
                &settings.host,
                port,
                shutdown.clone(),
            )
            .await?,
        );
    }

    println!(
        "AlpesPartners is up (embedded mode, data in {})",
        settings.data_dir.display()
    );
    for service in &running {
        println!(
            "  {:<14} http://{}  (docs: http://{}/docs)",
            service.name, service.address, service.address
        );
    }
    println!("Press Ctrl-C to stop.");

    wait_for_stop_signal().await?;
    trigger.fire();
    stop(running).await;
    bus.close().await;
    Ok(())
}

/// `alpes serve <service>`: one service alone.
pub async fn serve(service: ServiceName, settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let url = settings
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(&settings.data_dir, service.as_str()));
    let bus = open_embedded_bus(&settings.data_dir).await?;
    let (trigger, shutdown) = kernel::shutdown::channel();
    let port = settings
        .port
        .unwrap_or_else(|| service.default_port(&settings));
    let running = start(service, &url, bus.clone(), &settings.host, port, shutdown).await?;
    println!(
        "  {:<14} http://{}  (docs: http://{}/docs)",
        running.name, running.address, running.address
    );
    println!("Press Ctrl-C to stop.");
    wait_for_stop_signal().await?;
    trigger.fire();
    stop(vec![running]).await;
    bus.close().await;
    Ok(())
}

async fn open_embedded_bus(data_dir: &Path) -> anyhow::Result<embedded_bus::EmbeddedBus> {
    let path = data_dir.join("bus.db");
    embedded_bus::EmbeddedBus::open(&path)
        .await
        .with_context(|| format!("opening the embedded bus at {}", path.display()))
}

fn sqlite_url(data_dir: &Path, service: &str) -> String {
    format!(
        "sqlite://{}",
        data_dir.join(format!("{service}.db")).display()
    )
}

async fn start(
    service: ServiceName,
    database_url: &str,
    bus: impl Bus + Clone,
    host: &str,
    port: u16,
    shutdown: Shutdown,
) -> anyhow::Result<Running> {
    let name = service.as_str();
    let db = Db::connect(database_url)
        .await
        .with_context(|| format!("connecting {name} to its database"))?;
    let bus: Arc<dyn Bus> = Arc::new(bus);
    let (router, mut tasks) = match service {
        ServiceName::Integraciones => {
            let service = integraciones::Integraciones::start(db.clone(), bus)
                .await
                .context("starting integraciones")?;
            let tasks = service
                .spawn_workers(shutdown.clone())
                .await
                .context("starting integraciones workers")?;
            (service.router(), tasks)
        }
    };
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {name} to {host}:{port}"))?;
    let address = listener.local_addr()?;
    tasks.push(tokio::spawn(async move {
        if let Err(error) = web::serve(listener, router, shutdown.wait()).await {
            tracing::error!(service = name, %error, "server failed");
        }
    }));
    tracing::info!(service = name, %address, "listening");
    Ok(Running {
        name,
        address,
        db,
        tasks,
    })
}

async fn stop(running: Vec<Running>) {
    for service in running {
        for task in service.tasks {
            if let Err(error) = task.await {
                tracing::error!(service = service.name, %error, "task ended abnormally");
            }
        }
        service.db.close().await;
        tracing::info!(service = service.name, "stopped");
    }
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
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
