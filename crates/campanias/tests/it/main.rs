//! The integration tests of the `campanias` service, in one binary: the repositories on both
//! backends, the HTTP API over a real socket, the partner-event consumers over the embedded
//! bus (each message delivered twice), and notification delivery to an SMTP sink and to files.

mod consumers;
mod helpers;
mod http_api;
mod notificaciones;
mod smtp_sink;
mod storage_conformance;
