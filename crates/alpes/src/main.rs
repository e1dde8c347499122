//! The `alpes` binary: parses arguments, loads settings, installs tracing, wires adapters into
//! services and runs them until Ctrl-C or SIGTERM. No business logic lives here.
#![allow(clippy::print_stdout)]

mod dlq;

use std::path::PathBuf;

use alpes::platform::{self, Databases, Platform, ServiceName};
use alpes::settings::{LogFormat, Settings};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "alpes",
    version,
    about = "AlpesPartners: partner onboarding, contracts, compliance and campaigns"
)]
struct Cli {
    /// Settings file (default: ./alpes.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Where embedded mode keeps its databases and bus (default ./.alpes).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the whole platform in one process (embedded mode: SQLite files and an embedded
    /// durable bus under the data directory; no external server).
    Up,
    /// Runs one service alone.
    Serve {
        service: ServiceName,
        /// The service's database: sqlite://FILE or postgres://USER@HOST/DB (created if missing).
        #[arg(long)]
        database_url: Option<String>,
        /// The port to listen on (default: the service's port).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Inspects and re-drives dead letters of the embedded bus (safe while `alpes up` runs).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Lists dead letters: counts per group, or every message of one group.
    List {
        /// The subscriber group whose dead letters to show.
        #[arg(long)]
        group: Option<String>,
    },
    /// Hands a group's dead letters back to it for a fresh round of attempts.
    Replay {
        #[arg(long)]
        group: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        settings.data_dir = dir;
    }
    if let Command::Serve {
        database_url, port, ..
    } = &cli.command
    {
        if let Some(url) = database_url {
            settings.database_url = Some(url.clone());
        }
        if let Some(port) = port {
            settings.port = Some(*port);
        }
    }
    install_tracing(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up => up(settings).await,
            Command::Serve { service, .. } => serve(service, settings).await,
            Command::Dlq { action } => dlq::run(action, &settings).await,
        }
    })
}

fn install_tracing(settings: &Settings) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .map_err(|error| anyhow::anyhow!("invalid log filter {:?}: {error}", settings.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// `alpes up`: every service in this process, embedded mode.
async fn up(settings: Settings) -> anyhow::Result<()> {
    let platform = Platform::start_embedded(&settings, &ServiceName::ALL).await?;
    println!(
        "AlpesPartners is up (embedded mode, data in {})",
        settings.data_dir.display()
    );
    print!("{}", platform.banner());
    println!("Press Ctrl-C to stop.");
    let stopped = platform::wait_for_stop_signal().await;
    platform.stop().await;
    stopped
}

/// `alpes serve <service>`: one unit alone, on the database the settings name.
async fn serve(service: ServiceName, settings: Settings) -> anyhow::Result<()> {
    let bus = platform::open_embedded_bus(&settings.data_dir).await?;
    let platform = Platform::start_with_bus(
        &settings,
        &[service],
        Databases::Serve,
        std::sync::Arc::new(bus.clone()),
    )
    .await?;
    print!("{}", platform.banner());
    println!("Press Ctrl-C to stop.");
    let stopped = platform::wait_for_stop_signal().await;
    platform.stop().await;
    bus.close().await;
    stopped
}
