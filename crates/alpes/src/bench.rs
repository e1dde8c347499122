//! `alpes bench`: onboards partners through the BFF over HTTP at a fixed offered rate (or as fast
//! as possible) for a duration and reports completed sagas per second, end-to-end saga latency
//! (BFF 202 → saga COMPLETADA), BFF `POST` latency, errors, the platform's CPU time and peak RSS,
//! and the outbox backlog and consumer lag over time. Latency is measured from each request's
//! intended send time, so a stalled platform cannot hide queueing (no coordinated omission).
//! The platform runs in child processes so its CPU and memory are its own, not the generator's.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use contracts::sagas::OnboardingEstadoCambiado;
use kernel::{Bus, IntegrationEvent, SubscribeOptions};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::platform::BusHandle;
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    /// `alpes up` in one child process: SQLite files and the embedded bus.
    Embedded,
    /// One `alpes serve` process per service on PostgreSQL and NATS JetStream.
    Distributed,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub mode: BenchMode,
    /// Onboardings offered per second; `None` is as fast as the platform answers.
    pub rate: Option<u32>,
    pub duration: Duration,
    /// Concurrent requests in `max` mode, and the cap on in-flight requests at a fixed rate.
    pub concurrency: usize,
    /// A BFF already running (its bus is found through the settings); none starts one.
    pub target: Option<String>,
    pub postgres_url: String,
    /// The `tracing` filter of the processes the benchmark starts (`ALPES_LOG` there).
    pub platform_log: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut micros: Vec<u64>) -> Percentiles {
        if micros.is_empty() {
            return Percentiles::default();
        }
        micros.sort_unstable();
        let at = |q: f64| {
            let index = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
            micros[index] as f64 / 1000.0
        };
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: micros[micros.len() - 1] as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub outbox_backlog: i64,
    pub consumer_lag: Option<i64>,
    pub completed: u64,
}

/// The sagas sent in one second of the run (by intended send time) and their latency: a
/// platform's warm-up or a stall shows where the run-wide percentiles only show that it happened.
#[derive(Debug, Serialize)]
pub struct SecondLatency {
    /// Seconds since the start of the load: the sagas sent in `[second, second + 1)`.
    pub second: u64,
    pub sagas: usize,
    pub saga_latency_ms: Percentiles,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub offered_rate: Option<u32>,
    pub duration_s: f64,
    pub sent: u64,
    pub accepted: u64,
    pub completed: u64,
    pub not_completed: u64,
    pub completed_per_s: f64,
    pub saga_latency_ms: Percentiles,
    pub post_latency_ms: Percentiles,
    pub errors: u64,
    pub platform_processes: usize,
    pub platform_cpu_s: Option<f64>,
    pub platform_cpu_cores: Option<f64>,
    pub idle_rss_mb: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub ready_ms: Option<f64>,
    /// The performance targets this run's conditions measure (see [`targets`]).
    pub targets: Vec<TargetCheck>,
    pub samples: Vec<Sample>,
    /// Saga latency second by second of the load.
    pub saga_latency_by_second: Vec<SecondLatency>,
}

/// One of the platform's performance targets set against a run's figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetCheck {
    /// The target as the platform states it, conditions included.
    pub target: &'static str,
    /// The run's figure, in the target's unit.
    pub figure: f64,
    pub met: bool,
}

/// 1 MB (10^6 bytes) in the MiB the RSS figures are reported in.
const MIB_PER_MB: f64 = 1e6 / (1024.0 * 1024.0);

