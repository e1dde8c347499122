//! The CloudEvents 1.0 structured-JSON envelope every message travels in (DOMAIN §10), with the
//! saga and tracing extension attributes and the dead-letter attributes a bus adds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

use crate::event::{DecodeError, IntegrationEvent};

/// A message on the bus. `id` is unique per event and is every consumer's de-duplication key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub specversion: String,
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    pub subject: String,
    pub datacontenttype: String,
    pub dataschema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sagaid: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causationid: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Set only on a dead-lettered copy: the topic it was consumed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlettertopic: Option<String>,
    /// Set only on a dead-lettered copy: the last error of its final attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlettererror: Option<String>,
    /// Set only on a dead-lettered copy: how many times it was attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadletterattempts: Option<u32>,
    pub data: Payload,
}

/// An envelope's `data`: the event's JSON text as it arrived, checked to be JSON but not parsed
/// into a tree. The handler that decodes it parses the text straight into its own type, and a
/// relay or a log that only passes the payload on copies text instead of rebuilding and
/// re-serializing a tree per message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Box<RawValue>);

impl Payload {
    /// The JSON of `value`.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Self {
        Self(serde_json::value::to_raw_value(value).expect("payloads serialize to JSON"))
    }

    /// A payload kept as `text` (read back from storage, say); fails only when it is not JSON.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(Self)
    }

    /// The JSON text, exactly as it arrived.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// The payload as a tree, for tests and tools that inspect fields they have no type for.
    ///
    /// # Panics
    ///
    /// When the payload nests deeper than serde_json builds trees (128 levels): its text was
    /// checked without that limit. Code that must not panic reads with [`Payload::read`].
    pub fn value(&self) -> Value {
        serde_json::from_str(self.text()).expect("a payload holds JSON")
    }

    /// Reads the payload as `T`.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.text())
    }
}

/// Payloads are equal when their texts are: a relay passes the text on unchanged, so a message
/// and its copy compare equal; two serializations of one value need not.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self::of(&value)
    }
}

/// Where a new event sits in a conversation: the saga it belongs to and the message that caused
/// it. Handlers derive it from the envelope they are handling so that one onboarding is one
/// trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvelopeContext {
    pub sagaid: Option<Uuid>,
    pub correlationid: Option<Uuid>,
    pub causationid: Option<Uuid>,
    pub traceparent: Option<String>,
}

impl EnvelopeContext {
    /// The context for a message caused by `cause`: same saga, correlation and trace.
    pub fn caused_by(cause: &Envelope) -> Self {
        Self {
            sagaid: cause.sagaid,
            correlationid: cause.correlationid.or(Some(cause.id)),
            causationid: Some(cause.id),
            traceparent: cause.traceparent.clone(),
        }
    }
}

/// A fresh W3C trace context (`00-<trace id>-<span id>-01`, sampled).
pub fn new_traceparent() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let trace: u128 = rng.random_range(1..=u128::MAX);
    let span: u64 = rng.random_range(1..=u64::MAX);
    format!("00-{trace:032x}-{span:016x}-01")
}

impl Envelope {
    /// Wraps `event` for publication by `service` (the `source` becomes `/alpes/<service>`).
    pub fn wrap<E: IntegrationEvent>(service: &str, event: &E, context: EnvelopeContext) -> Self {
        let id = crate::new_id();
        Self {
            specversion: "1.0".to_owned(),
            id,
            source: format!("/alpes/{service}"),
            event_type: E::TYPE.to_owned(),
            time: crate::now(),
            subject: event.subject(),
            datacontenttype: "application/json".to_owned(),
            dataschema: format!("urn:alpes:{}:v{}", E::TYPE, E::VERSION),
            sagaid: context.sagaid,
            correlationid: context.correlationid.or(Some(id)),
            causationid: context.causationid,
            // A message that continues no conversation starts a trace of its own, so every
            // onboarding (and every other chain of events) is one trace end to end.
            traceparent: context.traceparent.or_else(|| Some(new_traceparent())),
            deadlettertopic: None,
            deadlettererror: None,
            deadletterattempts: None,
            data: Payload::of(event),
        }
    }

    /// The schema version named by `dataschema` (`urn:alpes:<type>:v<N>`).
    pub fn schema_version(&self) -> Result<u32, DecodeError> {
        self.dataschema
            .rsplit_once(":v")
            .and_then(|(_, version)| version.parse().ok())
            .ok_or_else(|| DecodeError::BadSchema(self.dataschema.clone()))
    }

