//! The BFF's calls to the services behind it, through one pooled `reqwest::Client` built once
//! with the configured timeout. Every failure is classified here so the edge can answer it
//! honestly: no answer in time → `Timeout` (504), unreachable, 5xx or garbage → `Failed` (502),
//! a 4xx → the upstream's own problem, for the caller to pass through or to judge.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use web::Problem;

use crate::config::BffConfig;

/// The services the BFF talks to, named in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Servicio {
    Integraciones,
    Alianzas,
    Compliance,
    Campanias,
}

impl Servicio {
    pub fn as_str(self) -> &'static str {
        match self {
            Servicio::Integraciones => "integraciones",
            Servicio::Alianzas => "alianzas",
            Servicio::Compliance => "compliance",
            Servicio::Campanias => "campanias",
        }
    }
}

impl std::fmt::Display for Servicio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{servicio} did not answer within {timeout:?}")]
    Timeout {
        servicio: Servicio,
        timeout: Duration,
    },
    #[error("{servicio} failed: {cause}")]
    Failed { servicio: Servicio, cause: String },
}

/// What a service answered: a 2xx JSON body, or the problem of a 4xx.
pub type Answer = Result<Value, Problem>;

/// Builds the one client of the process: requests time out after `timeout` (connecting
/// included); idle connections are kept for reuse. Calls between the platform's own services
/// never go through a proxy an environment variable happens to name.
pub fn build_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(32)
        .build()
}

/// The upstream services' base URLs and the shared client.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    timeout: Duration,
    integraciones: String,
    alianzas: String,
    compliance: String,
    /// Optional: without campanias the partner view has no programs.
    campanias: Option<String>,
}

fn base(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

impl Upstream {
    pub fn new(client: reqwest::Client, config: &BffConfig) -> Self {
        Self {
            client,
            timeout: config.upstream_timeout,
            integraciones: base(&config.integraciones_url),
            alianzas: base(&config.alianzas_url),
            compliance: base(&config.compliance_url),
            campanias: config.campanias_url.as_deref().map(base),
        }
    }

    /// Whether campanias is configured.
    pub fn has_campanias(&self) -> bool {
        self.campanias.is_some()
    }

    /// The absolute URL of `path_and_query` on `servicio`.
    pub fn url(&self, servicio: Servicio, path_and_query: &str) -> String {
        let base = match servicio {
            Servicio::Integraciones => &self.integraciones,
            Servicio::Alianzas => &self.alianzas,
            Servicio::Compliance => &self.compliance,
            Servicio::Campanias => self.campanias.as_deref().unwrap_or_default(),
        };
        format!("{base}{path_and_query}")
    }

    fn classify(&self, servicio: Servicio, error: reqwest::Error) -> UpstreamError {
        if error.is_timeout() {
            UpstreamError::Timeout {
                servicio,
                timeout: self.timeout,
            }
        } else {
            UpstreamError::Failed {
                servicio,
                cause: error.to_string(),
            }
        }
    }

    /// `GET`s `path_and_query` on `servicio`. A 4xx comes back as the upstream's problem (one
    /// that is not problem+json gets a generic one with the same status).
    pub async fn get(
        &self,
        servicio: Servicio,
        path_and_query: &str,
    ) -> Result<Answer, UpstreamError> {
        let url = self.url(servicio, path_and_query);
        let response = self
            .client
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| self.classify(servicio, error))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.classify(servicio, error))?;
        match status {
            200..=299 => {
                serde_json::from_slice(&body)
                    .map(Ok)
                    .map_err(|error| UpstreamError::Failed {
                        servicio,
                        cause: format!(
                            "GET {url} answered {status} with a body that is not JSON: {error}"
                        ),
                    })
            }
            400..=499 => {
                let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                let problem = match serde_json::from_slice::<Problem>(&body) {
                    Ok(mut problem) => {
                        problem.status = status;
                        problem
                    }
                    Err(_) => Problem::new(
                        status_code,
                        "SOLICITUD_INVALIDA",
                        format!("{servicio} refused the request"),
                    ),
                };
                Ok(Err(problem))
            }
            _ => Err(UpstreamError::Failed {
                servicio,
                cause: format!("GET {url} answered {status}"),
            }),
        }
    }

    /// A resource that may not exist: 404 is `None`; any other 4xx means this BFF asked
    /// wrongly, so it is a failure of the call, not the client's mistake.
    pub async fn optional(
        &self,
        servicio: Servicio,
        path_and_query: &str,
    ) -> Result<Option<Value>, UpstreamError> {
        match self.get(servicio, path_and_query).await? {
            Ok(value) => Ok(Some(value)),
            Err(problem) if problem.status == 404 => Ok(None),
            Err(problem) => Err(UpstreamError::Failed {
                servicio,
                cause: format!("GET {path_and_query} was refused: {problem}"),
            }),
        }
    }

    /// The items of a list: a `{items: [...]}` page or a bare array. Any 4xx (a 404 too: a
    /// list route always exists) means this BFF asked wrongly: a failure of the call.
    pub async fn items(
        &self,
        servicio: Servicio,
        path_and_query: &str,
    ) -> Result<Vec<Value>, UpstreamError> {
        match self.get(servicio, path_and_query).await? {
            Err(problem) => Err(UpstreamError::Failed {
                servicio,
                cause: format!("GET {path_and_query} was refused: {problem}"),
            }),
            Ok(Value::Array(items)) => Ok(items),
            Ok(Value::Object(mut page)) => match page.remove("items") {
                Some(Value::Array(items)) => Ok(items),
                _ => Err(UpstreamError::Failed {
                    servicio,
                    cause: format!("GET {path_and_query} answered a page without items"),
                }),
            },
            Ok(_) => Err(UpstreamError::Failed {
                servicio,
                cause: format!("GET {path_and_query} answered something that is not a list"),
            }),
        }
    }
}
