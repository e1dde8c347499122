//! Test support shared by every crate's integration tests: the bus conformance suite, fresh
//! PostgreSQL databases, polling with a deadline (never a bare sleep), and a handle on a running
//! `alpes` process that a test can kill with SIGKILL or stop with SIGTERM.

pub mod bus_conformance;
pub mod duplicating_bus;
pub mod postgres;
pub mod process;

use std::future::Future;
use std::time::Duration;

/// Polls `probe` until it yields `Some`, failing the test with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = tokio::time::Instant::now();
    let mut interval = Duration::from_millis(5);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(100));
    }
}
