//! The integration tests of the `integraciones` service, in one binary: the repository on both
//! backends, the HTTP API over a real socket, and the saga command consumers.

mod consumers;
mod helpers;
mod http_api;
mod storage_conformance;
