//! The consumers through the real embedded bus: a contract for a known partner is approved
//! with its account opened, a rule failure is rejected, every outcome happens once however often
//! an event is delivered, a contract that overtakes its partner waits for it, a review approval
//! opens the account, a rule change decides the next contract, and a batch of events handed
//! over at once has the effects of the same events one by one (read up front and written
//! together, in one transaction).

use std::sync::Arc;
use std::time::Duration;

use compliance::application::Service;
use compliance::consumers::{ContratoCreadoHandler, PartnerCreadoHandler};
use compliance::storage as repo;
use compliance::ComplianceConfig;
use contracts::contratos::ContratoCreado;
use contracts::sagas::{RevisionAprobada, RevisionRechazada};
use contracts::topics;
use kernel::{Envelope, EnvelopeContext, HandlerError, MessageHandler};
use reqwest::Method;
use serde_json::json;
use storage::{Transactional, TxCounts, TxHandler};
use tokio::sync::Notify;
use uuid::Uuid;

use testkit::bus::next_matching;
use testkit::db::TestDb;
use testkit::{eventually, DEADLINE};

use crate::helpers::{
    contrato, in_saga, partner_creado, spawn_app, spawn_app_on, spawn_app_with,
    spawn_duplicating_app, TestApp, SCHEMA,
};

/// Publishes `event` as alianzas does, inside a saga; returns its envelope.
async fn submit(app: &TestApp, event: &ContratoCreado) -> Envelope {
    let envelope = in_saga(event);
    app.publish(topics::CONTRACT_CREATED, &envelope).await;
    envelope
}

/// Takes the outcome (approval or rejection) of `event`'s contract.
fn decides(event: &ContratoCreado) -> impl Fn(&Envelope) -> bool + '_ {
    move |outcome| outcome.data.value()["contrato_id"] == event.contrato_id.to_string()
}

/// The saga log's approval of `event`'s contract after a review.
fn revision_aprobada(event: &ContratoCreado, comentarios: Option<&str>) -> Envelope {
    Envelope::wrap(
        "sagas",
        &RevisionAprobada {
            saga_id: Uuid::now_v7(),
            contrato_id: event.contrato_id,
            partner_id: event.partner_id,
            comentarios: comentarios.map(Into::into),
        },
        EnvelopeContext::default(),
    )
}

/// Hands the partner's `PartnerCreado` to its handler twice, as a redelivery would.
async fn partner_delivered_twice(app: &TestApp, partner_id: Uuid, email: &str) {
    let partner = partner_creado(partner_id, email);
    let partners = app.service.partner_creado_handler();
    partners.handle(&partner).await.unwrap();
    partners.handle(&partner).await.unwrap();
}

/// Hands `event` to the contract handler twice under one event id, then re-sends the same
/// contract under a new event id; returns the first envelope.
async fn contract_delivered_twice_and_resent(app: &TestApp, event: &ContratoCreado) -> Envelope {
    let contratos = app.service.contrato_creado_handler();
    let envelope = in_saga(event);
    contratos.handle(&envelope).await.unwrap();
    contratos.handle(&envelope).await.unwrap();
    // The same contract re-sent under a new event id is already decided.
    contratos.handle(&in_saga(event)).await.unwrap();
    envelope
}

async fn account_estado(db: &storage::Db, partner_id: Uuid) -> Option<String> {
    repo::find_account(db, partner_id)
        .await
        .unwrap()
        .map(|cuenta| cuenta.estado.as_str().to_owned())
}

