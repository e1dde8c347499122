//! Given/when/then tests of the `Programa` aggregate: given a program in some state, when a
//! command runs, then these events (or this error).

use chrono::{DateTime, Utc};
use kernel::Amount;
use uuid::Uuid;

use super::*;

fn now() -> DateTime<Utc> {
    kernel::now()
}

fn nuevo(estado: EstadoInicial) -> NuevoPrograma {
    NuevoPrograma {
        nombre: Nombre::parse("Programa Verano").unwrap(),
        brand_id: BrandId::parse("brand-1").unwrap(),
        tipo: TipoPrograma::Afiliados,
        estado,
        vigencia: Vigencia::new(
            parse_date("2025-06-01").unwrap(),
            parse_date("2025-08-31").unwrap(),
        )
        .unwrap(),
        terminos: Terminos::new(
            ModeloComision::Cpa,
            Moneda::parse("USD").unwrap(),
            "25.5".parse::<Amount>().unwrap(),
            Some(Amount::from_units(100)),
        )
        .unwrap(),
        presupuesto: None,
    }
}

/// Given a program in `estado` (reached through legal moves).
fn given(estado: EstadoPrograma) -> Programa {
    let (mut programa, _) =
        Programa::crear(Uuid::now_v7(), nuevo(EstadoInicial::Borrador), &[], now());
    match estado {
        EstadoPrograma::Borrador => {}
        EstadoPrograma::Activo => {
            programa.activar(now()).unwrap();
        }
        EstadoPrograma::Suspendido => {
            programa.activar(now()).unwrap();
            programa.suspender(now()).unwrap();
        }
        EstadoPrograma::Cerrado => {
            programa.activar(now()).unwrap();
            programa.cerrar(now()).unwrap();
        }
    }
    programa
}

fn given_afiliado(estado: EstadoAfiliacion) -> (Programa, Uuid) {
    let mut programa = given(EstadoPrograma::Activo);
    let afiliado = Uuid::now_v7();
    let elegibilidad = if estado == EstadoAfiliacion::Pendiente {
        Elegibilidad::NoElegible
    } else {
        Elegibilidad::Elegible
    };
    programa.afiliar(afiliado, elegibilidad, now()).unwrap();
    let pedido = match estado {
        EstadoAfiliacion::Pendiente | EstadoAfiliacion::Activa => None,
        EstadoAfiliacion::Suspendida => Some(EstadoPedido::Suspendida),
        EstadoAfiliacion::Baja => Some(EstadoPedido::Baja),
    };
    if let Some(pedido) = pedido {
        programa
            .cambiar_afiliacion(afiliado, pedido, Elegibilidad::Elegible, now())
            .unwrap();
    }
    assert_eq!(programa.afiliacion(afiliado).unwrap().estado, estado);
    (programa, afiliado)
}

#[test]
fn creating_a_draft_publishes_only_programa_creado() {
    let id = Uuid::now_v7();
    let (programa, events) = Programa::crear(id, nuevo(EstadoInicial::Borrador), &[], now());
    assert_eq!(programa.estado(), EstadoPrograma::Borrador);
    assert_eq!(
        events,
        [ProgramaEvent::Creado {
            programa_id: id,
            nombre: "Programa Verano".into(),
            brand_id: "brand-1".into(),
            tipo: TipoPrograma::Afiliados,
            estado: EstadoPrograma::Borrador,
        }]
    );
}

#[test]
fn creating_an_active_program_publishes_its_activation_too() {
    let (programa, events) =
        Programa::crear(Uuid::now_v7(), nuevo(EstadoInicial::Activo), &[], now());
    assert_eq!(programa.estado(), EstadoPrograma::Activo);
    assert!(matches!(events[1], ProgramaEvent::Activado { .. }));
}

#[test]
fn creating_with_partners_affiliates_each_by_its_eligibility() {
    let (elegible, pendiente, bloqueado) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (programa, events) = Programa::crear(
        Uuid::now_v7(),
        nuevo(EstadoInicial::Borrador),
        &[
            (elegible, Elegibilidad::Elegible),
            (pendiente, Elegibilidad::NoElegible),
            (bloqueado, Elegibilidad::Bloqueado),
        ],
        now(),
    );
    assert_eq!(events.len(), 4);
    assert_eq!(
        programa.afiliacion(elegible).unwrap().estado,
        EstadoAfiliacion::Activa
    );
    assert_eq!(
        programa.afiliacion(pendiente).unwrap().estado,
        EstadoAfiliacion::Pendiente
    );
    assert_eq!(
        programa.afiliacion(bloqueado).unwrap().estado,
        EstadoAfiliacion::Suspendida
    );
}

