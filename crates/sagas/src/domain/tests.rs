//! Given/when/then tests of the saga, one per row of DOMAIN §9's table, plus the matrix of
//! every step after every step and the deadline and review rules.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::rules::{allowed, EstadoSaga, Paso};
use super::saga::{DecisionRevision, Efecto, Hecho, Revision, Saga};

const PARTNER: Uuid = Uuid::from_u128(0x11);
const CONTRATO: Uuid = Uuid::from_u128(0x22);

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn plazo() -> TimeDelta {
    TimeDelta::seconds(300)
}

fn later(seconds: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(seconds)
}

fn hecho(paso: Paso) -> Option<Hecho> {
    Some(match paso {
        Paso::CreatePartner => Hecho::CreatePartner,
        Paso::PartnerCreated => Hecho::PartnerCreado {
            partner_id: PARTNER,
        },
        Paso::PartnerCreationFailed => Hecho::PartnerCreationFailed {
            error_code: "EMAIL_EXISTENTE".into(),
        },
        Paso::ContratoCreado => Hecho::ContratoCreado {
            contrato_id: CONTRATO,
            partner_id: PARTNER,
        },
        Paso::ContratoCreadoFailed => Hecho::ContratoCreadoFailed {
            partner_id: PARTNER,
        },
        Paso::ContratoAprobado => Hecho::ContratoAprobado {
            contrato_id: CONTRATO,
        },
        Paso::ContratoRechazado => Hecho::ContratoRechazado {
            contrato_id: CONTRATO,
            partner_id: PARTNER,
            causa_rechazo: "monto".into(),
            validacion_fallida: "MONTO_INVALIDO".into(),
        },
        Paso::PartnerDesactivado => Hecho::PartnerDesactivado {
            partner_id: PARTNER,
        },
        // Steps the saga takes itself, never consumed.
        Paso::RevisionContrato
        | Paso::RevisionAprobada
        | Paso::RevisionRechazada
        | Paso::SagaTimeout => return None,
    })
}

fn given() -> Saga {
    Saga::start(
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        "Ana".into(),
        "ana@example.com".into(),
        t0(),
        plazo(),
    )
}

fn when(saga: &mut Saga, paso: Paso) -> Vec<Efecto> {
    let hecho = hecho(paso).unwrap_or_else(|| panic!("{paso} is not consumed"));
    saga.handle(hecho, later(1), plazo())
        .unwrap_or_else(|rechazo| panic!("{paso} refused: {rechazo}"))
}

/// A saga whose last step is `paso`, reached along the shortest path (a timeout after the
/// partner is known).
fn given_after(paso: Paso) -> Saga {
    let mut saga = given();
    let path: &[Paso] = match paso {
        Paso::CreatePartner => &[],
        Paso::PartnerCreated => &[Paso::PartnerCreated],
        Paso::PartnerCreationFailed => &[Paso::PartnerCreationFailed],
        Paso::ContratoCreado => &[Paso::PartnerCreated, Paso::ContratoCreado],
        Paso::ContratoCreadoFailed => &[Paso::PartnerCreated, Paso::ContratoCreadoFailed],
        Paso::ContratoAprobado => &[
            Paso::PartnerCreated,
            Paso::ContratoCreado,
            Paso::ContratoAprobado,
        ],
        Paso::RevisionContrato | Paso::RevisionAprobada | Paso::RevisionRechazada => &[
            Paso::PartnerCreated,
            Paso::ContratoCreado,
            Paso::ContratoRechazado,
        ],
        Paso::SagaTimeout => &[Paso::PartnerCreated],
        Paso::PartnerDesactivado => &[
            Paso::PartnerCreated,
            Paso::ContratoCreadoFailed,
            Paso::PartnerDesactivado,
        ],
        Paso::ContratoRechazado => panic!("the saga never rests after ContratoRechazado"),
    };
    for step in path {
        when(&mut saga, *step);
    }
    match paso {
        Paso::RevisionAprobada => {
            saga.resolve_review(DecisionRevision::Aprobar, None, later(2))
                .expect("approve");
        }
        Paso::RevisionRechazada => {
            saga.resolve_review(DecisionRevision::Rechazar, None, later(2))
                .expect("reject");
        }
        Paso::SagaTimeout => {
            saga.time_out(later(10_000)).expect("due");
        }
        _ => {}
    }
    assert_eq!(saga.ultimo_paso, paso);
    saga
}

fn estado_cambiado(estado: EstadoSaga, causa: Option<&str>) -> Efecto {
    Efecto::EstadoCambiado {
        estado,
        causa: causa.map(str::to_owned),
    }
}