#[tokio::test]
async fn a_contract_for_a_known_partner_is_approved_and_its_account_opened() {
    let app = spawn_app().await;
    let mut aprobados = app.observe(topics::CONTRACT_APPROVED).await;
    let partner_id = Uuid::now_v7();
    app.publish(
        topics::PARTNER_CREATED,
        &partner_creado(partner_id, "ana@example.com"),
    )
    .await;
    eventually(DEADLINE, "the partner to be known", || async {
        repo::find_known_partner(app.db(), partner_id)
            .await
            .unwrap()
    })
    .await;
    let event = contrato(partner_id, "1500.00", "EUR");
    let envelope = submit(&app, &event).await;

    let outcome = next_matching(&mut aprobados, "ContratoAprobado", decides(&event)).await;
    assert_eq!(outcome.event_type, "ContratoAprobado");
    assert_eq!(outcome.source, "/alpes/compliance");
    assert_eq!(outcome.sagaid, envelope.sagaid, "the saga id propagates");
    assert_eq!(outcome.causationid, Some(envelope.id));
    assert_eq!(outcome.data.value()["partner_id"], partner_id.to_string());
    assert_eq!(
        outcome.data.value()["onboarding_id"],
        event.onboarding_id.unwrap().to_string()
    );
    assert_eq!(
        outcome.data.value()["validaciones_pasadas"],
        json!([
            "MONTO_Y_LIMITES",
            "MONEDA_Y_JURISDICCION",
            "PARTNER_Y_REPUTACION",
            "ESTADO_Y_VIGENCIA"
        ])
    );
    // The account was written in the same transaction as the outcome.
    let cuenta = repo::find_account(app.db(), partner_id)
        .await
        .unwrap()
        .expect("the account");
    assert_eq!(cuenta.estado.as_str(), "ACTIVE");
    assert_eq!(cuenta.moneda.as_str(), "EUR");
    let (status, body) = app
        .get_json(&format!("/compliance/cuentas/{partner_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["metodo_pago"], "BANK_TRANSFER");
    app.cleanup().await;
}

#[tokio::test]
async fn a_contract_above_the_limit_is_rejected_with_monto_invalido() {
    let app = spawn_app().await;
    let mut rechazados = app.observe(topics::CONTRACT_REJECTED).await;
    let partner_id = Uuid::now_v7();
    app.know_partner(partner_id, "ana@example.com").await;
    let event = contrato(partner_id, "60000", "USD");
    let envelope = submit(&app, &event).await;

    let outcome = next_matching(&mut rechazados, "ContratoRechazado", decides(&event)).await;
    assert_eq!(outcome.event_type, "ContratoRechazado");
    assert_eq!(outcome.data.value()["validacion_fallida"], "MONTO_INVALIDO");
    assert_eq!(
        outcome.data.value()["causa_rechazo"],
        "El monto 60000.00 supera el límite permitido de 50000.00."
    );
    assert_eq!(outcome.sagaid, envelope.sagaid);
    assert_eq!(account_estado(app.db(), partner_id).await, None);
    app.cleanup().await;
}

#[tokio::test]
async fn each_event_delivered_twice_has_one_outcome_and_one_account() {
    let app = spawn_app_with(ComplianceConfig::default(), false).await;
    let partner_id = Uuid::now_v7();
    partner_delivered_twice(&app, partner_id, "twice@example.com").await;

    let contratos = app.service.contrato_creado_handler();
    let event = contrato(partner_id, "100", "USD");
    let envelope = contract_delivered_twice_and_resent(&app, &event).await;
    assert_eq!(storage::outbox::backlog(app.db()).await.unwrap(), 1);
    assert!(
        storage::inbox::contains(app.db(), "compliance", envelope.id)
            .await
            .unwrap()
    );

    // A second contract of the same partner: a second outcome, still one account.
    contratos
        .handle(&in_saga(&contrato(partner_id, "200", "COP")))
        .await
        .unwrap();
    assert_eq!(storage::outbox::backlog(app.db()).await.unwrap(), 2);
    assert_eq!(repo::count_accounts(app.db(), partner_id).await.unwrap(), 1);
    let cuenta = repo::find_account(app.db(), partner_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cuenta.moneda.as_str(), "USD", "the first account stays");

    let revision = revision_aprobada(&event, None);
    let revisiones = app.service.revision_resuelta_handler();
    revisiones.handle(&revision).await.unwrap();
    revisiones.handle(&revision).await.unwrap();
    assert_eq!(repo::count_accounts(app.db(), partner_id).await.unwrap(), 1);
    assert_eq!(storage::outbox::backlog(app.db()).await.unwrap(), 2);
    app.cleanup().await;
}

#[tokio::test]
async fn every_message_consumed_twice_through_the_bus_has_one_effect() {
    let app = spawn_duplicating_app().await;
    let mut aprobados = app.observe(topics::CONTRACT_APPROVED).await;
    let partner_id = Uuid::now_v7();
    app.publish(
        topics::PARTNER_CREATED,
        &partner_creado(partner_id, "dup@example.com"),
    )
    .await;
    let first = contrato(partner_id, "10", "USD");
    submit(&app, &first).await;
    next_matching(
        &mut aprobados,
        "the first ContratoAprobado",
        decides(&first),
    )
    .await;
    // Outcomes leave the outbox in order: a duplicate of the first would be seen before the
    // second contract's outcome.
    let second = contrato(partner_id, "20", "USD");
    submit(&app, &second).await;
    let mut duplicates = 0;
    next_matching(&mut aprobados, "the second ContratoAprobado", |e| {
        if e.data.value()["contrato_id"] == first.contrato_id.to_string() {
            duplicates += 1;
        }
        e.data.value()["contrato_id"] == second.contrato_id.to_string()
    })
    .await;
    assert_eq!(duplicates, 0, "one outcome per contract");
    assert_eq!(repo::count_accounts(app.db(), partner_id).await.unwrap(), 1);

    let revision = revision_aprobada(&first, None);
    app.publish(topics::REVIEW_RESOLVED, &revision).await;
    eventually(DEADLINE, "the review to be handled", || async {
        storage::inbox::contains(app.db(), "compliance", revision.id)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    assert_eq!(repo::count_accounts(app.db(), partner_id).await.unwrap(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_contract_that_overtakes_its_partner_waits_and_is_approved_when_it_arrives() {
    let app = spawn_app().await;
    let mut aprobados = app.observe(topics::CONTRACT_APPROVED).await;
    let partner_id = Uuid::now_v7();
    let event = contrato(partner_id, "500", "MXN");
    let envelope = in_saga(&event);

    // Before the partner is known, the contract is retried, not rejected.
    let error = app
        .service
        .contrato_creado_handler()
        .handle(&envelope)
        .await
        .unwrap_err();
    assert!(matches!(error, HandlerError::Early(_)), "{error}");
    assert!(
        !storage::inbox::contains(app.db(), "compliance", envelope.id)
            .await
            .unwrap()
    );

    app.publish(topics::CONTRACT_CREATED, &envelope).await;
    app.publish(
        topics::PARTNER_CREATED,
        &partner_creado(partner_id, "late@example.com"),
    )
    .await;
    let outcome = next_matching(&mut aprobados, "ContratoAprobado", decides(&event)).await;
    assert_eq!(outcome.causationid, Some(envelope.id));
    assert_eq!(
        account_estado(app.db(), partner_id).await.as_deref(),
        Some("ACTIVE")
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_partner_still_unknown_after_the_grace_period_is_partner_invalido() {
    let config = ComplianceConfig {
        unknown_partner_grace: Duration::from_millis(300),
    };
    let app = spawn_app_with(config, true).await;
    let mut rechazados = app.observe(topics::CONTRACT_REJECTED).await;
    let event = contrato(Uuid::now_v7(), "10", "USD");
    let envelope = submit(&app, &event).await;
    let outcome = next_matching(&mut rechazados, "ContratoRechazado", decides(&event)).await;
    assert_eq!(
        outcome.data.value()["validacion_fallida"],
        "PARTNER_INVALIDO"
    );
    let decided = repo::find_evaluation(app.db(), event.contrato_id)
        .await
        .unwrap()
        .unwrap();
    assert!(decided.evaluado_en - envelope.time >= chrono::Duration::milliseconds(300));
    app.cleanup().await;
}

#[tokio::test]
async fn an_old_contract_of_an_unknown_partner_is_rejected_at_once() {
    let app = spawn_app_with(ComplianceConfig::default(), false).await;
    let event = contrato(Uuid::now_v7(), "10", "USD");
    let mut envelope = in_saga(&event);
    envelope.time -= chrono::Duration::seconds(31);
    app.service
        .contrato_creado_handler()
        .handle(&envelope)
        .await
        .unwrap();
    let decided = repo::find_evaluation(app.db(), event.contrato_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decided.veredicto.validacion_fallida(),
        Some("PARTNER_INVALIDO")
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_review_approval_opens_the_account_in_the_contracts_currency() {
    let app = spawn_app().await;
    let mut rechazados = app.observe(topics::CONTRACT_REJECTED).await;
    let partner_id = Uuid::now_v7();
    app.know_partner(partner_id, "review@example.com").await;
    let event = contrato(partner_id, "75000", "COP");
    submit(&app, &event).await;
    next_matching(&mut rechazados, "ContratoRechazado", decides(&event)).await;
    assert_eq!(account_estado(app.db(), partner_id).await, None);

    // A rejection on the same topic is not for compliance.
    let rechazada = Envelope::wrap(
        "sagas",
        &RevisionRechazada {
            saga_id: Uuid::now_v7(),
            contrato_id: event.contrato_id,
            partner_id,
            comentarios: None,
        },
        EnvelopeContext::default(),
    );
    app.publish(topics::REVIEW_RESOLVED, &rechazada).await;
    let aprobada = revision_aprobada(&event, Some("aprobado por operador"));
    app.publish(topics::REVIEW_RESOLVED, &aprobada).await;
    let cuenta = eventually(DEADLINE, "the account after the review", || async {
        repo::find_account(app.db(), partner_id).await.unwrap()
    })
    .await;
    assert_eq!(cuenta.estado.as_str(), "ACTIVE");
    assert_eq!(cuenta.moneda.as_str(), "COP");
    assert!(
        storage::inbox::contains(app.db(), "compliance", aprobada.id)
            .await
            .unwrap()
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_rule_change_decides_the_next_contract() {
    let app = spawn_app().await;
    let mut aprobados = app.observe(topics::CONTRACT_APPROVED).await;
    let mut rechazados = app.observe(topics::CONTRACT_REJECTED).await;
    let partner_id = Uuid::now_v7();
    app.know_partner(partner_id, "rules@example.com").await;

    let before = contrato(partner_id, "5000", "USD");
    submit(&app, &before).await;
    next_matching(&mut aprobados, "ContratoAprobado", decides(&before)).await;

    let (status, _) = app
        .send_json(
            Method::PUT,
            "/compliance/reglas",
            &json!({"limite_monto": "1000", "monedas_permitidas": ["USD"]}),
        )
        .await;
    assert_eq!(status, 200);
    let after = contrato(partner_id, "5000", "USD");
    submit(&app, &after).await;
    let outcome = next_matching(&mut rechazados, "ContratoRechazado", decides(&after)).await;
    assert_eq!(outcome.data.value()["validacion_fallida"], "MONTO_INVALIDO");

    let euros = contrato(partner_id, "10", "EUR");
    submit(&app, &euros).await;
    let outcome = next_matching(&mut rechazados, "ContratoRechazado", decides(&euros)).await;
    assert_eq!(
        outcome.data.value()["validacion_fallida"],
        "MONEDA_NO_PERMITIDA"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_undecodable_contract_is_poison() {
    let app = spawn_app_with(ComplianceConfig::default(), false).await;
    let mut envelope = in_saga(&contrato(Uuid::now_v7(), "1", "USD"));
    envelope.data = json!({"contrato_id": 5}).into();
    let error = app
        .service
        .contrato_creado_handler()
        .handle(&envelope)
        .await
        .unwrap_err();
    assert!(matches!(error, HandlerError::Poison(_)), "{error}");
    app.cleanup().await;
}

/// The consumer path on PostgreSQL: one outcome and one account per contract and partner.
#[tokio::test]
async fn the_consumer_path_is_exactly_once_on_postgres() {
    let app = spawn_app_on(
        TestDb::postgres(SCHEMA).await,
        ComplianceConfig::default(),
        false,
    )
    .await;
    let partner_id = Uuid::now_v7();
    partner_delivered_twice(&app, partner_id, "pg@example.com").await;
    let contratos = app.service.contrato_creado_handler();
    let aprobado = contrato(partner_id, "49999.99", "USD");
    contract_delivered_twice_and_resent(&app, &aprobado).await;
    let rechazado = contrato(partner_id, "50000.01", "USD");
    contratos.handle(&in_saga(&rechazado)).await.unwrap();
    assert_eq!(storage::outbox::backlog(app.db()).await.unwrap(), 2);
    assert_eq!(repo::count_accounts(app.db(), partner_id).await.unwrap(), 1);
    let decided = repo::find_evaluation(app.db(), rechazado.contrato_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decided.veredicto.validacion_fallida(),
        Some("MONTO_INVALIDO")
    );
    let (_, reporte) = app.get_json("/reportes/financieros").await;
    assert_eq!(reporte["por_moneda"][0]["monto_comprometido"], "49999.99");
    assert_eq!(reporte["por_moneda"][0]["monto_rechazado"], "50000.01");
    app.cleanup().await;
}

/// Batches handed to each handler in one call: each later event sees what the earlier ones
/// wrote (the contract decided, the account opened), a redelivered id changes nothing, and
/// every message gets its own result — a contract still waiting for its partner is `Early`
/// alone and an undecodable one `Poison` alone, while the others take effect.
async fn batches_are_applied_in_order_with_a_result_per_message(test_db: TestDb) {
    let app = spawn_app_on(test_db, ComplianceConfig::default(), false).await;
    let (ana, bea) = (Uuid::now_v7(), Uuid::now_v7());
    let ana_creada = partner_creado(ana, "ana.batch@example.com");
    let partners = [
        ana_creada.clone(),
        ana_creada.clone(),
        partner_creado(bea, "bea.batch@example.com"),
    ];
    let results = app
        .service
        .partner_creado_handler()
        .handle_batch(&partners.iter().collect::<Vec<_>>())
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for partner_id in [ana, bea] {
        assert!(repo::find_known_partner(app.db(), partner_id)
            .await
            .unwrap()
            .is_some());
    }

    let contratos = app.service.contrato_creado_handler();
    let aprobado = contrato(ana, "100", "USD");
    let aprobado_envelope = in_saga(&aprobado);
    let rechazado = contrato(bea, "60000", "USD");
    let batch = [
        aprobado_envelope.clone(),
        aprobado_envelope.clone(),
        // The same contract under a new event id: decided by the first one, in this batch.
        in_saga(&aprobado),
        // A second contract of the same partner: its own outcome, still one account.
        in_saga(&contrato(ana, "200", "COP")),
        in_saga(&rechazado),
    ];
    let results = contratos
        .handle_batch(&batch.iter().collect::<Vec<_>>())
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(storage::outbox::backlog(app.db()).await.unwrap(), 3);
    assert_eq!(repo::count_accounts(app.db(), ana).await.unwrap(), 1);
    assert_eq!(
        repo::find_account(app.db(), ana)
            .await
            .unwrap()
            .unwrap()
            .moneda
            .as_str(),
        "USD",
        "the first contract's account"
    );
    assert_eq!(repo::count_accounts(app.db(), bea).await.unwrap(), 0);
    for envelope in &batch {
        assert!(
            storage::inbox::contains(app.db(), "compliance", envelope.id)
                .await
                .unwrap()
        );
    }

    let later = contrato(bea, "10", "USD");
    let early = contrato(Uuid::now_v7(), "10", "USD");
    let early_envelope = in_saga(&early);
    let mut poison = in_saga(&contrato(bea, "1", "USD"));
    poison.data = json!({"contrato_id": 5}).into();
    let results = contratos
        .handle_batch(&[&in_saga(&later), &early_envelope, &poison])
        .await;
    assert!(results[0].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(HandlerError::Early(_))),
        "{results:?}"
    );
    assert!(
        matches!(results[2], Err(HandlerError::Poison(_))),
        "{results:?}"
    );
    assert!(repo::find_evaluation(app.db(), later.contrato_id)
        .await
        .unwrap()
        .is_some());
    assert!(repo::find_evaluation(app.db(), early.contrato_id)
        .await
        .unwrap()
        .is_none());
    assert!(
        !storage::inbox::contains(app.db(), "compliance", early_envelope.id)
            .await
            .unwrap(),
        "the waiting contract's retry must be a first delivery"
    );
    assert_eq!(repo::count_accounts(app.db(), bea).await.unwrap(), 1);

    // The review topic: a rejection is not for compliance; an approval opens the account of a
    // partner without one, once.
    let cleo = Uuid::now_v7();
    let reviewed = contrato(cleo, "75000", "COP");
    let aprobada = revision_aprobada(&reviewed, None);
    let rechazada = Envelope::wrap(
        "sagas",
        &RevisionRechazada {
            saga_id: Uuid::now_v7(),
            contrato_id: reviewed.contrato_id,
            partner_id: cleo,
            comentarios: None,
        },
        EnvelopeContext::default(),
    );
    let results = app
        .service
        .revision_resuelta_handler()
        .handle_batch(&[&rechazada, &aprobada, &aprobada])
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // The rejection is not compliance's business: it opens nothing (a batch still records its
    // id in the inbox with the others', which is harmless).
    assert_eq!(repo::count_accounts(app.db(), cleo).await.unwrap(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn batches_are_applied_in_order_with_a_result_per_message_on_sqlite() {
    batches_are_applied_in_order_with_a_result_per_message(TestDb::sqlite(SCHEMA).await).await;
}

#[tokio::test]
async fn batches_are_applied_in_order_with_a_result_per_message_on_postgres() {
    batches_are_applied_in_order_with_a_result_per_message(TestDb::postgres(SCHEMA).await).await;
}

/// A service over `db` with handlers built by hand, so their transaction counts can be read.
fn service_on(db: &storage::Db) -> Arc<Service> {
    Arc::new(Service::new(
        db.clone(),
        Arc::new(Notify::new()),
        Duration::from_secs(60),
    ))
}

fn counted<H: TxHandler>(db: &storage::Db, handler: H) -> Transactional<H> {
    Transactional::new(db.clone(), Arc::new(Notify::new()), handler).with_inbox("compliance")
}

/// A batch reads what its events need up front and writes its rows together at the end: each
/// contract still gets one decision and each partner one account (against what was stored and
/// what the batch itself decided), and each batch is one committed transaction (not rolled
/// back and redone one event at a time).
async fn a_batch_is_decided_in_one_transaction(test_db: TestDb) {
    let app = spawn_app_on(test_db, ComplianceConfig::default(), false).await;
    let db = app.db().clone();
    let service = service_on(&db);
    let (ana, bea, cleo) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let partners = counted(&db, PartnerCreadoHandler::new(service.clone()));
    let stored = partner_creado(cleo, "cleo.batch@example.com");
    partners.handle(&stored).await.unwrap();
    let batch = [
        partner_creado(ana, "ana.one@example.com"),
        partner_creado(bea, "bea.one@example.com"),
        stored.clone(),
    ];
    let before = partners.counts();
    let results = partners
        .handle_batch(&batch.iter().collect::<Vec<_>>())
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        partners.counts().since(before),
        TxCounts::ONE_COMMIT,
        "one transaction for the whole batch"
    );
    for partner_id in [ana, bea, cleo] {
        assert!(repo::find_known_partner(&db, partner_id)
            .await
            .unwrap()
            .is_some());
    }

    let contratos = counted(&db, ContratoCreadoHandler::new(service));
    // Cleo's account exists before the batch; its contract is approved without a second one.
    let primero = contrato(cleo, "10", "USD");
    contratos.handle(&in_saga(&primero)).await.unwrap();
    let decided = contrato(cleo, "20", "USD");
    contratos.handle(&in_saga(&decided)).await.unwrap();
    let ana_usd = contrato(ana, "100", "USD");
    let batch = [
        in_saga(&ana_usd),
        in_saga(&ana_usd),
        in_saga(&contrato(ana, "200", "COP")),
        in_saga(&contrato(bea, "60000", "USD")),
        in_saga(&contrato(cleo, "30", "USD")),
        in_saga(&decided),
    ];
    let backlog = storage::outbox::backlog(&db).await.unwrap();
    let before = contratos.counts();
    let results = contratos
        .handle_batch(&batch.iter().collect::<Vec<_>>())
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        contratos.counts().since(before),
        TxCounts::ONE_COMMIT,
        "one transaction for the whole batch"
    );
    // Ana approved twice (USD, COP), Bea rejected, Cleo's third approved; nothing for the
    // twin of Ana's first nor for the contract decided before the batch.
    assert_eq!(storage::outbox::backlog(&db).await.unwrap(), backlog + 4);
    for (partner_id, cuentas) in [(ana, 1), (bea, 0), (cleo, 1)] {
        assert_eq!(
            repo::count_accounts(&db, partner_id).await.unwrap(),
            cuentas
        );
    }
    let cuenta = repo::find_account(&db, ana).await.unwrap().unwrap();
    assert_eq!(
        cuenta.moneda.as_str(),
        "USD",
        "the first contract's account"
    );
    let evaluacion = repo::find_evaluation(&db, ana_usd.contrato_id)
        .await
        .unwrap()
        .unwrap();
    assert!(evaluacion.veredicto.aprobado());
    for envelope in &batch {
        assert!(storage::inbox::contains(&db, "compliance", envelope.id)
            .await
            .unwrap());
    }
    app.cleanup().await;
}

/// A decision a batch took waits to be written until the batch ends, unless an event the
/// batch did not read up front comes first: then it is written before that one is decided.
async fn a_waiting_decision_is_written_before_an_event_the_batch_did_not_read(test_db: TestDb) {
    let app = spawn_app_on(test_db, ComplianceConfig::default(), false).await;
    let db = app.db().clone();
    let service = service_on(&db);
    let partner_id = Uuid::now_v7();
    counted(&db, PartnerCreadoHandler::new(service.clone()))
        .handle(&partner_creado(partner_id, "read.batch@example.com"))
        .await
        .unwrap();
    let handler = ContratoCreadoHandler::new(service);
    let read = contrato(partner_id, "10", "USD");
    let read_envelope = in_saga(&read);
    let late = in_saga(&contrato(partner_id, "20", "USD"));
    let mut tx = db.begin().await.unwrap();
    handler.prepare(&mut tx, &[&read_envelope]).await.unwrap();
    handler.apply(&mut tx, &read_envelope).await.unwrap();
    handler.apply(&mut tx, &late).await.unwrap();
    let evaluacion = repo::find_evaluation_tx(&mut tx, read.contrato_id)
        .await
        .unwrap();
    assert!(evaluacion.is_some(), "written before the late contract");
    handler.finish(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(repo::count_accounts(&db, partner_id).await.unwrap(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_batch_is_decided_in_one_transaction_on_sqlite() {
    a_batch_is_decided_in_one_transaction(TestDb::sqlite(SCHEMA).await).await;
}

#[tokio::test]
async fn a_batch_is_decided_in_one_transaction_on_postgres() {
    a_batch_is_decided_in_one_transaction(TestDb::postgres(SCHEMA).await).await;
}

#[tokio::test]
async fn a_waiting_decision_is_written_before_an_event_the_batch_did_not_read_on_sqlite() {
    a_waiting_decision_is_written_before_an_event_the_batch_did_not_read(
        TestDb::sqlite(SCHEMA).await,
    )
    .await;
}

#[tokio::test]
async fn a_waiting_decision_is_written_before_an_event_the_batch_did_not_read_on_postgres() {
    a_waiting_decision_is_written_before_an_event_the_batch_did_not_read(
        TestDb::postgres(SCHEMA).await,
    )
    .await;
}
