//! Operational routes and the layers every service router gets: `/health` (liveness), `/ready`
//! (dependencies reachable), `/metrics` (Prometheus text), `/openapi.json`, `/docs` (Swagger UI
//! served from vendored assets, so it works offline), problem+json for unknown routes and
//! methods, a body limit, request ids, and serving with graceful shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::problem::Problem;

/// A dependency `/ready` checks.
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    fn name(&self) -> String;
    async fn check(&self) -> Result<(), String>;
}

/// Extra Prometheus lines a service contributes (outbox backlog, consumer lag, …).
#[async_trait]
pub trait MetricsSource: Send + Sync + 'static {
    async fn render(&self) -> String;
}

#[derive(Default)]
struct HttpCounters {
    by_class: [AtomicU64; 5],
    latency_micros_total: AtomicU64,
}

#[derive(Clone)]
struct OpsState {
    service: &'static str,
    /// Rendered once at start-up; each request shares the bytes instead of copying them.
    openapi: axum::body::Bytes,
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    metrics: Arc<Vec<Arc<dyn MetricsSource>>>,
    counters: Arc<HttpCounters>,
}

/// The operational side of a service, merged into its router by [`OpsRoutes::finish`].
pub struct OpsRoutes {
    service: &'static str,
    openapi: utoipa::openapi::OpenApi,
    checks: Vec<Arc<dyn ReadinessCheck>>,
    metrics: Vec<Arc<dyn MetricsSource>>,
}

impl OpsRoutes {
    pub fn new(service: &'static str, openapi: utoipa::openapi::OpenApi) -> Self {
        Self {
            service,
            openapi,
            checks: Vec::new(),
            metrics: Vec::new(),
        }
    }

    pub fn check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    pub fn metrics(mut self, source: Arc<dyn MetricsSource>) -> Self {
        self.metrics.push(source);
        self
    }

    /// Adds the operational routes and the shared layers to a service's API router.
    pub fn finish(self, api: Router) -> Router {
        let state = OpsState {
            service: self.service,
            openapi: axum::body::Bytes::from(
                self.openapi
                    .to_json()
                    .expect("the OpenAPI document serializes"),
            ),
            checks: Arc::new(self.checks),
            metrics: Arc::new(self.metrics),
            counters: Arc::default(),
        };
        let ops = Router::new()
            .route("/health", get(health))
            .route("/ready", get(ready))
            .route("/metrics", get(metrics))
            .route("/openapi.json", get(openapi))
            .route("/docs", get(docs))
            .route("/docs/", get(docs))
            .route("/docs/swagger-ui-bundle.js", get(docs_js))
            .route("/docs/swagger-ui.css", get(docs_css))
            .with_state(state.clone());
        api.merge(ops)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
            .layer(middleware::from_fn_with_state(state, observe))
    }
}

async fn health() -> impl IntoResponse {
    crate::Json(serde_json::json!({"status": "ok"}))
}

async fn ready(State(state): State<OpsState>) -> Response {
    let mut failures = serde_json::Map::new();
    for check in state.checks.iter() {
        if let Err(error) = check.check().await {
            failures.insert(check.name(), error.into());
        }
    }
    if failures.is_empty() {
        crate::Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        tracing::warn!(?failures, "not ready");
        let mut problem = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICIO_NO_DISPONIBLE",
            format!(
                "not ready: {}",
                failures.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
        problem.title = "Not ready".into();
        problem.into_response()
    }
}

async fn metrics(State(state): State<OpsState>) -> Response {
    let service = state.service;
    let mut text = String::from("# TYPE alpes_http_responses_total counter\n");
    for (index, counter) in state.counters.by_class.iter().enumerate() {
        text.push_str(&format!(
            "alpes_http_responses_total{{service=\"{service}\",class=\"{}xx\"}} {}\n",
            index + 1,
            counter.load(Ordering::Relaxed)
        ));
    }
    text.push_str(&format!(
        "# TYPE alpes_http_latency_seconds_total counter\nalpes_http_latency_seconds_total{{service=\"{service}\"}} {}\n",
        state.counters.latency_micros_total.load(Ordering::Relaxed) as f64 / 1e6
    ));
    for source in state.metrics.iter() {
        text.push_str(&source.render().await);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn openapi(State(state): State<OpsState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
        .into_response()
}

async fn docs(State(state): State<OpsState>) -> Html<String> {
    Html(format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{service} API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true }});
</script>
</body>
</html>"##,
        service = state.service
    ))
}

const SWAGGER_JS: &str = include_str!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &str = include_str!("../assets/swagger-ui/swagger-ui.css");

async fn docs_js() -> Response {
    static_asset("application/javascript", SWAGGER_JS)
}

async fn docs_css() -> Response {
    static_asset("text/css", SWAGGER_CSS)
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "RECURSO_NO_ENCONTRADO",
        "no such route",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METODO_NO_PERMITIDO",
        "this route does not accept that method",
    )
}

/// Gives every request an id (kept from `x-request-id` when the caller sent one), a tracing
/// span, and counts its response.
async fn observe(State(state): State<OpsState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::debug_span!(
        "request",
        service = state.service,
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    );
    let mut response = tracing::Instrument::instrument(next.run(request), span).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let class = (response.status().as_u16() / 100).clamp(1, 5) as usize - 1;
    state.counters.by_class[class].fetch_add(1, Ordering::Relaxed);
    state
        .counters
        .latency_micros_total
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    response
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
