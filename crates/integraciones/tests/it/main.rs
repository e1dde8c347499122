//! The integration tests of the `integraciones` service, in one binary: the repository on both
//! backends, the HTTP API over a real socket, the saga command consumers, and the list totals
//! kept by the counts table.

mod consumers;
mod helpers;
mod http_api;
mod storage_conformance;
mod totals;
