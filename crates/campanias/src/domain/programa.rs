//! The `Programa` aggregate: a brand's program with its lifecycle and its partners'
//! affiliations. Every rule is decided here by a command that returns the domain events it
//! caused; whether a partner may be `ACTIVA` is told to it (`Elegibilidad`), never looked up.

use chrono::{DateTime, Utc};
use kernel::Amount;
use uuid::Uuid;

use super::values::{
    BrandId, EstadoAfiliacion, EstadoPrograma, Nombre, Terminos, TipoPrograma, Vigencia,
};

/// What this service knows about a partner's standing, from the events it consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elegibilidad {
    /// Its onboarding completed (its contract is active): it may be `ACTIVA`.
    Elegible,
    /// Unknown, mid-onboarding, or its contract is not active: `PENDIENTE` until it is.
    NoElegible,
    /// Deleted or deactivated upstream: its affiliations are `SUSPENDIDA`.
    Bloqueado,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("a program cannot go from {desde} to {hacia}")]
    TransicionInvalida {
        desde: &'static str,
        hacia: &'static str,
    },
    #[error("the partner is already affiliated to this program")]
    AfiliacionExistente,
    #[error("the partner is not affiliated to this program")]
    AfiliacionNoEncontrada,
    #[error("only a partner whose onboarding completed can have an active affiliation")]
    PartnerNoElegible,
    #[error("the program is closed")]
    ProgramaCerrado,
}

/// What a program starts as: a draft, or already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstadoInicial {
    Borrador,
    Activo,
}

/// A validated new program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NuevoPrograma {
    pub nombre: Nombre,
    pub brand_id: BrandId,
    pub tipo: TipoPrograma,
    pub estado: EstadoInicial,
    pub vigencia: Vigencia,
    pub terminos: Terminos,
    pub presupuesto: Option<Amount>,
}

/// One partner's affiliation to a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Afiliacion {
    pub afiliado_id: Uuid,
    pub estado: EstadoAfiliacion,
    pub fecha_alta: DateTime<Utc>,
    pub fecha_baja: Option<DateTime<Utc>>,
}

/// The full state, for storage to save and restore; commands go through [`Programa`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramaState {
    pub id: Uuid,
    pub nombre: Nombre,
    pub brand_id: BrandId,
    pub tipo: TipoPrograma,
    pub estado: EstadoPrograma,
    pub vigencia: Vigencia,
    pub terminos: Terminos,
    pub presupuesto: Option<Amount>,
    pub afiliaciones: Vec<Afiliacion>,
    pub fecha_creacion: DateTime<Utc>,
    pub fecha_actualizacion: DateTime<Utc>,
}

/// What happened to a program, to be published as integration events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramaEvent {
    Creado {
        programa_id: Uuid,
        nombre: String,
        brand_id: String,
        tipo: TipoPrograma,
        estado: EstadoPrograma,
    },
    Activado {
        programa_id: Uuid,
        nombre: String,
    },
    Suspendido {
        programa_id: Uuid,
        nombre: String,
    },
    Cerrado {
        programa_id: Uuid,
        nombre: String,
    },
    AfiliacionCreada {
        programa_id: Uuid,
        afiliado_id: Uuid,
        estado: EstadoAfiliacion,
    },
    AfiliacionActualizada {
        programa_id: Uuid,
        afiliado_id: Uuid,
        anterior: EstadoAfiliacion,
        nuevo: EstadoAfiliacion,
    },
}

/// The state an affiliation an operator asks for (`PENDIENTE` is never asked for: only the
/// service puts an affiliation there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EstadoPedido {
    Activa,
    Suspendida,
    Baja,
}