fn desactivar(causa: &str) -> Efecto {
    Efecto::DesactivarPartner {
        partner_id: PARTNER,
        motivo: format!("onboarding fallido: {causa}"),
    }
}

#[test]
fn create_partner_starts_an_iniciada_saga_with_a_deadline() {
    let saga = given();
    assert_eq!(saga.estado, EstadoSaga::Iniciada);
    assert_eq!(saga.ultimo_paso, Paso::CreatePartner);
    assert_eq!(saga.paso_deadline, Some(t0() + plazo()));
    assert_eq!(saga.version, 1);
}

#[test]
fn after_create_partner_partner_creado_links_the_partner_and_moves_the_deadline() {
    let mut saga = given();
    let efectos = when(&mut saga, Paso::PartnerCreated);
    assert!(efectos.is_empty());
    assert_eq!(saga.partner_id, Some(PARTNER));
    assert_eq!(saga.estado, EstadoSaga::Iniciada);
    assert_eq!(saga.paso_deadline, Some(later(1) + plazo()));
    assert_eq!(saga.version, 2);
}

#[test]
fn after_create_partner_partner_creation_failed_fails_with_its_error_code() {
    let mut saga = given();
    let efectos = when(&mut saga, Paso::PartnerCreationFailed);
    assert_eq!(saga.estado, EstadoSaga::Fallida);
    assert_eq!(saga.causa.as_deref(), Some("EMAIL_EXISTENTE"));
    assert_eq!(saga.paso_deadline, None);
    // No partner exists: nothing to compensate.
    assert_eq!(
        efectos,
        vec![estado_cambiado(
            EstadoSaga::Fallida,
            Some("EMAIL_EXISTENTE")
        )]
    );
}

#[test]
fn after_partner_created_contrato_creado_records_the_contract() {
    let mut saga = given_after(Paso::PartnerCreated);
    assert!(when(&mut saga, Paso::ContratoCreado).is_empty());
    assert_eq!(saga.contrato_id, Some(CONTRATO));
    assert_eq!(saga.estado, EstadoSaga::Iniciada);
    assert!(saga.paso_deadline.is_some());
}

#[test]
fn after_partner_created_contrato_creado_failed_fails_and_compensates() {
    let mut saga = given_after(Paso::PartnerCreated);
    let efectos = when(&mut saga, Paso::ContratoCreadoFailed);
    assert_eq!(saga.estado, EstadoSaga::Fallida);
    assert_eq!(saga.causa.as_deref(), Some("CONTRATO_NO_CREADO"));
    assert_eq!(saga.paso_deadline, None);
    assert_eq!(
        efectos,
        vec![
            desactivar("CONTRATO_NO_CREADO"),
            estado_cambiado(EstadoSaga::Fallida, Some("CONTRATO_NO_CREADO")),
        ]
    );
}

#[test]
fn after_contrato_creado_contrato_aprobado_completes_the_saga() {
    let mut saga = given_after(Paso::ContratoCreado);
    let efectos = when(&mut saga, Paso::ContratoAprobado);
    assert_eq!(saga.estado, EstadoSaga::Completada);
    assert_eq!(saga.causa, None);
    assert_eq!(saga.paso_deadline, None);
    assert_eq!(efectos, vec![estado_cambiado(EstadoSaga::Completada, None)]);
}

#[test]
fn after_contrato_creado_contrato_rechazado_asks_for_a_review_without_deadline() {
    let mut saga = given_after(Paso::ContratoCreado);
    let efectos = when(&mut saga, Paso::ContratoRechazado);
    assert_eq!(saga.estado, EstadoSaga::PendienteRevision);
    assert_eq!(saga.ultimo_paso, Paso::RevisionContrato);
    assert_eq!(saga.causa.as_deref(), Some("MONTO_INVALIDO"));
    assert_eq!(saga.paso_deadline, None);
    assert_eq!(
        efectos,
        vec![
            Efecto::RevisionContrato {
                contrato_id: CONTRATO,
                partner_id: PARTNER,
                causa_rechazo: "monto".into(),
                validacion_fallida: "MONTO_INVALIDO".into(),
            },
            estado_cambiado(EstadoSaga::PendienteRevision, Some("MONTO_INVALIDO")),
        ]
    );
}

