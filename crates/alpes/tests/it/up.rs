//! `alpes up` as a new user meets it: the documented requests and answers, the docs, and a
//! clean stop that keeps the data for the next start.

use serde_json::{json, Value};

use crate::alpes_up;

#[tokio::test]
async fn the_readme_walkthrough_answers_as_documented_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let alpes = alpes_up(data.path()).await;
    let base = alpes.url("integraciones").to_owned();
    let client = reqwest::Client::new();
    let partners = format!("{base}/api/v1/partners");

    let created = client
        .post(&partners)
        .json(&json!({"nombre": "Ana", "email": "ana@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let partner: Value = created.json().await.unwrap();
    let id = partner["id"].as_str().unwrap().to_owned();
    assert!(location.ends_with(&id), "{location} names {id}");
    assert_eq!(partner["estado"], "ACTIVO");
    assert_eq!(partner["estado_kyc"], "PENDIENTE");
    assert_eq!(partner["tipo"], "AFILIADO");

    let duplicate = client
        .post(&partners)
        .json(&json!({"nombre": "Ana Bis", "email": "ANA@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 409);
    assert_eq!(
        duplicate.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = duplicate.json().await.unwrap();
    assert_eq!(problem["codigo"], "EMAIL_EXISTENTE");

    let invalid = client
        .post(&partners)
        .json(&json!({"nombre": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let problem: Value = invalid.json().await.unwrap();
    assert_eq!(problem["codigo"], "DATOS_INVALIDOS");
    let fields: Vec<&str> = problem["errores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["campo"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"nombre") && fields.contains(&"email"),
        "{fields:?}"
    );

    let not_json = client
        .post(&partners)
        .header("content-type", "text/plain")
        .body("nombre=Ana")
        .send()
        .await
        .unwrap();
    assert!(
        matches!(not_json.status().as_u16(), 400 | 415),
        "{}",
        not_json.status()
    );
    assert_eq!(
        not_json.headers()["content-type"],
        "application/problem+json"
    );

    let docs = client.get(format!("{base}/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = docs.text().await.unwrap();
    assert!(html.contains("/docs/swagger-ui-bundle.js") && !html.contains("https://"));
    let script = client
        .get(format!("{base}/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);

    let openapi: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    assert!(openapi["paths"]["/api/v1/partners"]["post"].is_object());

    assert!(alpes.terminate().await, "alpes exits 0 on SIGTERM");

    let alpes = alpes_up(data.path()).await;
    let base = alpes.url("integraciones").to_owned();
    let again = client
        .get(format!("{base}/api/v1/partners/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let partner: Value = again.json().await.unwrap();
    assert_eq!(partner["email"], "ana@example.com");
    assert!(alpes.terminate().await);
}

#[tokio::test]
async fn a_service_served_alone_on_postgresql_creates_and_migrates_its_database() {
    let data = tempfile::tempdir().unwrap();
    let database_url = testkit::postgres::fresh_database_url("serve");
    let alpes = testkit::process::AlpesProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_alpes")),
        &[
            "serve",
            "integraciones",
            "--database-url",
            &database_url,
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        &[("ALPES_PORT", "0")],
    )
    .await;
    let base = alpes.url("integraciones").to_owned();
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/api/v1/partners/"))
        .json(&json!({"nombre": "Eva", "email": "eva@example.com", "tipo": "CORPORATIVO"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let ready = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let list: Value = client
        .get(format!("{base}/api/v1/partners?tipo=CORPORATIVO"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
    assert!(alpes.terminate().await);
    testkit::postgres::drop_database(&database_url).await;
}

/// A platform dropped without `stop` (as a test failing half-way drops it) goes quietly: the
/// BFF's runtime of its own must not be dropped where async code may not block on it.
#[tokio::test]
async fn a_platform_dropped_without_stop_goes_quietly() {
    let data = tempfile::tempdir().unwrap();
    let settings = crate::in_process_settings(data.path());
    let platform = alpes::platform::Platform::start(
        &settings,
        &alpes::platform::ServiceName::ALL,
        alpes::platform::Mode::Up,
    )
    .await
    .unwrap();
    let ready = reqwest::get(format!("{}/ready", platform.url("bff").unwrap()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    drop(platform);
}

/// `alpes up` runs as batch work, its front door excepted (`scheduling.rs`): every thread of the
/// process is `SCHED_BATCH` but the BFF's, which answer requests under the default policy.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_embedded_platform_runs_as_batch_work_but_its_front_door() {
    let data = tempfile::tempdir().unwrap();
    let alpes = alpes_up(data.path()).await;
    let mut policies: Vec<(String, u32)> = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", alpes.pid())).unwrap() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue; // a thread that ended meanwhile
        };
        let open = stat.find('(').unwrap();
        let close = stat.rfind(')').unwrap();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // Field 41 of the file is the policy; `fields[0]` is field 3.
        policies.push((
            stat[open + 1..close].to_owned(),
            fields[41 - 3].parse().unwrap(),
        ));
    }
    let of = |name: &str| -> Vec<u32> {
        policies
            .iter()
            .filter(|(thread, _)| thread.starts_with(name))
            .map(|(_, policy)| *policy)
            .collect()
    };
    let (runtime, sqlite, front_door) = (of("tokio-rt-worker"), of("sqlx-sqlite"), of("alpes-bff"));
    assert!(
        !runtime.is_empty() && runtime.iter().all(|p| *p == 3),
        "{policies:?}"
    );
    assert!(!sqlite.is_empty(), "{policies:?}");
    assert!(
        sqlite.iter().filter(|p| **p == 3).count() > sqlite.len() / 2,
        "{policies:?}"
    );
    assert!(
        !front_door.is_empty() && front_door.iter().all(|p| *p == 0),
        "{policies:?}"
    );
    assert!(alpes.terminate().await);
}
