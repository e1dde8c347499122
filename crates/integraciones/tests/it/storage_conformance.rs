//! The partner repository's behaviours, written once and run against SQLite and PostgreSQL:
//! round trips, the unique e-mail and onboarding rules, list filters and pagination, soft
//! delete, revocations.

use chrono::Utc;
use integraciones::domain::{
    CambiosPartner, Email, EstadoKyc, EstadoPartner, Motivo, Nombre, NuevaIntegracion,
    NuevoPartner, Partner, Telefono, TipoIntegracion, TipoPartner,
};
use integraciones::storage::{self as repo, PartnerFilter, RepoError};
use serde_json::json;
use storage::Db;
use uuid::Uuid;

fn datos(nombre: &str, email: &str, tipo: TipoPartner) -> NuevoPartner {
    NuevoPartner {
        nombre: Nombre::parse(nombre).unwrap(),
        email: Email::parse(email).unwrap(),
        telefono: Telefono::parse(Some("+57 300")).unwrap(),
        direccion: None,
        tipo,
    }
}

fn new_partner(nombre: &str, email: &str, tipo: TipoPartner) -> Partner {
    Partner::register(
        kernel::new_id(),
        datos(nombre, email, tipo),
        None,
        kernel::now(),
    )
    .0
}

async fn insert(db: &Db, partner: &Partner) -> Result<(), RepoError> {
    let mut tx = db.begin().await.unwrap();
    repo::insert_partner(&mut tx, partner).await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn save(db: &Db, partner: &Partner) {
    let mut tx = db.begin().await.unwrap();
    repo::update_partner(&mut tx, partner).await.unwrap();
    tx.commit().await.unwrap();
}

async fn load(db: &Db, id: Uuid) -> Partner {
    let mut tx = db.begin().await.unwrap();
    let partner = repo::load_for_update(&mut tx, id).await.unwrap().unwrap();
    drop(tx);
    partner
}

fn integracion(nombre: &str) -> NuevaIntegracion {
    NuevaIntegracion {
        tipo: TipoIntegracion::Webhook,
        nombre: Nombre::parse(nombre).unwrap(),
        descripcion: None,
        configuracion: json!({"secret": "s3cr3t"}).as_object().unwrap().clone(),
    }
}

async fn a_partner_round_trips_with_its_integrations_and_documents(db: &Db) {
    let mut partner = new_partner("Ana Pérez", "Ana@Example.com", TipoPartner::Influencer);
    insert(db, &partner).await.unwrap();
    partner
        .add_integracion(kernel::new_id(), integracion("tienda"), kernel::now())
        .unwrap();
    // Two, so the loaded partner is assembled from several joined rows, in id order.
    partner
        .add_integracion(kernel::new_id(), integracion("blog"), kernel::now())
        .unwrap();
    let documentos = json!({"cedula": "123"}).as_object().unwrap().clone();
    partner
        .verify_kyc(EstadoKyc::Aprobado, Some(documentos), None, kernel::now())
        .unwrap();
    save(db, &partner).await;

    let loaded = repo::find(db, partner.id()).await.unwrap().unwrap();
    assert_eq!(loaded, partner);
    assert_eq!(loaded.state().integraciones.len(), 2);
    assert_eq!(loaded.state().email.as_str(), "Ana@Example.com");
    assert_eq!(
        loaded.state().integraciones[0].configuracion["secret"],
        "s3cr3t"
    );
    assert!(repo::find(db, kernel::new_id()).await.unwrap().is_none());
}

async fn a_second_live_partner_with_the_same_email_in_any_case_is_refused(db: &Db) {
    insert(
        db,
        &new_partner("A", "dup@example.com", TipoPartner::Afiliado),
    )
    .await
    .unwrap();
    let twin = new_partner("B", "DUP@Example.COM", TipoPartner::Afiliado);
    assert!(matches!(
        insert(db, &twin).await,
        Err(RepoError::EmailTaken)
    ));
    let mut tx = db.begin().await.unwrap();
    let email = Email::parse("Dup@example.com").unwrap();
    let (_, taken) = repo::onboarding_partner_and_email(&mut tx, Uuid::now_v7(), Some(&email))
        .await
        .unwrap();
    assert!(taken);
    let (_, taken) = repo::onboarding_partner_and_email(&mut tx, Uuid::now_v7(), None)
        .await
        .unwrap();
    assert!(!taken);
}

async fn a_soft_deleted_partner_frees_its_email_and_revokes_its_integrations(db: &Db) {
    let mut partner = new_partner("A", "free@example.com", TipoPartner::Afiliado);
    partner
        .add_integracion(kernel::new_id(), integracion("api"), kernel::now())
        .unwrap();
    insert(db, &partner).await.unwrap();
    partner.delete(kernel::now()).unwrap();
    save(db, &partner).await;

    let loaded = load(db, partner.id()).await;
    assert_eq!(loaded.state().estado, EstadoPartner::Eliminado);
    assert!(loaded.state().integraciones.iter().all(|i| !i.activa));
    assert!(loaded.state().integraciones[0].fecha_revocacion.is_some());

    insert(
        db,
        &new_partner("B", "Free@example.com", TipoPartner::Afiliado),
    )
    .await
    .expect("the e-mail of a deleted partner is free again");
}

async fn a_revocation_is_persisted_with_its_reason(db: &Db) {
    let mut partner = new_partner("A", "rev@example.com", TipoPartner::Afiliado);
    insert(db, &partner).await.unwrap();
    let id = kernel::new_id();
    partner
        .add_integracion(id, integracion("batch"), kernel::now())
        .unwrap();
    save(db, &partner).await;
    let mut loaded = load(db, partner.id()).await;
    let motivo = Motivo::parse(Some("rotated key")).unwrap();
    loaded
        .revoke_integracion(id, motivo, kernel::now())
        .unwrap();
    save(db, &loaded).await;

    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        repo::partner_of_integracion(&mut tx, id).await.unwrap(),
        Some(partner.id())
    );
    drop(tx);
    let reloaded = load(db, partner.id()).await;
    let stored = reloaded.integracion(id).unwrap();
    assert!(!stored.activa);
    assert_eq!(
        stored.motivo_revocacion.as_ref().map(|m| m.as_str()),
        Some("rotated key")
    );
}