/// The targets whose conditions this run meets, each set against its figure: the embedded
/// platform's (≥ 1,333 sagas/s over a 60 s run offered at least that many; saga p99 ≤ 250 ms
/// and `POST` p99 ≤ 20 ms at 1,000 offered a second; peak RSS ≤ 200 MB, idle ≤ 40 MB, ready
/// within 1 s) and the distributed one's (≥ 400 sagas/s when offered at least that many).
/// None applies to a platform this command did not start (`--target`): which deployment
/// answers is unknown there. The distributed target relative to PostgreSQL's commit rate
/// needs pgbench beside it (BENCHMARKS.md).
pub fn targets(report: &Report) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    if report.platform_processes == 0 {
        return checks;
    }
    let mut check = |target, figure: Option<f64>, limit: f64, at_least: bool| {
        if let Some(figure) = figure {
            let met = if at_least {
                figure >= limit
            } else {
                figure <= limit
            };
            checks.push(TargetCheck {
                target,
                figure,
                met,
            });
        }
    };
    let offered_at_least = |rate: u32| report.offered_rate.is_none_or(|offered| offered >= rate);
    match report.mode {
        "embedded" => {
            if report.duration_s >= 60.0 && offered_at_least(1_333) {
                check(
                    "embedded: completed sagas/s >= 1,333 over 60 s",
                    Some(report.completed_per_s),
                    1_333.0,
                    true,
                );
            }
            if report.offered_rate == Some(1_000) {
                check(
                    "embedded: saga p99 <= 250 ms at 1,000 offered/s",
                    Some(report.saga_latency_ms.p99),
                    250.0,
                    false,
                );
                check(
                    "embedded: BFF POST p99 <= 20 ms at 1,000 offered/s",
                    Some(report.post_latency_ms.p99),
                    20.0,
                    false,
                );
            }
            check(
                "embedded: peak RSS <= 200 MB (MiB)",
                report.peak_rss_mb,
                200.0 * MIB_PER_MB,
                false,
            );
            check(
                "embedded: idle RSS <= 40 MB (MiB)",
                report.idle_rss_mb,
                40.0 * MIB_PER_MB,
                false,
            );
            check(
                "embedded: alpes up ready <= 1 s (ms)",
                report.ready_ms,
                1_000.0,
                false,
            );
        }
        _ => {
            if offered_at_least(400) {
                check(
                    "distributed: completed sagas/s >= 400",
                    Some(report.completed_per_s),
                    400.0,
                    true,
                );
            }
        }
    }
    checks
}

/// The platform under test: child processes this command started, or nothing (a target).
struct Deployment {
    children: Vec<Child>,
    bff: String,
    metrics_urls: Vec<String>,
    ready: Option<Duration>,
    /// Where a platform this command started keeps its data; removed at the end.
    data: Option<tempfile::TempDir>,
}

impl Deployment {
    fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    async fn stop(mut self) {
        for child in &self.children {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for child in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
            }
        }
    }
}

/// Starts `alpes <args>` and reads the URLs of its banner.
async fn spawn_alpes(
    args: &[String],
    env: &[(String, String)],
    log: &str,
) -> anyhow::Result<(Child, HashMap<String, String>)> {
    let exe = std::env::current_exe().context("locating the alpes binary")?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .env("ALPES_LOG", log);
    for key in [
        "ALPES_INTEGRACIONES_PORT",
        "ALPES_ALIANZAS_PORT",
        "ALPES_COMPLIANCE_PORT",
        "ALPES_CAMPANIAS_PORT",
        "ALPES_BFF_PORT",
        "ALPES_PORT",
    ] {
        command.env(key, "0");
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().context("starting alpes")?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut urls = HashMap::new();
    let banner = async {
        while let Some(line) = lines.next_line().await? {
            let mut words = line.split_whitespace();
            if let (Some(name), Some(url)) = (words.next(), words.next()) {
                if url.starts_with("http://") && !url.contains("/sagas") {
                    urls.insert(name.to_owned(), url.to_owned());
                }
            }
            if line.starts_with("Press Ctrl-C") {
                return Ok::<bool, std::io::Error>(true);
            }
        }
        Ok(false)
    };
    let up = tokio::time::timeout(Duration::from_secs(120), banner)
        .await
        .context("alpes did not come up within two minutes")??;
    if !up {
        bail!("alpes exited before it was up");
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, urls))
}