    /// Reads the payload as `E`, upcasting an older schema version first.
    pub fn decode<E: IntegrationEvent>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::TYPE {
            return Err(DecodeError::WrongType {
                expected: E::TYPE,
                actual: self.event_type.clone(),
            });
        }
        let version = self.schema_version()?;
        if version == E::VERSION {
            // Nothing to upcast: read the event straight from the payload's text.
            return Ok(self.data.read()?);
        }
        let data = E::upcast(version, self.data.read()?)?;
        Ok(serde_json::from_value(data)?)
    }

    /// Serializes to the structured-mode JSON bytes that go on the wire.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("envelopes serialize to JSON")
    }

    /// Parses structured-mode JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Greeted {
        name: String,
        polite: bool,
    }

    impl IntegrationEvent for Greeted {
        const TYPE: &'static str = "Greeted";
        const TOPIC: &'static str = "greetings";
        const VERSION: u32 = 2;

        fn upcast(version: u32, mut data: Value) -> Result<Value, DecodeError> {
            match version {
                1 => {
                    data["polite"] = Value::Bool(true);
                    Ok(data)
                }
                2 => Ok(data),
                _ => Err(DecodeError::UnknownVersion {
                    event_type: Self::TYPE.into(),
                    version,
                }),
            }
        }

        fn subject(&self) -> String {
            self.name.clone()
        }
    }

    /// Ana's greeting, wrapped by no conversation.
    fn greeting(polite: bool) -> Envelope {
        Envelope::wrap(
            "test",
            &Greeted {
                name: "ana".into(),
                polite,
            },
            EnvelopeContext::default(),
        )
    }

    #[test]
    fn a_wrapped_event_round_trips_through_json() {
        let event = Greeted {
            name: "ana".into(),
            polite: false,
        };
        let envelope = Envelope::wrap("test", &event, EnvelopeContext::default());
        let back = Envelope::from_json(&envelope.to_json()).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(back.dataschema, "urn:alpes:Greeted:v2");
        assert_eq!(back.source, "/alpes/test");
        assert_eq!(back.correlationid, Some(back.id));
        assert_eq!(back.decode::<Greeted>().unwrap(), event);
    }

    #[test]
    fn a_payload_is_passed_on_as_the_text_it_arrived_in() {
        let envelope = greeting(true);
        let mut wire: Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        wire["data"] = Value::Null;
        let data = r#"{ "polite" : true,"name":"ñandú \u00e9" }"#;
        let text = wire
            .to_string()
            .replace(r#""data":null"#, &format!(r#""data":{data}"#));
        let received = Envelope::from_json(text.as_bytes()).unwrap();
        assert_eq!(received.data.text(), data);
        let passed_on = String::from_utf8(received.to_json()).unwrap();
        assert!(passed_on.contains(data), "{passed_on}");
        assert_eq!(received.decode::<Greeted>().unwrap().name, "ñandú é");
        assert_eq!(received.data.value()["polite"], true);
        assert!(Envelope::from_json(text.replace(data, "{\"name\":").as_bytes()).is_err());
    }

    #[test]
    fn a_payload_nested_too_deep_to_decode_is_taken_in_and_refused_by_decode() {
        let envelope = greeting(true);
        let text = String::from_utf8(envelope.to_json()).unwrap();
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let text = text.replace(envelope.data.text(), &deep);
        // The raw text is checked without a depth limit, so the envelope reads; its payload is
        // then an error for the handler (a dead letter), never a panic.
        let received = Envelope::from_json(text.as_bytes()).unwrap();
        assert_eq!(received.data.text(), deep);
        let error = received.decode::<Greeted>().unwrap_err();
        assert!(matches!(error, DecodeError::Payload(_)), "{error}");
    }

    #[test]
    fn an_older_version_is_upcast_on_read() {
        let mut envelope = greeting(false);
        envelope.dataschema = "urn:alpes:Greeted:v1".into();
        envelope.data = serde_json::json!({"name": "ana"}).into();
        let event: Greeted = envelope.decode().unwrap();
        assert!(event.polite);
    }

    #[test]
    fn an_unknown_version_or_type_is_refused() {
        let mut envelope = greeting(false);
        envelope.dataschema = "urn:alpes:Greeted:v9".into();
        assert!(matches!(
            envelope.decode::<Greeted>(),
            Err(DecodeError::UnknownVersion { version: 9, .. })
        ));
        envelope.event_type = "Other".into();
        assert!(matches!(
            envelope.decode::<Greeted>(),
            Err(DecodeError::WrongType { .. })
        ));
    }

    #[test]
    fn an_event_that_continues_nothing_starts_a_w3c_trace_that_its_effects_keep() {
        let first = Envelope::wrap(
            "test",
            &Greeted {
                name: "a".into(),
                polite: true,
            },
            EnvelopeContext::default(),
        );
        let traceparent = first.traceparent.clone().unwrap();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len(), parts[3]),
            ("00", 32, 16, "01")
        );
        let effect = Envelope::wrap(
            "test",
            &Greeted {
                name: "b".into(),
                polite: true,
            },
            EnvelopeContext::caused_by(&first),
        );
        assert_eq!(effect.traceparent, first.traceparent);
    }

    #[test]
    fn a_caused_event_inherits_saga_and_correlation() {
        let mut cause = Envelope::wrap(
            "test",
            &Greeted {
                name: "a".into(),
                polite: true,
            },
            EnvelopeContext::default(),
        );
        cause.sagaid = Some(crate::new_id());
        let context = EnvelopeContext::caused_by(&cause);
        assert_eq!(context.sagaid, cause.sagaid);
        assert_eq!(context.causationid, Some(cause.id));
        assert_eq!(context.correlationid, cause.correlationid);
    }
}
