//! The stored form of contract events and snapshots: JSON written with a schema version per
//! event type, and read back through upcasters so that every version ever written still loads.
//! `ContratoCreado` is at v2 (v1 had no `condiciones`); the others are at v1. The serde shapes
//! live here, at the edge of the domain, and convert to domain types by hand.

use chrono::{DateTime, NaiveDate, Utc};
use kernel::Amount;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::domain::{
    Condiciones, Contrato, ContratoEvent, ContratoState, EstadoContrato, Moneda, Monto, Motivo,
    NuevoContrato, TipoContrato,
};

/// A stored event or snapshot that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("unknown contract event type {0:?}")]
    UnknownType(String),
    #[error("{tipo} has no known schema version {version}")]
    UnknownVersion { tipo: String, version: i32 },
    #[error("{tipo} v{version} does not match its schema: {cause}")]
    Payload {
        tipo: String,
        version: i32,
        cause: String,
    },
}

/// An event as written: its type, schema version and JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub tipo: &'static str,
    pub schema_version: i32,
    pub data: Value,
}

/// The schema version this code writes for `tipo`.
pub fn current_version(tipo: &str) -> Option<i32> {
    match tipo {
        "ContratoCreado" => Some(2),
        "ContratoActualizado"
        | "ContratoAprobado"
        | "ContratoEnRevision"
        | "ContratoRechazado"
        | "ContratoSuspendido"
        | "ContratoReactivado"
        | "ContratoTerminado"
        | "ContratoVencido" => Some(1),
        _ => None,
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CreadoV2 {
    partner_id: Uuid,
    onboarding_id: Option<Uuid>,
    tipo: String,
    monto: Amount,
    moneda: String,
    condiciones: Option<String>,
    fecha_inicio: NaiveDate,
    fecha_fin: Option<NaiveDate>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ActualizadoV1 {
    monto: Amount,
    moneda: String,
    condiciones: Option<String>,
    fecha_fin: Option<NaiveDate>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MotivoV1 {
    #[serde(default)]
    motivo: Option<String>,
}

fn motivo_data(motivo: &Option<Motivo>) -> Value {
    json!({ "motivo": motivo.as_ref().map(Motivo::as_str) })
}

/// Encodes `event` at the current schema version.
pub fn encode(event: &ContratoEvent) -> EncodedEvent {
    let tipo = event.tipo();
    let data = match event {
        ContratoEvent::Creado(datos) => json!(CreadoV2 {
            partner_id: datos.partner_id,
            onboarding_id: datos.onboarding_id,
            tipo: datos.tipo.as_str().to_owned(),
            monto: datos.monto.amount(),
            moneda: datos.moneda.as_str().to_owned(),
            condiciones: datos.condiciones.as_ref().map(|c| c.as_str().to_owned()),
            fecha_inicio: datos.fecha_inicio,
            fecha_fin: datos.fecha_fin,
        }),
        ContratoEvent::Actualizado {
            monto,
            moneda,
            condiciones,
            fecha_fin,
        } => json!(ActualizadoV1 {
            monto: monto.amount(),
            moneda: moneda.as_str().to_owned(),
            condiciones: condiciones.as_ref().map(|c| c.as_str().to_owned()),
            fecha_fin: *fecha_fin,
        }),
        ContratoEvent::Aprobado | ContratoEvent::Vencido => json!({}),
        ContratoEvent::EnRevision { motivo }
        | ContratoEvent::Rechazado { motivo }
        | ContratoEvent::Suspendido { motivo }
        | ContratoEvent::Reactivado { motivo }
        | ContratoEvent::Terminado { motivo } => motivo_data(motivo),
    };
    EncodedEvent {
        tipo,
        schema_version: current_version(tipo).unwrap_or(1),
        data,
    }
}

/// Turns stored data of `tipo` at `version` into the current version's JSON.
pub fn upcast(tipo: &str, version: i32, mut data: Value) -> Result<Value, CodecError> {
    let current = current_version(tipo).ok_or_else(|| CodecError::UnknownType(tipo.to_owned()))?;
    match (tipo, version) {
        // v1 of ContratoCreado predates free-text conditions.
        ("ContratoCreado", 1) => {
            if let Value::Object(object) = &mut data {
                object.entry("condiciones").or_insert(Value::Null);
            }
            Ok(data)
        }
        (_, v) if v == current => Ok(data),
        _ => Err(CodecError::UnknownVersion {
            tipo: tipo.to_owned(),
            version,
        }),
    }
}

/// Reads a stored event, upcasting an older version first.
pub fn decode(tipo: &str, version: i32, data: Value) -> Result<ContratoEvent, CodecError> {
    let data = upcast(tipo, version, data)?;
    let bad = |cause: String| CodecError::Payload {
        tipo: tipo.to_owned(),
        version,
        cause,
    };
    let motivo = |data: Value| -> Result<Option<Motivo>, CodecError> {
        let raw: MotivoV1 = serde_json::from_value(data).map_err(|e| bad(e.to_string()))?;
        Ok(Motivo::lenient(raw.motivo.as_deref()))
    };
    Ok(match tipo {
        "ContratoCreado" => {
            let raw: CreadoV2 = serde_json::from_value(data).map_err(|e| bad(e.to_string()))?;
            ContratoEvent::Creado(NuevoContrato {
                partner_id: raw.partner_id,
                onboarding_id: raw.onboarding_id,
                tipo: TipoContrato::parse(&raw.tipo).map_err(|e| bad(e.0))?,
                monto: Monto::new(raw.monto).map_err(|e| bad(e.0))?,
                moneda: Moneda::parse(&raw.moneda).map_err(|e| bad(e.0))?,
                condiciones: Condiciones::parse(raw.condiciones.as_deref())
                    .map_err(|e| bad(e.0))?,
                fecha_inicio: raw.fecha_inicio,
                fecha_fin: raw.fecha_fin,
            })
        }
        "ContratoActualizado" => {
            let raw: ActualizadoV1 =
                serde_json::from_value(data).map_err(|e| bad(e.to_string()))?;
            ContratoEvent::Actualizado {
                monto: Monto::new(raw.monto).map_err(|e| bad(e.0))?,
                moneda: Moneda::parse(&raw.moneda).map_err(|e| bad(e.0))?,
                condiciones: Condiciones::parse(raw.condiciones.as_deref())
                    .map_err(|e| bad(e.0))?,
                fecha_fin: raw.fecha_fin,
            }
        }
        "ContratoAprobado" => ContratoEvent::Aprobado,
        "ContratoVencido" => ContratoEvent::Vencido,
        "ContratoEnRevision" => ContratoEvent::EnRevision {
            motivo: motivo(data)?,
        },
        "ContratoRechazado" => ContratoEvent::Rechazado {
            motivo: motivo(data)?,
        },
        "ContratoSuspendido" => ContratoEvent::Suspendido {
            motivo: motivo(data)?,
        },
        "ContratoReactivado" => ContratoEvent::Reactivado {
            motivo: motivo(data)?,
        },
        "ContratoTerminado" => ContratoEvent::Terminado {
            motivo: motivo(data)?,
        },
        other => return Err(CodecError::UnknownType(other.to_owned())),
    })
}

/// The snapshot schema this code writes.
pub const SNAPSHOT_VERSION: i32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct StateV1 {
    partner_id: Uuid,
    onboarding_id: Option<Uuid>,
    tipo: String,
    monto: Amount,
    moneda: String,
    condiciones: Option<String>,
    fecha_inicio: NaiveDate,
    fecha_fin: Option<NaiveDate>,
    estado: String,
    fecha_creacion: DateTime<Utc>,
    fecha_actualizacion: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotV1 {
    state: Option<StateV1>,
}

/// The snapshot of `contrato`'s state (its version is stored beside it).
pub fn encode_snapshot(contrato: &Contrato) -> Value {
    let state = contrato.state().map(|s| StateV1 {
        partner_id: s.partner_id,
        onboarding_id: s.onboarding_id,
        tipo: s.tipo.as_str().to_owned(),
        monto: s.monto.amount(),
        moneda: s.moneda.as_str().to_owned(),
        condiciones: s.condiciones.as_ref().map(|c| c.as_str().to_owned()),
        fecha_inicio: s.fecha_inicio,
        fecha_fin: s.fecha_fin,
        estado: s.estado.as_str().to_owned(),
        fecha_creacion: s.fecha_creacion,
        fecha_actualizacion: s.fecha_actualizacion,
    });
    json!(SnapshotV1 { state })
}

/// Rebuilds the contract `id` at `version` from a stored snapshot.
pub fn decode_snapshot(
    id: Uuid,
    version: i64,
    schema_version: i32,
    data: Value,
) -> Result<Contrato, CodecError> {
    let bad = |cause: String| CodecError::Payload {
        tipo: "snapshot".to_owned(),
        version: schema_version,
        cause,
    };
    if schema_version != SNAPSHOT_VERSION {
        return Err(CodecError::UnknownVersion {
            tipo: "snapshot".to_owned(),
            version: schema_version,
        });
    }
    let raw: SnapshotV1 = serde_json::from_value(data).map_err(|e| bad(e.to_string()))?;
    let state = match raw.state {
        None => None,
        Some(s) => Some(ContratoState {
            partner_id: s.partner_id,
            onboarding_id: s.onboarding_id,
            tipo: TipoContrato::parse(&s.tipo).map_err(|e| bad(e.0))?,
            monto: Monto::new(s.monto).map_err(|e| bad(e.0))?,
            moneda: Moneda::parse(&s.moneda).map_err(|e| bad(e.0))?,
            condiciones: Condiciones::parse(s.condiciones.as_deref()).map_err(|e| bad(e.0))?,
            fecha_inicio: s.fecha_inicio,
            fecha_fin: s.fecha_fin,
            estado: EstadoContrato::parse(&s.estado).map_err(|e| bad(e.0))?,
            fecha_creacion: s.fecha_creacion,
            fecha_actualizacion: s.fecha_actualizacion,
        }),
    };
    Ok(Contrato::from_snapshot(id, version, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CambiosContrato;
    use chrono::Duration;
    use proptest::prelude::*;

    fn nuevo() -> NuevoContrato {
        NuevoContrato {
            partner_id: Uuid::now_v7(),
            onboarding_id: Some(Uuid::now_v7()),
            tipo: TipoContrato::Revshare,
            monto: Monto::parse("10.50").unwrap(),
            moneda: Moneda::parse("EUR").unwrap(),
            condiciones: Condiciones::parse(Some("c")).unwrap(),
            fecha_inicio: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            fecha_fin: NaiveDate::from_ymd_opt(2025, 6, 30),
        }
    }

    #[test]
    fn every_event_round_trips_through_its_stored_form() {
        let events = [
            ContratoEvent::Creado(nuevo()),
            ContratoEvent::Actualizado {
                monto: Monto::parse("1").unwrap(),
                moneda: Moneda::parse("COP").unwrap(),
                condiciones: None,
                fecha_fin: None,
            },
            ContratoEvent::Aprobado,
            ContratoEvent::EnRevision {
                motivo: Motivo::parse(Some("m")).unwrap(),
            },
            ContratoEvent::Rechazado { motivo: None },
            ContratoEvent::Suspendido { motivo: None },
            ContratoEvent::Reactivado { motivo: None },
            ContratoEvent::Terminado { motivo: None },
            ContratoEvent::Vencido,
        ];
        for event in events {
            let encoded = encode(&event);
            let decoded = decode(encoded.tipo, encoded.schema_version, encoded.data).unwrap();
            assert_eq!(decoded, event);
        }
        assert_eq!(
            encode(&ContratoEvent::Creado(nuevo())).data["monto"],
            "10.50"
        );
    }

    #[test]
    fn a_v1_contrato_creado_without_condiciones_is_upcast() {
        let data = json!({
            "partner_id": Uuid::nil(), "onboarding_id": null, "tipo": "CPA", "monto": "25.00",
            "moneda": "USD", "fecha_inicio": "2025-01-01", "fecha_fin": null
        });
        let ContratoEvent::Creado(datos) = decode("ContratoCreado", 1, data).unwrap() else {
            panic!("not a ContratoCreado");
        };
        assert_eq!(datos.condiciones, None);
        assert_eq!(datos.monto.amount().cents(), 2_500);
    }

    #[test]
    fn unknown_types_versions_and_payloads_are_errors() {
        assert!(matches!(
            decode("ContratoX", 1, json!({})),
            Err(CodecError::UnknownType(_))
        ));
        assert!(matches!(
            decode("ContratoAprobado", 7, json!({})),
            Err(CodecError::UnknownVersion { .. })
        ));
        assert!(matches!(
            decode("ContratoCreado", 2, json!({"tipo": "CPA"})),
            Err(CodecError::Payload { .. })
        ));
    }

    /// A command the property test may try; invalid ones in the current state are skipped.
    #[derive(Debug, Clone)]
    enum Command {
        Aprobar,
        Revision,
        Rechazar,
        Suspender,
        Reactivar,
        Terminar,
        Vencer,
        Actualizar(i64, bool),
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            Just(Command::Aprobar),
            Just(Command::Revision),
            Just(Command::Rechazar),
            Just(Command::Suspender),
            Just(Command::Reactivar),
            Just(Command::Terminar),
            Just(Command::Vencer),
            (0i64..1_000_000, any::<bool>()).prop_map(|(c, b)| Command::Actualizar(c, b)),
        ]
    }

    fn run(contrato: &Contrato, command: &Command) -> Vec<ContratoEvent> {
        let motivo = Motivo::parse(Some("p")).unwrap();
        let result = match command {
            Command::Aprobar => contrato.aprobar(),
            Command::Revision => contrato.poner_en_revision(motivo),
            Command::Rechazar => contrato.rechazar(motivo),
            Command::Suspender => contrato.suspender(motivo),
            Command::Reactivar => contrato.reactivar(None),
            Command::Terminar => contrato.terminar(motivo),
            Command::Vencer => contrato.vencer(NaiveDate::from_ymd_opt(2030, 1, 1).unwrap()),
            Command::Actualizar(cents, clear) => contrato.actualizar(CambiosContrato {
                monto: Some(Monto::new(Amount::from_cents(*cents)).unwrap()),
                condiciones: clear.then_some(None),
                ..CambiosContrato::default()
            }),
        };
        result.unwrap_or_default()
    }

    proptest! {
        /// Loading from the latest snapshot (every `every` events, through its stored JSON)
        /// plus the stored tail gives exactly the full replay.
        #[test]
        fn snapshot_plus_tail_equals_full_replay(
            commands in prop::collection::vec(command(), 0..60),
            every in 1i64..12,
        ) {
            let id = Uuid::now_v7();
            let start = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
            let mut full = Contrato::new(id);
            let mut stream: Vec<(EncodedEvent, DateTime<Utc>)> = Vec::new();
            let mut snapshot: Option<(i64, Value)> = None;
            let emit = |full: &mut Contrato, events: Vec<ContratoEvent>, stream: &mut Vec<_>, snapshot: &mut Option<(i64, Value)>| {
                for event in events {
                    let at = start + Duration::seconds(full.version());
                    full.apply(&event, at);
                    stream.push((encode(&event), at));
                    if full.version() % every == 0 {
                        *snapshot = Some((full.version(), encode_snapshot(full)));
                    }
                }
            };
            let created = full.crear(nuevo()).unwrap();
            emit(&mut full, created, &mut stream, &mut snapshot);
            for command in &commands {
                let events = run(&full, command);
                emit(&mut full, events, &mut stream, &mut snapshot);
            }
            let mut loaded = match &snapshot {
                Some((version, state)) => decode_snapshot(id, *version, SNAPSHOT_VERSION, state.clone()).unwrap(),
                None => Contrato::new(id),
            };
            for (encoded, at) in stream.iter().skip(loaded.version() as usize) {
                let event = decode(encoded.tipo, encoded.schema_version, encoded.data.clone()).unwrap();
                loaded.apply(&event, *at);
            }
            prop_assert_eq!(&loaded, &full);
            let replayed = Contrato::replay(id, stream.iter().map(|(e, at)| {
                (decode(e.tipo, e.schema_version, e.data.clone()).unwrap(), *at)
            }).collect::<Vec<_>>().iter().map(|(e, at)| (e, *at)));
            prop_assert_eq!(&replayed, &full);
            prop_assert_eq!(full.version(), stream.len() as i64);
        }
    }
}
