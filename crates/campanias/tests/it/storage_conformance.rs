//! The repositories' behaviours, written once and run against SQLite and PostgreSQL: program
//! round trips with affiliations and exact money, list filters and pagination, the partner
//! record and its lock, notification uniqueness, claims (leases) and recorded attempts.

use campanias::domain::{
    parse_date, BrandId, Elegibilidad, EstadoAfiliacion, EstadoInicial, EstadoNotificacion,
    EstadoPedido, EstadoPrograma, Mensaje, ModeloComision, Moneda, Nombre, NuevoPrograma,
    Prioridad, Programa, Terminos, TipoPrograma, Vigencia,
};
use campanias::storage::{self as repo, Intento, NotificacionFilter, ProgramaFilter};
use chrono::Duration;
use kernel::Amount;
use storage::Db;
use uuid::Uuid;

fn nuevo(
    nombre: &str,
    brand: &str,
    tipo: TipoPrograma,
    presupuesto: Option<Amount>,
) -> NuevoPrograma {
    NuevoPrograma {
        nombre: Nombre::parse(nombre).unwrap(),
        brand_id: BrandId::parse(brand).unwrap(),
        tipo,
        estado: EstadoInicial::Borrador,
        vigencia: Vigencia::new(
            parse_date("2025-06-01").unwrap(),
            parse_date("2025-08-31").unwrap(),
        )
        .unwrap(),
        terminos: Terminos::new(
            ModeloComision::Cpa,
            Moneda::parse("USD").unwrap(),
            "25.5".parse().unwrap(),
            Some("100.01".parse().unwrap()),
        )
        .unwrap(),
        presupuesto,
    }
}

async fn insert(db: &Db, programa: &Programa) {
    let mut tx = db.begin().await.unwrap();
    repo::insert_programa(&mut tx, programa).await.unwrap();
    tx.commit().await.unwrap();
}

async fn save(db: &Db, programa: &Programa) {
    let mut tx = db.begin().await.unwrap();
    repo::update_programa(&mut tx, programa).await.unwrap();
    tx.commit().await.unwrap();
}

fn mensaje(destinatario: &str) -> Mensaje {
    Mensaje {
        destinatario: destinatario.to_owned(),
        asunto: "Asunto".to_owned(),
        contenido: "Contenido con tilde: revisión".to_owned(),
        prioridad: Prioridad::Alta,
    }
}

async fn a_program_round_trips_with_its_affiliations_and_exact_money(db: &Db) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let (mut programa, _) = Programa::crear(
        kernel::new_id(),
        nuevo(
            "Verano",
            "brand-1",
            TipoPrograma::Saas,
            Some("1234.56".parse().unwrap()),
        ),
        &[(a, Elegibilidad::Elegible), (b, Elegibilidad::NoElegible)],
        kernel::now(),
    );
    insert(db, &programa).await;
    assert_eq!(
        repo::find(db, programa.id()).await.unwrap().unwrap(),
        programa
    );

    programa.activar(kernel::now()).unwrap();
    programa
        .cambiar_afiliacion(a, EstadoPedido::Baja, Elegibilidad::Elegible, kernel::now())
        .unwrap();
    programa.promover(b, kernel::now()).unwrap();
    save(db, &programa).await;
    let loaded = repo::find(db, programa.id()).await.unwrap().unwrap();
    assert_eq!(loaded, programa);
    assert_eq!(loaded.estado(), EstadoPrograma::Activo);
    assert_eq!(loaded.afiliacion(a).unwrap().estado, EstadoAfiliacion::Baja);
    assert!(loaded.afiliacion(a).unwrap().fecha_baja.is_some());
    assert_eq!(
        loaded.state().terminos.tarifa_base(),
        Amount::from_cents(2550)
    );
    assert_eq!(
        loaded.state().presupuesto,
        Some(Amount::from_cents(123_456))
    );

    let mut tx = db.begin().await.unwrap();
    let locked = repo::load_for_update(&mut tx, programa.id()).await.unwrap();
    assert_eq!(locked, Some(programa));
    assert!(repo::load_for_update(&mut tx, Uuid::now_v7())
        .await
        .unwrap()
        .is_none());
}

