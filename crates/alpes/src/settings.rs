//! Typed settings, layered: built-in defaults, then an optional `alpes.toml`, then `ALPES_…`
//! environment variables, then command-line flags (applied by `main`). Unknown keys in the file
//! are an error, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The ports of DOMAIN §2; 0 asks the OS for a free one (tests).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ports {
    pub integraciones: u16,
    pub alianzas: u16,
    pub compliance: u16,
    pub campanias: u16,
    pub bff: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            integraciones: 5000,
            alianzas: 8000,
            compliance: 5004,
            campanias: 5002,
            bff: 8080,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// alianzas (contracts) settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlianzasSettings {
    /// A snapshot of a contract is taken every this many events.
    pub snapshot_every: u32,
}

impl Default for AlianzasSettings {
    fn default() -> Self {
        Self { snapshot_every: 50 }
    }
}

/// The saga log's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SagasSettings {
    /// A saga that has not advanced for this long fails with cause `TIMEOUT`.
    pub step_timeout_secs: u64,
    /// In `alpes serve alianzas`: the saga log's database (default: derived from alianzas').
    pub database_url: Option<String>,
}

impl Default for SagasSettings {
    fn default() -> Self {
        Self {
            step_timeout_secs: 300,
            database_url: None,
        }
    }
}

/// compliance settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceSettings {
    /// How long a contract of a partner compliance has not heard of yet is retried before it
    /// is rejected as `PARTNER_INVALIDO` (events on different topics may arrive out of order).
    pub unknown_partner_grace_secs: u64,
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        Self {
            unknown_partner_grace_secs: 30,
        }
    }
}

/// campanias settings: where notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaniasSettings {
    /// Who hears about reviews awaited, failures without a partner address and program changes.
    pub operator_email: String,
    /// Deliver through this SMTP server; unset, each message is a `.eml` file under
    /// `<data_dir>/notificaciones`.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_from: String,
    /// Delivery attempts before a notification is marked FALLIDA.
    pub max_intentos: u32,
}

impl Default for CampaniasSettings {
    fn default() -> Self {
        Self {
            operator_email: "operaciones@alpespartners.local".to_owned(),
            smtp_host: None,
            smtp_port: 25,
            smtp_from: "no-reply@alpespartners.local".to_owned(),
            max_intentos: 5,
        }
    }
}

/// The BFF's settings: where the other services are when they run in other processes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BffSettings {
    pub upstream_timeout_ms: u64,
    pub integraciones_url: String,
    pub alianzas_url: String,
    pub compliance_url: String,
    pub campanias_url: Option<String>,
}

impl Default for BffSettings {
    fn default() -> Self {
        Self {
            upstream_timeout_ms: 2000,
            integraciones_url: "http://127.0.0.1:5000".to_owned(),
            alianzas_url: "http://127.0.0.1:8000".to_owned(),
            compliance_url: "http://127.0.0.1:5004".to_owned(),
            campanias_url: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where embedded mode keeps its databases and bus.
    pub data_dir: PathBuf,
    /// The address services bind to.
    pub host: String,
    pub ports: Ports,
    /// `alpes serve`: the service's database (`sqlite://…` or `postgres://…`); defaults to a
    /// SQLite file in the data directory.
    pub database_url: Option<String>,
    /// `alpes serve`: the port, overriding the service's default.
    pub port: Option<u16>,
    /// NATS JetStream (`nats://host:4222`); unset, services use the embedded bus in the data
    /// directory.
    pub bus_url: Option<String>,
    /// Subjects are `<bus_prefix>.<topic>`, so several deployments can share one NATS server.
    pub bus_prefix: String,
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. `info` or `integraciones=debug,info`.
    pub log: String,
    /// Threads of the async runtime; unset, [`Settings::worker_threads_for`] decides.
    pub worker_threads: Option<usize>,
    /// `alpes up` runs its threads as batch work (`SCHED_BATCH` on Linux, see
    /// `scheduling.rs`), the BFF's front door excepted; `false` leaves the policy it was
    /// started with.
    pub batch_scheduling: bool,
    pub alianzas: AlianzasSettings,
    pub sagas: SagasSettings,
    pub compliance: ComplianceSettings,
    pub campanias: CampaniasSettings,
    pub bff: BffSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".alpes"),
            host: "127.0.0.1".to_owned(),
            ports: Ports::default(),
            database_url: None,
            port: None,
            bus_url: None,
            bus_prefix: "alpes".to_owned(),
            log_format: LogFormat::Human,
            log: "info".to_owned(),
            worker_threads: None,
            batch_scheduling: true,
            alianzas: AlianzasSettings::default(),
            sagas: SagasSettings::default(),
            compliance: ComplianceSettings::default(),
            campanias: CampaniasSettings::default(),
            bff: BffSettings::default(),
        }
    }
}

