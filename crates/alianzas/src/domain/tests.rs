//! The Contrato aggregate, given events / when a command / then events or an error, for every
//! transition and rule of the lifecycle.

use chrono::{DateTime, NaiveDate, Utc};
use kernel::Amount;
use uuid::Uuid;

use super::*;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-01-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn fecha(text: &str) -> NaiveDate {
    parse_fecha(text).unwrap()
}

fn motivo(text: &str) -> Option<Motivo> {
    Motivo::parse(Some(text)).unwrap()
}

fn nuevo() -> NuevoContrato {
    NuevoContrato {
        partner_id: Uuid::nil(),
        onboarding_id: None,
        tipo: TipoContrato::Cpa,
        monto: Monto::parse("25.00").unwrap(),
        moneda: Moneda::parse("USD").unwrap(),
        condiciones: Condiciones::parse(Some("c")).unwrap(),
        fecha_inicio: fecha("2025-01-01"),
        fecha_fin: Some(fecha("2025-12-31")),
    }
}

fn creado() -> ContratoEvent {
    ContratoEvent::Creado(nuevo())
}

/// The contract after `events`.
fn given(events: &[ContratoEvent]) -> Contrato {
    Contrato::replay(Uuid::nil(), events.iter().map(|e| (e, at())))
}

fn activo() -> Vec<ContratoEvent> {
    vec![creado(), ContratoEvent::Aprobado]
}

fn en_revision() -> Vec<ContratoEvent> {
    vec![creado(), ContratoEvent::EnRevision { motivo: None }]
}

fn suspendido() -> Vec<ContratoEvent> {
    let mut events = activo();
    events.push(ContratoEvent::Suspendido { motivo: None });
    events
}

fn invalid(desde: EstadoContrato) -> impl Fn(DomainError) -> bool {
    move |error| matches!(error, DomainError::TransicionInvalida { desde: d, .. } if d == desde)
}

#[test]
fn creating_a_contract_emits_creado_and_it_is_pendiente_at_version_1() {
    let contrato = given(&[]);
    let events = contrato.crear(nuevo()).unwrap();
    assert_eq!(events, vec![creado()]);
    let contrato = given(&events);
    assert_eq!(contrato.version(), 1);
    assert_eq!(contrato.estado(), Some(EstadoContrato::Pendiente));
    assert_eq!(contrato.state().unwrap().fecha_creacion, at());
}

#[test]
fn creating_twice_or_with_fin_before_inicio_is_refused() {
    assert_eq!(
        given(&[creado()]).crear(nuevo()),
        Err(DomainError::YaExiste)
    );
    let mut datos = nuevo();
    datos.fecha_fin = Some(fecha("2024-12-31"));
    assert!(matches!(
        given(&[]).crear(datos),
        Err(DomainError::FechaFinAntesDeInicio { .. })
    ));
    let mut same_day = nuevo();
    same_day.fecha_fin = Some(same_day.fecha_inicio);
    assert!(given(&[]).crear(same_day).is_ok());
}

#[test]
fn every_command_on_a_missing_contract_is_no_existe() {
    let contrato = given(&[]);
    assert_eq!(contrato.aprobar(), Err(DomainError::NoExiste));
    assert_eq!(contrato.suspender(None), Err(DomainError::NoExiste));
    assert_eq!(
        contrato.actualizar(CambiosContrato::default()),
        Err(DomainError::NoExiste)
    );
}

#[test]
fn approval_activates_a_pending_or_reviewed_contract() {
    assert_eq!(
        given(&[creado()]).aprobar(),
        Ok(vec![ContratoEvent::Aprobado])
    );
    assert_eq!(
        given(&en_revision()).aprobar(),
        Ok(vec![ContratoEvent::Aprobado])
    );
    assert_eq!(given(&activo()).estado(), Some(EstadoContrato::Activo));
    assert!(given(&activo())
        .aprobar()
        .is_err_and(invalid(EstadoContrato::Activo)));
    assert!(given(&suspendido())
        .aprobar()
        .is_err_and(invalid(EstadoContrato::Suspendido)));
}

#[test]
fn only_a_pending_contract_goes_to_review() {
    let events = given(&[creado()]).poner_en_revision(motivo("MONTO_INVALIDO"));
    assert_eq!(
        events,
        Ok(vec![ContratoEvent::EnRevision {
            motivo: motivo("MONTO_INVALIDO")
        }])
    );
    assert!(given(&en_revision())
        .poner_en_revision(None)
        .is_err_and(invalid(EstadoContrato::EnRevision)));
    assert!(given(&activo())
        .poner_en_revision(None)
        .is_err_and(invalid(EstadoContrato::Activo)));
}

#[test]
fn only_a_reviewed_contract_is_rejected_and_rejection_is_final() {
    let mut events = en_revision();
    events.extend(given(&events).rechazar(motivo("no")).unwrap());
    let rechazado = given(&events);
    assert_eq!(rechazado.estado(), Some(EstadoContrato::Rechazado));
    assert!(given(&[creado()])
        .rechazar(None)
        .is_err_and(invalid(EstadoContrato::Pendiente)));
    assert!(rechazado.aprobar().is_err());
    assert!(rechazado.suspender(None).is_err());
    assert!(rechazado.terminar(None).is_err());
    assert!(rechazado
        .actualizar(CambiosContrato::default())
        .is_err_and(invalid(EstadoContrato::Rechazado)));
}