async fn the_list_filters_and_pages_in_creation_order(db: &Db) {
    let afiliado = Uuid::now_v7();
    let mut ids = Vec::new();
    for i in 0..5 {
        let tipo = if i % 2 == 0 {
            TipoPrograma::Afiliados
        } else {
            TipoPrograma::Advocacy
        };
        let afiliados = if i >= 3 {
            vec![(afiliado, Elegibilidad::NoElegible)]
        } else {
            Vec::new()
        };
        let (mut programa, _) = Programa::crear(
            kernel::new_id(),
            nuevo(&format!("P{i}"), if i < 2 { "a" } else { "b" }, tipo, None),
            &afiliados,
            kernel::now(),
        );
        if i == 4 {
            programa.activar(kernel::now()).unwrap();
        }
        insert(db, &programa).await;
        ids.push(programa.id());
    }
    let all = ProgramaFilter::default();
    let (page, total) = repo::list(db, &all, 2, None).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(page.iter().map(Programa::id).collect::<Vec<_>>(), ids[..3]);
    let (rest, _) = repo::list(db, &all, 2, Some(ids[1])).await.unwrap();
    assert_eq!(rest.iter().map(Programa::id).collect::<Vec<_>>(), ids[2..5]);

    let count =
        |filter: ProgramaFilter| async move { repo::list(db, &filter, 50, None).await.unwrap() };
    let (brand_b, total) = count(ProgramaFilter {
        brand_id: Some("b".into()),
        ..ProgramaFilter::default()
    })
    .await;
    assert_eq!((brand_b.len(), total), (3, 3));
    let (_, total) = count(ProgramaFilter {
        tipo: Some(TipoPrograma::Advocacy),
        ..ProgramaFilter::default()
    })
    .await;
    assert_eq!(total, 2);
    let (activos, total) = count(ProgramaFilter {
        estado: Some(EstadoPrograma::Activo),
        ..ProgramaFilter::default()
    })
    .await;
    assert_eq!((activos[0].id(), total), (ids[4], 1));
    let (suyos, total) = count(ProgramaFilter {
        afiliado_id: Some(afiliado),
        ..ProgramaFilter::default()
    })
    .await;
    assert_eq!(total, 2);
    assert_eq!(
        suyos.iter().map(Programa::id).collect::<Vec<_>>(),
        ids[3..5]
    );
    // Each listed program carries its own affiliations, not its neighbours'.
    assert_eq!(suyos[0].state().afiliaciones.len(), 1);
    // The repository returns `limit + 1` rows: here the three without partners and the next.
    let (primeros, _) = repo::list(db, &all, 3, None).await.unwrap();
    assert!(primeros[..3]
        .iter()
        .all(|p| p.state().afiliaciones.is_empty()));
    assert_eq!(primeros[3].state().afiliaciones.len(), 1);
}

async fn a_partners_programs_are_found_by_affiliation_state(db: &Db) {
    let afiliado = Uuid::now_v7();
    let (pendiente, _) = Programa::crear(
        kernel::new_id(),
        nuevo("P", "b", TipoPrograma::Afiliados, None),
        &[(afiliado, Elegibilidad::NoElegible)],
        kernel::now(),
    );
    let (activa, _) = Programa::crear(
        kernel::new_id(),
        nuevo("A", "b", TipoPrograma::Afiliados, None),
        &[(afiliado, Elegibilidad::Elegible)],
        kernel::now(),
    );
    insert(db, &pendiente).await;
    insert(db, &activa).await;
    let mut tx = db.begin().await.unwrap();
    let found = repo::programas_con_afiliado(&mut tx, afiliado, &[EstadoAfiliacion::Pendiente])
        .await
        .unwrap();
    assert_eq!(found, [pendiente.id()]);
    let both = repo::programas_con_afiliado(
        &mut tx,
        afiliado,
        &[EstadoAfiliacion::Pendiente, EstadoAfiliacion::Activa],
    )
    .await
    .unwrap();
    assert_eq!(both.len(), 2);
}

