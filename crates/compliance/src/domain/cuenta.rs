//! The financial account (cuenta financiera): one per partner, opened when compliance approves
//! its contract, when an operator approves a reviewed contract, or by hand. Its tax lines start
//! from a default per currency.

use chrono::{DateTime, NaiveDate, Utc};
use kernel::Amount;
use uuid::Uuid;

use super::values::{Moneda, Porcentaje, ValueError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EstadoCuenta {
    Active,
    Inactive,
    Suspended,
}

impl EstadoCuenta {
    pub const ALL: [EstadoCuenta; 3] = [
        EstadoCuenta::Active,
        EstadoCuenta::Inactive,
        EstadoCuenta::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EstadoCuenta::Active => "ACTIVE",
            EstadoCuenta::Inactive => "INACTIVE",
            EstadoCuenta::Suspended => "SUSPENDED",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|estado| estado.as_str() == raw.trim())
            .ok_or_else(|| ValueError("must be ACTIVE, INACTIVE or SUSPENDED".into()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetodoPago {
    CreditCard,
    #[default]
    BankTransfer,
    Paypal,
}

impl MetodoPago {
    pub const ALL: [MetodoPago; 3] = [
        MetodoPago::CreditCard,
        MetodoPago::BankTransfer,
        MetodoPago::Paypal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetodoPago::CreditCard => "CREDIT_CARD",
            MetodoPago::BankTransfer => "BANK_TRANSFER",
            MetodoPago::Paypal => "PAYPAL",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|metodo| metodo.as_str() == raw.trim())
            .ok_or_else(|| ValueError("must be CREDIT_CARD, BANK_TRANSFER or PAYPAL".into()))
    }
}

/// One tax applied to the partner's payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineaImpuesto {
    pub nombre: String,
    pub porcentaje: Porcentaje,
}

impl LineaImpuesto {
    fn new(nombre: &str, percent: i64) -> Self {
        Self {
            nombre: nombre.to_owned(),
            porcentaje: Porcentaje::units(percent),
        }
    }
}

/// The usual taxes on payments in `moneda`'s jurisdiction; none where no default is known
/// (an operator adds them).
pub fn impuestos_por_defecto(moneda: &Moneda) -> Vec<LineaImpuesto> {
    match moneda.as_str() {
        "COP" => vec![
            LineaImpuesto::new("IVA", 19),
            LineaImpuesto::new("RETENCION_FUENTE", 11),
        ],
        "MXN" => vec![LineaImpuesto::new("IVA", 16), LineaImpuesto::new("ISR", 10)],
        "EUR" => vec![LineaImpuesto::new("VAT", 21)],
        "USD" => vec![LineaImpuesto::new("WITHHOLDING", 0)],
        _ => Vec::new(),
    }
}

/// A partner's account in the financial system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuentaFinanciera {
    pub partner_id: Uuid,
    pub estado: EstadoCuenta,
    /// When payments to the partner may start.
    pub enable_at: DateTime<Utc>,
    pub moneda: Moneda,
    pub metodo_pago: MetodoPago,
    pub impuestos: Vec<LineaImpuesto>,
    pub fecha_creacion: DateTime<Utc>,
}

impl CuentaFinanciera {
    /// A new account, active at once, with the currency's default taxes.
    pub fn abrir(
        partner_id: Uuid,
        moneda: Moneda,
        metodo_pago: MetodoPago,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            partner_id,
            estado: EstadoCuenta::Active,
            enable_at: now,
            impuestos: impuestos_por_defecto(&moneda),
            moneda,
            metodo_pago,
            fecha_creacion: now,
        }
    }
}

/// Compliance's recorded decision on one contract (exactly one per contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluacion {
    pub contrato_id: Uuid,
    pub partner_id: Uuid,
    pub onboarding_id: Option<Uuid>,
    pub monto: Amount,
    /// As the contract named it (trimmed, upper-cased), even when not a valid code.
    pub moneda: String,
    pub veredicto: super::Veredicto,
    pub evaluado_en: DateTime<Utc>,
}

/// The period a report covers; both ends inclusive, either open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Periodo {
    desde: Option<NaiveDate>,
    hasta: Option<NaiveDate>,
}

impl Periodo {
    /// Refuses a period that ends before it starts.
    pub fn new(desde: Option<NaiveDate>, hasta: Option<NaiveDate>) -> Result<Self, ValueError> {
        match (desde, hasta) {
            (Some(desde), Some(hasta)) if desde > hasta => {
                Err(ValueError("desde must not be after hasta".into()))
            }
            _ => Ok(Self { desde, hasta }),
        }
    }

    pub fn desde(&self) -> Option<NaiveDate> {
        self.desde
    }

    pub fn hasta(&self) -> Option<NaiveDate> {
        self.hasta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_account_is_active_from_now_with_its_currency_taxes() {
        let now = kernel::now();
        let cuenta = CuentaFinanciera::abrir(
            Uuid::from_u128(1),
            Moneda::parse("COP").unwrap(),
            MetodoPago::default(),
            now,
        );
        assert_eq!(cuenta.estado, EstadoCuenta::Active);
        assert_eq!(cuenta.enable_at, now);
        assert_eq!(cuenta.metodo_pago, MetodoPago::BankTransfer);
        assert_eq!(cuenta.impuestos[0].nombre, "IVA");
        assert_eq!(cuenta.impuestos[0].porcentaje.to_string(), "19.00");
    }

    #[test]
    fn the_payment_method_and_state_read_only_their_wire_names() {
        for metodo in MetodoPago::ALL {
            assert_eq!(MetodoPago::parse(metodo.as_str()), Ok(metodo));
        }
        for estado in EstadoCuenta::ALL {
            assert_eq!(EstadoCuenta::parse(estado.as_str()), Ok(estado));
        }
        assert!(MetodoPago::parse("bank_transfer").is_err());
        assert!(EstadoCuenta::parse("ACTIVO").is_err());
    }

    #[test]
    fn a_period_ending_before_it_starts_is_refused() {
        let day = |d| NaiveDate::from_ymd_opt(2025, 1, d).unwrap();
        assert!(Periodo::new(Some(day(2)), Some(day(1))).is_err());
        assert!(Periodo::new(Some(day(1)), Some(day(1))).is_ok());
        assert!(Periodo::new(None, Some(day(1))).is_ok());
    }
}
