//! The integration tests of the `alianzas` service, in one binary: the event store, read model
//! and outbox on both backends, the HTTP API over a real socket, the consumers through the
//! real embedded bus, and their handler given batches on both backends.

mod batch;
mod consumers;
mod event_store;
mod helpers;
mod http_api;
