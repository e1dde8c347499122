//! The contracts context's domain: value types, the event-sourced Contrato aggregate and its
//! events, and the templates that give a new partner its terms. Pure: no I/O, no async, no
//! HTTP or SQL types, no serde on domain types.

mod contrato;
mod plantilla;
mod values;

#[cfg(test)]
mod tests;

pub use contrato::{
    CambiosContrato, Contrato, ContratoEvent, ContratoState, DomainError, NuevoContrato,
};
pub use plantilla::{plantillas_por_defecto, terminos_para, Plantilla, Terminos};
pub use values::{
    parse_duracion_dias, parse_fecha, Condiciones, EstadoContrato, Moneda, Monto, Motivo,
    TipoContrato, TipoPartner, ValueError,
};

/// One invalid input field, named as on the wire (the kernel's, so the HTTP edge renders every
/// context's issues alike).
pub use kernel::FieldIssue;
