//! Value types of the contracts context, parsed once at the edge: a value that exists is valid.
//! Each `parse` returns a `ValueError` whose message is what the client sees next to the field.

use chrono::NaiveDate;
use kernel::Amount;

/// Why a raw value was refused; the text is shown to the client as the field's `mensaje`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn invalid(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

/// The shared text rules (`kernel::text`) report in this context's error type.
impl From<kernel::text::TextError> for ValueError {
    fn from(error: kernel::text::TextError) -> Self {
        ValueError(error.0)
    }
}

kernel::wire_enum!(
    /// The commercial model of a contract (spellings are the original's).
    TipoContrato: ValueError {
        Cpa => "CPA",
        Cpl => "CPL",
        Cpc => "CPC",
        Revshare => "revshare",
        Fijo => "fijo",
    }
);

kernel::wire_enum!(
    /// A contract's lifecycle state. `inactivo` is part of the published vocabulary but no
    /// contract event leads to it today.
    EstadoContrato: ValueError {
        Pendiente => "pendiente",
        Activo => "activo",
        EnRevision => "en_revision",
        Suspendido => "suspendido",
        Inactivo => "inactivo",
        Vencido => "vencido",
        Cancelado => "cancelado",
        Rechazado => "rechazado",
    }
);

kernel::wire_enum!(
    /// The partner kinds a template exists for (integraciones' `TipoPartner`).
    TipoPartner: ValueError {
        Afiliado => "AFILIADO",
        Influencer => "INFLUENCER",
        Embajador => "EMBAJADOR",
        Corporativo => "CORPORATIVO",
    }
);

/// A non-negative exact amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Monto(Amount);

impl Monto {
    pub fn new(amount: Amount) -> Result<Self, ValueError> {
        if amount.is_negative() {
            Err(invalid("must be zero or more"))
        } else {
            Ok(Self(amount))
        }
    }

    /// Parses a decimal text with at most two places (what `Amount` accepts).
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let amount: Amount = raw
            .parse()
            .map_err(|error: kernel::money::AmountError| invalid(error.to_string()))?;
        Self::new(amount)
    }

    pub fn amount(self) -> Amount {
        self.0
    }
}

/// An ISO 4217 currency code: three upper-case ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Moneda(String);

impl Moneda {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let code = raw.trim();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code.to_owned()))
        } else {
            Err(invalid(
                "must be a 3-letter upper-case ISO 4217 code, e.g. USD",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-text commercial conditions, at most 10 000 characters; blank means none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Condiciones(String);

impl Condiciones {
    pub const MAX: usize = 10_000;

    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ValueError> {
        Ok(kernel::text::optional(raw, Self::MAX)?.map(Self))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a lifecycle change was made, at most 500 characters; blank means none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Motivo(String);

impl Motivo {
    pub const MAX: usize = 500;

    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ValueError> {
        Ok(kernel::text::optional(raw, Self::MAX)?.map(Self))
    }

    /// A reason produced by this service (e.g. from an incoming event), cut to the limit
    /// rather than refused.
    pub fn lenient(raw: Option<&str>) -> Option<Self> {
        let text = raw.map(str::trim).filter(|t| !t.is_empty())?;
        Some(Self(text.chars().take(Self::MAX).collect()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_fecha(raw: &str) -> Result<NaiveDate, ValueError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| invalid("must be a date YYYY-MM-DD"))
}

/// A template's duration: 1 to 36 500 days.
pub fn parse_duracion_dias(raw: i64) -> Result<u32, ValueError> {
    if (1..=36_500).contains(&raw) {
        Ok(raw as u32)
    } else {
        Err(invalid("must be between 1 and 36500 days"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_name_round_trips_with_the_exact_spelling() {
        for tipo in TipoContrato::ALL {
            assert_eq!(TipoContrato::parse(tipo.as_str()).unwrap(), *tipo);
        }
        for estado in EstadoContrato::ALL {
            assert_eq!(EstadoContrato::parse(estado.as_str()).unwrap(), *estado);
        }
        assert!(TipoContrato::parse("REVSHARE").is_err());
        assert!(TipoContrato::parse("trueque").is_err());
        assert!(EstadoContrato::parse("ACTIVO").is_err());
    }

    #[test]
    fn a_monto_is_exact_and_never_negative() {
        assert_eq!(Monto::parse("25.5").unwrap().amount().cents(), 2550);
        assert!(Monto::parse("-1").is_err());
        assert!(Monto::parse("1.234").is_err());
        assert!(Monto::parse("abc").is_err());
        assert!(Monto::parse("0").is_ok());
    }

    #[test]
    fn a_moneda_is_three_upper_case_letters() {
        assert_eq!(Moneda::parse("USD").unwrap().as_str(), "USD");
        for bad in ["usd", "US", "USDD", "U5D", ""] {
            assert!(Moneda::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blank_condiciones_and_motivo_are_none_and_long_ones_are_refused() {
        assert_eq!(Condiciones::parse(Some("  ")).unwrap(), None);
        assert!(Condiciones::parse(Some(&"x".repeat(10_001))).is_err());
        assert!(Motivo::parse(Some(&"x".repeat(501))).is_err());
        assert_eq!(
            Motivo::lenient(Some(&"x".repeat(600)))
                .unwrap()
                .as_str()
                .len(),
            500
        );
    }

    #[test]
    fn dates_are_iso_and_durations_bounded() {
        assert_eq!(
            parse_fecha("2025-02-28").unwrap(),
            NaiveDate::from_ymd_opt(2025, 2, 28).unwrap()
        );
        assert!(parse_fecha("2025-02-30").is_err());
        assert!(parse_fecha("28/02/2025").is_err());
        assert!(parse_duracion_dias(0).is_err());
        assert_eq!(parse_duracion_dias(365).unwrap(), 365);
    }
}
