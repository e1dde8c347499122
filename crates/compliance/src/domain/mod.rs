//! The compliance context's domain: the four rules and their configuration, the financial
//! account, and the recorded evaluation. Pure: no I/O, no async, no HTTP or SQL types.

mod cuenta;
mod reglas;
mod values;

pub use cuenta::{
    impuestos_por_defecto, CuentaFinanciera, EstadoCuenta, Evaluacion, LineaImpuesto, MetodoPago,
    Periodo,
};
pub use reglas::{
    evaluar, CambiosReglas, ContratoPropuesto, ListaBloqueo, PartnerConocido, Rechazo, Regla,
    ReglasCompliance, ReglasInvalidas, Veredicto, Vigencia, ESTADO_ACEPTABLE,
};
pub use values::{EmailBloqueado, Moneda, Porcentaje, ValueError};

/// One invalid input field, named as on the wire (the kernel's, so the HTTP edge renders every
/// context's issues alike).
pub use kernel::FieldIssue;

/// Contract types as alianzas spells them (DOMAIN §5); a proposed contract must name one.
pub const TIPOS_CONTRATO: [&str; 5] = ["CPA", "CPL", "CPC", "revshare", "fijo"];

/// Contract states as alianzas spells them (DOMAIN §5). Only `pendiente` passes rule 4.
pub const ESTADOS_CONTRATO: [&str; 8] = [
    "pendiente",
    "activo",
    "en_revision",
    "suspendido",
    "inactivo",
    "vencido",
    "cancelado",
    "rechazado",
];
