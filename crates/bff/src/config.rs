//! The BFF's settings: where the services behind it listen, and how long it waits for them.

use std::time::Duration;

/// Where the BFF finds the services it fronts. URLs are bases without a trailing path
/// (`http://127.0.0.1:8000`); the saga log is served by alianzas' process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BffConfig {
    pub integraciones_url: String,
    /// alianzas, which also serves the saga log (`/sagas`) on the same port.
    pub alianzas_url: String,
    pub compliance_url: String,
    /// campanias, for the console; the API does not call it yet.
    pub campanias_url: Option<String>,
    /// The longest any one upstream call may take (connecting included); past it the
    /// request is answered 504.
    pub upstream_timeout: Duration,
}

impl BffConfig {
    pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

    /// The services at these base URLs, with the default timeout and no campanias.
    pub fn new(
        integraciones_url: impl Into<String>,
        alianzas_url: impl Into<String>,
        compliance_url: impl Into<String>,
    ) -> Self {
        Self {
            integraciones_url: integraciones_url.into(),
            alianzas_url: alianzas_url.into(),
            compliance_url: compliance_url.into(),
            campanias_url: None,
            upstream_timeout: Self::DEFAULT_UPSTREAM_TIMEOUT,
        }
    }

    pub fn with_campanias(mut self, campanias_url: impl Into<String>) -> Self {
        self.campanias_url = Some(campanias_url.into());
        self
    }

    pub fn with_upstream_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_timeout = timeout;
        self
    }
}

impl Default for BffConfig {
    /// Every service on this machine at its documented port (DOMAIN §2).
    fn default() -> Self {
        Self::new(
            "http://127.0.0.1:5000",
            "http://127.0.0.1:8000",
            "http://127.0.0.1:5004",
        )
        .with_campanias("http://127.0.0.1:5002")
    }
}
