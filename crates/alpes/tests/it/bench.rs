//! `alpes bench` as the README runs it, in both modes: a short run that starts its own
//! platform, onboards partners through the BFF, waits for their sagas and reports every figure
//! as one JSON object. Only counts and the report's shape are checked, never timings.

use std::time::Duration;

use serde_json::Value;

/// Start-up, two seconds of load and the drain take seconds; this only bounds a hang.
const DEADLINE: Duration = Duration::from_secs(180);

/// Runs `alpes bench` at 10 onboardings a second for two seconds with `args` and `env` added,
/// its temporary files under `scratch`; returns its report and its standard error.
async fn bench(scratch: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Value, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_alpes"))
        .args(["bench", "--rate", "10", "--duration", "2", "--json"])
        .args(args)
        .envs(env.iter().copied())
        .env("TMPDIR", scratch)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("the bench finishes within the deadline")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "bench failed: {stderr}");
    let report = serde_json::from_slice(&output.stdout).expect("one JSON object");
    (report, stderr)
}

/// What every report holds: all twenty onboardings sent, accepted and completed, ordered
/// percentiles, the platform's CPU and memory, samples over time and the saga latency of each
/// second's sends.
fn assert_complete(report: &Value, processes: u64) {
    assert_eq!(report["offered_rate"], 10);
    for (count, expected) in [
        ("sent", 20),
        ("accepted", 20),
        ("completed", 20),
        ("not_completed", 0),
        ("errors", 0),
    ] {
        assert_eq!(report[count], expected, "{count} in {report}");
    }
    assert!(report["completed_per_s"].as_f64().unwrap() > 0.0);
    for latencies in ["saga_latency_ms", "post_latency_ms"] {
        let [p50, p95, p99, max] =
            ["p50", "p95", "p99", "max"].map(|p| report[latencies][p].as_f64().unwrap());
        assert!(
            0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max,
            "{latencies}: {}",
            report[latencies]
        );
    }
    for figure in ["platform_cpu_s", "peak_rss_mb", "idle_rss_mb"] {
        assert!(
            report[figure].as_f64().unwrap() > 0.0,
            "{figure} in {report}"
        );
    }
    assert_eq!(report["platform_processes"], processes);
    for check in report["targets"].as_array().expect("a list of targets") {
        assert!(
            check["target"].is_string() && check["figure"].is_f64() && check["met"].is_boolean(),
            "{check}"
        );
    }
    let completed: Vec<i64> = report["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["completed"].as_i64().unwrap())
        .collect();
    assert!(
        !completed.is_empty()
            && completed.windows(2).all(|pair| pair[0] <= pair[1])
            && completed.last() <= Some(&20),
        "completed over time: {completed:?}"
    );
    // Ten sagas sent in each of the two seconds, every one of them in the series.
    let by_second: Vec<(u64, u64)> = report["saga_latency_by_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["second"].as_u64().unwrap(), s["sagas"].as_u64().unwrap()))
        .collect();
    assert_eq!(by_second, [(0, 10), (1, 10)], "{report}");
}

#[tokio::test]
async fn an_embedded_bench_completes_every_onboarding_and_reports_it_as_json() {
    let scratch = tempfile::tempdir().unwrap();
    let (report, stderr) = bench(
        scratch.path(),
        &["--mode", "embedded", "--platform-log", "info"],
        &[],
    )
    .await;
    assert_eq!(report["mode"], "embedded");
    assert_complete(&report, 1);
    assert!(report["ready_ms"].as_f64().unwrap() > 0.0);
    // At 10 a second for 2 s only the memory and start-up targets are measured.
    let targets: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "embedded: peak RSS <= 200 MB (MiB)",
            "embedded: idle RSS <= 40 MB (MiB)",
            "embedded: alpes up ready <= 1 s (ms)",
        ]
    );
    assert!(report["samples"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["consumer_lag"].is_i64()));
    // `--platform-log info` reached the platform, whose start-up logs at that level only.
    assert!(
        stderr.contains("migration applied"),
        "no platform log at info: {stderr}"
    );
}

#[tokio::test]
async fn a_distributed_bench_on_postgresql_and_nats_completes_and_drops_its_databases() {
    let server = testkit::postgres::server_url();
    let admin = format!("{server}/postgres");
    let benches = || async {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("PostgreSQL is reachable");
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench%' ORDER BY datname",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        names
    };
    let before = benches().await;
    let scratch = tempfile::tempdir().unwrap();
    let (report, _) = bench(
        scratch.path(),
        &["--mode", "distributed", "--postgres-url", &server],
        &[("ALPES_BUS_URL", &testkit::deployment::nats_url())],
    )
    .await;
    assert_eq!(report["mode"], "distributed");
    assert_complete(&report, 5);
    // Offered 10 a second: the distributed throughput target is not measured.
    assert_eq!(report["targets"], serde_json::json!([]));
    assert_eq!(benches().await, before, "the run's databases are dropped");
}