impl EstadoPedido {
    fn estado(self) -> EstadoAfiliacion {
        match self {
            EstadoPedido::Activa => EstadoAfiliacion::Activa,
            EstadoPedido::Suspendida => EstadoAfiliacion::Suspendida,
            EstadoPedido::Baja => EstadoAfiliacion::Baja,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programa {
    state: ProgramaState,
}

fn activado(programa_id: Uuid, nombre: String) -> ProgramaEvent {
    ProgramaEvent::Activado {
        programa_id,
        nombre,
    }
}

fn suspendido(programa_id: Uuid, nombre: String) -> ProgramaEvent {
    ProgramaEvent::Suspendido {
        programa_id,
        nombre,
    }
}

fn cerrado(programa_id: Uuid, nombre: String) -> ProgramaEvent {
    ProgramaEvent::Cerrado {
        programa_id,
        nombre,
    }
}

/// The state a new affiliation starts in.
fn estado_inicial(elegibilidad: Elegibilidad) -> EstadoAfiliacion {
    match elegibilidad {
        Elegibilidad::Elegible => EstadoAfiliacion::Activa,
        Elegibilidad::NoElegible => EstadoAfiliacion::Pendiente,
        Elegibilidad::Bloqueado => EstadoAfiliacion::Suspendida,
    }
}

impl Programa {
    /// Creates a program with its first affiliations (each partner at most once; the caller
    /// rejects duplicates before). A program created `ACTIVO` also publishes its activation.
    pub fn crear(
        id: Uuid,
        datos: NuevoPrograma,
        afiliados: &[(Uuid, Elegibilidad)],
        now: DateTime<Utc>,
    ) -> (Programa, Vec<ProgramaEvent>) {
        let estado = match datos.estado {
            EstadoInicial::Borrador => EstadoPrograma::Borrador,
            EstadoInicial::Activo => EstadoPrograma::Activo,
        };
        let mut programa = Programa {
            state: ProgramaState {
                id,
                nombre: datos.nombre,
                brand_id: datos.brand_id,
                tipo: datos.tipo,
                estado,
                vigencia: datos.vigencia,
                terminos: datos.terminos,
                presupuesto: datos.presupuesto,
                afiliaciones: Vec::new(),
                fecha_creacion: now,
                fecha_actualizacion: now,
            },
        };
        let mut events = vec![ProgramaEvent::Creado {
            programa_id: id,
            nombre: programa.state.nombre.as_str().to_owned(),
            brand_id: programa.state.brand_id.as_str().to_owned(),
            tipo: programa.state.tipo,
            estado,
        }];
        if estado == EstadoPrograma::Activo {
            events.push(activado(id, programa.state.nombre.as_str().to_owned()));
        }
        for (afiliado_id, elegibilidad) in afiliados {
            if let Ok(event) = programa.afiliar(*afiliado_id, *elegibilidad, now) {
                events.push(event);
            }
        }
        (programa, events)
    }

    pub fn restore(state: ProgramaState) -> Programa {
        Programa { state }
    }

    pub fn state(&self) -> &ProgramaState {
        &self.state
    }

    pub fn id(&self) -> Uuid {
        self.state.id
    }

    pub fn estado(&self) -> EstadoPrograma {
        self.state.estado
    }

    pub fn afiliacion(&self, afiliado_id: Uuid) -> Option<&Afiliacion> {
        self.state
            .afiliaciones
            .iter()
            .find(|a| a.afiliado_id == afiliado_id)
    }

    fn transition(
        &mut self,
        hacia: EstadoPrograma,
        desde_permitidos: &[EstadoPrograma],
        event: fn(Uuid, String) -> ProgramaEvent,
        now: DateTime<Utc>,
    ) -> Result<ProgramaEvent, DomainError> {
        if !desde_permitidos.contains(&self.state.estado) {
            return Err(DomainError::TransicionInvalida {
                desde: self.state.estado.as_str(),
                hacia: hacia.as_str(),
            });
        }
        self.state.estado = hacia;
        self.state.fecha_actualizacion = now;
        Ok(event(self.state.id, self.state.nombre.as_str().to_owned()))
    }

    /// `BORRADOR` or `SUSPENDIDO` → `ACTIVO`.
    pub fn activar(&mut self, now: DateTime<Utc>) -> Result<ProgramaEvent, DomainError> {
        use EstadoPrograma::*;
        self.transition(Activo, &[Borrador, Suspendido], activado, now)
    }

    /// `ACTIVO` → `SUSPENDIDO`.
    pub fn suspender(&mut self, now: DateTime<Utc>) -> Result<ProgramaEvent, DomainError> {
        use EstadoPrograma::*;
        self.transition(Suspendido, &[Activo], suspendido, now)
    }

    /// `ACTIVO` or `SUSPENDIDO` → `CERRADO`, which is final.
    pub fn cerrar(&mut self, now: DateTime<Utc>) -> Result<ProgramaEvent, DomainError> {
        use EstadoPrograma::*;
        self.transition(Cerrado, &[Activo, Suspendido], cerrado, now)
    }

    /// Affiliates a partner: `ACTIVA` when it is eligible, `PENDIENTE` while its onboarding
    /// runs, `SUSPENDIDA` when it was removed upstream. A closed program takes no one.
    pub fn afiliar(
        &mut self,
        afiliado_id: Uuid,
        elegibilidad: Elegibilidad,
        now: DateTime<Utc>,
    ) -> Result<ProgramaEvent, DomainError> {
        if self.state.estado == EstadoPrograma::Cerrado {
            return Err(DomainError::ProgramaCerrado);
        }
        if self.afiliacion(afiliado_id).is_some() {
            return Err(DomainError::AfiliacionExistente);
        }
        let estado = estado_inicial(elegibilidad);
        self.state.afiliaciones.push(Afiliacion {
            afiliado_id,
            estado,
            fecha_alta: now,
            fecha_baja: None,
        });
        self.state.fecha_actualizacion = now;
        Ok(ProgramaEvent::AfiliacionCreada {
            programa_id: self.state.id,
            afiliado_id,
            estado,
        })
    }

    fn set_afiliacion(
        &mut self,
        afiliado_id: Uuid,
        nuevo: EstadoAfiliacion,
        now: DateTime<Utc>,
    ) -> Option<ProgramaEvent> {
        let programa_id = self.state.id;
        let afiliacion = self
            .state
            .afiliaciones
            .iter_mut()
            .find(|a| a.afiliado_id == afiliado_id)?;
        let anterior = afiliacion.estado;
        if anterior == nuevo {
            return None;
        }
        afiliacion.estado = nuevo;
        if nuevo == EstadoAfiliacion::Baja {
            afiliacion.fecha_baja = Some(now);
        }
        self.state.fecha_actualizacion = now;
        Some(ProgramaEvent::AfiliacionActualizada {
            programa_id,
            afiliado_id,
            anterior,
            nuevo,
        })
    }

    /// An operator's change of an affiliation. Asking for the state it already has changes
    /// nothing (`Ok(None)`). `BAJA` is final; `ACTIVA` needs an eligible partner; a closed
    /// program's affiliations no longer change.
    pub fn cambiar_afiliacion(
        &mut self,
        afiliado_id: Uuid,
        pedido: EstadoPedido,
        elegibilidad: Elegibilidad,
        now: DateTime<Utc>,
    ) -> Result<Option<ProgramaEvent>, DomainError> {
        let actual = self
            .afiliacion(afiliado_id)
            .ok_or(DomainError::AfiliacionNoEncontrada)?
            .estado;
        let nuevo = pedido.estado();
        if actual == nuevo {
            return Ok(None);
        }
        if self.state.estado == EstadoPrograma::Cerrado {
            return Err(DomainError::ProgramaCerrado);
        }
        if actual == EstadoAfiliacion::Baja {
            return Err(DomainError::TransicionInvalida {
                desde: actual.as_str(),
                hacia: nuevo.as_str(),
            });
        }
        if pedido == EstadoPedido::Activa && elegibilidad != Elegibilidad::Elegible {
            return Err(DomainError::PartnerNoElegible);
        }
        Ok(self.set_afiliacion(afiliado_id, nuevo, now))
    }

    /// The partner became eligible: its `PENDIENTE` affiliation becomes `ACTIVA`. Any other
    /// state (or a closed program) is left alone, so a repeated signal changes nothing.
    pub fn promover(&mut self, afiliado_id: Uuid, now: DateTime<Utc>) -> Option<ProgramaEvent> {
        let pendiente = self
            .afiliacion(afiliado_id)
            .is_some_and(|a| a.estado == EstadoAfiliacion::Pendiente);
        if !pendiente || self.state.estado == EstadoPrograma::Cerrado {
            return None;
        }
        self.set_afiliacion(afiliado_id, EstadoAfiliacion::Activa, now)
    }

    /// The partner was deleted or deactivated upstream: a `PENDIENTE` or `ACTIVA` affiliation
    /// becomes `SUSPENDIDA` (even in a closed program: it must not count as active).
    pub fn suspender_afiliado(
        &mut self,
        afiliado_id: Uuid,
        now: DateTime<Utc>,
    ) -> Option<ProgramaEvent> {
        let vigente = self.afiliacion(afiliado_id).is_some_and(|a| {
            matches!(
                a.estado,
                EstadoAfiliacion::Pendiente | EstadoAfiliacion::Activa
            )
        });
        if !vigente {
            return None;
        }
        self.set_afiliacion(afiliado_id, EstadoAfiliacion::Suspendida, now)
    }
}
