//! What every service's HTTP edge shares: problem+json errors, extractors that answer bad input
//! in that format, pagination, the operational routes (`/health`, `/ready`, `/metrics`,
//! `/openapi.json`, `/docs` with vendored assets), serving with graceful shutdown, the HTTP side
//! of `Idempotency-Key`, and the small DTO helpers every service's wire shapes use.

pub mod dto;
pub mod extract;
pub mod idempotency;
pub mod ops;
pub mod pagination;
pub mod problem;
mod service;

pub use extract::{Json, OptionalJson, Path, Query};
pub use ops::{serve, OpsRoutes, ReadinessCheck};
pub use pagination::{Page, PageParams};
pub use problem::{field_errors, FieldError, Problem};
pub use service::ServiceParts;

/// The largest request body any endpoint accepts; larger ones are 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
