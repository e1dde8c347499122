//! What an e-mail says: the notification composed for a saga outcome or a program's change.
//! Pure text assembly; storing and delivering it is the `notificaciones` module's job.

use super::values::Prioridad;

/// A composed e-mail, not yet stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mensaje {
    pub destinatario: String,
    pub asunto: String,
    pub contenido: String,
    pub prioridad: Prioridad,
}

/// A saga outcome as the notifications need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultadoOnboarding<'a> {
    pub estado: &'a str,
    pub nombre: Option<&'a str>,
    pub email: Option<&'a str>,
    pub causa: Option<&'a str>,
    pub saga_id: uuid::Uuid,
    pub partner_id: Option<uuid::Uuid>,
}

/// The notification for a saga outcome: `COMPLETADA` tells the partner (when its address is
/// known), `FALLIDA` tells the partner or, without an address, the operator, and
/// `PENDIENTE_REVISION` asks the operator to review. Any other state tells no one.
pub fn por_onboarding(evento: &ResultadoOnboarding<'_>, operador: &str) -> Option<Mensaje> {
    let nombre = evento.nombre.unwrap_or("partner");
    let partner = evento
        .partner_id
        .map(|id| id.to_string())
        .unwrap_or_else(|| "(sin asignar)".to_owned());
    let email = evento.email.map(str::trim).filter(|e| !e.is_empty());
    match evento.estado {
        "COMPLETADA" => Some(Mensaje {
            destinatario: email?.to_owned(),
            asunto: "Bienvenido a Alpes Partners: su registro está completo".to_owned(),
            contenido: format!(
                "Hola {nombre},\n\nSu registro como partner de Alpes Partners ha finalizado \
                 y su contrato está activo. Ya puede participar en los programas de las marcas.\n\n\
                 Partner: {partner}\nReferencia: {}\n",
                evento.saga_id
            ),
            prioridad: Prioridad::Normal,
        }),
        "FALLIDA" => {
            let causa = evento.causa.unwrap_or("sin causa indicada");
            Some(match email {
                Some(email) => Mensaje {
                    destinatario: email.to_owned(),
                    asunto: "Su registro en Alpes Partners no pudo completarse".to_owned(),
                    contenido: format!(
                        "Hola {nombre},\n\nNo fue posible completar su registro como partner \
                         (causa: {causa}). Puede contactarnos citando la referencia {}.\n",
                        evento.saga_id
                    ),
                    prioridad: Prioridad::Alta,
                },
                None => Mensaje {
                    destinatario: operador.to_owned(),
                    asunto: format!("Onboarding fallido: {nombre}"),
                    contenido: format!(
                        "El onboarding {} falló (causa: {causa}) y el partner no tiene una \
                         dirección conocida.\nPartner: {partner}\n",
                        evento.saga_id
                    ),
                    prioridad: Prioridad::Alta,
                },
            })
        }
        "PENDIENTE_REVISION" => Some(Mensaje {
            destinatario: operador.to_owned(),
            asunto: format!("Revisión pendiente: contrato de {nombre}"),
            contenido: format!(
                "Compliance rechazó el contrato del partner {nombre} ({partner}); causa: {}.\n\
                 Resuelva la revisión con POST /sagas/{}/revision.\n",
                evento.causa.unwrap_or("sin causa indicada"),
                evento.saga_id
            ),
            prioridad: Prioridad::Alta,
        }),
        _ => None,
    }
}

/// What happened to a program, for the operator's notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CambioPrograma {
    Activado,
    Suspendido,
    Cerrado,
}

/// The operator's notification of a program's activation, suspension or closing.
pub fn por_programa(
    cambio: CambioPrograma,
    programa_id: uuid::Uuid,
    nombre: &str,
    operador: &str,
) -> Mensaje {
    let (verbo, prioridad) = match cambio {
        CambioPrograma::Activado => ("activado", Prioridad::Normal),
        CambioPrograma::Suspendido => ("suspendido", Prioridad::Alta),
        CambioPrograma::Cerrado => ("cerrado", Prioridad::Normal),
    };
    Mensaje {
        destinatario: operador.to_owned(),
        asunto: format!("Programa {verbo}: {nombre}"),
        contenido: format!("El programa {nombre} ({programa_id}) ha sido {verbo}.\n"),
        prioridad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPERADOR: &str = "ops@example.com";

    fn resultado<'a>(estado: &'a str, email: Option<&'a str>) -> ResultadoOnboarding<'a> {
        ResultadoOnboarding {
            estado,
            nombre: Some("Ana"),
            email,
            causa: Some("TIMEOUT"),
            saga_id: uuid::Uuid::nil(),
            partner_id: Some(uuid::Uuid::nil()),
        }
    }

    #[test]
    fn a_completed_onboarding_tells_the_partner() {
        let mensaje =
            por_onboarding(&resultado("COMPLETADA", Some("ana@x.com")), OPERADOR).unwrap();
        assert_eq!(mensaje.destinatario, "ana@x.com");
        assert_eq!(mensaje.prioridad, Prioridad::Normal);
        assert!(mensaje.contenido.contains("Hola Ana"));
    }

    #[test]
    fn a_completed_onboarding_without_an_address_tells_no_one() {
        assert_eq!(
            por_onboarding(&resultado("COMPLETADA", None), OPERADOR),
            None
        );
    }

    #[test]
    fn a_failed_onboarding_tells_the_partner_or_else_the_operator() {
        let partner = por_onboarding(&resultado("FALLIDA", Some("ana@x.com")), OPERADOR).unwrap();
        assert_eq!(partner.destinatario, "ana@x.com");
        assert_eq!(partner.prioridad, Prioridad::Alta);
        assert!(partner.contenido.contains("TIMEOUT"));
        let operador = por_onboarding(&resultado("FALLIDA", None), OPERADOR).unwrap();
        assert_eq!(operador.destinatario, OPERADOR);
    }

    #[test]
    fn a_review_asks_the_operator() {
        let mensaje = por_onboarding(
            &resultado("PENDIENTE_REVISION", Some("ana@x.com")),
            OPERADOR,
        )
        .unwrap();
        assert_eq!(mensaje.destinatario, OPERADOR);
        assert!(mensaje.contenido.contains("/revision"));
    }

    #[test]
    fn other_saga_states_tell_no_one() {
        assert_eq!(
            por_onboarding(&resultado("INICIADA", Some("a@x.com")), OPERADOR),
            None
        );
    }

    #[test]
    fn a_program_change_tells_the_operator() {
        let mensaje = por_programa(
            CambioPrograma::Suspendido,
            uuid::Uuid::nil(),
            "Verano",
            OPERADOR,
        );
        assert_eq!(mensaje.destinatario, OPERADOR);
        assert_eq!(mensaje.asunto, "Programa suspendido: Verano");
        assert_eq!(mensaje.prioridad, Prioridad::Alta);
    }
}
