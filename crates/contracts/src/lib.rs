//! The published language: every integration event and command payload, with its wire type,
//! topic and schema version. Services share only these types (and the kernel); a breaking change
//! is a new version with an upcaster, never an edit of an old one.

pub mod compliance;
pub mod contratos;
pub mod partners;
pub mod programas;
pub mod sagas;
pub mod topics;

/// Implements `IntegrationEvent` for a payload at its current version.
#[macro_export]
macro_rules! integration_event {
    ($ty:ty, $name:literal, $topic:expr, v $version:literal, subject = |$event:ident| $subject:expr) => {
        impl kernel::IntegrationEvent for $ty {
            const TYPE: &'static str = $name;
            const TOPIC: &'static str = $topic;
            const VERSION: u32 = $version;

            fn subject(&self) -> String {
                let $event = self;
                $subject
            }
        }
    };
}
