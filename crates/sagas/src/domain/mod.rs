//! The saga log's domain: the rules table of DOMAIN §9 as data and the saga aggregate that
//! applies it. Pure: no I/O, no async, no HTTP, SQL or bus types.

mod rules;
mod saga;
#[cfg(test)]
mod tests;

pub use rules::{allowed, causa, EstadoProcesamiento, EstadoSaga, Paso, RULES, TIMEOUT_AFTER};
pub use saga::{
    plazo, DecisionRevision, Efecto, Hecho, Rechazo, Revision, Saga, TransicionInvalida,
};