#[test]
fn suspension_and_reactivation_alternate() {
    assert_eq!(
        given(&activo()).suspender(motivo("fraude")),
        Ok(vec![ContratoEvent::Suspendido {
            motivo: motivo("fraude")
        }])
    );
    assert!(given(&[creado()])
        .suspender(None)
        .is_err_and(invalid(EstadoContrato::Pendiente)));
    assert!(given(&suspendido())
        .suspender(None)
        .is_err_and(invalid(EstadoContrato::Suspendido)));
    assert_eq!(
        given(&suspendido()).reactivar(None),
        Ok(vec![ContratoEvent::Reactivado { motivo: None }])
    );
    assert!(given(&activo())
        .reactivar(None)
        .is_err_and(invalid(EstadoContrato::Activo)));
    let mut events = suspendido();
    events.push(ContratoEvent::Reactivado { motivo: None });
    assert_eq!(given(&events).estado(), Some(EstadoContrato::Activo));
}

#[test]
fn termination_cancels_an_active_or_suspended_contract_for_good() {
    for history in [activo(), suspendido()] {
        let mut events = history.clone();
        events.extend(given(&history).terminar(motivo("fin")).unwrap());
        let cancelado = given(&events);
        assert_eq!(cancelado.estado(), Some(EstadoContrato::Cancelado));
        assert!(cancelado
            .reactivar(None)
            .is_err_and(invalid(EstadoContrato::Cancelado)));
        assert!(cancelado.terminar(None).is_err());
    }
    assert!(given(&[creado()])
        .terminar(None)
        .is_err_and(invalid(EstadoContrato::Pendiente)));
    assert!(given(&en_revision()).terminar(None).is_err());
}

#[test]
fn a_contract_expires_only_after_its_fecha_fin() {
    let contrato = given(&activo());
    assert!(contrato.vencer(fecha("2025-12-31")).is_err());
    assert_eq!(
        contrato.vencer(fecha("2026-01-01")),
        Ok(vec![ContratoEvent::Vencido])
    );
    let mut events = activo();
    events.push(ContratoEvent::Vencido);
    let vencido = given(&events);
    assert_eq!(vencido.estado(), Some(EstadoContrato::Vencido));
    assert!(vencido
        .vencer(fecha("2030-01-01"))
        .is_err_and(invalid(EstadoContrato::Vencido)));
    let mut open_ended = nuevo();
    open_ended.fecha_fin = None;
    assert!(given(&[ContratoEvent::Creado(open_ended)])
        .vencer(fecha("2100-01-01"))
        .is_err());
}

#[test]
fn changing_terms_carries_the_complete_new_terms() {
    let contrato = given(&activo());
    let cambios = CambiosContrato {
        monto: Some(Monto::new(Amount::from_units(30)).unwrap()),
        condiciones: Some(None),
        ..CambiosContrato::default()
    };
    let events = contrato.actualizar(cambios).unwrap();
    assert_eq!(
        events,
        vec![ContratoEvent::Actualizado {
            monto: Monto::parse("30").unwrap(),
            moneda: Moneda::parse("USD").unwrap(),
            condiciones: None,
            fecha_fin: Some(fecha("2025-12-31")),
        }]
    );
    let mut history = activo();
    history.extend(events);
    let updated = given(&history);
    assert_eq!(updated.version(), 3);
    assert_eq!(updated.state().unwrap().monto, Monto::parse("30").unwrap());
    assert_eq!(updated.estado(), Some(EstadoContrato::Activo));
}

#[test]
fn a_change_that_changes_nothing_emits_nothing_and_bad_dates_are_refused() {
    let contrato = given(&[creado()]);
    let same = CambiosContrato {
        moneda: Some(Moneda::parse("USD").unwrap()),
        ..CambiosContrato::default()
    };
    assert_eq!(contrato.actualizar(same), Ok(vec![]));
    let before_start = CambiosContrato {
        fecha_fin: Some(Some(fecha("2024-01-01"))),
        ..CambiosContrato::default()
    };
    assert!(matches!(
        contrato.actualizar(before_start),
        Err(DomainError::FechaFinAntesDeInicio { .. })
    ));
    let open_ended = CambiosContrato {
        fecha_fin: Some(None),
        ..CambiosContrato::default()
    };
    assert_eq!(contrato.actualizar(open_ended).unwrap().len(), 1);
}

#[test]
fn lifecycle_events_name_their_new_state() {
    assert_eq!(
        ContratoEvent::Terminado { motivo: None }.estado_nuevo(),
        Some(EstadoContrato::Cancelado)
    );
    assert_eq!(creado().tipo(), "ContratoCreado");
    assert_eq!(ContratoEvent::Vencido.tipo(), "ContratoVencido");
}
