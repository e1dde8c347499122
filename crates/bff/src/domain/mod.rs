//! The BFF's domain: the onboarding form (parsed once, every bad field reported), the
//! onboarding it starts, and how a saga log's entries read as a compliance outcome. Pure: no
//! I/O, no async, no HTTP or SQL types.

mod onboarding;
mod values;

use serde_json::Value;

pub use onboarding::{entrada_compliance, EntradaSaga, Onboarding, ResultadoCompliance};
pub use values::{
    Direccion, Email, Nombre, Telefono, Terminos, TerminosError, TipoPartner, ValueError,
};

/// One invalid input field, named as on the wire (the kernel's, so the HTTP edge renders every
/// context's issues alike).
pub use kernel::FieldIssue;

/// The onboarding form as it arrives: each field raw JSON, so that a field of the wrong JSON
/// type is reported against its name like any other invalid value.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawSolicitud<'a> {
    pub nombre: Option<&'a Value>,
    pub email: Option<&'a Value>,
    pub telefono: Option<&'a Value>,
    pub direccion: Option<&'a Value>,
    pub tipo: Option<&'a Value>,
    pub terminos: Option<&'a Value>,
}

/// A valid onboarding request.
#[derive(Debug, Clone, PartialEq)]
pub struct SolicitudPartner {
    pub nombre: Nombre,
    pub email: Email,
    pub telefono: Option<Telefono>,
    pub direccion: Option<Direccion>,
    pub tipo: TipoPartner,
    pub terminos: Option<Terminos>,
}

/// A text field: absent or `null` is `None`; any JSON type but a string is refused.
fn text(raw: Option<&Value>) -> Result<Option<&str>, ValueError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ValueError("must be a string".to_owned())),
    }
}

impl SolicitudPartner {
    /// Parses every field and reports every invalid one, not just the first.
    pub fn parse(raw: RawSolicitud<'_>) -> Result<SolicitudPartner, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        let mut check = |campo: &'static str, error: ValueError| {
            issues.push(FieldIssue::new(campo, error.0));
        };
        let nombre = text(raw.nombre)
            .and_then(|nombre| Nombre::parse(nombre.unwrap_or_default()))
            .map_err(|e| check("nombre", e));
        let email = text(raw.email)
            .and_then(|email| Email::parse(email.unwrap_or_default()))
            .map_err(|e| check("email", e));
        let telefono = text(raw.telefono)
            .and_then(Telefono::parse)
            .map_err(|e| check("telefono", e));
        let direccion = text(raw.direccion)
            .and_then(Direccion::parse)
            .map_err(|e| check("direccion", e));
        let tipo = text(raw.tipo)
            .and_then(|tipo| match tipo.map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(TipoPartner::Afiliado),
                Some(tipo) => TipoPartner::parse(tipo),
            })
            .map_err(|e| check("tipo", e));
        let terminos = Terminos::parse(raw.terminos).map_err(|e| check(e.campo, e.error));
        match (nombre, email, telefono, direccion, tipo, terminos) {
            (Ok(nombre), Ok(email), Ok(telefono), Ok(direccion), Ok(tipo), Ok(terminos)) => {
                Ok(SolicitudPartner {
                    nombre,
                    email,
                    telefono,
                    direccion,
                    tipo,
                    terminos,
                })
            }
            _ => Err(issues),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_invalid_field_is_reported() {
        let nombre = json!("");
        let telefono = json!(5);
        let tipo = json!("X");
        let terminos = json!({"monto": "1.234"});
        let issues = SolicitudPartner::parse(RawSolicitud {
            nombre: Some(&nombre),
            telefono: Some(&telefono),
            tipo: Some(&tipo),
            terminos: Some(&terminos),
            ..RawSolicitud::default()
        })
        .unwrap_err();
        let campos: Vec<_> = issues.iter().map(|i| i.campo).collect();
        assert_eq!(
            campos,
            ["nombre", "email", "telefono", "tipo", "terminos.monto"]
        );
    }

    #[test]
    fn the_tipo_defaults_to_afiliado_and_blank_optionals_are_absent() {
        let nombre = json!(" Ana ");
        let email = json!("ana@example.com");
        let blank = json!("  ");
        let solicitud = SolicitudPartner::parse(RawSolicitud {
            nombre: Some(&nombre),
            email: Some(&email),
            telefono: Some(&blank),
            tipo: Some(&Value::Null),
            ..RawSolicitud::default()
        })
        .unwrap();
        assert_eq!(solicitud.tipo, TipoPartner::Afiliado);
        assert_eq!(solicitud.nombre.as_str(), "Ana");
        assert_eq!(solicitud.telefono, None);
        assert_eq!(solicitud.terminos, None);
    }
}
