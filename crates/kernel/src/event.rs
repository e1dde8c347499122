//! Integration events: the payload types services publish, each with a stable wire type, a topic
//! and a schema version. Older versions are upcast on read, so a consumer accepts every version
//! it has ever seen.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// Why an envelope's payload could not be turned into the expected event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("expected event type {expected}, got {actual}")]
    WrongType {
        expected: &'static str,
        actual: String,
    },
    #[error("event {event_type} has no known schema version {version}")]
    UnknownVersion { event_type: String, version: u32 },
    #[error("dataschema {0:?} is not of the form urn:alpes:<type>:v<N>")]
    BadSchema(String),
    #[error("payload does not match the schema: {0}")]
    Payload(#[from] serde_json::Error),
}

/// A published-language payload. `VERSION` is the version this code writes; `upcast` turns any
/// older version into the current shape (the default accepts only the current one).
pub trait IntegrationEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The CloudEvents `type`, e.g. `PartnerCreado`.
    const TYPE: &'static str;
    /// The topic it is published on.
    const TOPIC: &'static str;
    /// The schema version written by this code.
    const VERSION: u32;

    /// Turns a payload of an older `version` into the current version's JSON.
    fn upcast(version: u32, data: Value) -> Result<Value, DecodeError> {
        if version == Self::VERSION {
            Ok(data)
        } else {
            Err(DecodeError::UnknownVersion {
                event_type: Self::TYPE.to_owned(),
                version,
            })
        }
    }

    /// The aggregate id the event is about (the envelope's `subject`).
    fn subject(&self) -> String;
}
