//! Real HTTP stub servers on 127.0.0.1:0 that play integraciones, alianzas (with the saga log)
//! and compliance with canned JSON, plus servers that fail (500) or never answer, and a URL
//! with nothing listening.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use uuid::Uuid;

/// Serves `router` on a free local port; returns its base URL. The server lives as long as
/// the test's runtime.
pub async fn serve(router: Router) -> String {
    testkit::http::serve(router, std::future::pending()).await
}

/// A base URL where nothing listens: the port was free a moment ago and is released.
pub fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind probe");
    let address = listener.local_addr().expect("probe address");
    drop(listener);
    format!("http://{address}")
}

fn problem(status: StatusCode, codigo: &str) -> Response {
    let body = json!({
        "type": format!("urn:alpes:problema:{}", codigo.to_lowercase()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": format!("stub says {codigo}"),
        "codigo": codigo,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn page(items: Vec<Value>) -> Value {
    json!({"items": items.clone(), "total": items.len(), "next_cursor": null})
}

/// How far the canned saga went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaCanned {
    /// The saga log has not recorded it: `/sagas/{id}` is 404.
    Missing,
    Completada,
    PendienteRevision,
}

/// The world the stubs describe: one partner, its contract and (maybe) its account and saga.
#[derive(Debug, Clone)]
pub struct Canned {
    pub partner_id: Uuid,
    pub contrato_id: Uuid,
    pub saga: SagaCanned,
    pub cuenta: bool,
}

impl Canned {
    pub fn new(saga: SagaCanned, cuenta: bool) -> Arc<Self> {
        Arc::new(Self {
            partner_id: Uuid::now_v7(),
            contrato_id: Uuid::now_v7(),
            saga,
            cuenta,
        })
    }

    pub fn partner(&self) -> Value {
        json!({
            "id": self.partner_id,
            "nombre": "Ana",
            "email": "ana@example.com",
            "telefono": null,
            "direccion": null,
            "tipo": "INFLUENCER",
            "estado": "ACTIVO",
            "estado_kyc": "PENDIENTE",
            "documentos_kyc": null,
            "onboarding_id": null,
            "fecha_creacion": "2025-01-01T00:00:00.000000Z",
            "fecha_actualizacion": "2025-01-01T00:00:00.000000Z",
            "integraciones": [],
        })
    }

    pub fn contrato(&self) -> Value {
        let estado = match self.saga {
            SagaCanned::PendienteRevision => "en_revision",
            _ => "activo",
        };
        json!({
            "id": self.contrato_id,
            "partner_id": self.partner_id,
            "tipo": "CPA",
            "monto": "60000.00",
            "moneda": "USD",
            "estado": estado,
            "version": 2,
        })
    }

    /// Another contract of the same partner, listed first, that is not the onboarding's.
    pub fn otro_contrato(&self) -> Value {
        json!({"id": Uuid::nil(), "partner_id": self.partner_id, "tipo": "fijo", "estado": "cancelado"})
    }

    pub fn cuenta(&self) -> Value {
        json!({"partner_id": self.partner_id, "estado": "ACTIVE", "moneda": "USD"})
    }

    pub fn saga(&self, saga_id: &str) -> Option<Value> {
        let entrada = |tipo: &str, data: Value| {
            json!({
                "tipo_evento": tipo,
                "estado_procesamiento": "PROCESADO",
                "recibido_en": "2025-01-01T00:00:00Z",
                "procesado_en": "2025-01-01T00:00:01Z",
                "evento_data": data,
                "campo_desconocido": 1,
            })
        };
        let mut eventos = vec![
            entrada("CreatePartner", json!({"nombre": "Ana"})),
            entrada("PartnerCreado", json!({"partner_id": self.partner_id})),
            entrada(
                "ContratoCreado",
                json!({"contrato_id": self.contrato_id, "partner_id": self.partner_id}),
            ),
        ];
        let (estado, partner_id) = match self.saga {
            SagaCanned::Missing => return None,
            SagaCanned::Completada => {
                eventos.push(entrada(
                    "ContratoAprobado",
                    json!({"contrato_id": self.contrato_id, "validaciones_pasadas": ["MONTO"]}),
                ));
                // The saga log names the partner itself once known.
                ("COMPLETADA", json!(self.partner_id))
            }
            SagaCanned::PendienteRevision => {
                eventos.push(entrada(
                    "ContratoRechazado",
                    json!({
                        "contrato_id": self.contrato_id,
                        "validacion_fallida": "MONTO_INVALIDO",
                        "causa_rechazo": "monto above the limit",
                    }),
                ));
                eventos.push(entrada("RevisionContrato", json!({})));
                // Left out on purpose: the BFF must find it in the timeline.
                ("PENDIENTE_REVISION", Value::Null)
            }
        };
        Some(json!({
            "saga_id": saga_id,
            "onboarding_id": null,
            "partner_id": partner_id,
            "contrato_id": null,
            "estado": estado,
            "causa": null,
            "eventos": eventos,
            "version_desconocida": "ignored",
        }))
    }
}

fn asks_for(query: &Option<String>, partner_id: Uuid) -> bool {
    query
        .as_deref()
        .is_some_and(|query| query.contains(&format!("partner_id={partner_id}")))
}

/// integraciones: the list echoes the query string it got (as `query`); `estado=MALO` is a
/// 400 problem; one partner by id, others 404.
pub fn integraciones(canned: Arc<Canned>) -> Router {
    async fn list(State(canned): State<Arc<Canned>>, RawQuery(query): RawQuery) -> Response {
        if query.as_deref().is_some_and(|q| q.contains("estado=MALO")) {
            return problem(StatusCode::BAD_REQUEST, "DATOS_INVALIDOS");
        }
        let mut body = page(vec![canned.partner()]);
        body["query"] = json!(query);
        axum::Json(body).into_response()
    }
    async fn one(State(canned): State<Arc<Canned>>, Path(id): Path<Uuid>) -> Response {
        if id == canned.partner_id {
            axum::Json(canned.partner()).into_response()
        } else {
            problem(StatusCode::NOT_FOUND, "PARTNER_NO_ENCONTRADO")
        }
    }
    Router::new()
        .route("/api/v1/partners", get(list))
        .route("/api/v1/partners/{id}", get(one))
        .with_state(canned)
}

/// alianzas with the saga log: contracts by partner, the saga by id and by partner.
pub fn alianzas(canned: Arc<Canned>) -> Router {
    async fn contratos(State(canned): State<Arc<Canned>>, RawQuery(query): RawQuery) -> Response {
        let items = if asks_for(&query, canned.partner_id) {
            vec![canned.otro_contrato(), canned.contrato()]
        } else {
            Vec::new()
        };
        axum::Json(page(items)).into_response()
    }
    async fn saga(State(canned): State<Arc<Canned>>, Path(saga_id): Path<String>) -> Response {
        match canned.saga(&saga_id) {
            Some(saga) => axum::Json(saga).into_response(),
            None => problem(StatusCode::NOT_FOUND, "SAGA_NO_ENCONTRADA"),
        }
    }
    async fn sagas(State(canned): State<Arc<Canned>>, RawQuery(query): RawQuery) -> Response {
        let items = if asks_for(&query, canned.partner_id) {
            canned
                .saga(&Uuid::now_v7().to_string())
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        axum::Json(page(items)).into_response()
    }
    Router::new()
        .route("/contratos", get(contratos))
        .route("/sagas", get(sagas))
        .route("/sagas/{saga_id}", get(saga))
        .with_state(canned)
}

/// compliance: the partner's financial account when it has one, else 404.
pub fn compliance(canned: Arc<Canned>) -> Router {
    async fn cuenta(State(canned): State<Arc<Canned>>, Path(id): Path<Uuid>) -> Response {
        if canned.cuenta && id == canned.partner_id {
            axum::Json(canned.cuenta()).into_response()
        } else {
            problem(StatusCode::NOT_FOUND, "CUENTA_NO_ENCONTRADA")
        }
    }
    Router::new()
        .route("/compliance/cuentas/{id}", get(cuenta))
        .with_state(canned)
}

/// A service that answers every request with a 500 and a body that is not JSON.
pub fn failing() -> Router {
    Router::new().fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom: stack trace") })
}

/// A service that accepts connections and never answers.
pub fn hanging() -> Router {
    Router::new().fallback(|| async {
        std::future::pending::<()>().await;
        StatusCode::OK
    })
}

/// The three services, each healthy, describing `canned`.
pub struct Upstreams {
    pub integraciones: String,
    pub alianzas: String,
    pub compliance: String,
}

impl Upstreams {
    pub async fn healthy(canned: &Arc<Canned>) -> Self {
        Self {
            integraciones: serve(integraciones(canned.clone())).await,
            alianzas: serve(alianzas(canned.clone())).await,
            compliance: serve(compliance(canned.clone())).await,
        }
    }

    pub fn config(&self) -> bff::BffConfig {
        bff::BffConfig::new(&self.integraciones, &self.alianzas, &self.compliance)
    }
}