#[test]
fn the_legal_lifecycle_moves_publish_their_events() {
    let mut programa = given(EstadoPrograma::Borrador);
    assert!(matches!(
        programa.activar(now()),
        Ok(ProgramaEvent::Activado { .. })
    ));
    assert!(matches!(
        programa.suspender(now()),
        Ok(ProgramaEvent::Suspendido { .. })
    ));
    assert!(matches!(
        programa.activar(now()),
        Ok(ProgramaEvent::Activado { .. })
    ));
    assert!(matches!(
        programa.cerrar(now()),
        Ok(ProgramaEvent::Cerrado { .. })
    ));
    assert_eq!(programa.estado(), EstadoPrograma::Cerrado);

    let mut suspendido = given(EstadoPrograma::Suspendido);
    assert!(matches!(
        suspendido.cerrar(now()),
        Ok(ProgramaEvent::Cerrado { .. })
    ));
}

/// A lifecycle command as a plain function.
type Command = fn(&mut Programa) -> Result<ProgramaEvent, DomainError>;

#[test]
fn illegal_lifecycle_moves_are_refused_and_change_nothing() {
    let cases: [(EstadoPrograma, Command); 7] = [
        (EstadoPrograma::Borrador, |p| p.suspender(now())),
        (EstadoPrograma::Borrador, |p| p.cerrar(now())),
        (EstadoPrograma::Activo, |p| p.activar(now())),
        (EstadoPrograma::Suspendido, |p| p.suspender(now())),
        (EstadoPrograma::Cerrado, |p| p.activar(now())),
        (EstadoPrograma::Cerrado, |p| p.suspender(now())),
        (EstadoPrograma::Cerrado, |p| p.cerrar(now())),
    ];
    for (estado, command) in cases {
        let mut programa = given(estado);
        let before = programa.clone();
        assert!(
            matches!(
                command(&mut programa),
                Err(DomainError::TransicionInvalida { .. })
            ),
            "from {estado}"
        );
        assert_eq!(programa, before);
    }
}

#[test]
fn an_eligible_partner_is_affiliated_active_and_an_unknown_one_pending() {
    let mut programa = given(EstadoPrograma::Activo);
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(
        programa.afiliar(a, Elegibilidad::Elegible, now()).unwrap(),
        ProgramaEvent::AfiliacionCreada {
            programa_id: programa.id(),
            afiliado_id: a,
            estado: EstadoAfiliacion::Activa
        }
    );
    programa
        .afiliar(b, Elegibilidad::NoElegible, now())
        .unwrap();
    assert_eq!(
        programa.afiliacion(b).unwrap().estado,
        EstadoAfiliacion::Pendiente
    );
    assert_eq!(programa.afiliacion(b).unwrap().fecha_baja, None);
}

#[test]
fn a_partner_is_affiliated_at_most_once() {
    let (mut programa, afiliado) = given_afiliado(EstadoAfiliacion::Activa);
    assert_eq!(
        programa.afiliar(afiliado, Elegibilidad::Elegible, now()),
        Err(DomainError::AfiliacionExistente)
    );
}

#[test]
fn a_closed_program_takes_no_new_partner() {
    let mut programa = given(EstadoPrograma::Cerrado);
    assert_eq!(
        programa.afiliar(Uuid::now_v7(), Elegibilidad::Elegible, now()),
        Err(DomainError::ProgramaCerrado)
    );
}

