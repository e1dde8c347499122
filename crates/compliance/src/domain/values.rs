//! Value types of the compliance context, parsed once at the edge: a value that exists is valid.
//! Each `parse` returns a `ValueError` whose message is what the client sees next to the field.

use std::fmt;

use kernel::Amount;

/// Why a raw value was refused; the text is shown to the client as the field's `mensaje`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn invalid(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

/// An ISO 4217 currency code: three ASCII letters, kept upper-case (`usd` reads as `USD`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moneda(String);

impl Moneda {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let code = raw.trim();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(invalid("must be an ISO 4217 code of three letters"));
        }
        Ok(Self(code.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Moneda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address on the block list, compared case-insensitively (kept lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmailBloqueado(String);

impl EmailBloqueado {
    pub const MAX: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        let not_an_address = || invalid("is not a valid e-mail address");
        if trimmed.is_empty() || trimmed.chars().count() > Self::MAX {
            return Err(not_an_address());
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(not_an_address());
        }
        match trimmed.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(trimmed.to_lowercase()))
            }
            _ => Err(not_an_address()),
        }
    }

    /// Whether `email` (as a partner registered it) is this address.
    pub fn matches(&self, email: &str) -> bool {
        email.trim().to_lowercase() == self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tax rate in percent with two decimals (`19.00`), between 0 and 100; exact, never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Porcentaje(Amount);

impl Porcentaje {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let amount: Amount = raw.parse().map_err(|error| invalid(format!("{error}")))?;
        Self::from_amount(amount)
    }

    pub fn from_amount(amount: Amount) -> Result<Self, ValueError> {
        if amount.is_negative() || amount > Amount::from_units(100) {
            return Err(invalid("must be between 0 and 100"));
        }
        Ok(Self(amount))
    }

    /// A whole-percent rate the code knows to be in range (the default tax lines).
    pub(crate) fn units(percent: i64) -> Self {
        Self(Amount::from_units(percent.clamp(0, 100)))
    }

    pub fn as_amount(self) -> Amount {
        self.0
    }
}

impl fmt::Display for Porcentaje {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_currency_is_three_letters_kept_upper_case() {
        assert_eq!(Moneda::parse(" usd ").unwrap().as_str(), "USD");
        for bad in ["", "US", "USDD", "U$D", "12A"] {
            assert!(Moneda::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_blocked_email_matches_in_any_case() {
        let email = EmailBloqueado::parse("Fraude@Example.com").unwrap();
        assert_eq!(email.as_str(), "fraude@example.com");
        assert!(email.matches("FRAUDE@example.COM"));
        assert!(!email.matches("otro@example.com"));
        for bad in ["", "sin-arroba", "@x.com", "a@", "a b@x.com", "a@b@c"] {
            assert!(EmailBloqueado::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_percentage_is_exact_and_between_zero_and_one_hundred() {
        assert_eq!(Porcentaje::parse("19").unwrap().to_string(), "19.00");
        assert_eq!(Porcentaje::parse("0.5").unwrap().to_string(), "0.50");
        assert!(Porcentaje::parse("100").is_ok());
        for bad in ["-1", "100.01", "1.234", "x"] {
            assert!(Porcentaje::parse(bad).is_err(), "{bad:?}");
        }
    }
}
