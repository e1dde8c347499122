//! The `alpes` binary: parses arguments, loads settings, installs tracing, wires adapters into
//! services and runs them until Ctrl-C or SIGTERM. No business logic lives here.
#![allow(clippy::print_stdout)]

mod dlq;

use std::path::PathBuf;

use alpes::bench::{BenchMode, BenchOptions};
use alpes::platform::{self, Mode, Platform, ServiceName};
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
    /// NATS JetStream URL (nats://host:4222); without it the embedded bus is used.
    #[arg(long, global = true, visible_alias = "bus")]
    bus_url: Option<String>,
    /// Subject prefix on NATS, so several deployments can share one server (default alpes).
    #[arg(long, global = true)]
    bus_prefix: Option<String>,
    /// The database: for `serve`, the service's own (sqlite://FILE or postgres://…); for `up`,
    /// a PostgreSQL server URL whose database name is the prefix of one database per service.
    #[arg(long, global = true)]
    database_url: Option<String>,
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
        /// The port to listen on (default: the service's port).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Measures the platform: onboards partners through the BFF at a fixed offered rate (or as
    /// fast as it answers) and reports sagas per second, latencies, CPU and memory.
    Bench {
        /// Start the platform embedded (`alpes up`) or distributed (PostgreSQL + NATS).
        #[arg(long, value_enum, default_value = "embedded")]
        mode: BenchMode,
        /// Onboardings offered per second, or `max` for as fast as the platform answers.
        #[arg(long, default_value = "max")]
        rate: String,
        /// Seconds of load.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Concurrent requests with `--rate max`; cap on requests in flight otherwise.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Measure a BFF already running instead of starting a platform (its bus is found
        /// through --data-dir, or --bus-url and --bus-prefix).
        #[arg(long)]
        target: Option<String>,
        /// The PostgreSQL server for `--mode distributed`.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
        postgres_url: String,
        /// Print one JSON object instead of the summary.
        #[arg(long)]
        json: bool,
        /// The log filter of the platform's processes (a `tracing` filter, as `ALPES_LOG`);
        /// they log to this command's standard error.
        #[arg(long, default_value = "warn")]
        platform_log: String,
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

/// jemalloc rather than glibc's malloc for Rust's allocations: under load glibc's malloc was
/// ~10% of the platform's CPU (`_int_free`, `malloc_consolidate`), much of it rows allocated on
/// SQLite's connection threads and freed on the runtime's. Measured in BENCHMARKS.md (tenth
/// run): 4–9% more sagas per second under load, idle RSS 25 → 31 MiB (mimalloc, measured the
/// same way, gave nothing and 45 MiB). SQLite keeps libc's malloc: routing it here measured no
/// better.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        settings.data_dir = dir;
    }
    if let Some(url) = cli.database_url {
        settings.database_url = Some(url);
    }
    if let Some(url) = cli.bus_url {
        settings.bus_url = Some(url);
    }
    if let Some(prefix) = cli.bus_prefix {
        settings.bus_prefix = prefix;
    }
    if let Command::Serve {
        port: Some(port), ..
    } = &cli.command
    {
        settings.port = Some(*port);
    }
    install_tracing(&settings)?;
    let embedded = matches!(cli.command, Command::Up);
    if settings.batch_scheduling && embedded {
        // Before any thread starts, so that every one of them inherits it. Only the embedded
        // platform: one process per service on PostgreSQL measured no better (BENCHMARKS.md).
        if let Err(error) = alpes::scheduling::set_current_thread(alpes::scheduling::Class::Batch) {
            tracing::warn!(%error, "running with the default scheduling policy");
        }
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if let Some(threads) = settings.worker_threads_for(embedded, cores) {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up => up(settings).await,
            Command::Serve { service, .. } => serve(service, settings).await,
            Command::Dlq { action } => dlq::run(action, &settings).await,
            Command::Bench {
                mode,
                rate,
                duration,
                concurrency,
                target,
                postgres_url,
                json,
                platform_log,
            } => {
                let rate = match rate.as_str() {
                    "max" => None,
                    number => Some(number.parse::<u32>().map_err(|_| {
                        anyhow::anyhow!("--rate takes a number of onboardings per second or max, not {number:?}")
                    })?),
                };
                let options = BenchOptions {
                    mode,
                    rate,
                    duration: std::time::Duration::from_secs(duration),
                    concurrency: concurrency.max(1),
                    target,
                    postgres_url,
                    platform_log,
                };
                let report = alpes::bench::run(&settings, options).await?;
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    print!("{}", alpes::bench::render(&report));
                }
                Ok(())
            }
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

/// `alpes up`: every service in this process.
async fn up(settings: Settings) -> anyhow::Result<()> {
    let platform = Platform::start(&settings, &ServiceName::ALL, Mode::Up).await?;
    match &settings.bus_url {
        None => println!(
            "AlpesPartners is up (embedded mode, data in {})",
            settings.data_dir.display()
        ),
        Some(url) => println!("AlpesPartners is up (one process on NATS at {url})"),
    }
    print!("{}", platform.banner());
    println!("Press Ctrl-C to stop.");
    let stopped = platform::wait_for_stop_signal().await;
    platform.stop().await;
    stopped
}

/// `alpes serve <service>`: one unit alone, on the database and bus the settings name.
async fn serve(service: ServiceName, settings: Settings) -> anyhow::Result<()> {
    let platform = Platform::start(&settings, &[service], Mode::Serve).await?;
    print!("{}", platform.banner());
    println!("Press Ctrl-C to stop.");
    let stopped = platform::wait_for_stop_signal().await;
    platform.stop().await;
    stopped
}
