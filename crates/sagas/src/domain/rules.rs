//! The saga's vocabulary and its rules table (DOMAIN §9) as data: the steps, the saga states,
//! the processing states of a log row, and which step may follow which.

use std::fmt;

/// A step of the onboarding saga: an event it consumes, a message it publishes, or its own
/// deadline. `as_str` is the wire type logged as `tipo_evento`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Paso {
    CreatePartner,
    /// Wire type `PartnerCreado`.
    PartnerCreated,
    PartnerCreationFailed,
    ContratoCreado,
    ContratoCreadoFailed,
    ContratoAprobado,
    ContratoRechazado,
    RevisionContrato,
    RevisionAprobada,
    RevisionRechazada,
    SagaTimeout,
    PartnerDesactivado,
}

use Paso::*;

impl Paso {
    pub const ALL: [Paso; 12] = [
        CreatePartner,
        PartnerCreated,
        PartnerCreationFailed,
        ContratoCreado,
        ContratoCreadoFailed,
        ContratoAprobado,
        ContratoRechazado,
        RevisionContrato,
        RevisionAprobada,
        RevisionRechazada,
        SagaTimeout,
        PartnerDesactivado,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CreatePartner => "CreatePartner",
            PartnerCreated => "PartnerCreado",
            PartnerCreationFailed => "PartnerCreationFailed",
            ContratoCreado => "ContratoCreado",
            ContratoCreadoFailed => "ContratoCreadoFailed",
            ContratoAprobado => "ContratoAprobado",
            ContratoRechazado => "ContratoRechazado",
            RevisionContrato => "RevisionContrato",
            RevisionAprobada => "RevisionAprobada",
            RevisionRechazada => "RevisionRechazada",
            SagaTimeout => "SagaTimeout",
            PartnerDesactivado => "PartnerDesactivado",
        }
    }

    pub fn parse(text: &str) -> Option<Paso> {
        Paso::ALL.into_iter().find(|paso| paso.as_str() == text)
    }

    /// The steps DOMAIN §9's table allows right after this one (without `SagaTimeout`, which
    /// [`allowed`] adds for the steps in [`TIMEOUT_AFTER`]).
    pub fn next(self) -> &'static [Paso] {
        RULES
            .iter()
            .find(|(after, _)| *after == self)
            .map(|(_, next)| *next)
            .unwrap_or(&[])
    }
}

impl fmt::Display for Paso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// DOMAIN §9's table of allowed transitions, row by row. A step with no row (a final one)
/// allows nothing after it.
pub const RULES: &[(Paso, &[Paso])] = &[
    (CreatePartner, &[PartnerCreated, PartnerCreationFailed]),
    (PartnerCreated, &[ContratoCreado, ContratoCreadoFailed]),
    (ContratoCreado, &[ContratoAprobado, ContratoRechazado]),
    (ContratoRechazado, &[RevisionContrato]),
    (RevisionContrato, &[RevisionAprobada, RevisionRechazada]),
    // The compensation (`DesactivarPartner`) is running: only its answer may follow.
    (ContratoCreadoFailed, &[PartnerDesactivado]),
    (RevisionRechazada, &[PartnerDesactivado]),
    (SagaTimeout, &[PartnerDesactivado]),
    (PartnerCreationFailed, &[]),
    (ContratoAprobado, &[]),
    (RevisionAprobada, &[]),
    (PartnerDesactivado, &[]),
];

/// The steps a `SagaTimeout` may follow: those that leave the saga `INICIADA`, waiting for
/// another service. Review waits (`ContratoRechazado` → `RevisionContrato`) have no deadline,
/// and a failed saga waiting for its compensation has already failed.
pub const TIMEOUT_AFTER: &[Paso] = &[CreatePartner, PartnerCreated, ContratoCreado];

/// Whether `next` may follow `after`.
pub fn allowed(after: Paso, next: Paso) -> bool {
    after.next().contains(&next) || (next == SagaTimeout && TIMEOUT_AFTER.contains(&after))
}

/// The state of a saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EstadoSaga {
    Iniciada,
    Completada,
    Fallida,
    PendienteRevision,
}