async fn start_embedded(log: &str) -> anyhow::Result<Deployment> {
    let data = tempfile::tempdir().context("a temporary data directory")?;
    let started = Instant::now();
    let (child, urls) = spawn_alpes(
        &[
            "up".into(),
            "--data-dir".into(),
            data.path().display().to_string(),
        ],
        &[],
        log,
    )
    .await?;
    let ready = started.elapsed();
    let bff = urls
        .get("bff")
        .cloned()
        .context("alpes printed no BFF URL")?;
    Ok(Deployment {
        children: vec![child],
        metrics_urls: urls.values().cloned().collect(),
        bff,
        ready: Some(ready),
        data: Some(data),
    })
}

async fn start_distributed(
    settings: &Settings,
    options: &BenchOptions,
    prefix: &str,
) -> anyhow::Result<Deployment> {
    let data = tempfile::tempdir().context("a temporary data directory")?;
    let bus_url = settings
        .bus_url
        .clone()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    let server = options.postgres_url.trim_end_matches('/');
    let mut children = Vec::new();
    let mut urls: HashMap<String, String> = HashMap::new();
    for unit in [
        "integraciones",
        "alianzas",
        "compliance",
        "campanias",
        "bff",
    ] {
        let args: Vec<String> = vec![
            "serve".into(),
            unit.into(),
            "--database-url".into(),
            format!("{server}/{prefix}_{unit}"),
            "--bus-url".into(),
            bus_url.clone(),
            "--bus-prefix".into(),
            prefix.into(),
            "--data-dir".into(),
            data.path().join(unit).display().to_string(),
        ];
        let mut env = Vec::new();
        if unit == "bff" {
            for (key, service) in [
                ("ALPES_INTEGRACIONES_URL", "integraciones"),
                ("ALPES_ALIANZAS_URL", "alianzas"),
                ("ALPES_COMPLIANCE_URL", "compliance"),
                ("ALPES_CAMPANIAS_URL", "campanias"),
            ] {
                env.push((key.to_owned(), urls[service].clone()));
            }
        }
        let (child, printed) = spawn_alpes(&args, &env, &options.platform_log).await?;
        children.push(child);
        urls.extend(printed);
    }
    let bff = urls.get("bff").cloned().context("the BFF printed no URL")?;
    Ok(Deployment {
        children,
        metrics_urls: urls.values().cloned().collect(),
        bff,
        ready: None,
        data: Some(data),
    })
}

/// CPU seconds (user + system) and (current, peak) RSS in MiB of a process, from /proc.
fn process_usage(pid: u32) -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
    };
    // Linux reports these in USER_HZ, which is 100 on every supported architecture.
    Some((
        ticks / 100.0,
        kib("VmRSS:")? / 1024.0,
        kib("VmHWM:")? / 1024.0,
    ))
}

fn usage_of(pids: &[u32]) -> Option<(f64, f64, f64)> {
    pids.iter()
        .try_fold((0.0, 0.0, 0.0), |(cpu, rss, peak), pid| {
            let (c, r, p) = process_usage(*pid)?;
            Some((cpu + c, rss + r, peak + p))
        })
}

async fn outbox_backlog(client: &reqwest::Client, metrics_urls: &[String]) -> i64 {
    let mut total = 0;
    for base in metrics_urls {
        let Ok(response) = client.get(format!("{base}/metrics")).send().await else {
            continue;
        };
        let Ok(text) = response.text().await else {
            continue;
        };
        total += text
            .lines()
            .filter(|line| line.starts_with("alpes_outbox_backlog{"))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<i64>().ok())
            .sum::<i64>();
    }
    total
}

const GROUPS: [&str; 5] = [
    "integraciones",
    "alianzas",
    "sagas",
    "compliance",
    "campanias",
];

async fn consumer_lag(bus: Option<&embedded_bus::EmbeddedBus>) -> Option<i64> {
    let bus = bus?;
    let mut total = 0;
    for group in GROUPS {
        total += bus.pending(group).await.ok()?;
    }
    Some(total)
}

/// Times are wall-clock: a saga's completion time is the `time` of its `OnboardingEstadoCambiado`
/// envelope, stamped by the saga log when it committed the outcome, so how quickly this
/// observer hears of it does not count.
struct Shared {
    intended: Mutex<HashMap<Uuid, DateTime<Utc>>>,
    completed_at: Mutex<HashMap<Uuid, DateTime<Utc>>>,
    completed: AtomicU64,
}