async fn a_partner_record_is_created_on_first_lock_and_saved(db: &Db) {
    let partner_id = Uuid::now_v7();
    assert!(repo::find_partner(db, partner_id).await.unwrap().is_none());
    let mut tx = db.begin().await.unwrap();
    let mut partner = repo::lock_partner(&mut tx, partner_id).await.unwrap();
    assert_eq!(partner.elegibilidad(), Elegibilidad::NoElegible);
    partner.contacto(Some("ana@example.com"), Some("Ana"));
    assert!(partner.senal_elegibilidad(true, kernel::now()));
    repo::save_partner(&mut tx, &partner).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    let again = repo::lock_partner(&mut tx, partner_id).await.unwrap();
    assert_eq!(again, partner);
    drop(tx);
    assert_eq!(
        repo::find_partner(db, partner_id).await.unwrap(),
        Some(partner)
    );
}

async fn an_event_makes_one_notification_per_recipient(db: &Db) {
    let evento = Uuid::now_v7();
    let mut tx = db.begin().await.unwrap();
    assert!(
        repo::insert_notificacion(&mut tx, evento, "X", &mensaje("a@x.com"))
            .await
            .unwrap()
    );
    assert!(
        !repo::insert_notificacion(&mut tx, evento, "X", &mensaje("a@x.com"))
            .await
            .unwrap()
    );
    assert!(
        repo::insert_notificacion(&mut tx, evento, "X", &mensaje("b@x.com"))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let (all, total) = repo::list_notificaciones(db, &NotificacionFilter::default(), 50, None)
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(all[0].estado, EstadoNotificacion::Pendiente);
    assert_eq!(all[0].intentos, 0);
    assert_eq!(all[0].contenido, "Contenido con tilde: revisión");
    let (solo_b, total) = repo::list_notificaciones(
        db,
        &NotificacionFilter {
            destinatario: Some("b@x.com".into()),
            ..NotificacionFilter::default()
        },
        50,
        None,
    )
    .await
    .unwrap();
    assert_eq!((solo_b[0].destinatario.as_str(), total), ("b@x.com", 1));
    let (page, _) =
        repo::list_notificaciones(db, &NotificacionFilter::default(), 1, Some(all[0].id))
            .await
            .unwrap();
    assert_eq!(page[0].id, all[1].id);
}

async fn a_claim_is_exclusive_until_its_lease_expires(db: &Db) {
    let mut tx = db.begin().await.unwrap();
    repo::insert_notificacion(&mut tx, Uuid::now_v7(), "X", &mensaje("a@x.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let now = kernel::now();
    let until = now + Duration::seconds(60);
    let first = repo::claim_due(db, Uuid::now_v7(), now, until, 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let second = repo::claim_due(db, Uuid::now_v7(), now, until, 10)
        .await
        .unwrap();
    assert!(second.is_empty(), "a claimed row is not handed out twice");
    let later = until + Duration::seconds(1);
    let taken_over = repo::claim_due(db, Uuid::now_v7(), later, later + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(taken_over.len(), 1, "an expired lease can be taken over");
}

/// A worker's batch of attempts is recorded in one transaction, each under the claim that
/// made it: one whose claim was lost is refused, the others are recorded.
async fn a_batch_of_attempts_is_recorded_together(db: &Db) {
    let mut tx = db.begin().await.unwrap();
    for to in ["a@x.com", "b@x.com", "c@x.com"] {
        repo::insert_notificacion(&mut tx, Uuid::now_v7(), "X", &mensaje(to))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let now = kernel::now();
    let claim = Uuid::now_v7();
    let claimed = repo::claim_due(db, claim, now, now + Duration::seconds(60), 2)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let other = repo::claim_due(db, Uuid::now_v7(), now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(other.len(), 1);
    let sent_at = kernel::now();
    let attempts = [
        (claimed[0].id, Intento::Enviada { at: sent_at }),
        (other[0].id, Intento::Enviada { at: sent_at }),
        (
            claimed[1].id,
            Intento::Fallida {
                error: "550".into(),
            },
        ),
    ];
    assert_eq!(
        repo::record_attempts(db, claim, &attempts).await.unwrap(),
        vec![true, false, true]
    );
    let (all, _) = repo::list_notificaciones(db, &NotificacionFilter::default(), 50, None)
        .await
        .unwrap();
    let estado = |id: Uuid| all.iter().find(|n| n.id == id).unwrap().estado;
    assert_eq!(estado(claimed[0].id), EstadoNotificacion::Enviada);
    assert_eq!(estado(claimed[1].id), EstadoNotificacion::Fallida);
    assert_eq!(estado(other[0].id), EstadoNotificacion::Pendiente);
}

async fn attempts_are_recorded_under_the_claim_that_made_them(db: &Db) {
    let mut tx = db.begin().await.unwrap();
    repo::insert_notificacion(&mut tx, Uuid::now_v7(), "X", &mensaje("a@x.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let now = kernel::now();
    let claim = Uuid::now_v7();
    let claimed = repo::claim_due(db, claim, now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    let id = claimed[0].id;
    assert!(!repo::record_attempt(
        db,
        id,
        Uuid::now_v7(),
        &Intento::Fallida { error: "x".into() }
    )
    .await
    .unwrap());
    let retry_at = now + Duration::seconds(30);
    let retry = Intento::Reintentar {
        error: "451 later".into(),
        proximo: retry_at,
    };
    assert!(repo::record_attempt(db, id, claim, &retry).await.unwrap());
    // Not due before its retry time, even though it is no longer claimed.
    let claim = Uuid::now_v7();
    assert!(
        repo::claim_due(db, claim, now, now + Duration::seconds(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = repo::claim_due(db, claim, retry_at, retry_at + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(due[0].intentos, 1);
    let sent_at = kernel::now();
    assert!(
        repo::record_attempt(db, id, claim, &Intento::Enviada { at: sent_at })
            .await
            .unwrap()
    );
    let (all, _) = repo::list_notificaciones(db, &NotificacionFilter::default(), 50, None)
        .await
        .unwrap();
    assert_eq!(all[0].estado, EstadoNotificacion::Enviada);
    assert_eq!(all[0].intentos, 2);
    assert_eq!(all[0].enviada_en, Some(sent_at));
    assert_eq!(all[0].ultimo_error.as_deref(), Some("451 later"));
    assert!(repo::claim_due(
        db,
        Uuid::now_v7(),
        later(),
        later() + Duration::seconds(1),
        10
    )
    .await
    .unwrap()
    .is_empty());
}

fn later() -> chrono::DateTime<chrono::Utc> {
    kernel::now() + Duration::days(1)
}

async fn migrations_apply_once(db: &Db) {
    db.migrate_with("campanias", campanias::MIGRATIONS)
        .await
        .expect("a second migration run is a no-op");
}

testkit::on_both_backends!(
    crate::helpers::SCHEMA;
    a_program_round_trips_with_its_affiliations_and_exact_money,
    the_list_filters_and_pages_in_creation_order,
    a_partners_programs_are_found_by_affiliation_state,
    a_partner_record_is_created_on_first_lock_and_saved,
    an_event_makes_one_notification_per_recipient,
    a_claim_is_exclusive_until_its_lease_expires,
    attempts_are_recorded_under_the_claim_that_made_them,
    a_batch_of_attempts_is_recorded_together,
    migrations_apply_once,
);
