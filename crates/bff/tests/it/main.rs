//! The integration tests of the `bff` service, in one binary: the onboarding write over a real
//! socket (validation, 202, outbox and bus, idempotency), the repository on both backends, and
//! the aggregated reads against real HTTP stub servers playing the services behind the BFF.

mod helpers;
mod onboarding_api;
mod storage_conformance;
mod stubs;
mod upstream_api;
