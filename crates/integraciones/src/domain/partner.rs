//! The Partner aggregate and its Integracion entities. Every rule lives in a command method that
//! either refuses with a `DomainError` or changes the state and returns the domain events the
//! change produced; the application layer persists both in one transaction.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::enums::{EstadoKyc, EstadoPartner, TipoIntegracion, TipoPartner};
use super::values::{Comentarios, Descripcion, Direccion, Email, Motivo, Nombre, Telefono};

/// A rule of the aggregate refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the partner is deleted and refuses every change")]
    PartnerEliminado,
    #[error("the partner is already deleted")]
    PartnerYaEliminado,
    #[error("the partner has no such integration")]
    IntegracionNoEncontrada,
    #[error("the integration is already revoked")]
    IntegracionYaRevocada,
}

/// The validated data of a partner to register.
#[derive(Debug, Clone, PartialEq)]
pub struct NuevoPartner {
    pub nombre: Nombre,
    pub email: Email,
    pub telefono: Option<Telefono>,
    pub direccion: Option<Direccion>,
    pub tipo: TipoPartner,
}

/// A partial update: `None` leaves a field alone; for the optional fields `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CambiosPartner {
    pub nombre: Option<Nombre>,
    pub telefono: Option<Option<Telefono>>,
    pub direccion: Option<Option<Direccion>>,
    pub tipo: Option<TipoPartner>,
}

/// The validated data of an integration to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NuevaIntegracion {
    pub tipo: TipoIntegracion,
    pub nombre: Nombre,
    pub descripcion: Option<Descripcion>,
    /// May hold secrets: stored, never shown.
    pub configuracion: Map<String, Value>,
}

/// A technical integration of a partner. Only its partner changes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Integracion {
    pub id: Uuid,
    pub partner_id: Uuid,
    pub tipo: TipoIntegracion,
    pub nombre: Nombre,
    pub descripcion: Option<Descripcion>,
    pub configuracion: Map<String, Value>,
    pub activa: bool,
    pub fecha_creacion: DateTime<Utc>,
    pub fecha_revocacion: Option<DateTime<Utc>>,
    pub motivo_revocacion: Option<Motivo>,
}

/// Everything a partner is, as stored. Built by [`Partner::register`] or loaded by a repository;
/// changed only through [`Partner`]'s commands.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerState {
    pub id: Uuid,
    pub nombre: Nombre,
    pub email: Email,
    pub telefono: Option<Telefono>,
    pub direccion: Option<Direccion>,
    pub tipo: TipoPartner,
    pub estado: EstadoPartner,
    pub estado_kyc: EstadoKyc,
    pub documentos_kyc: Option<Map<String, Value>>,
    /// The saga's temporary id when the partner was created by a `CreatePartner` command.
    pub onboarding_id: Option<Uuid>,
    pub fecha_creacion: DateTime<Utc>,
    pub fecha_actualizacion: DateTime<Utc>,
    pub integraciones: Vec<Integracion>,
}

/// What happened to a partner, in the terms the integration events need.
#[derive(Debug, Clone, PartialEq)]
pub enum PartnerEvent {
    Creado {
        partner_id: Uuid,
        nombre: String,
        tipo: TipoPartner,
        email: String,
        onboarding_id: Option<Uuid>,
    },
    Actualizado {
        partner_id: Uuid,
        nombre: String,
        tipo: TipoPartner,
    },
    Eliminado {
        partner_id: Uuid,
    },
    KycVerificado {
        partner_id: Uuid,
        anterior: EstadoKyc,
        nuevo: EstadoKyc,
        observaciones: Option<String>,
    },
    IntegracionCreada {
        partner_id: Uuid,
        integracion_id: Uuid,
        tipo: TipoIntegracion,
        nombre: String,
    },
    IntegracionRevocada {
        partner_id: Uuid,
        integracion_id: Uuid,
        motivo: Option<String>,
    },
    Desactivado {
        partner_id: Uuid,
        motivo: Option<String>,
    },
}

/// The aggregate root.
#[derive(Debug, Clone, PartialEq)]
pub struct Partner {
    state: PartnerState,
}

