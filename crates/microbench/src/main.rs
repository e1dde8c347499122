//! `alpes-microbench`: measures the platform's hot paths one at a time — the outbox to the bus,
//! the alianzas event store, the integraciones partner list — and prints one line per figure
//! (with `--json`, one JSON object per line). It asserts nothing about speed: the figures go
//! to a results file. Every run uses fresh databases and streams and removes them afterwards.
#![allow(clippy::print_stdout)]

mod event_store;
mod explain;
mod list;
mod outbox;
mod report;
mod scratch;

use clap::{Parser, Subcommand};

use crate::outbox::BusChoice;
use crate::report::Figure;
use crate::scratch::BackendChoice;

#[derive(Debug, Parser)]
#[command(name = "alpes-microbench", about = "Measures the platform's hot paths")]
struct Cli {
    /// Print one JSON object per figure instead of a human line.
    #[arg(long, global = true)]
    json: bool,
    /// The PostgreSQL server, without a database: each run creates and drops its own.
    #[arg(
        long,
        global = true,
        env = "MICROBENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    postgres: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Events/s appended to the outbox, relayed to the bus, and consumed by a group.
    Outbox {
        #[arg(long, value_enum, default_value_t = BackendChoice::Sqlite)]
        backend: BackendChoice,
        #[arg(long, value_enum, default_value_t = BusChoice::Embedded)]
        bus: BusChoice,
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Events per append transaction (1: one business write each).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Competing consumers of the group draining the topic.
        #[arg(long, default_value_t = 1)]
        consumers: usize,
        #[arg(long, env = "MICROBENCH_NATS", default_value = "nats://127.0.0.1:4222")]
        nats: String,
    },
    /// Append and load times of one contract's event stream, with and without snapshots.
    EventStore {
        #[arg(long, value_enum, default_value_t = BackendChoice::Sqlite)]
        backend: BackendChoice,
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        /// Timed loads of the finished contract.
        #[arg(long, default_value_t = 200)]
        loads: usize,
    },
    /// `GET /api/v1/partners` latency over many partners on PostgreSQL.
    List {
        #[arg(long, default_value_t = 500_000)]
        partners: usize,
        /// Timed requests per query shape.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Pages walked through `next_cursor` before the deep page is timed.
        #[arg(long, default_value_t = 20)]
        deep_pages: usize,
        /// Keep the database for inspection instead of dropping it.
        #[arg(long)]
        keep_database: bool,
        /// Print the query plans (EXPLAIN ANALYZE) of every shape to stderr.
        #[arg(long)]
        explain: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let figures = match cli.command {
        Command::Outbox {
            backend,
            bus,
            events,
            batch,
            consumers,
            nats,
        } => {
            outbox::run(&outbox::OutboxOptions {
                backend,
                bus,
                events,
                batch,
                consumers,
                postgres_server: cli.postgres,
                nats_url: nats,
            })
            .await?
        }
        Command::EventStore {
            backend,
            events,
            loads,
        } => {
            event_store::run(&event_store::EventStoreOptions {
                backend,
                events,
                loads,
                postgres_server: cli.postgres,
            })
            .await?
        }
        Command::List {
            partners,
            requests,
            deep_pages,
            keep_database,
            explain,
        } => {
            list::run(&list::ListOptions {
                partners,
                requests,
                deep_pages,
                postgres_server: cli.postgres,
                keep_database,
                explain,
            })
            .await?
        }
    };
    print(&figures, cli.json);
    Ok(())
}

fn print(figures: &[Figure], json: bool) {
    for figure in figures {
        if json {
            println!("{}", figure.json());
        } else {
            println!("{}", figure.human());
        }
    }
}