#[test]
fn after_revision_contrato_aprobar_publishes_revision_aprobada_and_completes() {
    let mut saga = given_after(Paso::RevisionContrato);
    let revision = saga
        .resolve_review(DecisionRevision::Aprobar, Some("ok".into()), later(5))
        .unwrap();
    assert_eq!(
        revision,
        Revision::Resuelta(vec![
            Efecto::RevisionAprobada {
                contrato_id: CONTRATO,
                partner_id: PARTNER,
                comentarios: Some("ok".into()),
            },
            estado_cambiado(EstadoSaga::Completada, None),
        ])
    );
    assert_eq!(saga.estado, EstadoSaga::Completada);
    assert_eq!(saga.ultimo_paso, Paso::RevisionAprobada);
}

#[test]
fn after_revision_contrato_rechazar_publishes_revision_rechazada_fails_and_compensates() {
    let mut saga = given_after(Paso::RevisionContrato);
    let revision = saga
        .resolve_review(DecisionRevision::Rechazar, None, later(5))
        .unwrap();
    assert_eq!(
        revision,
        Revision::Resuelta(vec![
            Efecto::RevisionRechazada {
                contrato_id: CONTRATO,
                partner_id: PARTNER,
                comentarios: None,
            },
            desactivar("REVISION_RECHAZADA"),
            estado_cambiado(EstadoSaga::Fallida, Some("REVISION_RECHAZADA")),
        ])
    );
    assert_eq!(saga.ultimo_paso, Paso::RevisionRechazada);
}

#[test]
fn a_review_decision_repeated_is_already_resolved_and_the_other_one_is_refused() {
    let mut approved = given_after(Paso::RevisionAprobada);
    let before = approved.clone();
    assert_eq!(
        approved.resolve_review(DecisionRevision::Aprobar, None, later(9)),
        Ok(Revision::YaResuelta)
    );
    assert!(approved
        .resolve_review(DecisionRevision::Rechazar, None, later(9))
        .is_err());
    assert_eq!(approved, before);

    let mut rejected = given_after(Paso::RevisionRechazada);
    assert_eq!(
        rejected.resolve_review(DecisionRevision::Rechazar, None, later(9)),
        Ok(Revision::YaResuelta)
    );
    assert!(rejected
        .resolve_review(DecisionRevision::Aprobar, None, later(9))
        .is_err());
    // Still resolved after the compensation is done.
    when(&mut rejected, Paso::PartnerDesactivado);
    assert_eq!(
        rejected.resolve_review(DecisionRevision::Rechazar, None, later(9)),
        Ok(Revision::YaResuelta)
    );
}

#[test]
fn only_a_saga_pending_review_can_be_reviewed() {
    for paso in [
        Paso::CreatePartner,
        Paso::PartnerCreated,
        Paso::ContratoCreado,
        Paso::ContratoAprobado,
        Paso::ContratoCreadoFailed,
        Paso::SagaTimeout,
    ] {
        let mut saga = given_after(paso);
        let before = saga.clone();
        assert!(
            saga.resolve_review(DecisionRevision::Aprobar, None, later(9))
                .is_err(),
            "{paso}"
        );
        assert_eq!(saga, before);
    }
}

#[test]
fn after_each_compensation_partner_desactivado_closes_it_and_keeps_the_failure() {
    for paso in [
        Paso::ContratoCreadoFailed,
        Paso::RevisionRechazada,
        Paso::SagaTimeout,
    ] {
        let mut saga = given_after(paso);
        let causa = saga.causa.clone();
        assert!(
            when(&mut saga, Paso::PartnerDesactivado).is_empty(),
            "{paso}"
        );
        assert_eq!(saga.ultimo_paso, Paso::PartnerDesactivado);
        assert_eq!(saga.estado, EstadoSaga::Fallida);
        assert_eq!(saga.causa, causa);
    }
}

#[test]
fn final_steps_allow_nothing_after_them() {
    for paso in [
        Paso::PartnerCreationFailed,
        Paso::ContratoAprobado,
        Paso::RevisionAprobada,
        Paso::PartnerDesactivado,
    ] {
        let saga = given_after(paso);
        for next in Paso::ALL {
            let Some(hecho) = hecho(next) else { continue };
            let mut copy = saga.clone();
            assert!(
                copy.handle(hecho, later(20), plazo()).is_err(),
                "{next} after {paso}"
            );
            assert_eq!(copy, saga);
        }
        let mut copy = saga.clone();
        assert_eq!(copy.time_out(later(100_000)), None);
    }
}

