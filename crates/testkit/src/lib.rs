//! Test support shared by every crate's integration tests: the bus conformance suite, fresh
//! databases on both backends, a service's stage (database, bus, server on a free port),
//! problem+json assertions, polling with a deadline (never a bare sleep), and a handle on a
//! running `alpes` process that a test can kill with SIGKILL or stop with SIGTERM. It depends
//! on the shared adapters only, never on a service crate.

pub mod bus;
pub mod bus_conformance;
pub mod db;
pub mod deployment;
pub mod duplicating_bus;
pub mod http;
pub mod postgres;
pub mod process;
pub mod service;

use std::future::Future;
use std::time::Duration;

/// How long any awaited effect in a service test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

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
