//! The shared kernel: the message envelope, the `Bus` port, the consumer loop and the small
//! vocabulary (ids, clock, retry policy, invalid fields, validated text, wire-named enums) every
//! service and adapter speaks. No I/O lives here.

pub mod bus;
pub mod consumer;
pub mod envelope;
pub mod event;
mod field;
pub mod money;
pub mod retry;
pub mod shutdown;
pub mod text;
mod wire;

pub use bus::{
    Bus, BusError, Delivery, DeliveryHandle, EnvelopeText, SubscribeOptions, Subscription,
};
pub use consumer::{run_consumer, spawn_consumers, Consumes, HandlerError, MessageHandler};
pub use envelope::{Envelope, EnvelopeContext, Payload};
pub use event::{DecodeError, IntegrationEvent};
pub use field::FieldIssue;
pub use money::Amount;
pub use shutdown::{Shutdown, ShutdownTrigger};

/// A fresh time-ordered id: v7 keeps B-tree inserts append-mostly.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The current instant, truncated to microseconds so that it survives a round-trip through
/// PostgreSQL `timestamptz` and SQLite text unchanged.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}
