//! The integration tests of the `compliance` service, in one binary: the repository on both
//! backends, the HTTP API over a real socket, and the consumers through the embedded bus.

mod consumers;
mod helpers;
mod http_api;
mod storage_conformance;
