//! The integration tests of the `sagas` service, in one binary: the repository on both
//! backends, the consumers through the real embedded bus (in order, out of order, twice), the
//! deadlines with replicas, and the HTTP API over a real socket.

mod consumers;
mod helpers;
mod http_api;
mod storage_conformance;
mod timeouts;
