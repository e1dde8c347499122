//! The value types of the campaigns context: closed vocabularies with their Spanish wire names,
//! and validated values (name, brand, currency, validity period, commercial terms). Each is
//! built only by `parse`, so a held value is always valid.

use chrono::NaiveDate;
use kernel::Amount;

/// Why a raw value was refused; the message is shown to the client next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl From<kernel::text::TextError> for ValueError {
    fn from(error: kernel::text::TextError) -> Self {
        ValueError(error.0)
    }
}

kernel::wire_enum!(
    /// What kind of partnership a program runs.
    TipoPrograma: ValueError {
        Afiliados => "AFILIADOS",
        Influencers => "INFLUENCERS",
        Advocacy => "ADVOCACY",
        Saas => "SAAS",
    }
);

kernel::wire_enum!(
    /// A program's lifecycle: `BORRADOR` → `ACTIVO` ⇄ `SUSPENDIDO` → `CERRADO` (final).
    EstadoPrograma: ValueError {
        Borrador => "BORRADOR",
        Activo => "ACTIVO",
        Suspendido => "SUSPENDIDO",
        Cerrado => "CERRADO",
    }
);

kernel::wire_enum!(
    /// An affiliation's state. Only a partner whose onboarding completed can be `ACTIVA`;
    /// `BAJA` (the partner left the program) is final.
    EstadoAfiliacion: ValueError {
        Pendiente => "PENDIENTE",
        Activa => "ACTIVA",
        Suspendida => "SUSPENDIDA",
        Baja => "BAJA",
    }
);

kernel::wire_enum!(
    /// How the partner is paid under the program's terms.
    ModeloComision: ValueError {
        Cpa => "CPA",
        Cpl => "CPL",
        Cpc => "CPC",
    }
);

kernel::wire_enum!(
    /// How urgent a notification is.
    Prioridad: ValueError {
        Alta => "ALTA",
        Normal => "NORMAL",
        Baja => "BAJA",
    }
);

kernel::wire_enum!(
    /// A notification's delivery state: `FALLIDA` after its last attempt failed.
    EstadoNotificacion: ValueError {
        Pendiente => "PENDIENTE",
        Enviada => "ENVIADA",
        Fallida => "FALLIDA",
    }
);

/// A program's name: trimmed, 1 to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nombre(String);

