//! The campaigns context's domain: value types, the `Programa` aggregate with its
//! affiliations, and the composition of notifications. Pure: no I/O, no async, no HTTP or SQL.

mod notificacion;
mod partner;
mod programa;
mod values;

#[cfg(test)]
mod tests;

pub use kernel::FieldIssue;
pub use notificacion::{
    por_onboarding, por_programa, CambioPrograma, Mensaje, ResultadoOnboarding,
};
pub use partner::PartnerConocido;
pub use programa::{
    Afiliacion, DomainError, Elegibilidad, EstadoInicial, EstadoPedido, NuevoPrograma, Programa,
    ProgramaEvent, ProgramaState,
};
pub use values::{
    non_negative, parse_date, BrandId, EstadoAfiliacion, EstadoNotificacion, EstadoPrograma,
    ModeloComision, Moneda, Nombre, Prioridad, Terminos, TerminosError, TipoPrograma, ValueError,
    Vigencia,
};
