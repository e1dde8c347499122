//! The Contrato event-sourced aggregate. A command checks every rule against the current state
//! and answers with the events it produces (or a `DomainError`); `apply` folds one event into
//! the state and never fails. The state is always the fold of the stream: `version` counts the
//! events applied.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::values::{Condiciones, EstadoContrato, Moneda, Monto, Motivo, TipoContrato};

/// A rule of the aggregate refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the contract does not exist")]
    NoExiste,
    #[error("the contract exists already")]
    YaExiste,
    #[error("fecha_fin {fin} is before fecha_inicio {inicio}")]
    FechaFinAntesDeInicio { inicio: NaiveDate, fin: NaiveDate },
    #[error("a contract in state {desde} cannot {accion}")]
    TransicionInvalida {
        desde: EstadoContrato,
        accion: &'static str,
    },
}

/// The validated terms of a new contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NuevoContrato {
    pub partner_id: Uuid,
    /// The onboarding that asked for it, when the saga did.
    pub onboarding_id: Option<Uuid>,
    pub tipo: TipoContrato,
    pub monto: Monto,
    pub moneda: Moneda,
    pub condiciones: Option<Condiciones>,
    pub fecha_inicio: NaiveDate,
    pub fecha_fin: Option<NaiveDate>,
}

/// A change of terms: `None` leaves a field alone; for the optional fields `Some(None)` clears.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CambiosContrato {
    pub monto: Option<Monto>,
    pub moneda: Option<Moneda>,
    pub condiciones: Option<Option<Condiciones>>,
    pub fecha_fin: Option<Option<NaiveDate>>,
}

/// What happened to a contract. `Actualizado` carries the complete new terms so that applying
/// it needs nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContratoEvent {
    Creado(NuevoContrato),
    Actualizado {
        monto: Monto,
        moneda: Moneda,
        condiciones: Option<Condiciones>,
        fecha_fin: Option<NaiveDate>,
    },
    Aprobado,
    EnRevision {
        motivo: Option<Motivo>,
    },
    Rechazado {
        motivo: Option<Motivo>,
    },
    Suspendido {
        motivo: Option<Motivo>,
    },
    Reactivado {
        motivo: Option<Motivo>,
    },
    Terminado {
        motivo: Option<Motivo>,
    },
    Vencido,
}

impl ContratoEvent {
    /// The stored and published event type name.
    pub fn tipo(&self) -> &'static str {
        match self {
            ContratoEvent::Creado(_) => "ContratoCreado",
            ContratoEvent::Actualizado { .. } => "ContratoActualizado",
            ContratoEvent::Aprobado => "ContratoAprobado",
            ContratoEvent::EnRevision { .. } => "ContratoEnRevision",
            ContratoEvent::Rechazado { .. } => "ContratoRechazado",
            ContratoEvent::Suspendido { .. } => "ContratoSuspendido",
            ContratoEvent::Reactivado { .. } => "ContratoReactivado",
            ContratoEvent::Terminado { .. } => "ContratoTerminado",
            ContratoEvent::Vencido => "ContratoVencido",
        }
    }

    /// The state this event leads to, for lifecycle events.
    pub fn estado_nuevo(&self) -> Option<EstadoContrato> {
        Some(match self {
            ContratoEvent::Creado(_) => EstadoContrato::Pendiente,
            ContratoEvent::Actualizado { .. } => return None,
            ContratoEvent::Aprobado | ContratoEvent::Reactivado { .. } => EstadoContrato::Activo,
            ContratoEvent::EnRevision { .. } => EstadoContrato::EnRevision,
            ContratoEvent::Rechazado { .. } => EstadoContrato::Rechazado,
            ContratoEvent::Suspendido { .. } => EstadoContrato::Suspendido,
            ContratoEvent::Terminado { .. } => EstadoContrato::Cancelado,
            ContratoEvent::Vencido => EstadoContrato::Vencido,
        })
    }

    /// The reason carried by a lifecycle event, if any.
    pub fn motivo(&self) -> Option<&Motivo> {
        match self {
            ContratoEvent::EnRevision { motivo }
            | ContratoEvent::Rechazado { motivo }
            | ContratoEvent::Suspendido { motivo }
            | ContratoEvent::Reactivado { motivo }
            | ContratoEvent::Terminado { motivo } => motivo.as_ref(),
            _ => None,
        }
    }
}

