//! The NATS bus's one integration-test binary: the shared `Bus` conformance suite against the
//! server at `ALPES_TEST_NATS_URL` (default `nats://127.0.0.1:4222`), each test under a fresh
//! subject prefix, plus what only this adapter does (several clients, reconnection).

mod conformance;
mod helpers;
mod nats;