async fn an_update_clears_optional_fields(db: &Db) {
    let mut partner = new_partner("A", "upd@example.com", TipoPartner::Afiliado);
    insert(db, &partner).await.unwrap();
    partner
        .update(
            CambiosPartner {
                nombre: Some(Nombre::parse("Nuevo").unwrap()),
                telefono: Some(None),
                tipo: Some(TipoPartner::Corporativo),
                ..CambiosPartner::default()
            },
            kernel::now(),
        )
        .unwrap();
    save(db, &partner).await;
    let loaded = load(db, partner.id()).await;
    assert_eq!(loaded.state().nombre.as_str(), "Nuevo");
    assert_eq!(loaded.state().telefono, None);
    assert_eq!(loaded.state().tipo, TipoPartner::Corporativo);
}

async fn the_list_filters_and_pages_in_creation_order(db: &Db) {
    let mut created = Vec::new();
    for (index, tipo) in [
        TipoPartner::Afiliado,
        TipoPartner::Influencer,
        TipoPartner::Influencer,
        TipoPartner::Embajador,
        TipoPartner::Influencer,
    ]
    .into_iter()
    .enumerate()
    {
        let partner = new_partner(
            &format!("Partner_{index} Tienda"),
            &format!("p{index}@Shop{index}.com"),
            tipo,
        );
        insert(db, &partner).await.unwrap();
        created.push(partner);
    }
    let mut deleted = created[4].clone();
    deleted.delete(kernel::now()).unwrap();
    save(db, &deleted).await;

    let everything = PartnerFilter::default();
    let (first, total) = repo::list(db, &everything, 2, None).await.unwrap();
    assert_eq!(total, 5, "deleted partners are listed unless filtered out");
    assert_eq!(
        first.len(),
        3,
        "limit + 1 rows tell that a next page exists"
    );
    let after = first[1].id();
    let (second, _) = repo::list(db, &everything, 2, Some(after)).await.unwrap();
    let ids: Vec<Uuid> = second.iter().map(Partner::id).collect();
    assert_eq!(ids, [created[2].id(), created[3].id(), created[4].id()]);

    let influencers = PartnerFilter {
        tipo: Some(TipoPartner::Influencer),
        ..PartnerFilter::default()
    };
    assert_eq!(repo::list(db, &influencers, 50, None).await.unwrap().1, 3);
    let live_influencers = PartnerFilter {
        estado: Some(EstadoPartner::Activo),
        ..influencers.clone()
    };
    assert_eq!(
        repo::list(db, &live_influencers, 50, None).await.unwrap().1,
        2
    );
    let pending = PartnerFilter {
        estado_kyc: Some(EstadoKyc::Pendiente),
        ..PartnerFilter::default()
    };
    assert_eq!(repo::list(db, &pending, 50, None).await.unwrap().1, 5);

    let by_name = PartnerFilter {
        q: Some("PARTNER_3".into()),
        ..PartnerFilter::default()
    };
    let (found, total) = repo::list(db, &by_name, 50, None).await.unwrap();
    assert_eq!((found.len(), total), (1, 1));
    assert_eq!(found[0].id(), created[3].id());
    let by_email = PartnerFilter {
        q: Some("shop1.C".into()),
        ..PartnerFilter::default()
    };
    assert_eq!(repo::list(db, &by_email, 50, None).await.unwrap().1, 1);
    // `_` and `%` are matched literally, not as wildcards.
    let wildcard = PartnerFilter {
        q: Some("%".into()),
        ..PartnerFilter::default()
    };
    assert_eq!(repo::list(db, &wildcard, 50, None).await.unwrap().1, 0);
    let underscore = PartnerFilter {
        q: Some("a_".into()),
        ..PartnerFilter::default()
    };
    assert_eq!(repo::list(db, &underscore, 50, None).await.unwrap().1, 0);
    let literal_underscore = PartnerFilter {
        q: Some("r_".into()),
        ..PartnerFilter::default()
    };
    assert_eq!(
        repo::list(db, &literal_underscore, 50, None)
            .await
            .unwrap()
            .1,
        5
    );
}

