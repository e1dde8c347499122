//! The partner context's domain: value types, the Partner aggregate with its integrations, and
//! the domain events. Pure: no I/O, no async, no HTTP or SQL types.

mod enums;
mod partner;
mod values;

pub use enums::{EstadoKyc, EstadoPartner, TipoIntegracion, TipoPartner};
pub use partner::{
    CambiosPartner, DomainError, Integracion, NuevaIntegracion, NuevoPartner, Partner,
    PartnerEvent, PartnerState, MOTIVO_PARTNER_ELIMINADO,
};
pub use values::{
    Comentarios, Descripcion, Direccion, Email, Motivo, Nombre, Telefono, ValueError,
};

/// One invalid input field, named as on the wire (the kernel's, so the HTTP edge renders every
/// context's issues alike).
pub use kernel::FieldIssue;

/// A partner's raw input as it arrives (HTTP body or `CreatePartner` command).
#[derive(Debug, Clone, Default)]
pub struct RawPartner<'a> {
    pub nombre: Option<&'a str>,
    pub email: Option<&'a str>,
    pub telefono: Option<&'a str>,
    pub direccion: Option<&'a str>,
    pub tipo: Option<&'a str>,
}

impl NuevoPartner {
    /// Parses every field and reports every invalid one, not just the first.
    pub fn parse(raw: RawPartner<'_>) -> Result<NuevoPartner, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        let mut check = |campo: &'static str, error: ValueError| {
            issues.push(FieldIssue::new(campo, error.0));
        };
        let nombre = Nombre::parse(raw.nombre.unwrap_or_default()).map_err(|e| check("nombre", e));
        let email = Email::parse(raw.email.unwrap_or_default()).map_err(|e| check("email", e));
        let telefono = Telefono::parse(raw.telefono).map_err(|e| check("telefono", e));
        let direccion = Direccion::parse(raw.direccion).map_err(|e| check("direccion", e));
        let tipo = match raw.tipo.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(TipoPartner::Afiliado),
            Some(tipo) => TipoPartner::parse(tipo).map_err(|e| check("tipo", e)),
        };
        match (nombre, email, telefono, direccion, tipo) {
            (Ok(nombre), Ok(email), Ok(telefono), Ok(direccion), Ok(tipo)) => Ok(NuevoPartner {
                nombre,
                email,
                telefono,
                direccion,
                tipo,
            }),
            _ => Err(issues),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invalid_field_is_reported() {
        let issues = NuevoPartner::parse(RawPartner {
            nombre: Some(""),
            tipo: Some("X"),
            ..RawPartner::default()
        })
        .unwrap_err();
        let campos: Vec<_> = issues.iter().map(|i| i.campo).collect();
        assert_eq!(campos, ["nombre", "email", "tipo"]);
    }

    #[test]
    fn the_tipo_defaults_to_afiliado() {
        let datos = NuevoPartner::parse(RawPartner {
            nombre: Some("Ana"),
            email: Some("ana@example.com"),
            ..RawPartner::default()
        })
        .unwrap();
        assert_eq!(datos.tipo, TipoPartner::Afiliado);
    }
}
