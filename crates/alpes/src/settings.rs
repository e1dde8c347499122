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
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. `info` or `integraciones=debug,info`.
    pub log: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".alpes"),
            host: "127.0.0.1".to_owned(),
            ports: Ports::default(),
            database_url: None,
            port: None,
            log_format: LogFormat::Human,
            log: "info".to_owned(),
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
        Ok(())
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
    fn the_example_file_parses_to_the_defaults() {
        let example = Settings::from_toml(include_str!("../../../alpes.example.toml")).unwrap();
        assert_eq!(example, Settings::default());
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