impl Nombre {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Ok(Nombre(kernel::text::required(raw, 255)?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The brand a program runs for: any non-blank reference (a UUID or the brand's own code),
/// trimmed, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandId(String);

impl BrandId {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Ok(BrandId(kernel::text::required(raw, 255)?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 4217 currency code: three letters, kept upper-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moneda(String);

impl Moneda {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let code = raw.trim();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Moneda(code.to_ascii_uppercase()))
        } else {
            Err(ValueError(
                "must be an ISO 4217 code of three letters, e.g. USD".to_owned(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A non-negative amount of money.
pub fn non_negative(amount: Amount) -> Result<Amount, ValueError> {
    if amount.is_negative() {
        Err(ValueError("must be zero or more".to_owned()))
    } else {
        Ok(amount)
    }
}

/// Reads a `YYYY-MM-DD` date.
pub fn parse_date(raw: &str) -> Result<NaiveDate, ValueError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ValueError("must be a date YYYY-MM-DD".to_owned()))
}

/// When a program runs: `fin` is after `inicio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vigencia {
    inicio: NaiveDate,
    fin: NaiveDate,
}

impl Vigencia {
    pub fn new(inicio: NaiveDate, fin: NaiveDate) -> Result<Self, ValueError> {
        if fin > inicio {
            Ok(Vigencia { inicio, fin })
        } else {
            Err(ValueError("must be after the start date".to_owned()))
        }
    }

    pub fn inicio(&self) -> NaiveDate {
        self.inicio
    }

    pub fn fin(&self) -> NaiveDate {
        self.fin
    }
}

/// A program's commercial terms: the model, the currency, the base rate (≥ 0) and an
/// optional cap that is never below the base rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminos {
    modelo: ModeloComision,
    moneda: Moneda,
    tarifa_base: Amount,
    tope: Option<Amount>,
}

/// Which term was wrong, named as its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminosError {
    TarifaBase(ValueError),
    Tope(ValueError),
}

impl Terminos {
    pub fn new(
        modelo: ModeloComision,
        moneda: Moneda,
        tarifa_base: Amount,
        tope: Option<Amount>,
    ) -> Result<Self, TerminosError> {
        let tarifa_base = non_negative(tarifa_base).map_err(TerminosError::TarifaBase)?;
        if let Some(tope) = tope {
            if tope < tarifa_base {
                return Err(TerminosError::Tope(ValueError(
                    "must not be below the base rate".to_owned(),
                )));
            }
        }
        Ok(Terminos {
            modelo,
            moneda,
            tarifa_base,
            tope,
        })
    }

    pub fn modelo(&self) -> ModeloComision {
        self.modelo
    }

    pub fn moneda(&self) -> &Moneda {
        &self.moneda
    }

    pub fn tarifa_base(&self) -> Amount {
        self.tarifa_base
    }

    pub fn tope(&self) -> Option<Amount> {
        self.tope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    #[test]
    fn every_wire_name_round_trips_and_lower_case_is_refused() {
        for tipo in TipoPrograma::ALL {
            assert_eq!(TipoPrograma::parse(tipo.as_str()).unwrap(), *tipo);
        }
        for estado in EstadoAfiliacion::ALL {
            assert_eq!(EstadoAfiliacion::parse(estado.as_str()).unwrap(), *estado);
        }
        assert!(EstadoPrograma::parse("activo").is_err());
        assert!(ModeloComision::parse("revshare").is_err());
    }

    #[test]
    fn a_name_is_trimmed_and_between_1_and_255_characters() {
        assert_eq!(Nombre::parse("  Verano ").unwrap().as_str(), "Verano");
        assert!(Nombre::parse(" ").is_err());
        assert!(Nombre::parse(&"x".repeat(256)).is_err());
        assert!(Nombre::parse(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn a_brand_is_any_non_blank_reference() {
        assert_eq!(BrandId::parse("brand-1").unwrap().as_str(), "brand-1");
        assert!(BrandId::parse("").is_err());
    }

    #[test]
    fn a_currency_is_three_letters_kept_upper_case() {
        assert_eq!(Moneda::parse("usd").unwrap().as_str(), "USD");
        for bad in ["US", "USDX", "U$D", ""] {
            assert!(Moneda::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_validity_ends_after_it_starts() {
        assert!(Vigencia::new(date("2025-06-01"), date("2025-08-31")).is_ok());
        assert!(Vigencia::new(date("2025-06-01"), date("2025-06-01")).is_err());
        assert!(Vigencia::new(date("2025-08-31"), date("2025-06-01")).is_err());
        assert!(parse_date("2025-13-01").is_err());
        assert!(parse_date("01/06/2025").is_err());
    }

    #[test]
    fn the_base_rate_is_not_negative_and_the_cap_not_below_it() {
        let usd = || Moneda::parse("USD").unwrap();
        let amount = |text: &str| text.parse::<Amount>().unwrap();
        assert!(Terminos::new(
            ModeloComision::Cpa,
            usd(),
            amount("25.5"),
            Some(amount("100"))
        )
        .is_ok());
        assert!(Terminos::new(
            ModeloComision::Cpa,
            usd(),
            amount("25.5"),
            Some(amount("25.5"))
        )
        .is_ok());
        assert!(Terminos::new(ModeloComision::Cpl, usd(), amount("0"), None).is_ok());
        assert!(matches!(
            Terminos::new(ModeloComision::Cpc, usd(), amount("-1"), None),
            Err(TerminosError::TarifaBase(_))
        ));
        assert!(matches!(
            Terminos::new(
                ModeloComision::Cpa,
                usd(),
                amount("10"),
                Some(amount("9.99"))
            ),
            Err(TerminosError::Tope(_))
        ));
    }
}
