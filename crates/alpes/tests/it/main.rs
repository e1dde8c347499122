//! End-to-end tests of the `alpes` binary as a user runs it: `alpes up` over real sockets,
//! clean shutdown, a kill -9 in the middle of a burst of writes, and `alpes bench`.

mod bench;
mod crash;
mod saga;
mod up;

use std::path::Path;

use testkit::process::AlpesProcess;

/// Starts `alpes up` on free ports with its data in `data_dir`.
pub async fn alpes_up(data_dir: &Path) -> AlpesProcess {
    let dir = data_dir.to_str().expect("utf-8 temp path");
    AlpesProcess::start(
        Path::new(env!("CARGO_BIN_EXE_alpes")),
        &["up", "--data-dir", dir],
        &[],
    )
    .await
}

/// Settings for a platform started in this process: its data in `data_dir`, every unit on a
/// free port.
pub fn in_process_settings(data_dir: &Path) -> alpes::settings::Settings {
    let mut settings = alpes::settings::Settings::default();
    settings.data_dir = data_dir.to_path_buf();
    settings.ports = alpes::settings::Ports {
        integraciones: 0,
        alianzas: 0,
        compliance: 0,
        campanias: 0,
        bff: 0,
    };
    settings
}

/// The outbox backlog a service reports on `/metrics`.
pub async fn outbox_backlog(client: &reqwest::Client, base: &str, service: &str) -> Option<i64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let prefix = format!("alpes_outbox_backlog{{service=\"{service}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}