/// Runs the benchmark and returns its report.
pub async fn run(settings: &Settings, options: BenchOptions) -> anyhow::Result<Report> {
    let prefix = format!("bench{}", Uuid::now_v7().simple());
    let deployment = match (&options.target, options.mode) {
        (Some(target), _) => Deployment {
            children: Vec::new(),
            bff: target.trim_end_matches('/').to_owned(),
            metrics_urls: vec![target.trim_end_matches('/').to_owned()],
            ready: None,
            data: None,
        },
        (None, BenchMode::Embedded) => start_embedded(&options.platform_log).await?,
        (None, BenchMode::Distributed) => start_distributed(settings, &options, &prefix).await?,
    };
    let result = measure(settings, &options, &deployment, &prefix).await;
    deployment.stop().await;
    if options.target.is_none() && options.mode == BenchMode::Distributed {
        cleanup_distributed(settings, &options, &prefix).await;
    }
    result
}

/// Drops the databases and NATS streams a distributed run created (best effort: a leftover only
/// costs disk, and is named after the run).
async fn cleanup_distributed(settings: &Settings, options: &BenchOptions, prefix: &str) {
    use sqlx::Connection;
    let server = options.postgres_url.trim_end_matches('/');
    if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await {
        for unit in [
            "integraciones",
            "alianzas",
            "alianzas_sagas",
            "compliance",
            "campanias",
            "bff",
        ] {
            let statement = format!("DROP DATABASE IF EXISTS \"{prefix}_{unit}\" WITH (FORCE)");
            if let Err(error) = sqlx::query(&statement).execute(&mut admin).await {
                tracing::warn!(%error, "could not drop a benchmark database");
            }
        }
        let _ = admin.close().await;
    }
    let url = settings
        .bus_url
        .clone()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    if let Ok(bus) = nats_bus::NatsBus::connect(&url, prefix).await {
        if let Err(error) = bus.delete_streams().await {
            tracing::warn!(%error, "could not delete the benchmark's streams");
        }
        bus.close().await;
    }
}