async fn one_partner_per_onboarding(db: &Db) {
    let onboarding = kernel::new_id();
    let first = Partner::register(
        kernel::new_id(),
        datos("A", "onb1@example.com", TipoPartner::Afiliado),
        Some(onboarding),
        kernel::now(),
    )
    .0;
    insert(db, &first).await.unwrap();
    let second = Partner::register(
        kernel::new_id(),
        datos("B", "onb2@example.com", TipoPartner::Afiliado),
        Some(onboarding),
        kernel::now(),
    )
    .0;
    assert!(matches!(
        insert(db, &second).await,
        Err(RepoError::OnboardingTaken)
    ));
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        repo::onboarding_partner_and_email(&mut tx, onboarding, None)
            .await
            .unwrap(),
        (Some(first.id()), false)
    );
}

/// The saga's insert: a taken e-mail or onboarding is a refusal that leaves the transaction
/// usable (PostgreSQL would abort it on a unique violation), so its other work still commits.
async fn an_insert_unless_taken_refuses_without_spoiling_the_transaction(db: &Db) {
    let onboarding = kernel::new_id();
    let register = |email: &str, onboarding: Uuid| {
        Partner::register(
            kernel::new_id(),
            datos("U", email, TipoPartner::Afiliado),
            Some(onboarding),
            kernel::now(),
        )
        .0
    };
    let first = register("unless@example.com", onboarding);
    let same_email = register("UNLESS@example.com", kernel::new_id());
    let same_onboarding = register("unless2@example.com", onboarding);
    let free = register("unless3@example.com", kernel::new_id());
    let mut tx = db.begin().await.unwrap();
    assert!(repo::insert_partner_unless_taken(&mut tx, &first)
        .await
        .unwrap());
    assert!(!repo::insert_partner_unless_taken(&mut tx, &same_email)
        .await
        .unwrap());
    assert!(
        !repo::insert_partner_unless_taken(&mut tx, &same_onboarding)
            .await
            .unwrap()
    );
    assert!(repo::insert_partner_unless_taken(&mut tx, &free)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    for (partner, kept) in [
        (&first, true),
        (&same_email, false),
        (&same_onboarding, false),
        (&free, true),
    ] {
        let found = repo::find(db, partner.id()).await.unwrap();
        assert_eq!(found.is_some(), kept, "{}", partner.state().email.as_str());
    }
}

async fn timestamps_keep_microseconds_and_utc(db: &Db) {
    let partner = new_partner("T", "time@example.com", TipoPartner::Afiliado);
    insert(db, &partner).await.unwrap();
    let loaded = repo::find(db, partner.id()).await.unwrap().unwrap();
    assert_eq!(
        loaded.state().fecha_creacion,
        partner.state().fecha_creacion
    );
    assert!(loaded.state().fecha_creacion <= Utc::now());
}

async fn migrations_apply_once(db: &Db) {
    db.migrate_with("integraciones", integraciones::MIGRATIONS)
        .await
        .expect("a second migration run is a no-op");
}

testkit::on_both_backends!(
    crate::helpers::SCHEMA;
    a_partner_round_trips_with_its_integrations_and_documents,
    a_second_live_partner_with_the_same_email_in_any_case_is_refused,
    a_soft_deleted_partner_frees_its_email_and_revokes_its_integrations,
    a_revocation_is_persisted_with_its_reason,
    an_update_clears_optional_fields,
    the_list_filters_and_pages_in_creation_order,
    one_partner_per_onboarding,
    an_insert_unless_taken_refuses_without_spoiling_the_transaction,
    timestamps_keep_microseconds_and_utc,
    migrations_apply_once,
);