impl Settings {
    /// Defaults, then `file` (or `./alpes.toml` when it exists), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let default_file = Path::new("alpes.toml");
        let file = match file {
            Some(path) => Some(path),
            None if default_file.exists() => Some(default_file),
            None => None,
        };
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading settings file {}", path.display()))?;
                Settings::from_toml(&text)
                    .with_context(|| format!("parsing settings file {}", path.display()))?
            }
            None => Settings::default(),
        };
        settings.apply_env(|key| std::env::var(key).ok())?;
        Ok(settings)
    }

    pub fn from_toml(text: &str) -> anyhow::Result<Settings> {
        Ok(toml::from_str(text)?)
    }

    /// Overrides from `ALPES_…` variables, read through `var` so tests need not touch the
    /// process environment.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(value) = var("ALPES_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = var("ALPES_HOST") {
            self.host = value;
        }
        if let Some(value) = var("ALPES_DATABASE_URL") {
            self.database_url = Some(value);
        }
        if let Some(value) = var("ALPES_PORT") {
            self.port = Some(parse_port("ALPES_PORT", &value)?);
        }
        if let Some(value) = var("ALPES_BUS_URL") {
            self.bus_url = Some(value);
        }
        if let Some(value) = var("ALPES_BUS_PREFIX") {
            self.bus_prefix = value;
        }
        if let Some(value) = var("ALPES_LOG") {
            self.log = value;
        }
        if let Some(value) = var("ALPES_LOG_FORMAT") {
            self.log_format = match value.as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => anyhow::bail!("ALPES_LOG_FORMAT must be human or json, not {other:?}"),
            };
        }
        let ports = [
            ("ALPES_INTEGRACIONES_PORT", &mut self.ports.integraciones),
            ("ALPES_ALIANZAS_PORT", &mut self.ports.alianzas),
            ("ALPES_COMPLIANCE_PORT", &mut self.ports.compliance),
            ("ALPES_CAMPANIAS_PORT", &mut self.ports.campanias),
            ("ALPES_BFF_PORT", &mut self.ports.bff),
        ];
        for (key, port) in ports {
            if let Some(value) = var(key) {
                *port = parse_port(key, &value)?;
            }
        }
        let numbers = [
            (
                "ALPES_SAGAS_STEP_TIMEOUT_SECS",
                &mut self.sagas.step_timeout_secs,
            ),
            (
                "ALPES_COMPLIANCE_UNKNOWN_PARTNER_GRACE_SECS",
                &mut self.compliance.unknown_partner_grace_secs,
            ),
            (
                "ALPES_BFF_UPSTREAM_TIMEOUT_MS",
                &mut self.bff.upstream_timeout_ms,
            ),
        ];
        for (key, number) in numbers {
            if let Some(value) = var(key) {
                *number = value
                    .parse()
                    .with_context(|| format!("{key} must be a whole number, not {value:?}"))?;
            }
        }
        if let Some(value) = var("ALPES_WORKER_THREADS") {
            let threads: usize = value.parse().ok().filter(|n| *n > 0).with_context(|| {
                format!("ALPES_WORKER_THREADS must be a number of threads above 0, not {value:?}")
            })?;
            self.worker_threads = Some(threads);
        }
        if let Some(value) = var("ALPES_BATCH_SCHEDULING") {
            self.batch_scheduling = value.parse().with_context(|| {
                format!("ALPES_BATCH_SCHEDULING must be true or false, not {value:?}")
            })?;
        }
        if let Some(value) = var("ALPES_ALIANZAS_SNAPSHOT_EVERY") {
            self.alianzas.snapshot_every = value.parse().with_context(|| {
                format!("ALPES_ALIANZAS_SNAPSHOT_EVERY must be a whole number, not {value:?}")
            })?;
        }
        if let Some(value) = var("ALPES_CAMPANIAS_OPERATOR_EMAIL") {
            self.campanias.operator_email = value;
        }
        if let Some(value) = var("ALPES_CAMPANIAS_SMTP_HOST") {
            self.campanias.smtp_host = Some(value);
        }
        if let Some(value) = var("ALPES_CAMPANIAS_SMTP_PORT") {
            self.campanias.smtp_port = parse_port("ALPES_CAMPANIAS_SMTP_PORT", &value)?;
        }
        if let Some(value) = var("ALPES_CAMPANIAS_SMTP_FROM") {
            self.campanias.smtp_from = value;
        }
        if let Some(value) = var("ALPES_SAGAS_DATABASE_URL") {
            self.sagas.database_url = Some(value);
        }
        let urls = [
            ("ALPES_INTEGRACIONES_URL", &mut self.bff.integraciones_url),
            ("ALPES_ALIANZAS_URL", &mut self.bff.alianzas_url),
            ("ALPES_COMPLIANCE_URL", &mut self.bff.compliance_url),
        ];
        for (key, url) in urls {
            if let Some(value) = var(key) {
                *url = value;
            }
        }
        if let Some(value) = var("ALPES_CAMPANIAS_URL") {
            self.bff.campanias_url = Some(value);
        }
        Ok(())
    }
}

