//! The repository's behaviours, written once and run against SQLite and PostgreSQL: the rule
//! configuration, known partners, one evaluation per contract, one account per partner, the
//! account list and the report totals.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use compliance::domain::{
    evaluar, CambiosReglas, ContratoPropuesto, CuentaFinanciera, EmailBloqueado, EstadoCuenta,
    Evaluacion, MetodoPago, Moneda, PartnerConocido, Periodo, ReglasCompliance, Vigencia,
};
use compliance::storage::{self as repo, CuentaFilter, TotalCuentas, TotalEvaluaciones};
use kernel::Amount;
use storage::Db;
use uuid::Uuid;

fn moneda(code: &str) -> Moneda {
    Moneda::parse(code).unwrap()
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 23, 59, 59).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

async fn commit_rules(db: &Db, reglas: &ReglasCompliance) {
    let mut tx = db.begin().await.unwrap();
    repo::save_rules(&mut tx, reglas, kernel::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn evaluacion(partner_id: Uuid, monto: &str, code: &str, when: DateTime<Utc>) -> Evaluacion {
    let contrato = ContratoPropuesto {
        partner_id,
        monto: monto.parse().unwrap(),
        moneda: code.into(),
        estado: "pendiente".into(),
        vigencia: Vigencia::leer("2025-01-01", None),
    };
    let partner = PartnerConocido {
        partner_id,
        email: "p@example.com".into(),
        nombre: "P".into(),
        tipo: "AFILIADO".into(),
    };
    Evaluacion {
        contrato_id: kernel::new_id(),
        partner_id,
        onboarding_id: Some(kernel::new_id()),
        monto: contrato.monto,
        moneda: code.into(),
        veredicto: evaluar(&contrato, Some(&partner), &ReglasCompliance::default()),
        evaluado_en: when,
    }
}

async fn insert_evaluation(db: &Db, evaluacion: &Evaluacion) -> bool {
    let mut tx = db.begin().await.unwrap();
    let inserted = repo::insert_evaluation(&mut tx, evaluacion).await.unwrap();
    tx.commit().await.unwrap();
    inserted
}

async fn insert_account(db: &Db, cuenta: &CuentaFinanciera) -> bool {
    let mut tx = db.begin().await.unwrap();
    let inserted = repo::insert_account(&mut tx, cuenta).await.unwrap();
    tx.commit().await.unwrap();
    inserted
}

async fn the_default_rules_are_written_once_and_an_operators_change_survives(db: &Db) {
    repo::ensure_rules(db, &ReglasCompliance::default())
        .await
        .unwrap();
    assert_eq!(
        repo::load_rules(db).await.unwrap(),
        ReglasCompliance::default()
    );
    let blocked = Uuid::now_v7();
    let changed = ReglasCompliance::default()
        .con_cambios(CambiosReglas {
            limite: Some("1234.56".parse().unwrap()),
            monedas: Some([moneda("GBP"), moneda("USD")].into()),
            partner_ids: Some([blocked].into()),
            emails: Some([EmailBloqueado::parse("Mal@Example.com").unwrap()].into()),
        })
        .unwrap();
    commit_rules(db, &changed).await;
    // A restart writes the defaults only where nothing exists.
    repo::ensure_rules(db, &ReglasCompliance::default())
        .await
        .unwrap();
    let loaded = repo::load_rules(db).await.unwrap();
    assert_eq!(loaded, changed);
    assert_eq!(loaded.limite().to_string(), "1234.56");
    assert!(loaded.bloqueo().partner_ids.contains(&blocked));
    let mut tx = db.begin().await.unwrap();
    assert_eq!(repo::load_rules_tx(&mut tx).await.unwrap(), changed);
    let antecedentes = repo::antecedentes_tx(&mut tx, Uuid::now_v7(), blocked)
        .await
        .unwrap();
    assert_eq!(
        antecedentes.reglas, changed,
        "an evaluation reads the rules in force"
    );
    drop(tx);
    assert!(repo::rules_updated_at(db).await.unwrap().is_some());
}

async fn a_partner_is_known_once_and_keeps_its_first_record(db: &Db) {
    // The service writes the default rules at start; an evaluation reads them.
    repo::ensure_rules(db, &ReglasCompliance::default())
        .await
        .unwrap();
    let partner = PartnerConocido {
        partner_id: Uuid::now_v7(),
        email: "Ana@Example.com".into(),
        nombre: "Ana".into(),
        tipo: "INFLUENCER".into(),
    };
    let mut tx = db.begin().await.unwrap();
    assert!(repo::insert_known_partner(&mut tx, &partner, kernel::now())
        .await
        .unwrap());
    let again = PartnerConocido {
        nombre: "Otra".into(),
        ..partner.clone()
    };
    assert!(!repo::insert_known_partner(&mut tx, &again, kernel::now())
        .await
        .unwrap());
    let antecedentes = repo::antecedentes_tx(&mut tx, Uuid::now_v7(), partner.partner_id)
        .await
        .unwrap();
    assert_eq!(antecedentes.partner, Some(partner.clone()));
    assert!(!antecedentes.decidido);
    let desconocido = repo::antecedentes_tx(&mut tx, Uuid::now_v7(), Uuid::now_v7())
        .await
        .unwrap();
    assert_eq!(desconocido.partner, None);
    assert_eq!(desconocido.reglas, antecedentes.reglas);
    tx.commit().await.unwrap();
    assert_eq!(
        repo::find_known_partner(db, partner.partner_id)
            .await
            .unwrap(),
        Some(partner)
    );
    assert_eq!(
        repo::find_known_partner(db, Uuid::now_v7()).await.unwrap(),
        None
    );
}

async fn a_contract_is_decided_once_and_its_decision_round_trips(db: &Db) {
    // The service writes the default rules at start; an evaluation reads them.
    repo::ensure_rules(db, &ReglasCompliance::default())
        .await
        .unwrap();
    let aprobada = evaluacion(Uuid::now_v7(), "1500.25", "USD", kernel::now());
    assert!(aprobada.veredicto.aprobado());
    assert!(insert_evaluation(db, &aprobada).await);
    let twin = Evaluacion {
        veredicto: evaluacion(aprobada.partner_id, "99999", "USD", kernel::now()).veredicto,
        ..aprobada.clone()
    };
    assert!(
        !insert_evaluation(db, &twin).await,
        "one decision per contract"
    );
    assert_eq!(
        repo::find_evaluation(db, aprobada.contrato_id)
            .await
            .unwrap(),
        Some(aprobada.clone())
    );

    let rechazada = evaluacion(Uuid::now_v7(), "60000", "COP", kernel::now());
    assert_eq!(
        rechazada.veredicto.validacion_fallida(),
        Some("MONTO_INVALIDO")
    );
    assert!(insert_evaluation(db, &rechazada).await);
    let mut tx = db.begin().await.unwrap();
    let loaded = repo::find_evaluation_tx(&mut tx, rechazada.contrato_id)
        .await
        .unwrap()
        .unwrap();
    let antecedentes = repo::antecedentes_tx(&mut tx, rechazada.contrato_id, Uuid::now_v7())
        .await
        .unwrap();
    assert!(
        antecedentes.decidido,
        "an evaluated contract reads as decided"
    );
    drop(tx);
    assert_eq!(
        loaded.veredicto.validacion_fallida(),
        Some("MONTO_INVALIDO")
    );
    assert_eq!(
        loaded.veredicto.causa_rechazo(),
        rechazada.veredicto.causa_rechazo()
    );
    assert_eq!(loaded.monto, Amount::from_units(60_000));
    assert_eq!(loaded.moneda, "COP");
}

async fn a_partner_has_one_account_whatever_is_registered_later(db: &Db) {
    let partner_id = Uuid::now_v7();
    let cuenta =
        CuentaFinanciera::abrir(partner_id, moneda("MXN"), MetodoPago::Paypal, kernel::now());
    assert!(insert_account(db, &cuenta).await);
    let otra = CuentaFinanciera::abrir(
        partner_id,
        moneda("USD"),
        MetodoPago::CreditCard,
        kernel::now(),
    );
    assert!(!insert_account(db, &otra).await);
    let loaded = repo::find_account(db, partner_id).await.unwrap().unwrap();
    assert_eq!(loaded, cuenta);
    assert_eq!(loaded.impuestos.len(), 2);
    assert_eq!(loaded.impuestos[0].porcentaje.to_string(), "16.00");
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        repo::find_account_tx(&mut tx, partner_id).await.unwrap(),
        Some(cuenta)
    );
    drop(tx);
    assert_eq!(repo::count_accounts(db, partner_id).await.unwrap(), 1);
    assert_eq!(repo::find_account(db, Uuid::now_v7()).await.unwrap(), None);
}

async fn the_account_list_filters_and_pages_in_partner_order(db: &Db) {
    let mut ids = Vec::new();
    for (i, code) in ["USD", "COP", "USD", "USD", "EUR"].iter().enumerate() {
        let mut cuenta = CuentaFinanciera::abrir(
            Uuid::now_v7(),
            moneda(code),
            MetodoPago::default(),
            kernel::now(),
        );
        if i == 3 {
            cuenta.estado = EstadoCuenta::Suspended;
        }
        insert_account(db, &cuenta).await;
        ids.push(cuenta.partner_id);
    }
    let all = CuentaFilter::default();
    let (first, total) = repo::list_accounts(db, &all, 2, None).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(first.len(), 3, "limit + 1 rows tell that more exist");
    assert_eq!(first[0].partner_id, ids[0]);
    let (rest, _) = repo::list_accounts(db, &all, 10, Some(ids[1]))
        .await
        .unwrap();
    let rest: Vec<_> = rest.iter().map(|c| c.partner_id).collect();
    assert_eq!(rest, ids[2..]);

    let usd_active = CuentaFilter {
        estado: Some(EstadoCuenta::Active),
        moneda: Some(moneda("USD")),
    };
    let (cuentas, total) = repo::list_accounts(db, &usd_active, 10, None)
        .await
        .unwrap();
    assert_eq!(total, 2);
    let found: Vec<_> = cuentas.iter().map(|c| c.partner_id).collect();
    assert_eq!(found, [ids[0], ids[2]]);
}

async fn the_report_sums_exactly_by_currency_outcome_and_inclusive_period(db: &Db) {
    let partner = Uuid::now_v7();
    for (monto, code, when) in [
        ("0.10", "USD", at(2025, 1, 1)),
        ("0.20", "USD", at(2025, 1, 2)),
        ("60000", "USD", at(2025, 1, 2)),
        ("100.05", "COP", at(2025, 1, 3)),
        ("7", "USD", at(2025, 2, 1)),
    ] {
        insert_evaluation(db, &evaluacion(partner, monto, code, when)).await;
    }
    let mut cuenta = CuentaFinanciera::abrir(
        Uuid::now_v7(),
        moneda("USD"),
        MetodoPago::default(),
        at(2025, 1, 2),
    );
    insert_account(db, &cuenta).await;
    cuenta.partner_id = Uuid::now_v7();
    cuenta.estado = EstadoCuenta::Inactive;
    cuenta.fecha_creacion = at(2025, 3, 1);
    insert_account(db, &cuenta).await;

    let enero = Periodo::new(day(2025, 1, 1), day(2025, 1, 31)).unwrap();
    let totals = repo::evaluation_totals(db, &enero).await.unwrap();
    let expected = |moneda: &str, aprobado, contratos, monto: &str| TotalEvaluaciones {
        moneda: moneda.into(),
        aprobado,
        contratos,
        monto: monto.parse().unwrap(),
    };
    assert_eq!(
        totals,
        [
            expected("COP", true, 1, "100.05"),
            expected("USD", true, 2, "0.30"),
            expected("USD", false, 1, "60000.00"),
        ]
    );
    // Both ends are whole days, inclusive.
    let dos_de_enero = Periodo::new(day(2025, 1, 2), day(2025, 1, 2)).unwrap();
    let totals = repo::evaluation_totals(db, &dos_de_enero).await.unwrap();
    assert_eq!(
        totals,
        [
            expected("USD", true, 1, "0.20"),
            expected("USD", false, 1, "60000.00")
        ]
    );
    let todo = repo::evaluation_totals(db, &Periodo::default())
        .await
        .unwrap();
    assert_eq!(todo[1], expected("USD", true, 3, "7.30"));

    let cuentas = repo::account_totals(db, &enero).await.unwrap();
    assert_eq!(
        cuentas,
        [TotalCuentas {
            moneda: "USD".into(),
            estado: EstadoCuenta::Active,
            cuentas: 1
        }]
    );
    let desde_febrero = Periodo::new(day(2025, 2, 1), None).unwrap();
    let cuentas = repo::account_totals(db, &desde_febrero).await.unwrap();
    assert_eq!(cuentas.len(), 1);
    assert_eq!(cuentas[0].estado, EstadoCuenta::Inactive);
}

async fn migrations_apply_once(db: &Db) {
    db.migrate_with("compliance", compliance::MIGRATIONS)
        .await
        .expect("a second migration run is a no-op");
}

testkit::on_both_backends!(
    crate::helpers::SCHEMA;
    the_default_rules_are_written_once_and_an_operators_change_survives,
    a_partner_is_known_once_and_keeps_its_first_record,
    a_contract_is_decided_once_and_its_decision_round_trips,
    a_partner_has_one_account_whatever_is_registered_later,
    the_account_list_filters_and_pages_in_partner_order,
    the_report_sums_exactly_by_currency_outcome_and_inclusive_period,
    migrations_apply_once,
);