#[test]
fn activating_an_affiliation_needs_an_eligible_partner() {
    let (mut programa, afiliado) = given_afiliado(EstadoAfiliacion::Pendiente);
    assert_eq!(
        programa.cambiar_afiliacion(
            afiliado,
            EstadoPedido::Activa,
            Elegibilidad::NoElegible,
            now()
        ),
        Err(DomainError::PartnerNoElegible)
    );
    assert_eq!(
        programa.cambiar_afiliacion(
            afiliado,
            EstadoPedido::Activa,
            Elegibilidad::Bloqueado,
            now()
        ),
        Err(DomainError::PartnerNoElegible)
    );
    let event = programa
        .cambiar_afiliacion(
            afiliado,
            EstadoPedido::Activa,
            Elegibilidad::Elegible,
            now(),
        )
        .unwrap();
    assert_eq!(
        event,
        Some(ProgramaEvent::AfiliacionActualizada {
            programa_id: programa.id(),
            afiliado_id: afiliado,
            anterior: EstadoAfiliacion::Pendiente,
            nuevo: EstadoAfiliacion::Activa,
        })
    );
}

#[test]
fn a_suspended_affiliation_is_reactivated_for_an_eligible_partner() {
    let (mut programa, afiliado) = given_afiliado(EstadoAfiliacion::Suspendida);
    assert!(programa
        .cambiar_afiliacion(
            afiliado,
            EstadoPedido::Activa,
            Elegibilidad::Elegible,
            now()
        )
        .unwrap()
        .is_some());
}

#[test]
fn leaving_a_program_records_the_date_and_is_final() {
    let (mut programa, afiliado) = given_afiliado(EstadoAfiliacion::Baja);
    assert!(programa.afiliacion(afiliado).unwrap().fecha_baja.is_some());
    for pedido in [EstadoPedido::Activa, EstadoPedido::Suspendida] {
        assert!(matches!(
            programa.cambiar_afiliacion(afiliado, pedido, Elegibilidad::Elegible, now()),
            Err(DomainError::TransicionInvalida { desde: "BAJA", .. })
        ));
    }
}

#[test]
fn asking_for_the_current_state_changes_nothing() {
    let (mut programa, afiliado) = given_afiliado(EstadoAfiliacion::Baja);
    assert_eq!(
        programa.cambiar_afiliacion(afiliado, EstadoPedido::Baja, Elegibilidad::Elegible, now()),
        Ok(None)
    );
}

#[test]
fn changing_an_unknown_affiliation_is_refused() {
    let mut programa = given(EstadoPrograma::Activo);
    assert_eq!(
        programa.cambiar_afiliacion(
            Uuid::now_v7(),
            EstadoPedido::Baja,
            Elegibilidad::Elegible,
            now()
        ),
        Err(DomainError::AfiliacionNoEncontrada)
    );
}

#[test]
fn a_closed_programs_affiliations_no_longer_change_by_hand() {
    let (mut programa, afiliado) = given_afiliado(EstadoAfiliacion::Activa);
    programa.cerrar(now()).unwrap();
    assert_eq!(
        programa.cambiar_afiliacion(afiliado, EstadoPedido::Baja, Elegibilidad::Elegible, now()),
        Err(DomainError::ProgramaCerrado)
    );
}

#[test]
fn an_eligible_partners_pending_affiliation_is_promoted_once() {
    let (mut programa, afiliado) = given_afiliado(EstadoAfiliacion::Pendiente);
    assert!(matches!(
        programa.promover(afiliado, now()),
        Some(ProgramaEvent::AfiliacionActualizada {
            nuevo: EstadoAfiliacion::Activa,
            ..
        })
    ));
    assert_eq!(programa.promover(afiliado, now()), None);
}

#[test]
fn promotion_leaves_suspended_and_departed_partners_alone() {
    for estado in [EstadoAfiliacion::Suspendida, EstadoAfiliacion::Baja] {
        let (mut programa, afiliado) = given_afiliado(estado);
        assert_eq!(programa.promover(afiliado, now()), None);
        assert_eq!(programa.afiliacion(afiliado).unwrap().estado, estado);
    }
}

#[test]
fn a_removed_partner_is_suspended_once_and_departed_ones_stay_departed() {
    for estado in [EstadoAfiliacion::Pendiente, EstadoAfiliacion::Activa] {
        let (mut programa, afiliado) = given_afiliado(estado);
        assert!(programa.suspender_afiliado(afiliado, now()).is_some());
        assert_eq!(
            programa.afiliacion(afiliado).unwrap().estado,
            EstadoAfiliacion::Suspendida
        );
        assert_eq!(programa.suspender_afiliado(afiliado, now()), None);
    }
    let (mut programa, afiliado) = given_afiliado(EstadoAfiliacion::Baja);
    assert_eq!(programa.suspender_afiliado(afiliado, now()), None);
}
