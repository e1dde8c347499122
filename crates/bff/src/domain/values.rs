//! Value types of the onboarding form, parsed once at the edge: a value that exists is valid.
//! The rules mirror integraciones' partner (DOMAIN §4) so a bad form is refused here, at the
//! front door, instead of failing later inside the saga.

use kernel::text::{self, TextError};
use kernel::Amount;
use serde_json::{Map, Value};

/// Why a raw value was refused; the text is shown to the client next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn invalid(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

/// The shared text rules (`kernel::text`) report in this context's error type.
impl From<TextError> for ValueError {
    fn from(error: TextError) -> Self {
        ValueError(error.0)
    }
}

/// The partner's name: trimmed, 1 to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nombre(String);

impl Nombre {
    pub const MAX: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Ok(Self(text::required(raw, Self::MAX)?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, trimmed, as integraciones accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The longest address (RFC 5321); `kernel::text::email` holds the rules.
    pub const MAX: usize = text::EMAIL_MAX;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Ok(Self(text::email(raw)?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number as the partner writes it, at most 50 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telefono(String);

impl Telefono {
    pub const MAX: usize = 50;

    /// `None` for an absent or blank value.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ValueError> {
        Ok(text::optional(raw, Self::MAX)?.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A postal address, at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Direccion(String);

impl Direccion {
    pub const MAX: usize = 500;

    /// `None` for an absent or blank value.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ValueError> {
        Ok(text::optional(raw, Self::MAX)?.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

kernel::wire_enum!(
    /// What kind of partner applies; `AFILIADO` when not said.
    TipoPartner: ValueError {
        Afiliado => "AFILIADO",
        Influencer => "INFLUENCER",
        Embajador => "EMBAJADOR",
        Corporativo => "CORPORATIVO",
    }
);

/// Contract terms the applicant proposes. Only their shape is checked here (an object whose
/// `monto`, when present, is an exact amount); whether they make a usable contract is
/// alianzas' decision, taken inside the saga.
#[derive(Debug, Clone, PartialEq)]
pub struct Terminos(Map<String, Value>);

/// A problem with the proposed terms, reported against `campo` (`terminos` or
/// `terminos.monto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminosError {
    pub campo: &'static str,
    pub error: ValueError,
}

impl Terminos {
    /// `None` for absent or `null` terms.
    pub fn parse(raw: Option<&Value>) -> Result<Option<Self>, TerminosError> {
        let map = match raw {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(TerminosError {
                    campo: "terminos",
                    error: invalid("must be a JSON object"),
                })
            }
        };
        if let Some(monto) = map.get("monto") {
            let readable = matches!(monto, Value::Number(_) | Value::String(_))
                && serde_json::from_value::<Amount>(monto.clone()).is_ok();
            if !readable {
                return Err(TerminosError {
                    campo: "terminos.monto",
                    error: invalid(
                        "must be a number or a decimal string with at most two decimal places",
                    ),
                });
            }
        }
        Ok(Some(Self(map.clone())))
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_name_is_trimmed_and_bounded() {
        assert_eq!(Nombre::parse("  Ana ").unwrap().as_str(), "Ana");
        assert!(Nombre::parse("   ").is_err());
        assert!(Nombre::parse(&"a".repeat(256)).is_err());
        assert!(Nombre::parse(&"ñ".repeat(255)).is_ok());
    }

    #[test]
    fn an_email_needs_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse("ana@example.com").is_ok());
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.com",
            "ana@x",
            "a b@x.com",
            "a@@x.com",
            ".a@x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phone_and_address_are_optional_and_bounded() {
        assert_eq!(Telefono::parse(Some("  ")).unwrap(), None);
        assert!(Telefono::parse(Some(&"1".repeat(51))).is_err());
        assert!(Direccion::parse(Some(&"x".repeat(500))).unwrap().is_some());
        assert!(Direccion::parse(Some(&"x".repeat(501))).is_err());
    }

    #[test]
    fn only_the_four_partner_types_exist() {
        assert_eq!(
            TipoPartner::parse("INFLUENCER").unwrap(),
            TipoPartner::Influencer
        );
        assert!(TipoPartner::parse("afiliado").is_err());
    }

    #[test]
    fn terms_must_be_an_object_with_an_exact_amount() {
        assert_eq!(Terminos::parse(None).unwrap(), None);
        assert_eq!(Terminos::parse(Some(&Value::Null)).unwrap(), None);
        assert!(Terminos::parse(Some(&json!({"monto": 60000}))).is_ok());
        assert!(Terminos::parse(Some(&json!({"monto": "60000.50", "tipo": "XYZ"}))).is_ok());
        assert_eq!(
            Terminos::parse(Some(&json!([1]))).unwrap_err().campo,
            "terminos"
        );
        for bad in [
            json!("1.234"),
            json!("abc"),
            json!(true),
            json!(null),
            json!(1.234),
        ] {
            assert_eq!(
                Terminos::parse(Some(&json!({ "monto": bad })))
                    .unwrap_err()
                    .campo,
                "terminos.monto"
            );
        }
    }
}