/// Why integrations are revoked when their partner is deleted.
pub const MOTIVO_PARTNER_ELIMINADO: &str = "partner eliminado";

impl Partner {
    /// Registers a new partner: `ACTIVO`, KYC `PENDIENTE`, no integrations.
    pub fn register(
        id: Uuid,
        datos: NuevoPartner,
        onboarding_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> (Partner, PartnerEvent) {
        let partner = Partner {
            state: PartnerState {
                id,
                nombre: datos.nombre,
                email: datos.email,
                telefono: datos.telefono,
                direccion: datos.direccion,
                tipo: datos.tipo,
                estado: EstadoPartner::Activo,
                estado_kyc: EstadoKyc::Pendiente,
                documentos_kyc: None,
                onboarding_id,
                fecha_creacion: now,
                fecha_actualizacion: now,
                integraciones: Vec::new(),
            },
        };
        let event = PartnerEvent::Creado {
            partner_id: id,
            nombre: partner.state.nombre.as_str().to_owned(),
            tipo: partner.state.tipo,
            email: partner.state.email.as_str().to_owned(),
            onboarding_id,
        };
        (partner, event)
    }

    /// Rebuilds a partner loaded from storage.
    pub fn restore(state: PartnerState) -> Partner {
        Partner { state }
    }

    pub fn state(&self) -> &PartnerState {
        &self.state
    }

    pub fn id(&self) -> Uuid {
        self.state.id
    }

    pub fn is_deleted(&self) -> bool {
        self.state.estado == EstadoPartner::Eliminado
    }

    fn ensure_not_deleted(&self) -> Result<(), DomainError> {
        if self.is_deleted() {
            Err(DomainError::PartnerEliminado)
        } else {
            Ok(())
        }
    }

    /// Applies a partial update. Returns no event when nothing actually changed, so a repeated
    /// PUT is a no-op.
    pub fn update(
        &mut self,
        cambios: CambiosPartner,
        now: DateTime<Utc>,
    ) -> Result<Option<PartnerEvent>, DomainError> {
        self.ensure_not_deleted()?;
        let before = self.state.clone();
        if let Some(nombre) = cambios.nombre {
            self.state.nombre = nombre;
        }
        if let Some(telefono) = cambios.telefono {
            self.state.telefono = telefono;
        }
        if let Some(direccion) = cambios.direccion {
            self.state.direccion = direccion;
        }
        if let Some(tipo) = cambios.tipo {
            self.state.tipo = tipo;
        }
        if self.state == before {
            return Ok(None);
        }
        self.state.fecha_actualizacion = now;
        Ok(Some(PartnerEvent::Actualizado {
            partner_id: self.state.id,
            nombre: self.state.nombre.as_str().to_owned(),
            tipo: self.state.tipo,
        }))
    }

    /// Soft-deletes the partner and revokes every active integration.
    pub fn delete(&mut self, now: DateTime<Utc>) -> Result<Vec<PartnerEvent>, DomainError> {
        if self.is_deleted() {
            return Err(DomainError::PartnerYaEliminado);
        }
        let partner_id = self.state.id;
        let mut events = Vec::new();
        for integracion in self.state.integraciones.iter_mut().filter(|i| i.activa) {
            integracion.activa = false;
            integracion.fecha_revocacion = Some(now);
            integracion.motivo_revocacion = Some(Motivo::trusted(MOTIVO_PARTNER_ELIMINADO));
            events.push(PartnerEvent::IntegracionRevocada {
                partner_id,
                integracion_id: integracion.id,
                motivo: Some(MOTIVO_PARTNER_ELIMINADO.to_owned()),
            });
        }
        self.state.estado = EstadoPartner::Eliminado;
        self.state.fecha_actualizacion = now;
        events.insert(0, PartnerEvent::Eliminado { partner_id });
        Ok(events)
    }

    /// Records a KYC decision. `documentos` replaces the stored documents when given.
    pub fn verify_kyc(
        &mut self,
        estado: EstadoKyc,
        documentos: Option<Map<String, Value>>,
        comentarios: Option<Comentarios>,
        now: DateTime<Utc>,
    ) -> Result<PartnerEvent, DomainError> {
        self.ensure_not_deleted()?;
        let anterior = self.state.estado_kyc;
        self.state.estado_kyc = estado;
        if let Some(documentos) = documentos {
            self.state.documentos_kyc = Some(documentos);
        }
        self.state.fecha_actualizacion = now;
        Ok(PartnerEvent::KycVerificado {
            partner_id: self.state.id,
            anterior,
            nuevo: estado,
            observaciones: comentarios.map(|c| c.as_str().to_owned()),
        })
    }

    /// Adds an active integration with id `id`.
    pub fn add_integracion(
        &mut self,
        id: Uuid,
        datos: NuevaIntegracion,
        now: DateTime<Utc>,
    ) -> Result<PartnerEvent, DomainError> {
        self.ensure_not_deleted()?;
        let event = PartnerEvent::IntegracionCreada {
            partner_id: self.state.id,
            integracion_id: id,
            tipo: datos.tipo,
            nombre: datos.nombre.as_str().to_owned(),
        };
        self.state.integraciones.push(Integracion {
            id,
            partner_id: self.state.id,
            tipo: datos.tipo,
            nombre: datos.nombre,
            descripcion: datos.descripcion,
            configuracion: datos.configuracion,
            activa: true,
            fecha_creacion: now,
            fecha_revocacion: None,
            motivo_revocacion: None,
        });
        Ok(event)
    }

    /// Revokes one active integration. A deleted partner's integrations are all revoked
    /// already, so revoking one of them is `IntegracionYaRevocada`.
    pub fn revoke_integracion(
        &mut self,
        integracion_id: Uuid,
        motivo: Option<Motivo>,
        now: DateTime<Utc>,
    ) -> Result<PartnerEvent, DomainError> {
        let partner_id = self.state.id;
        let integracion = self
            .state
            .integraciones
            .iter_mut()
            .find(|i| i.id == integracion_id)
            .ok_or(DomainError::IntegracionNoEncontrada)?;
        if !integracion.activa {
            return Err(DomainError::IntegracionYaRevocada);
        }
        integracion.activa = false;
        integracion.fecha_revocacion = Some(now);
        let event = PartnerEvent::IntegracionRevocada {
            partner_id,
            integracion_id,
            motivo: motivo.as_ref().map(|m| m.as_str().to_owned()),
        };
        integracion.motivo_revocacion = motivo;
        Ok(event)
    }

    /// The saga's compensation: the partner becomes `INACTIVO` unless it is deleted (which
    /// stays final). Always answers with `Desactivado` so the saga hears back even when the
    /// partner was inactive already.
    pub fn deactivate(&mut self, motivo: Option<Motivo>, now: DateTime<Utc>) -> PartnerEvent {
        if !self.is_deleted() && self.state.estado != EstadoPartner::Inactivo {
            self.state.estado = EstadoPartner::Inactivo;
            self.state.fecha_actualizacion = now;
        }
        PartnerEvent::Desactivado {
            partner_id: self.state.id,
            motivo: motivo.map(|m| m.as_str().to_owned()),
        }
    }

    pub fn integracion(&self, integracion_id: Uuid) -> Option<&Integracion> {
        self.state
            .integraciones
            .iter()
            .find(|i| i.id == integracion_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn given_a_partner() -> Partner {
        let datos = NuevoPartner {
            nombre: Nombre::parse("Ana").unwrap(),
            email: Email::parse("ana@example.com").unwrap(),
            telefono: Telefono::parse(Some("555")).unwrap(),
            direccion: None,
            tipo: TipoPartner::Influencer,
        };
        Partner::register(Uuid::now_v7(), datos, None, now()).0
    }

    fn nueva_integracion() -> NuevaIntegracion {
        NuevaIntegracion {
            tipo: TipoIntegracion::Api,
            nombre: Nombre::parse("tienda").unwrap(),
            descripcion: None,
            configuracion: Map::new(),
        }
    }

    #[test]
    fn a_registered_partner_is_active_with_kyc_pending() {
        let partner = given_a_partner();
        assert_eq!(partner.state().estado, EstadoPartner::Activo);
        assert_eq!(partner.state().estado_kyc, EstadoKyc::Pendiente);
    }

    #[test]
    fn an_update_that_changes_nothing_emits_nothing() {
        let mut partner = given_a_partner();
        let cambios = CambiosPartner {
            nombre: Some(Nombre::parse("Ana").unwrap()),
            ..CambiosPartner::default()
        };
        assert_eq!(partner.update(cambios, now()).unwrap(), None);
    }

    #[test]
    fn an_update_can_clear_the_telefono() {
        let mut partner = given_a_partner();
        let cambios = CambiosPartner {
            telefono: Some(None),
            ..CambiosPartner::default()
        };
        let event = partner.update(cambios, now()).unwrap();
        assert!(matches!(event, Some(PartnerEvent::Actualizado { .. })));
        assert_eq!(partner.state().telefono, None);
    }

    #[test]
    fn deleting_revokes_every_active_integration() {
        let mut partner = given_a_partner();
        let first = Uuid::now_v7();
        partner
            .add_integracion(first, nueva_integracion(), now())
            .unwrap();
        partner
            .add_integracion(Uuid::now_v7(), nueva_integracion(), now())
            .unwrap();
        partner.revoke_integracion(first, None, now()).unwrap();
        let events = partner.delete(now()).unwrap();
        assert_eq!(events.len(), 2, "deleted + one revocation: {events:?}");
        assert!(partner.state().integraciones.iter().all(|i| !i.activa));
        assert_eq!(partner.state().estado, EstadoPartner::Eliminado);
    }

    #[test]
    fn a_deleted_partner_refuses_every_change() {
        let mut partner = given_a_partner();
        partner.delete(now()).unwrap();
        assert_eq!(partner.delete(now()), Err(DomainError::PartnerYaEliminado));
        assert_eq!(
            partner.update(CambiosPartner::default(), now()),
            Err(DomainError::PartnerEliminado)
        );
        assert_eq!(
            partner.verify_kyc(EstadoKyc::Aprobado, None, None, now()),
            Err(DomainError::PartnerEliminado)
        );
        assert_eq!(
            partner.add_integracion(Uuid::now_v7(), nueva_integracion(), now()),
            Err(DomainError::PartnerEliminado)
        );
    }

    #[test]
    fn kyc_verification_reports_the_previous_and_new_state() {
        let mut partner = given_a_partner();
        let event = partner
            .verify_kyc(
                EstadoKyc::Aprobado,
                None,
                Comentarios::parse(Some("ok")).unwrap(),
                now(),
            )
            .unwrap();
        assert_eq!(
            event,
            PartnerEvent::KycVerificado {
                partner_id: partner.id(),
                anterior: EstadoKyc::Pendiente,
                nuevo: EstadoKyc::Aprobado,
                observaciones: Some("ok".into()),
            }
        );
    }

    #[test]
    fn revoking_twice_is_refused_and_an_unknown_integration_is_not_found() {
        let mut partner = given_a_partner();
        let id = Uuid::now_v7();
        partner
            .add_integracion(id, nueva_integracion(), now())
            .unwrap();
        partner.revoke_integracion(id, None, now()).unwrap();
        assert_eq!(
            partner.revoke_integracion(id, None, now()),
            Err(DomainError::IntegracionYaRevocada)
        );
        assert_eq!(
            partner.revoke_integracion(Uuid::now_v7(), None, now()),
            Err(DomainError::IntegracionNoEncontrada)
        );
    }

    #[test]
    fn deactivation_keeps_a_deleted_partner_deleted_and_always_answers() {
        let mut partner = given_a_partner();
        partner.delete(now()).unwrap();
        let event = partner.deactivate(None, now());
        assert!(matches!(event, PartnerEvent::Desactivado { .. }));
        assert_eq!(partner.state().estado, EstadoPartner::Eliminado);

        let mut active = given_a_partner();
        active.deactivate(None, now());
        active.deactivate(None, now());
        assert_eq!(active.state().estado, EstadoPartner::Inactivo);
    }
}