impl Settings {
    /// How many threads the async runtime gets: the setting if given; else, for the embedded
    /// platform (`embedded`), half the cores, because there SQLite's connection threads (one
    /// per connection, outside the runtime) do about half the work, and a runtime thread per
    /// core only adds wake-ups and work stealing between threads that then contend for the
    /// same cores (measured in BENCHMARKS.md); else (`None`) the runtime's default, one per
    /// core.
    pub fn worker_threads_for(&self, embedded: bool, cores: usize) -> Option<usize> {
        self.worker_threads
            .or_else(|| embedded.then(|| (cores / 2).max(1)))
    }
}

fn parse_port(key: &str, value: &str) -> anyhow::Result<u16> {
    value
        .parse()
        .with_context(|| format!("{key} must be a port number, not {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ports_and_data_dir() {
        let settings = Settings::default();
        assert_eq!(settings.ports.integraciones, 5000);
        assert_eq!(settings.ports.bff, 8080);
        assert_eq!(settings.data_dir, PathBuf::from(".alpes"));
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let mut settings = Settings::from_toml(
            "data_dir = \"/srv/alpes\"\nlog = \"debug\"\n[ports]\nintegraciones = 6000\n",
        )
        .unwrap();
        assert_eq!(settings.ports.integraciones, 6000);
        assert_eq!(settings.ports.alianzas, 8000);
        settings
            .apply_env(|key| match key {
                "ALPES_INTEGRACIONES_PORT" => Some("7000".into()),
                "ALPES_LOG_FORMAT" => Some("json".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(settings.ports.integraciones, 7000);
        assert_eq!(settings.data_dir, PathBuf::from("/srv/alpes"));
        assert_eq!(settings.log_format, LogFormat::Json);
    }

    #[test]
    fn service_sections_layer_like_the_rest() {
        let mut settings = Settings::from_toml(
            "[sagas]\nstep_timeout_secs = 5\n[bff]\nupstream_timeout_ms = 100\n",
        )
        .unwrap();
        assert_eq!(settings.sagas.step_timeout_secs, 5);
        assert_eq!(settings.alianzas.snapshot_every, 50);
        settings
            .apply_env(|key| match key {
                "ALPES_SAGAS_STEP_TIMEOUT_SECS" => Some("7".into()),
                "ALPES_COMPLIANCE_URL" => Some("http://compliance:5004".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(settings.sagas.step_timeout_secs, 7);
        assert_eq!(settings.bff.upstream_timeout_ms, 100);
        assert_eq!(settings.bff.compliance_url, "http://compliance:5004");
    }

    #[test]
    fn the_embedded_platform_gets_half_the_cores_unless_told() {
        let mut settings = Settings::default();
        assert_eq!(settings.worker_threads_for(true, 2), Some(1));
        assert_eq!(settings.worker_threads_for(true, 1), Some(1));
        assert_eq!(settings.worker_threads_for(true, 8), Some(4));
        assert_eq!(settings.worker_threads_for(false, 8), None);
        settings
            .apply_env(|key| (key == "ALPES_WORKER_THREADS").then(|| "3".into()))
            .unwrap();
        assert_eq!(settings.worker_threads_for(true, 2), Some(3));
        assert_eq!(settings.worker_threads_for(false, 8), Some(3));
        for bad in ["0", "two"] {
            let error = Settings::default()
                .apply_env(|key| (key == "ALPES_WORKER_THREADS").then(|| bad.into()))
                .unwrap_err();
            assert!(
                error.to_string().contains("ALPES_WORKER_THREADS"),
                "{error}"
            );
        }
    }

    #[test]
    fn batch_scheduling_is_on_unless_turned_off() {
        let mut settings = Settings::default();
        assert!(settings.batch_scheduling);
        settings
            .apply_env(|key| (key == "ALPES_BATCH_SCHEDULING").then(|| "false".into()))
            .unwrap();
        assert!(!settings.batch_scheduling);
        assert!(
            !Settings::from_toml("batch_scheduling = false\n")
                .unwrap()
                .batch_scheduling
        );
        let error = Settings::default()
            .apply_env(|key| (key == "ALPES_BATCH_SCHEDULING").then(|| "sometimes".into()))
            .unwrap_err();
        assert!(
            error.to_string().contains("ALPES_BATCH_SCHEDULING"),
            "{error}"
        );
    }

    #[test]
    fn the_example_file_parses_to_the_defaults() {
        let example = Settings::from_toml(include_str!("../../../alpes.example.toml")).unwrap();
        assert_eq!(example, Settings::default());
    }

    #[test]
    fn every_example_environment_file_in_deploy_applies() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let mut files = 0;
        for entry in std::fs::read_dir(deploy).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let vars: std::collections::HashMap<&str, &str> = text
                .lines()
                .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
                .map(|line| line.split_once('=').unwrap())
                .collect();
            let mut settings = Settings::default();
            settings
                .apply_env(|key| vars.get(key).map(|v| (*v).to_owned()))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(settings.database_url.is_some() && settings.bus_url.is_some());
            files += 1;
        }
        assert_eq!(files, 5, "one file per deployable service");
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_is_an_error() {
        assert!(Settings::from_toml("data_dri = \"x\"").is_err());
        let mut settings = Settings::default();
        assert!(settings
            .apply_env(|key| (key == "ALPES_PORT").then(|| "eighty".into()))
            .is_err());
    }
}
