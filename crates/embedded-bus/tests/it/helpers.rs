//! A fresh bus file per test, in a temporary directory deleted when the test ends.

use std::path::PathBuf;

use embedded_bus::EmbeddedBus;
use tempfile::TempDir;

pub struct TestBus {
    pub bus: EmbeddedBus,
    pub path: PathBuf,
    // Held so that the directory outlives the bus.
    _dir: TempDir,
}

pub async fn fresh_bus() -> TestBus {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("bus.db");
    let bus = EmbeddedBus::open(&path).await.expect("open bus");
    TestBus {
        bus,
        path,
        _dir: dir,
    }
}
