//! Notifications end to end: a saga outcome or a program change is stored once as a
//! notification and delivered through SMTP (a sink started by the test) or as an `.eml` file,
//! with retries after transient refusals and `FALLIDA` after the last attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use campanias::notificaciones::{Email, FileSender, SendError, Sender};
use campanias::CampaniasConfig;
use contracts::sagas::OnboardingEstadoCambiado;
use serde_json::{json, Value};
use testkit::http::expect_problem;
use uuid::Uuid;

use crate::helpers::{flat_body, spawn_app_with, Options, TestApp, DEADLINE};
use crate::smtp_sink::SmtpSink;

fn completada(email: &str) -> OnboardingEstadoCambiado {
    OnboardingEstadoCambiado {
        saga_id: Uuid::now_v7(),
        onboarding_id: Uuid::now_v7(),
        partner_id: Some(Uuid::now_v7()),
        email: Some(email.into()),
        nombre: Some("Ana Pérez".into()),
        estado: "COMPLETADA".into(),
        causa: None,
    }
}

fn smtp_config(sink: &SmtpSink) -> CampaniasConfig {
    CampaniasConfig {
        retry_base: Duration::from_millis(10),
        ..CampaniasConfig::with_smtp_sender("127.0.0.1", sink.port, "alpes@alpes.test")
    }
}

/// Waits until the notifications of `query` match `accept`; returns the page.
async fn wait_for(
    app: &TestApp,
    query: &str,
    what: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    testkit::eventually(DEADLINE, what, || async {
        let page = app.get_json(query).await;
        accept(&page).then_some(page)
    })
    .await
}

#[tokio::test]
async fn a_completed_onboarding_is_delivered_once_through_smtp() {
    let sink = SmtpSink::start(0).await;
    let app = spawn_app_with(Options {
        duplicating: true,
        config: Some(smtp_config(&sink)),
        ..Options::default()
    })
    .await;
    app.publish("sagas", &completada("ana@example.com")).await;
    let page = wait_for(
        &app,
        "/notificaciones?estado=ENVIADA",
        "the e-mail sent",
        |page| page_holds(page, 1),
    )
    .await;
    app.settled().await;
    let notificacion = &page["items"][0];
    assert_eq!(notificacion["destinatario"], "ana@example.com");
    assert_eq!(notificacion["intentos"], 1);
    assert_eq!(notificacion["prioridad"], "NORMAL");
    assert_eq!(notificacion["tipo_evento"], "OnboardingEstadoCambiado");
    assert!(notificacion["enviada_en"].is_string());
    assert_eq!(app.get_json("/notificaciones").await["total"], 1);

    let received = sink.received();
    assert_eq!(received.len(), 1, "exactly one message reached the sink");
    assert_eq!(received[0].from, "alpes@alpes.test");
    assert_eq!(received[0].to, ["ana@example.com"]);
    let data = &received[0].data;
    assert!(data.contains("To: ana@example.com"), "{data}");
    assert!(data.contains("Subject: "), "{data}");
    assert!(
        data.contains(&format!(
            "Message-ID: <{}@alpespartners.local>",
            notificacion["id"].as_str().unwrap()
        )),
        "{data}"
    );
    assert!(
        data.contains("Hola Ana P=C3=A9rez"),
        "quoted-printable for any relay: {data}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_sink_that_refuses_twice_gets_the_message_on_the_third_attempt() {
    let sink = SmtpSink::start(2).await;
    let app = spawn_app_with(Options {
        config: Some(smtp_config(&sink)),
        ..Options::default()
    })
    .await;
    app.publish("sagas", &completada("bea@example.com")).await;
    let page = wait_for(
        &app,
        "/notificaciones?estado=ENVIADA",
        "the e-mail sent after retries",
        |page| page_holds(page, 1),
    )
    .await;
    let notificacion = &page["items"][0];
    assert_eq!(notificacion["intentos"], 3);
    assert_eq!(notificacion["estado"], "ENVIADA");
    assert!(
        notificacion["ultimo_error"]
            .as_str()
            .unwrap()
            .contains("451"),
        "{notificacion}"
    );
    assert_eq!(sink.received().len(), 1);
    assert_eq!(sink.mail_commands(), 3);
    app.cleanup().await;
}

/// A sender that always fails the same way, counting its calls.
struct Failing {
    error: SendError,
    calls: AtomicUsize,
}

#[async_trait]
impl Sender for Failing {
    async fn send(&self, _email: &Email) -> Result<(), SendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(self.error.clone())
    }
}

async fn with_failing_sender(error: SendError) -> (TestApp, Arc<Failing>) {
    let sender = Arc::new(Failing {
        error,
        calls: AtomicUsize::new(0),
    });
    let mail_dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(Options {
        config: Some(CampaniasConfig {
            max_intentos: 3,
            ..crate::helpers::test_config(mail_dir.path())
        }),
        sender: Some(sender.clone()),
        ..Options::default()
    })
    .await;
    (app, sender)
}

