//! The BFF's reads, aggregated from the services behind it: an onboarding's progress (saga
//! log + contract + compliance), the partner list (proxied) and one partner with everything
//! known about it. Upstream JSON is read leniently as `serde_json::Value`: fields this BFF does
//! not know are kept or ignored, never a reason to fail.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::application::{AppError, Service};
use crate::domain::{entrada_compliance, EntradaSaga, ResultadoCompliance};
use crate::storage::{self as repo, OnboardingRecord};
use crate::upstream::{Servicio, UpstreamError};

/// An onboarding's state as the client sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EstadoOnboarding {
    pub onboarding_id: Uuid,
    pub saga_id: Uuid,
    /// `INICIADA`, `COMPLETADA`, `FALLIDA` or `PENDIENTE_REVISION`.
    #[schema(example = "INICIADA")]
    pub estado: String,
    /// Why a saga failed (e.g. `TIMEOUT`, `EMAIL_EXISTENTE`).
    pub causa: Option<String>,
    /// The real partner id, once integraciones created it.
    pub partner_id: Option<Uuid>,
    /// The onboarding's contract as alianzas shows it.
    #[schema(value_type = Option<Object>)]
    pub contrato: Option<Value>,
    pub compliance: ComplianceOnboarding,
    /// The saga log's entries, oldest first.
    pub timeline: Vec<EventoTimeline>,
}

/// Compliance's decision on the onboarding's contract and the financial account it opened.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ComplianceOnboarding {
    /// `APROBADO`, `RECHAZADO`, or null while compliance has not decided.
    #[schema(example = "APROBADO")]
    pub resultado: Option<String>,
    pub validacion_fallida: Option<String>,
    pub causa_rechazo: Option<String>,
    /// The partner's financial account, once it exists.
    #[schema(value_type = Option<Object>)]
    pub cuenta: Option<Value>,
}

/// One saga log entry.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventoTimeline {
    #[schema(example = "PartnerCreado")]
    pub tipo_evento: String,
    /// `RECIBIDO`, `PROCESADO` or `ERROR`.
    pub estado_procesamiento: Option<String>,
    pub recibido_en: Option<String>,
    pub procesado_en: Option<String>,
    #[schema(value_type = Object)]
    pub evento_data: Value,
}

fn text(value: &Value, campo: &str) -> Option<String> {
    value.get(campo).and_then(Value::as_str).map(str::to_owned)
}

fn uuid(value: &Value, campo: &str) -> Option<Uuid> {
    value
        .get(campo)
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok())
}