async fn measure(
    settings: &Settings,
    options: &BenchOptions,
    deployment: &Deployment,
    prefix: &str,
) -> anyhow::Result<Report> {
    // Observe saga outcomes on the platform's own bus, through a group of our own.
    let mut observer_settings = settings.clone();
    let mut embedded_observer = None;
    let bus: Arc<dyn Bus> = match (&deployment.data, options.mode, &options.target) {
        (Some(data), BenchMode::Embedded, None) => {
            let bus = embedded_bus::EmbeddedBus::attach(&data.path().join("bus.db")).await?;
            embedded_observer = Some(bus.clone());
            Arc::new(bus)
        }
        (Some(_), BenchMode::Distributed, None) => {
            observer_settings.bus_prefix = prefix.to_owned();
            if observer_settings.bus_url.is_none() {
                observer_settings.bus_url = Some("nats://127.0.0.1:4222".to_owned());
            }
            BusHandle::open(&observer_settings).await?.shared()
        }
        _ => match &settings.bus_url {
            Some(_) => BusHandle::open(settings).await?.shared(),
            None => {
                let bus =
                    embedded_bus::EmbeddedBus::attach(&settings.data_dir.join("bus.db")).await?;
                embedded_observer = Some(bus.clone());
                Arc::new(bus)
            }
        },
    };
    let group = format!("bench-{}", Uuid::now_v7().simple());
    let mut subscription = bus
        .subscribe(
            OnboardingEstadoCambiado::TOPIC,
            &group,
            SubscribeOptions::default(),
        )
        .await?;
    let shared = Arc::new(Shared {
        intended: Mutex::new(HashMap::new()),
        completed_at: Mutex::new(HashMap::new()),
        completed: AtomicU64::new(0),
    });
    let observer = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                // Batches: the observer claims and acks on the platform's own bus, and
                // should cost it as little as possible.
                let deliveries = match subscription.next_batch(256).await {
                    Ok(deliveries) => deliveries,
                    Err(kernel::BusError::Closed) => return,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                for delivery in &deliveries {
                    let Ok(event) = delivery.envelope.decode::<OnboardingEstadoCambiado>() else {
                        continue;
                    };
                    if event.estado == "COMPLETADA" {
                        let mut completed = shared.completed_at.lock().expect("not poisoned");
                        if completed
                            .insert(event.saga_id, delivery.envelope.time)
                            .is_none()
                        {
                            shared.completed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                let _ = subscription.ack_all(deliveries).await;
            }
        })
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let pids = deployment.pids();
    let idle = usage_of(&pids);
    let started = Instant::now();
    let started_wall = Utc::now();
    let wall = move |at: Instant| {
        started_wall + chrono::Duration::from_std(at.duration_since(started)).unwrap_or_default()
    };
    let post_latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency));
    let url = format!("{}/api/v1/partners", deployment.bff);

    // Sampling: outbox backlog and consumer lag every second.
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let samples = samples.clone();
        let client = client.clone();
        let metrics_urls = deployment.metrics_urls.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let sample = Sample {
                    t_s: started.elapsed().as_secs_f64(),
                    outbox_backlog: outbox_backlog(&client, &metrics_urls).await,
                    consumer_lag: consumer_lag(embedded_observer.as_ref()).await,
                    completed: shared.completed.load(Ordering::Relaxed),
                };
                samples.lock().expect("not poisoned").push(sample);
            }
        })
    };

    let send = {
        let client = client.clone();
        let shared = shared.clone();
        let post_latencies = post_latencies.clone();
        let errors = errors.clone();
        let accepted = accepted.clone();
        move |index: u64, intended: Instant| {
            let client = client.clone();
            let shared = shared.clone();
            let post_latencies = post_latencies.clone();
            let errors = errors.clone();
            let accepted = accepted.clone();
            let url = url.clone();
            async move {
                let body = serde_json::json!({
                    "nombre": format!("Bench Partner {index}"),
                    "email": format!("bench{index}-{}@bench.test", Uuid::now_v7().simple()),
                });
                let response = client.post(&url).json(&body).send().await;
                let latency = intended.elapsed().as_micros() as u64;
                match response {
                    Ok(response) if response.status().as_u16() == 202 => {
                        post_latencies.lock().expect("not poisoned").push(latency);
                        accepted.fetch_add(1, Ordering::Relaxed);
                        let saga_id =
                            response
                                .json::<serde_json::Value>()
                                .await
                                .ok()
                                .and_then(|v| {
                                    v["saga_id"].as_str().and_then(|s| s.parse::<Uuid>().ok())
                                });
                        match saga_id {
                            Some(saga_id) => {
                                shared
                                    .intended
                                    .lock()
                                    .expect("not poisoned")
                                    .insert(saga_id, wall(intended));
                            }
                            None => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    };

    let mut tasks = tokio::task::JoinSet::new();
    let deadline = started + options.duration;
    match options.rate {
        Some(rate) => {
            let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
            let mut index = 0u64;
            loop {
                let intended = started + interval.mul_f64(index as f64);
                if intended >= deadline {
                    break;
                }
                tokio::time::sleep_until(intended.into()).await;
                let permit = semaphore.clone().acquire_owned().await?;
                sent.fetch_add(1, Ordering::Relaxed);
                let request = send(index, intended);
                tasks.spawn(async move {
                    request.await;
                    drop(permit);
                });
                index += 1;
                while tasks.try_join_next().is_some() {}
            }
        }
        None => {
            for worker in 0..options.concurrency as u64 {
                let send = send.clone();
                let sent = sent.clone();
                tasks.spawn(async move {
                    let mut index = worker;
                    while Instant::now() < deadline {
                        sent.fetch_add(1, Ordering::Relaxed);
                        send(index, Instant::now()).await;
                        index += 1_000_000;
                    }
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    let load_end = Instant::now();

    // Let the sagas in flight finish, up to a bound.
    let accepted_total = accepted.load(Ordering::Relaxed);
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while shared.completed.load(Ordering::Relaxed) < accepted_total
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = usage_of(&pids);
    sampler.abort();
    observer.abort();

    let intended = shared.intended.lock().expect("not poisoned");
    let completed_at = shared.completed_at.lock().expect("not poisoned");
    let mut saga_latencies = Vec::new();
    let mut by_second: Vec<Vec<u64>> = Vec::new();
    let mut last_completion = wall(load_end);
    for (saga_id, at) in completed_at.iter() {
        if let Some(start) = intended.get(saga_id) {
            let latency = (*at - *start).num_microseconds().unwrap_or(0).max(0) as u64;
            saga_latencies.push(latency);
            last_completion = last_completion.max(*at);
            let second = (*start - started_wall).num_seconds().max(0) as usize;
            if by_second.len() <= second {
                by_second.resize_with(second + 1, Vec::new);
            }
            by_second[second].push(latency);
        }
    }
    let completed = saga_latencies.len() as u64;
    let elapsed = (last_completion - started_wall)
        .num_microseconds()
        .unwrap_or(0) as f64
        / 1e6;
    let (cpu, peak) = match (idle, during) {
        (Some((idle_cpu, _, _)), Some((cpu, _, peak))) => (Some(cpu - idle_cpu), Some(peak)),
        _ => (None, None),
    };
    let report = Report {
        mode: match options.mode {
            BenchMode::Embedded => "embedded",
            BenchMode::Distributed => "distributed",
        },
        offered_rate: options.rate,
        duration_s: options.duration.as_secs_f64(),
        sent: sent.load(Ordering::Relaxed),
        accepted: accepted_total,
        completed,
        not_completed: accepted_total.saturating_sub(completed),
        completed_per_s: if elapsed > 0.0 {
            completed as f64 / elapsed
        } else {
            0.0
        },
        saga_latency_ms: Percentiles::of(saga_latencies),
        post_latency_ms: Percentiles::of(std::mem::take(
            &mut *post_latencies.lock().expect("not poisoned"),
        )),
        errors: errors.load(Ordering::Relaxed),
        platform_processes: pids.len(),
        platform_cpu_s: cpu,
        platform_cpu_cores: cpu.map(|cpu| cpu / elapsed.max(f64::EPSILON)),
        idle_rss_mb: idle.map(|(_, rss, _)| rss),
        peak_rss_mb: peak,
        ready_ms: deployment.ready.map(|ready| ready.as_secs_f64() * 1000.0),
        targets: Vec::new(),
        samples: std::mem::take(&mut *samples.lock().expect("not poisoned")),
        saga_latency_by_second: by_second
            .into_iter()
            .enumerate()
            .map(|(second, latencies)| SecondLatency {
                second: second as u64,
                sagas: latencies.len(),
                saga_latency_ms: Percentiles::of(latencies),
            })
            .collect(),
    };
    Ok(Report {
        targets: targets(&report),
        ..report
    })
}

/// The human-readable summary.
pub fn render(report: &Report) -> String {
    let p = |l: &Percentiles| {
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.p50, l.p95, l.p99, l.max
        )
    };
    let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_owned(), |v| format!("{v:.1} {unit}"));
    let mut text = format!(
        "mode {}; offered {}; {:.0} s\n\
         sent {}, accepted {}, completed {}, not completed {}, errors {}\n\
         completed sagas/s: {:.1}\n\
         saga latency (202 → COMPLETADA): {}\n\
         BFF POST latency: {}\n\
         platform: {} process(es), CPU {} ({} cores), idle RSS {}, peak RSS {}, ready in {}\n",
        report.mode,
        report
            .offered_rate
            .map_or("max".to_owned(), |r| format!("{r}/s")),
        report.duration_s,
        report.sent,
        report.accepted,
        report.completed,
        report.not_completed,
        report.errors,
        report.completed_per_s,
        p(&report.saga_latency_ms),
        p(&report.post_latency_ms),
        report.platform_processes,
        opt(report.platform_cpu_s, "s"),
        report
            .platform_cpu_cores
            .map_or("n/a".to_owned(), |c| format!("{c:.2}")),
        opt(report.idle_rss_mb, "MiB"),
        opt(report.peak_rss_mb, "MiB"),
        opt(report.ready_ms, "ms"),
    );
    if report.targets.is_empty() {
        text.push_str("targets: none measured by this run\n");
    }
    for check in &report.targets {
        text.push_str(&format!(
            "target {:<6}  {}: {:.1}\n",
            if check.met { "met" } else { "MISSED" },
            check.target,
            check.figure
        ));
    }
    text.push_str("t(s)  outbox-backlog  consumer-lag  completed\n");
    for sample in &report.samples {
        text.push_str(&format!(
            "{:>4.0}  {:>14}  {:>12}  {:>9}\n",
            sample.t_s,
            sample.outbox_backlog,
            sample
                .consumer_lag
                .map_or("n/a".to_owned(), |l| l.to_string()),
            sample.completed
        ));
    }
    text.push_str("sent in second  sagas  saga p50 ms  saga p99 ms  saga max ms\n");
    for second in &report.saga_latency_by_second {
        let latency = &second.saga_latency_ms;
        text.push_str(&format!(
            "{:>14}  {:>5}  {:>11.1}  {:>11.1}  {:>11.1}\n",
            second.second, second.sagas, latency.p50, latency.p99, latency.max
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run started by this command, with the figures the targets read.
    fn report(mode: &'static str, rate: Option<u32>, duration_s: f64) -> Report {
        let latency = |p99| Percentiles {
            p50: 1.0,
            p95: 2.0,
            p99,
            max: p99 + 1.0,
        };
        Report {
            mode,
            offered_rate: rate,
            duration_s,
            sent: 1,
            accepted: 1,
            completed: 1,
            not_completed: 0,
            completed_per_s: 1_300.0,
            saga_latency_ms: latency(240.0),
            post_latency_ms: latency(25.0),
            errors: 0,
            platform_processes: 1,
            platform_cpu_s: Some(1.0),
            platform_cpu_cores: Some(1.0),
            idle_rss_mb: Some(38.5),
            peak_rss_mb: Some(150.0),
            ready_ms: Some(90.0),
            targets: Vec::new(),
            samples: Vec::new(),
            saga_latency_by_second: Vec::new(),
        }
    }

    fn verdicts(report: &Report) -> Vec<(&'static str, bool)> {
        targets(report)
            .into_iter()
            .map(|check| (check.target, check.met))
            .collect()
    }

    #[test]
    fn a_run_at_one_thousand_a_second_is_held_to_the_latency_targets() {
        assert_eq!(
            verdicts(&report("embedded", Some(1_000), 30.0)),
            [
                ("embedded: saga p99 <= 250 ms at 1,000 offered/s", true),
                ("embedded: BFF POST p99 <= 20 ms at 1,000 offered/s", false),
                ("embedded: peak RSS <= 200 MB (MiB)", true),
                // 38.5 MiB is 40.4 MB.
                ("embedded: idle RSS <= 40 MB (MiB)", false),
                ("embedded: alpes up ready <= 1 s (ms)", true),
            ]
        );
    }

    #[test]
    fn throughput_is_judged_only_over_sixty_seconds_offered_enough() {
        let throughput = "embedded: completed sagas/s >= 1,333 over 60 s";
        let judged = |rate, duration| {
            targets(&report("embedded", rate, duration))
                .into_iter()
                .find(|check| check.target == throughput)
        };
        let missed = judged(Some(1_400), 60.0).expect("judged");
        assert!(!missed.met);
        assert_eq!(missed.figure, 1_300.0);
        assert!(judged(None, 60.0).is_some());
        assert!(judged(Some(1_400), 30.0).is_none());
        assert!(judged(Some(1_000), 60.0).is_none());
    }

    #[test]
    fn distributed_runs_and_runs_against_a_target_platform_have_their_own_rules() {
        assert_eq!(
            verdicts(&report("distributed", Some(600), 20.0)),
            [("distributed: completed sagas/s >= 400", true)]
        );
        assert!(verdicts(&report("distributed", Some(100), 20.0)).is_empty());
        let against_a_target = Report {
            platform_processes: 0,
            ..report("embedded", Some(1_000), 30.0)
        };
        assert!(targets(&against_a_target).is_empty());
    }
}
