//! A fresh subject prefix per test on the shared NATS server, whose streams are deleted when the
//! test ends (passed or not), and a private `nats-server` for the tests that stop the broker.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::TryStreamExt;
use nats_bus::NatsBus;
use tempfile::TempDir;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The server the tests use; they fail, never skip, when it is unreachable.
pub fn nats_url() -> String {
    std::env::var("ALPES_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A prefix no other test (or earlier run) uses.
pub fn fresh_prefix() -> String {
    format!("t{}", Uuid::new_v4().simple())
}

pub async fn connect(url: &str, prefix: &str) -> NatsBus {
    NatsBus::connect(url, prefix).await.unwrap_or_else(|error| {
        panic!("NATS with JetStream must be reachable at {url} (set ALPES_TEST_NATS_URL): {error}")
    })
}

/// A bus under its own prefix. Dropping it deletes every stream of the prefix.
pub struct TestNats {
    pub url: String,
    pub prefix: String,
    pub bus: NatsBus,
}

impl TestNats {
    pub async fn start() -> TestNats {
        let url = nats_url();
        let prefix = fresh_prefix();
        let bus = connect(&url, &prefix).await;
        TestNats { url, prefix, bus }
    }

    /// Another client (another process, as far as the server can tell) on the same prefix.
    pub async fn another_client(&self) -> NatsBus {
        connect(&self.url, &self.prefix).await
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside the test's runtime: clean up from a thread of
        // its own, and wait for it so that nothing is left behind when the process exits.
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(delete_streams(&url, &prefix));
            }
        });
        let _ = cleanup.join();
    }
}

/// Deletes the streams named after `prefix` (best effort: a leftover only costs disk).
pub async fn delete_streams(url: &str, prefix: &str) {
    let Ok(client) = async_nats::connect(url).await else {
        return;
    };
    let jetstream = async_nats::jetstream::new(client);
    let names: Vec<String> = jetstream
        .stream_names()
        .try_collect()
        .await
        .unwrap_or_default();
    let own = format!("{prefix}_");
    for name in names.iter().filter(|name| name.starts_with(&own)) {
        let _ = jetstream.delete_stream(name).await;
    }
}

/// A `nats-server` of the test's own, on a free port with its store in a temporary directory,
/// that the test may kill and start again on the same port and store.
pub struct PrivateServer {
    pub url: String,
    port: u16,
    store: TempDir,
    child: Option<Child>,
}

impl PrivateServer {
    pub async fn start() -> PrivateServer {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("its address").port()
        };
        let mut server = PrivateServer {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store: tempfile::tempdir().expect("a store directory"),
            child: None,
        };
        server.restart().await;
        server
    }

    /// Kills the server at once, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill nats-server");
        }
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let store: PathBuf = self.store.path().to_owned();
        let child = Command::new(nats_server_binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", nats_server_binary()));
        self.child = Some(child);
        let port = self.port;
        testkit::eventually(
            Duration::from_secs(10),
            &format!("nats-server to listen on port {port}"),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(drop)
            },
        )
        .await;
    }
}

fn nats_server_binary() -> String {
    std::env::var("ALPES_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned())
}