impl EstadoSaga {
    pub const ALL: [EstadoSaga; 4] = [
        EstadoSaga::Iniciada,
        EstadoSaga::Completada,
        EstadoSaga::Fallida,
        EstadoSaga::PendienteRevision,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EstadoSaga::Iniciada => "INICIADA",
            EstadoSaga::Completada => "COMPLETADA",
            EstadoSaga::Fallida => "FALLIDA",
            EstadoSaga::PendienteRevision => "PENDIENTE_REVISION",
        }
    }

    pub fn parse(text: &str) -> Option<EstadoSaga> {
        EstadoSaga::ALL
            .into_iter()
            .find(|estado| estado.as_str() == text)
    }
}

impl fmt::Display for EstadoSaga {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the saga dealt with one logged message. Rows are written in the transaction that
/// processes them, so this implementation writes `PROCESADO` or `ERROR`; `RECIBIDO` names a
/// row logged but not (yet) acted on and is accepted when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstadoProcesamiento {
    Recibido,
    Procesado,
    Error,
}

impl EstadoProcesamiento {
    pub fn as_str(self) -> &'static str {
        match self {
            EstadoProcesamiento::Recibido => "RECIBIDO",
            EstadoProcesamiento::Procesado => "PROCESADO",
            EstadoProcesamiento::Error => "ERROR",
        }
    }

    pub fn parse(text: &str) -> Option<EstadoProcesamiento> {
        [
            EstadoProcesamiento::Recibido,
            EstadoProcesamiento::Procesado,
            EstadoProcesamiento::Error,
        ]
        .into_iter()
        .find(|estado| estado.as_str() == text)
    }
}

/// Causes a failed (or reviewed) saga records; a `PartnerCreationFailed` brings its own
/// `error_code` (e.g. `EMAIL_EXISTENTE`).
pub mod causa {
    pub const CONTRATO_NO_CREADO: &str = "CONTRATO_NO_CREADO";
    pub const REVISION_RECHAZADA: &str = "REVISION_RECHAZADA";
    pub const TIMEOUT: &str = "TIMEOUT";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_round_trips_through_its_wire_name() {
        for paso in Paso::ALL {
            assert_eq!(Paso::parse(paso.as_str()), Some(paso));
        }
        assert_eq!(PartnerCreated.as_str(), "PartnerCreado");
        assert_eq!(Paso::parse("PartnerCreated"), None);
    }

    #[test]
    fn every_step_has_exactly_one_row_in_the_table() {
        for paso in Paso::ALL {
            let rows = RULES.iter().filter(|(after, _)| *after == paso).count();
            assert_eq!(rows, 1, "{paso}");
        }
    }

    #[test]
    fn the_table_is_the_domain_table() {
        let pairs: Vec<(Paso, Paso)> = Paso::ALL
            .into_iter()
            .flat_map(|after| {
                Paso::ALL
                    .into_iter()
                    .filter(move |next| allowed(after, *next))
                    .map(move |next| (after, next))
            })
            .collect();
        assert_eq!(
            pairs,
            vec![
                (CreatePartner, PartnerCreated),
                (CreatePartner, PartnerCreationFailed),
                (CreatePartner, SagaTimeout),
                (PartnerCreated, ContratoCreado),
                (PartnerCreated, ContratoCreadoFailed),
                (PartnerCreated, SagaTimeout),
                (ContratoCreado, ContratoAprobado),
                (ContratoCreado, ContratoRechazado),
                (ContratoCreado, SagaTimeout),
                (ContratoCreadoFailed, PartnerDesactivado),
                (ContratoRechazado, RevisionContrato),
                (RevisionContrato, RevisionAprobada),
                (RevisionContrato, RevisionRechazada),
                (RevisionRechazada, PartnerDesactivado),
                (SagaTimeout, PartnerDesactivado),
            ]
        );
    }

    #[test]
    fn states_round_trip() {
        for estado in EstadoSaga::ALL {
            assert_eq!(EstadoSaga::parse(estado.as_str()), Some(estado));
        }
        assert_eq!(EstadoSaga::parse("iniciada"), None);
        assert_eq!(
            EstadoProcesamiento::parse("ERROR"),
            Some(EstadoProcesamiento::Error)
        );
    }
}