fn timeline(saga: &Value) -> Vec<EventoTimeline> {
    saga.get("eventos")
        .and_then(Value::as_array)
        .map(|eventos| {
            eventos
                .iter()
                .filter(|evento| evento.is_object())
                .map(|evento| EventoTimeline {
                    tipo_evento: text(evento, "tipo_evento").unwrap_or_default(),
                    estado_procesamiento: text(evento, "estado_procesamiento"),
                    recibido_en: text(evento, "recibido_en"),
                    procesado_en: text(evento, "procesado_en"),
                    evento_data: evento.get("evento_data").cloned().unwrap_or(Value::Null),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The id a saga names directly, or else the one the first entry of type `tipo` carries.
fn id_from_saga(saga: &Value, eventos: &[EventoTimeline], campo: &str, tipo: &str) -> Option<Uuid> {
    uuid(saga, campo).or_else(|| {
        eventos
            .iter()
            .filter(|evento| evento.tipo_evento == tipo)
            .find_map(|evento| uuid(&evento.evento_data, campo))
    })
}

/// The contract with `contrato_id` among `contratos`, or the first one.
fn pick_contrato(contratos: Vec<Value>, contrato_id: Option<Uuid>) -> Option<Value> {
    let matches = |contrato: &Value| {
        contrato_id.is_some_and(|wanted| {
            uuid(contrato, "id") == Some(wanted) || uuid(contrato, "contrato_id") == Some(wanted)
        })
    };
    let position = contratos.iter().position(matches).unwrap_or(0);
    contratos.into_iter().nth(position)
}

fn contratos_path(partner_id: Uuid) -> String {
    format!("/contratos?partner_id={partner_id}&limit=500")
}

fn cuenta_path(partner_id: Uuid) -> String {
    format!("/compliance/cuentas/{partner_id}")
}

/// The first error of several concurrent calls, in the order given.
fn first_error<A, B>(
    a: Result<A, UpstreamError>,
    b: Result<B, UpstreamError>,
) -> Result<(A, B), UpstreamError> {
    Ok((a?, b?))
}

impl Service {
    async fn onboarding(&self, onboarding_id: Uuid) -> Result<OnboardingRecord, AppError> {
        repo::find_onboarding(self.db(), onboarding_id)
            .await?
            .ok_or(AppError::OnboardingNotFound)
    }

    /// The onboarding's progress. Before the saga log has recorded it, it is `INICIADA` with
    /// an empty timeline. Any upstream failure fails the whole answer (502/504): a partial
    /// status would read as a wrong one.
    pub async fn onboarding_status(
        &self,
        onboarding_id: Uuid,
    ) -> Result<EstadoOnboarding, AppError> {
        let onboarding = self.onboarding(onboarding_id).await?;
        let upstream = self.upstream();
        let saga = upstream
            .optional(
                Servicio::Alianzas,
                &format!("/sagas/{}", onboarding.saga_id),
            )
            .await?;
        let mut estado = EstadoOnboarding {
            onboarding_id,
            saga_id: onboarding.saga_id,
            estado: "INICIADA".to_owned(),
            causa: None,
            partner_id: None,
            contrato: None,
            compliance: ComplianceOnboarding {
                resultado: None,
                validacion_fallida: None,
                causa_rechazo: None,
                cuenta: None,
            },
            timeline: Vec::new(),
        };
        let Some(saga) = saga else {
            return Ok(estado);
        };
        estado.timeline = timeline(&saga);
        if let Some(saga_estado) = text(&saga, "estado") {
            estado.estado = saga_estado;
        }
        estado.causa = text(&saga, "causa");
        estado.partner_id = id_from_saga(&saga, &estado.timeline, "partner_id", "PartnerCreado");
        let contrato_id = id_from_saga(&saga, &estado.timeline, "contrato_id", "ContratoCreado");
        let resultado = entrada_compliance(estado.timeline.iter().map(|evento| EntradaSaga {
            tipo_evento: &evento.tipo_evento,
            estado_procesamiento: evento.estado_procesamiento.as_deref(),
            evento_data: &evento.evento_data,
        }));
        if let Some(resultado) = resultado {
            estado.compliance.resultado = Some(resultado.as_str().to_owned());
            if let ResultadoCompliance::Rechazado {
                validacion_fallida,
                causa_rechazo,
            } = resultado
            {
                estado.compliance.validacion_fallida = validacion_fallida;
                estado.compliance.causa_rechazo = causa_rechazo;
            }
        }
        if let Some(partner_id) = estado.partner_id {
            // An account exists only once the contract was approved (by compliance or by a
            // review), so compliance is asked only then: a saga stalled before compliance
            // decided still reports its state while compliance is down.
            let approved = estado.compliance.resultado.as_deref() == Some("APROBADO")
                || estado.estado == "COMPLETADA";
            let (contratos_path, cuenta_path) =
                (contratos_path(partner_id), cuenta_path(partner_id));
            let (contratos, cuenta) =
                tokio::join!(upstream.items(Servicio::Alianzas, &contratos_path), async {
                    if approved {
                        upstream.optional(Servicio::Compliance, &cuenta_path).await
                    } else {
                        Ok(None)
                    }
                },);
            let (contratos, cuenta) = first_error(contratos, cuenta)?;
            estado.contrato = pick_contrato(contratos, contrato_id);
            estado.compliance.cuenta = cuenta;
        }
        Ok(estado)
    }

    /// A page of partners from integraciones, with the client's query string passed on as
    /// it came; integraciones' own 4xx (e.g. a bad filter) is passed back.
    pub async fn list_partners(&self, raw_query: Option<&str>) -> Result<Value, AppError> {
        let path = match raw_query.filter(|query| !query.is_empty()) {
            Some(query) => format!("/api/v1/partners?{query}"),
            None => "/api/v1/partners".to_owned(),
        };
        self.upstream()
            .get(Servicio::Integraciones, &path)
            .await?
            .map_err(|problem| AppError::Rejected(Box::new(problem)))
    }

    /// One partner (integraciones) with its `contratos` (alianzas), `cuenta_financiera`
    /// (compliance), `saga` (the saga log) and, when campanias is configured, `programas`,
    /// fetched concurrently. A partner integraciones does not know is 404 whatever the other
    /// calls answered.
    pub async fn partner_detail(&self, partner_id: Uuid) -> Result<Value, AppError> {
        let upstream = self.upstream();
        let partner_path = format!("/api/v1/partners/{partner_id}");
        let sagas_path = format!("/sagas?partner_id={partner_id}");
        let (contratos_path, cuenta_path) = (contratos_path(partner_id), cuenta_path(partner_id));
        let programas_path = format!("/programas?afiliado_id={partner_id}&limit=500");
        let (partner, contratos, cuenta, sagas, programas) = tokio::join!(
            upstream.get(Servicio::Integraciones, &partner_path),
            upstream.items(Servicio::Alianzas, &contratos_path),
            upstream.optional(Servicio::Compliance, &cuenta_path),
            upstream.items(Servicio::Alianzas, &sagas_path),
            async {
                if upstream.has_campanias() {
                    upstream
                        .items(Servicio::Campanias, &programas_path)
                        .await
                        .map(Some)
                } else {
                    Ok(None)
                }
            },
        );
        let partner = match partner? {
            Ok(partner) => partner,
            Err(problem) if problem.status == 404 => return Err(AppError::PartnerNotFound),
            Err(problem) => return Err(AppError::Rejected(Box::new(problem))),
        };
        let Value::Object(mut partner) = partner else {
            return Err(UpstreamError::Failed {
                servicio: Servicio::Integraciones,
                cause: format!("GET {partner_path} answered something that is not an object"),
            }
            .into());
        };
        let (contratos, (cuenta, (sagas, programas))) = first_error(
            contratos,
            first_error(cuenta, first_error(sagas, programas)),
        )?;
        if let Some(programas) = programas {
            partner.insert("programas".to_owned(), Value::Array(programas));
        }
        partner.insert("contratos".to_owned(), Value::Array(contratos));
        partner.insert(
            "cuenta_financiera".to_owned(),
            cuenta.unwrap_or(Value::Null),
        );
        partner.insert(
            "saga".to_owned(),
            sagas.into_iter().next().unwrap_or(Value::Null),
        );
        Ok(Value::Object(partner))
    }
}

/// The shape `GET /api/v1/partners/{partner_id}` answers, for the OpenAPI document: every
/// field integraciones shows for the partner (only some are listed here), plus the
/// aggregated `contratos`, `cuenta_financiera` and `saga`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerAgregado {
    pub id: Uuid,
    pub nombre: String,
    pub email: String,
    #[schema(example = "AFILIADO")]
    pub tipo: String,
    #[schema(example = "ACTIVO")]
    pub estado: String,
    /// The partner's contracts (alianzas).
    #[schema(value_type = Vec<Object>)]
    pub contratos: Vec<Value>,
    /// The partner's financial account (compliance), null before it exists.
    #[schema(value_type = Option<Object>)]
    pub cuenta_financiera: Option<Value>,
    /// The partner's onboarding saga (the saga log), null for a partner created directly.
    #[schema(value_type = Option<Object>)]
    pub saga: Option<Value>,
    /// The programs the partner is affiliated to (campanias), when campanias is deployed.
    #[schema(value_type = Option<Vec<Object>>)]
    pub programas: Option<Vec<Value>>,
}
