//! Helpers the services' wire shapes (`http/dto.rs`) share: how a timestamp is written and how
//! a field sent as `null` is told apart from one left out.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};

/// RFC 3339 in UTC with `Z`, microsecond precision (what the databases keep).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A text field or query parameter that was given: present and not blank, trimmed.
pub fn given(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|raw| !raw.is_empty())
}

/// Distinguishes a field sent as `null` (`Some(None)`) from an absent one (`None`); use it as
/// `#[serde(default, deserialize_with = "web::dto::present")]` on an `Option<Option<T>>`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(Deserialize)]
    struct Cambios {
        #[serde(default, deserialize_with = "present")]
        nombre: Option<Option<String>>,
    }

    #[test]
    fn a_timestamp_is_utc_with_microseconds() {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(timestamp(at), "2024-05-01T12:00:00.000000Z");
    }

    #[test]
    fn null_and_absent_are_told_apart() {
        let parse = |json: &str| serde_json::from_str::<Cambios>(json).unwrap().nombre;
        assert_eq!(parse("{}"), None);
        assert_eq!(parse(r#"{"nombre":null}"#), Some(None));
        assert_eq!(parse(r#"{"nombre":"Ana"}"#), Some(Some("Ana".to_owned())));
    }
}