#[tokio::test]
async fn transient_failures_end_fallida_after_max_intentos() {
    let (app, sender) = with_failing_sender(SendError::Transient("421 busy".into())).await;
    app.publish("sagas", &completada("cam@example.com")).await;
    let page = wait_for(
        &app,
        "/notificaciones?estado=FALLIDA",
        "the notification failed",
        |page| page_holds(page, 1),
    )
    .await;
    assert_eq!(page["items"][0]["intentos"], 3);
    assert_eq!(page["items"][0]["ultimo_error"], "421 busy");
    assert_eq!(page["items"][0]["enviada_en"], Value::Null);
    assert_eq!(sender.calls.load(Ordering::SeqCst), 3);
    app.cleanup().await;
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried() {
    let (app, sender) = with_failing_sender(SendError::Permanent("550 no such user".into())).await;
    app.publish("sagas", &completada("dan@example.com")).await;
    let page = wait_for(
        &app,
        "/notificaciones?estado=FALLIDA",
        "the notification failed",
        |page| page_holds(page, 1),
    )
    .await;
    assert_eq!(page["items"][0]["intentos"], 1);
    assert_eq!(sender.calls.load(Ordering::SeqCst), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn the_file_sender_writes_a_readable_eml_for_the_operator() {
    let app = spawn_app_with(Options::default()).await;
    let mut revision = completada("eva@example.com");
    revision.estado = "PENDIENTE_REVISION".into();
    revision.causa = Some("MONTO_INVALIDO".into());
    app.publish("sagas", &revision).await;
    let page = wait_for(
        &app,
        "/notificaciones?estado=ENVIADA",
        "the review notice written",
        |page| page_holds(page, 1),
    )
    .await;
    let notificacion = &page["items"][0];
    assert_eq!(notificacion["destinatario"], "ops@alpes.test");
    assert_eq!(notificacion["prioridad"], "ALTA");
    let path = app
        .mail_dir
        .path()
        .join(format!("{}.eml", notificacion["id"].as_str().unwrap()));
    let text = std::fs::read_to_string(&path).expect("the .eml file");
    for header in [
        "From: ",
        "To: ops@alpes.test",
        "Subject: ",
        "Date: ",
        "Message-ID: <",
    ] {
        assert!(text.contains(header), "{header} missing in {text}");
    }
    assert!(
        text.contains("Compliance rechazó el contrato del partner Ana Pérez"),
        "{text}"
    );
    assert!(text.contains("MONTO_INVALIDO"), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(app.mail_dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind");
    app.cleanup().await;
}

#[tokio::test]
async fn the_file_sender_rewrites_the_same_file_when_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let sender = FileSender::new(dir.path().join("nested"));
    let email = Email {
        id: Uuid::now_v7(),
        destinatario: "fer@example.com".into(),
        asunto: "Asunto con tilde: revisión".into(),
        contenido: "Línea uno\n.línea con punto\n".into(),
        prioridad: campanias::domain::Prioridad::Baja,
        creada_en: kernel::now(),
    };
    sender.send(&email).await.unwrap();
    sender.send(&email).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(sender.dir()).unwrap().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(sender.path_of(&email)).unwrap();
    assert!(text.contains("Línea uno"), "{text}");
    let bad = Email {
        destinatario: "not an address".into(),
        ..email
    };
    assert!(matches!(
        sender.send(&bad).await,
        Err(SendError::Permanent(_))
    ));
}

#[tokio::test]
async fn a_failed_onboarding_without_an_address_and_program_changes_tell_the_operator() {
    let app = spawn_app_with(Options::default()).await;
    let mut fallida = completada("x@example.com");
    fallida.email = None;
    fallida.partner_id = None;
    fallida.estado = "FALLIDA".into();
    fallida.causa = Some("EMAIL_EXISTENTE".into());
    app.publish("sagas", &fallida).await;
    let programa = app.create_programa(flat_body()).await;
    let id = programa["id"].as_str().unwrap();
    app.post(&format!("/programas/{id}/activar"), &json!({}))
        .await;
    app.post(&format!("/programas/{id}/suspender"), &json!({}))
        .await;
    let page = wait_for(
        &app,
        "/notificaciones?destinatario=ops@alpes.test&estado=ENVIADA",
        "three operator notices",
        |page| page_holds(page, 3),
    )
    .await;
    let asuntos: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["asunto"].as_str().unwrap())
        .collect();
    assert!(
        asuntos.contains(&"Programa activado: Programa Verano"),
        "{asuntos:?}"
    );
    assert!(
        asuntos.contains(&"Programa suspendido: Programa Verano"),
        "{asuntos:?}"
    );
    assert!(
        asuntos.iter().any(|a| a.starts_with("Onboarding fallido")),
        "{asuntos:?}"
    );
    let paged = app.get_json("/notificaciones?limit=2").await;
    assert_eq!(paged["items"].as_array().unwrap().len(), 2);
    assert!(paged["next_cursor"].is_string());
    assert_eq!(
        app.get_json("/notificaciones?destinatario=nadie@example.com")
            .await["total"],
        0
    );
    expect_problem(
        app.get("/notificaciones?estado=ENVIADO").await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    expect_problem(
        app.get("/notificaciones?limit=501").await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    app.cleanup().await;
}

/// The list answers its items and its total in two statements, so a notification changing
/// state between them can make them disagree for one poll: wait until both show `n`.
fn page_holds(page: &serde_json::Value, n: usize) -> bool {
    page["total"] == n
        && page["items"]
            .as_array()
            .is_some_and(|items| items.len() == n)
}
