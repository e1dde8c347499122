//! The embedded bus's one integration-test binary: the shared `Bus` conformance suite run
//! against a fresh bus file per test, plus the behaviour only this adapter has (inspection,
//! close, leases that run out for good, files of an earlier layout).

mod conformance;
mod layout;
mod operations;

use kernel::{Envelope, EnvelopeContext};
use serde::{Deserialize, Serialize};

/// The event the adapter-specific tests publish; its payload tells messages apart.
#[derive(Debug, Serialize, Deserialize)]
struct Ping {
    n: u32,
}

impl kernel::IntegrationEvent for Ping {
    const TYPE: &'static str = "Ping";
    const TOPIC: &'static str = "pings";
    const VERSION: u32 = 1;

    fn subject(&self) -> String {
        self.n.to_string()
    }
}

/// Ping number `n`, wrapped as a fresh envelope.
fn ping(n: u32) -> Envelope {
    Envelope::wrap("test", &Ping { n }, EnvelopeContext::default())
}
