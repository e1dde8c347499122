//! An onboarding the BFF started (its temporary id and the saga that tracks it), and how the
//! saga log's entries read as compliance's outcome for the onboarding's contract.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::SolicitudPartner;

/// An onboarding: the client tracks `onboarding_id` until the real partner id is known; the
/// saga log tracks `saga_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Onboarding {
    pub onboarding_id: Uuid,
    pub saga_id: Uuid,
    pub solicitud: SolicitudPartner,
    pub creada_en: DateTime<Utc>,
}

impl Onboarding {
    pub fn iniciar(
        onboarding_id: Uuid,
        saga_id: Uuid,
        solicitud: SolicitudPartner,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            onboarding_id,
            saga_id,
            solicitud,
            creada_en: now,
        }
    }
}

/// One entry of the saga log, as far as the outcome needs it.
#[derive(Debug, Clone, Copy)]
pub struct EntradaSaga<'a> {
    pub tipo_evento: &'a str,
    pub estado_procesamiento: Option<&'a str>,
    pub evento_data: &'a Value,
}

/// What compliance decided about the onboarding's contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultadoCompliance {
    Aprobado,
    Rechazado {
        validacion_fallida: Option<String>,
        causa_rechazo: Option<String>,
    },
}

impl ResultadoCompliance {
    pub fn as_str(&self) -> &'static str {
        match self {
            ResultadoCompliance::Aprobado => "APROBADO",
            ResultadoCompliance::Rechazado { .. } => "RECHAZADO",
        }
    }
}

/// Compliance's outcome from the saga log: its last `ContratoAprobado` or `ContratoRechazado`
/// entry that the saga accepted (an entry logged as `ERROR` changed nothing, so it does not
/// count). `None` while compliance has not answered.
pub fn entrada_compliance<'a>(
    entradas: impl IntoIterator<Item = EntradaSaga<'a>>,
) -> Option<ResultadoCompliance> {
    let text =
        |data: &Value, campo: &str| data.get(campo).and_then(Value::as_str).map(str::to_owned);
    entradas
        .into_iter()
        .filter(|entrada| entrada.estado_procesamiento != Some("ERROR"))
        .filter_map(|entrada| match entrada.tipo_evento {
            "ContratoAprobado" => Some(ResultadoCompliance::Aprobado),
            "ContratoRechazado" => Some(ResultadoCompliance::Rechazado {
                validacion_fallida: text(entrada.evento_data, "validacion_fallida"),
                causa_rechazo: text(entrada.evento_data, "causa_rechazo"),
            }),
            _ => None,
        })
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entrada<'a>(tipo: &'a str, estado: &'a str, data: &'a Value) -> EntradaSaga<'a> {
        EntradaSaga {
            tipo_evento: tipo,
            estado_procesamiento: Some(estado),
            evento_data: data,
        }
    }

    #[test]
    fn no_compliance_entry_means_no_outcome_yet() {
        let data = json!({});
        assert_eq!(
            entrada_compliance([entrada("CreatePartner", "PROCESADO", &data)]),
            None
        );
    }

    #[test]
    fn a_rejection_carries_its_failed_rule_and_cause() {
        let data = json!({"validacion_fallida": "MONTO_INVALIDO", "causa_rechazo": "too much"});
        let empty = json!({});
        assert_eq!(
            entrada_compliance([
                entrada("ContratoCreado", "PROCESADO", &empty),
                entrada("ContratoRechazado", "PROCESADO", &data),
                entrada("RevisionContrato", "PROCESADO", &empty),
            ]),
            Some(ResultadoCompliance::Rechazado {
                validacion_fallida: Some("MONTO_INVALIDO".into()),
                causa_rechazo: Some("too much".into()),
            })
        );
    }

    #[test]
    fn an_entry_the_saga_refused_does_not_count() {
        let data = json!({});
        assert_eq!(
            entrada_compliance([
                entrada("ContratoAprobado", "PROCESADO", &data),
                entrada("ContratoRechazado", "ERROR", &data),
            ]),
            Some(ResultadoCompliance::Aprobado)
        );
    }
}
