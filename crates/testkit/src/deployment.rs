//! The platform deployed as separate OS processes, as in production: one `alpes serve` per
//! service (two replicas each of alianzas, with its saga log, and compliance) on fresh PostgreSQL
//! databases and a fresh NATS subject prefix, all removed again by `stop`.

use std::collections::HashMap;
use std::path::Path;

use crate::process::AlpesProcess;

/// The NATS server the tests use; `ALPES_TEST_NATS_URL` overrides it. Tests that need it fail,
/// never skip, when it is unreachable.
pub fn nats_url() -> String {
    std::env::var("ALPES_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Services with more than one replica.
fn replicas(unit: &str) -> usize {
    match unit {
        "alianzas" | "compliance" => 2,
        _ => 1,
    }
}

pub struct Distributed {
    /// Each process with the unit it serves.
    processes: Vec<(String, AlpesProcess)>,
    urls: HashMap<String, String>,
    databases: Vec<String>,
    nats_url: String,
    prefix: String,
    _data: tempfile::TempDir,
}

impl Distributed {
    /// Starts `units` (names as `alpes serve` takes them, dependencies first and `bff` last)
    /// from `binary`, each with `env` added. The BFF is pointed at the first replica of each
    /// service started before it.
    pub async fn start(binary: &Path, units: &[&str], env: &[(&str, &str)]) -> Distributed {
        let data = tempfile::tempdir().expect("a temporary directory");
        let nats_url = nats_url();
        let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        let mut processes = Vec::new();
        let mut urls: HashMap<String, String> = HashMap::new();
        let mut databases = Vec::new();
        for unit in units {
            let database = crate::postgres::fresh_database_url(unit);
            databases.push(database.clone());
            if *unit == "alianzas" {
                // The saga log served with alianzas gets a database derived from alianzas'.
                databases.push(format!("{database}_sagas"));
            }
            for replica in 0..replicas(unit) {
                let dir = data.path().join(format!("{unit}-{replica}"));
                let args = [
                    "serve",
                    unit,
                    "--database-url",
                    &database,
                    "--bus-url",
                    &nats_url,
                    "--bus-prefix",
                    &prefix,
                    "--data-dir",
                    dir.to_str().expect("a UTF-8 temporary path"),
                ];
                let upstreams: Vec<(&str, String)> = [
                    ("ALPES_INTEGRACIONES_URL", "integraciones"),
                    ("ALPES_ALIANZAS_URL", "alianzas"),
                    ("ALPES_COMPLIANCE_URL", "compliance"),
                    ("ALPES_CAMPANIAS_URL", "campanias"),
                ]
                .iter()
                .filter_map(|(key, service)| urls.get(*service).map(|url| (*key, url.clone())))
                .collect();
                let mut process_env: Vec<(&str, &str)> = vec![("ALPES_PORT", "0")];
                process_env.extend(env.iter().copied());
                process_env.extend(upstreams.iter().map(|(key, url)| (*key, url.as_str())));
                let process = AlpesProcess::start(binary, &args, &process_env).await;
                if replica == 0 {
                    urls.insert((*unit).to_owned(), process.url(unit).to_owned());
                }
                processes.push(((*unit).to_owned(), process));
            }
        }
        Distributed {
            processes,
            urls,
            databases,
            nats_url,
            prefix,
            _data: data,
        }
    }

    /// The base URL of the first replica of `unit`.
    pub fn url(&self, unit: &str) -> String {
        self.urls
            .get(unit)
            .unwrap_or_else(|| panic!("{unit} is not deployed"))
            .clone()
    }

    /// SIGKILL to the last replica of `unit`, as a crash of its machine would.
    pub async fn kill_replica(&mut self, unit: &str) {
        let index = self
            .processes
            .iter()
            .rposition(|(served, _)| served == unit)
            .unwrap_or_else(|| panic!("no replica of {unit} to kill"));
        let (_, process) = self.processes.remove(index);
        process.kill9().await;
    }

    /// Stops every process with SIGTERM (each must exit 0), then drops the databases and the
    /// NATS streams of the deployment.
    pub async fn stop(self) {
        for (unit, process) in self.processes {
            assert!(process.terminate().await, "{unit} exits 0 on SIGTERM");
        }
        for database in &self.databases {
            crate::postgres::drop_database(database).await;
        }
        let bus = nats_bus::NatsBus::connect(&self.nats_url, &self.prefix)
            .await
            .unwrap_or_else(|e| panic!("NATS must be reachable at {}: {e}", self.nats_url));
        bus.delete_streams()
            .await
            .expect("the deployment's streams are deleted");
        bus.close().await;
    }
}
