//! A running `alpes` process. It reads the URLs the binary prints on start-up, and can be
//! killed with SIGKILL (a crash at an arbitrary instant) or stopped with SIGTERM (a clean stop).

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct AlpesProcess {
    child: Child,
    urls: HashMap<String, String>,
}

impl AlpesProcess {
    /// Starts `binary` with `args` and `env`, and waits (up to a minute) until it prints that it
    /// is up. Every service is asked for port 0 unless `env` says otherwise.
    pub async fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> AlpesProcess {
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for key in [
            "ALPES_INTEGRACIONES_PORT",
            "ALPES_ALIANZAS_PORT",
            "ALPES_COMPLIANCE_PORT",
            "ALPES_CAMPANIAS_PORT",
            "ALPES_BFF_PORT",
        ] {
            command.env(key, "0");
        }
        command.env("ALPES_LOG", "warn");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the alpes binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut urls = HashMap::new();
        let read_banner = async {
            while let Some(line) = lines.next_line().await.expect("stdout is readable") {
                let mut words = line.split_whitespace();
                if let (Some(name), Some(url)) = (words.next(), words.next()) {
                    if url.starts_with("http://") {
                        urls.insert(name.to_owned(), url.to_owned());
                    }
                }
                if line.starts_with("Press Ctrl-C") {
                    return true;
                }
            }
            false
        };
        let up = tokio::time::timeout(Duration::from_secs(60), read_banner)
            .await
            .expect("alpes printed its banner within a minute");
        assert!(up, "alpes exited before it was up");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        AlpesProcess { child, urls }
    }

    /// The base URL of `service`, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self, service: &str) -> &str {
        self.urls
            .get(service)
            .unwrap_or_else(|| panic!("alpes printed no URL for {service}: {:?}", self.urls))
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// SIGKILL: the process dies at once, mid-whatever it was doing.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL is delivered");
        self.child
            .wait()
            .await
            .expect("the killed process is reaped");
    }

    /// SIGTERM, then waits (up to 30 s) for a clean exit and returns whether it exited with 0.
    pub async fn terminate(mut self) -> bool {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM is delivered");
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("alpes stops within 30 s of SIGTERM")
            .expect("the process is reaped");
        exit.success()
    }
}
