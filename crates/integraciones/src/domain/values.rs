//! Value types of the partner context, parsed once at the edge: a value that exists is valid.
//! Each `parse` returns a `ValueError` whose message is what the client sees next to the field.

use std::fmt;

use kernel::text::{self, TextError};

/// Why a raw value was refused; the text is shown to the client as the field's `mensaje`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// The shared text rules (`kernel::text`) report in this context's error type.
impl From<TextError> for ValueError {
    fn from(error: TextError) -> Self {
        ValueError(error.0)
    }
}

/// A partner or integration name: trimmed, 1 to 255 characters.
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

/// An e-mail address, trimmed. Uniqueness is decided on [`Email::normalized`] (lower-cased),
/// so `Ana@X.com` and `ana@x.com` are the same partner.
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

    /// The key uniqueness is enforced on.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
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

/// An integration's description, at most 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descripcion(String);

impl Descripcion {
    pub const MAX: usize = 2000;

    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ValueError> {
        Ok(text::optional(raw, Self::MAX)?.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A free-text reason (revocation, deactivation), at most 1000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Motivo(String);

impl Motivo {
    pub const MAX: usize = 1000;

    /// A reason the domain itself writes, known to be within the limit.
    pub(in crate::domain) fn trusted(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ValueError> {
        Ok(text::optional(raw, Self::MAX)?.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A KYC reviewer's comments, at most 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comentarios(String);

impl Comentarios {
    pub const MAX: usize = 2000;

    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ValueError> {
        Ok(text::optional(raw, Self::MAX)?.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nombre_is_trimmed() {
        assert_eq!(Nombre::parse("  Ana  ").unwrap().as_str(), "Ana");
    }

    #[test]
    fn a_blank_nombre_is_refused() {
        assert!(Nombre::parse("   ").is_err());
    }

    #[test]
    fn a_nombre_of_255_characters_is_accepted_and_256_refused() {
        assert!(Nombre::parse(&"ñ".repeat(255)).is_ok());
        assert!(Nombre::parse(&"ñ".repeat(256)).is_err());
    }

    #[test]
    fn an_email_is_compared_lower_cased() {
        let email = Email::parse(" Ana.Perez@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "Ana.Perez@Example.COM");
        assert_eq!(email.normalized(), "ana.perez@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.com",
            "ana@x",
            "ana@@x.com",
            "a b@x.com",
            "ana@x..com",
            ".ana@x.com",
            "ana@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_blank_telefono_is_absent_and_a_long_one_refused() {
        assert_eq!(Telefono::parse(Some("  ")).unwrap(), None);
        assert!(Telefono::parse(Some(&"1".repeat(50))).unwrap().is_some());
        assert!(Telefono::parse(Some(&"1".repeat(51))).is_err());
    }

    #[test]
    fn a_direccion_longer_than_500_is_refused() {
        assert!(Direccion::parse(Some(&"x".repeat(500))).unwrap().is_some());
        assert!(Direccion::parse(Some(&"x".repeat(501))).is_err());
    }
}