/// A created contract's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContratoState {
    pub partner_id: Uuid,
    pub onboarding_id: Option<Uuid>,
    pub tipo: TipoContrato,
    pub monto: Monto,
    pub moneda: Moneda,
    pub condiciones: Option<Condiciones>,
    pub fecha_inicio: NaiveDate,
    pub fecha_fin: Option<NaiveDate>,
    pub estado: EstadoContrato,
    pub fecha_creacion: DateTime<Utc>,
    pub fecha_actualizacion: DateTime<Utc>,
}

/// The aggregate root: a stream id, the number of events applied, and the state once created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contrato {
    id: Uuid,
    version: i64,
    state: Option<ContratoState>,
}

impl Contrato {
    /// The empty stream `id`, before any event.
    pub fn new(id: Uuid) -> Self {
        Self {
            id,
            version: 0,
            state: None,
        }
    }

    /// Rebuilds a contract from a snapshot taken at `version`.
    pub fn from_snapshot(id: Uuid, version: i64, state: Option<ContratoState>) -> Self {
        Self { id, version, state }
    }

    /// Folds `events` (with the time each occurred) into the empty stream `id`.
    pub fn replay<'a>(
        id: Uuid,
        events: impl IntoIterator<Item = (&'a ContratoEvent, DateTime<Utc>)>,
    ) -> Self {
        let mut contrato = Self::new(id);
        for (event, at) in events {
            contrato.apply(event, at);
        }
        contrato
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn state(&self) -> Option<&ContratoState> {
        self.state.as_ref()
    }

    pub fn estado(&self) -> Option<EstadoContrato> {
        self.state.as_ref().map(|s| s.estado)
    }

    /// Applies one event that happened at `at`. Never fails: an event in the stream is a fact.
    pub fn apply(&mut self, event: &ContratoEvent, at: DateTime<Utc>) {
        self.version += 1;
        if let ContratoEvent::Creado(datos) = event {
            self.state = Some(ContratoState {
                partner_id: datos.partner_id,
                onboarding_id: datos.onboarding_id,
                tipo: datos.tipo,
                monto: datos.monto,
                moneda: datos.moneda.clone(),
                condiciones: datos.condiciones.clone(),
                fecha_inicio: datos.fecha_inicio,
                fecha_fin: datos.fecha_fin,
                estado: EstadoContrato::Pendiente,
                fecha_creacion: at,
                fecha_actualizacion: at,
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        state.fecha_actualizacion = at;
        if let ContratoEvent::Actualizado {
            monto,
            moneda,
            condiciones,
            fecha_fin,
        } = event
        {
            state.monto = *monto;
            state.moneda = moneda.clone();
            state.condiciones = condiciones.clone();
            state.fecha_fin = *fecha_fin;
        }
        if let Some(estado) = event.estado_nuevo() {
            state.estado = estado;
        }
    }

    fn existing(&self) -> Result<&ContratoState, DomainError> {
        self.state.as_ref().ok_or(DomainError::NoExiste)
    }

    fn transition(
        &self,
        accion: &'static str,
        from: &[EstadoContrato],
        event: ContratoEvent,
    ) -> Result<Vec<ContratoEvent>, DomainError> {
        let desde = self.existing()?.estado;
        if from.contains(&desde) {
            Ok(vec![event])
        } else {
            Err(DomainError::TransicionInvalida { desde, accion })
        }
    }

    /// Creates the contract: `pendiente`, waiting for compliance.
    pub fn crear(&self, datos: NuevoContrato) -> Result<Vec<ContratoEvent>, DomainError> {
        if self.state.is_some() {
            return Err(DomainError::YaExiste);
        }
        check_fechas(datos.fecha_inicio, datos.fecha_fin)?;
        Ok(vec![ContratoEvent::Creado(datos)])
    }

    /// Changes terms while the contract is alive (not cancelled, expired, rejected or
    /// inactive). A change that changes nothing produces no event.
    pub fn actualizar(&self, cambios: CambiosContrato) -> Result<Vec<ContratoEvent>, DomainError> {
        use EstadoContrato::*;
        let state = self.existing()?;
        if !matches!(state.estado, Pendiente | Activo | EnRevision | Suspendido) {
            return Err(DomainError::TransicionInvalida {
                desde: state.estado,
                accion: "change its terms",
            });
        }
        let monto = cambios.monto.unwrap_or(state.monto);
        let moneda = cambios.moneda.unwrap_or_else(|| state.moneda.clone());
        let condiciones = cambios
            .condiciones
            .unwrap_or_else(|| state.condiciones.clone());
        let fecha_fin = cambios.fecha_fin.unwrap_or(state.fecha_fin);
        check_fechas(state.fecha_inicio, fecha_fin)?;
        if monto == state.monto
            && moneda == state.moneda
            && condiciones == state.condiciones
            && fecha_fin == state.fecha_fin
        {
            return Ok(Vec::new());
        }
        Ok(vec![ContratoEvent::Actualizado {
            monto,
            moneda,
            condiciones,
            fecha_fin,
        }])
    }

    /// Compliance (or the operator's review) approved it: `activo`.
    pub fn aprobar(&self) -> Result<Vec<ContratoEvent>, DomainError> {
        use EstadoContrato::*;
        self.transition(
            "be approved",
            &[Pendiente, EnRevision],
            ContratoEvent::Aprobado,
        )
    }

    /// Compliance rejected it: it waits for an operator's review.
    pub fn poner_en_revision(
        &self,
        motivo: Option<Motivo>,
    ) -> Result<Vec<ContratoEvent>, DomainError> {
        self.transition(
            "go to review",
            &[EstadoContrato::Pendiente],
            ContratoEvent::EnRevision { motivo },
        )
    }

    /// The operator's review rejected it: final.
    pub fn rechazar(&self, motivo: Option<Motivo>) -> Result<Vec<ContratoEvent>, DomainError> {
        self.transition(
            "be rejected",
            &[EstadoContrato::EnRevision],
            ContratoEvent::Rechazado { motivo },
        )
    }

    pub fn suspender(&self, motivo: Option<Motivo>) -> Result<Vec<ContratoEvent>, DomainError> {
        self.transition(
            "be suspended",
            &[EstadoContrato::Activo],
            ContratoEvent::Suspendido { motivo },
        )
    }

    pub fn reactivar(&self, motivo: Option<Motivo>) -> Result<Vec<ContratoEvent>, DomainError> {
        self.transition(
            "be reactivated",
            &[EstadoContrato::Suspendido],
            ContratoEvent::Reactivado { motivo },
        )
    }

    /// Terminates it: `cancelado`, final.
    pub fn terminar(&self, motivo: Option<Motivo>) -> Result<Vec<ContratoEvent>, DomainError> {
        use EstadoContrato::*;
        self.transition(
            "be terminated",
            &[Activo, Suspendido],
            ContratoEvent::Terminado { motivo },
        )
    }

    /// Expires it when its `fecha_fin` is before `hoy`; a live contract (pending, active or
    /// suspended) only.
    pub fn vencer(&self, hoy: NaiveDate) -> Result<Vec<ContratoEvent>, DomainError> {
        use EstadoContrato::*;
        let state = self.existing()?;
        let expired = state.fecha_fin.is_some_and(|fin| fin < hoy);
        if !expired {
            return Err(DomainError::TransicionInvalida {
                desde: state.estado,
                accion: "expire before its fecha_fin",
            });
        }
        self.transition(
            "expire",
            &[Pendiente, Activo, Suspendido],
            ContratoEvent::Vencido,
        )
    }
}

fn check_fechas(inicio: NaiveDate, fin: Option<NaiveDate>) -> Result<(), DomainError> {
    match fin {
        Some(fin) if fin < inicio => Err(DomainError::FechaFinAntesDeInicio { inicio, fin }),
        _ => Ok(()),
    }
}