/// Every consumed event after every restable step: accepted exactly when the table allows it;
/// a refused one leaves the saga untouched.
#[test]
fn every_event_after_every_step_follows_the_table() {
    for after in Paso::ALL {
        if after == Paso::ContratoRechazado {
            continue;
        }
        let saga = given_after(after);
        for next in Paso::ALL {
            let Some(hecho) = hecho(next) else { continue };
            let mut copy = saga.clone();
            let result = copy.handle(hecho, later(20), plazo());
            assert_eq!(
                result.is_ok(),
                allowed(after, next),
                "{next} after {after}: {result:?}"
            );
            if let Err(rechazo) = result {
                assert_eq!(copy, saga, "{next} after {after}");
                assert!(rechazo.motivo.contains(next.as_str()), "{rechazo}");
            }
        }
    }
}

#[test]
fn a_timeout_may_follow_every_waiting_step_and_compensates_a_known_partner() {
    for (paso, compensated) in [
        (Paso::CreatePartner, false),
        (Paso::PartnerCreated, true),
        (Paso::ContratoCreado, true),
    ] {
        let mut saga = given_after(paso);
        let deadline = saga.paso_deadline.expect("a waiting step has a deadline");
        assert_eq!(
            saga.time_out(deadline),
            None,
            "not due at the deadline itself"
        );
        let efectos = saga
            .time_out(deadline + TimeDelta::milliseconds(1))
            .unwrap();
        let mut expected = vec![Efecto::SagaTimeout { paso, deadline }];
        if compensated {
            expected.push(desactivar("TIMEOUT"));
        }
        expected.push(estado_cambiado(EstadoSaga::Fallida, Some("TIMEOUT")));
        assert_eq!(efectos, expected, "{paso}");
        assert_eq!(saga.estado, EstadoSaga::Fallida);
        assert_eq!(saga.causa.as_deref(), Some("TIMEOUT"));
        assert_eq!(saga.ultimo_paso, Paso::SagaTimeout);
        assert_eq!(saga.paso_deadline, None);
        // Fired once: a second check finds nothing due.
        assert_eq!(saga.time_out(later(100_000)), None);
    }
}

#[test]
fn review_waits_and_failed_sagas_never_time_out() {
    for paso in [
        Paso::RevisionContrato,
        Paso::ContratoCreadoFailed,
        Paso::RevisionRechazada,
        Paso::SagaTimeout,
        Paso::PartnerCreationFailed,
    ] {
        let mut saga = given_after(paso);
        assert_eq!(saga.paso_deadline, None, "{paso}");
        assert_eq!(saga.time_out(later(1_000_000)), None, "{paso}");
    }
}

#[test]
fn a_partner_created_after_the_timeout_is_recorded_and_compensated() {
    let mut saga = given();
    saga.time_out(later(1_000)).unwrap();
    let efectos = when(&mut saga, Paso::PartnerCreated);
    assert_eq!(efectos, vec![desactivar("TIMEOUT")]);
    assert_eq!(saga.partner_id, Some(PARTNER));
    assert_eq!(saga.estado, EstadoSaga::Fallida);
    assert_eq!(saga.ultimo_paso, Paso::SagaTimeout);
    // Its compensation answer is then accepted.
    assert!(when(&mut saga, Paso::PartnerDesactivado).is_empty());
    // A second PartnerCreado for a known partner is an error.
    let mut timed_out_with_partner = given_after(Paso::SagaTimeout);
    assert!(timed_out_with_partner
        .handle(
            Hecho::PartnerCreado {
                partner_id: PARTNER
            },
            later(30),
            plazo()
        )
        .is_err());
}

#[test]
fn events_about_another_partner_or_contract_are_refused() {
    let mut saga = given_after(Paso::ContratoCreado);
    let before = saga.clone();
    let other = Uuid::from_u128(0x99);
    assert!(saga
        .handle(
            Hecho::ContratoAprobado { contrato_id: other },
            later(3),
            plazo()
        )
        .is_err());
    let mut partnered = given_after(Paso::PartnerCreated);
    assert!(partnered
        .handle(
            Hecho::ContratoCreado {
                contrato_id: CONTRATO,
                partner_id: other
            },
            later(3),
            plazo()
        )
        .is_err());
    assert_eq!(saga, before);
}

#[test]
fn review_decisions_parse_only_their_two_spellings() {
    assert_eq!(
        DecisionRevision::parse("aprobar"),
        Some(DecisionRevision::Aprobar)
    );
    assert_eq!(
        DecisionRevision::parse("rechazar"),
        Some(DecisionRevision::Rechazar)
    );
    assert_eq!(DecisionRevision::parse("APROBAR"), None);
    assert_eq!(DecisionRevision::parse(""), None);
}
