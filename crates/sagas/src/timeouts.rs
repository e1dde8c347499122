//! The deadline worker: on start and then every `timeout_check_interval` it fires the
//! deadlines that have passed. Each saga times out in its own transaction under its lock and
//! version guard, so any number of replicas may run this worker without firing one twice.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::application::Service;

/// Runs until `shutdown` resolves.
pub async fn run(
    service: Arc<Service>,
    interval: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        match service.time_out_due().await {
            Ok(0) => {}
            Ok(fired) => tracing::debug!(fired, "saga deadlines fired"),
            Err(error) => tracing::warn!(%error, "cannot check saga deadlines; will retry"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
