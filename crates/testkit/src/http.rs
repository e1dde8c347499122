//! HTTP support for service tests: a router served on a free port of 127.0.0.1 with
//! `web::serve` (stopped by the caller's shutdown future), and assertions on problem+json
//! answers.

use std::future::Future;

use serde_json::Value;

/// The media type of every error body a service sends.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Serves `router` on a free port until `shutdown` resolves; returns its base URL, e.g.
/// `http://127.0.0.1:41234`.
pub async fn serve(
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("local addr"));
    tokio::spawn(web::serve(listener, router, shutdown));
    address
}

/// Asserts a problem+json answer with `status` and `codigo`; returns its body.
pub async fn expect_problem(response: reqwest::Response, status: u16, codigo: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, PROBLEM_JSON);
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["codigo"], codigo, "{body}");
    assert_eq!(body["status"], status);
    body
}

/// The `campo` of every `errores` entry of a problem.
pub fn campos(problem: &Value) -> Vec<String> {
    problem["errores"]
        .as_array()
        .map(|errores| {
            errores
                .iter()
                .map(|e| e["campo"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// GETs `url` and returns the status with the JSON body.
pub async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

/// Sends `body` as JSON with `method` to `url` and returns the status with the JSON body.
pub async fn send_json(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: &Value,
) -> (u16, Value) {
    let response = client
        .request(method, url)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}
