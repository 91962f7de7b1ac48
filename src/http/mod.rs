//! The HTTP adapter: hyper 1.x, the accept loop, CORS, and dispatch to handlers.
//! No business rules live here beyond request validation.

pub mod error;
pub mod query;
mod read;
pub mod route;
mod write;
mod write_assign;

use crate::config::SizeLimit;
use crate::sequencer::Sequencer;
use crate::store::Store;
use crate::upstream::{BlockHeight, Gateway};
use crate::wallet::Wallet;
use bytes::Bytes;
use error::ApiError;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The largest request body accepted (PROTOCOL 2.3).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Open connections beyond this wait in the listen backlog.
const MAX_CONNECTIONS: usize = 4096;

/// Request-handling settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub accepted_signature_types: Vec<u16>,
    pub deep_hash_checks: bool,
    pub warmup_until: Instant,
    pub size_limit: Option<SizeLimit>,
    pub max_read_memory: usize,
    pub max_limit: usize,
    pub max_block_height_age_secs: u64,
}

/// Everything the handlers share.
pub struct App {
    pub store: Arc<Store>,
    pub sequencer: Sequencer,
    pub wallet: Arc<Wallet>,
    pub block_height: Arc<BlockHeight>,
    pub gateway: Gateway,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub settings: HttpSettings,
}

type Body = Full<Bytes>;

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn add_cors(request_headers: &hyper::HeaderMap, response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    let methods = request_headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .cloned()
        .unwrap_or(HeaderValue::from_static("GET, POST, OPTIONS"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    let allowed = request_headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
}

fn route_label(route: &route::Route) -> &'static str {
    use route::Route;
    match route {
        Route::Info => "info",
        Route::Write => "write",
        Route::Timestamp => "timestamp",
        Route::Health => "health",
        Route::Metrics => "metrics",
        Route::ById(_) => "by_id",
        Route::Process(_) => "process",
        Route::Latest(_) => "latest",
        Route::Preflight => "preflight",
        Route::NotFound => "not_found",
    }
}

/// Serves one request: route, handle, render the error if any, add CORS.
pub async fn handle(app: Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let route = route::route(request.method(), request.uri().path());
    let label = route_label(&route);
    let request_headers = request.headers().clone();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let result = match route {
        route::Route::Write => write::write(&app, request).await,
        route::Route::Preflight => Ok(Response::new(Full::new(Bytes::new()))),
        route::Route::NotFound => Err(ApiError::NoRoute),
        other => read::read(&app, other, request.uri().query()).await,
    };
    let mut response = result.unwrap_or_else(|error| {
        if let ApiError::Internal(detail) = &error {
            tracing::error!(detail, %path, "request failed");
        }
        json_response(error.status(), error.body())
    });
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    add_cors(&request_headers, &mut response);
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed();
    metrics::counter!("su_http_requests_total", "route" => label, "status" => status).increment(1);
    metrics::histogram!("su_http_request_seconds", "route" => label).record(elapsed.as_secs_f64());
    tracing::debug!(%method, %path, status = response.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    response
}

/// Accepts connections until `shutdown` fires, then drains in-flight requests for at most
/// `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    drain: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = hyper::service::service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(app, request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within the drain deadline");
    }
}
