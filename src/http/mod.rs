//! The HTTP adapter: hyper 1.x, the accept loop, CORS, and dispatch to handlers.
//! Every request is routed once, passes the preamble, then reaches its handler.
//! No business rules live here beyond request validation.

mod body;
mod budgets;
mod conn;
pub mod controls;
pub mod error;
mod feed;
mod live;
pub mod mode;
mod preamble;
pub mod query;
mod read;
mod reply;
pub mod route;
mod router;
mod write;

pub use budgets::Budgets;
pub use mode::{Mode, Primary, Router, Standby};

use crate::config::{AdmissionConfig, HttpConfig};
use crate::store::Store;
use crate::upstream::{BlockHeight, Gateway};
use bytes::Bytes;
use error::ApiError;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The largest request body accepted (PROTOCOL 2.3).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Everything the handlers share: what every mode reads, and the mode with its own parts.
pub struct App {
    pub store: Arc<Store>,
    pub block_height: Arc<BlockHeight>,
    pub gateway: Gateway,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Page limits of the read handlers.
    pub http: HttpConfig,
    /// What a write must satisfy before it is scheduled.
    pub admission: AdmissionConfig,
    /// Concurrent verifications and the memory reads share.
    pub budgets: Budgets,
    /// Writes answer 503 until then (`WARMUP_DELAY`).
    pub warmup_until: Instant,
    /// The operator's allow-lists, read-only mode and rate limits.
    pub controls: controls::Controls,
    /// Waiting reads and streams: the notifier they sleep on and the cap on them.
    pub live: crate::live::Live,
    pub mode: Mode,
}

pub use reply::Body;

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from(body)));
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
        Route::Feed => "feed",
        Route::ProcessCount => "process_count",
        Route::Metrics => "metrics",
        Route::ById(_) => "by_id",
        Route::Process(_) => "process",
        Route::Latest(_) => "latest",
        Route::Stream(_) => "stream",
        Route::Preflight => "preflight",
        Route::NotFound => "not_found",
    }
}

/// Runs the route's handler; a router redirects every read (its SUs hold no log of its).
async fn dispatch(
    app: &App,
    route: route::Route,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    use route::Route;
    match (route, &app.mode) {
        (Route::Write, _) => write::write(app, request).await,
        (Route::Preflight, _) => Ok(Response::new(Body::full(Bytes::new()))),
        (Route::NotFound, _) => Err(ApiError::NoRoute),
        (other @ (Route::Health | Route::Metrics), _) => {
            read::read(app, other, request.uri().query()).await
        }
        (Route::Feed | Route::ProcessCount, Mode::Router(_)) => Err(ApiError::NoRoute),
        (Route::Feed, _) => feed::feed(app, &request).await,
        (Route::ProcessCount, _) => read::process_count(app).await,
        (other, Mode::Router(router)) => {
            let uri = request.uri();
            let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
            router::read(router, &other, path_and_query, uri.query()).await
        }
        (Route::Stream(id), _) => live::stream(app, &id, &request).await,
        (other, _) => read::read(app, other, request.uri().query()).await,
    }
}

/// Serves one request: route, preamble, handle, render the error if any, add CORS.
pub async fn handle(app: Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let route = route::route(request.method(), request.uri().path());
    let label = route_label(&route);
    let request_headers = request.headers().clone();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let result = match preamble::preamble(&app, &route, &request) {
        preamble::Preamble::Answer(answer) => answer,
        preamble::Preamble::Continue => dispatch(&app, route, request).await,
    };
    let mut response = result.unwrap_or_else(|error| {
        if let ApiError::Internal(detail) = &error {
            tracing::error!(detail, %path, "request failed");
        }
        let mut response = json_response(error.status(), error.body());
        if let Some(seconds) = error.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    });
    // A body refused or timed out may still be arriving: close rather than drain it.
    if matches!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    ) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
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
/// `drain`. Each connection lives within `app.http.connections` (see `conn`).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    drain: Duration,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = conn::Connections::new(&app.http.connections, shutdown.clone());
    let reaper = tokio::spawn(connections.reaper());
    loop {
        tokio::select! {
            () = connections.make_room() => {}
            _ = shutdown.changed() => break,
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let app = app.clone();
                    connections.serve(stream, &graceful, move |mut request| {
                        request.extensions_mut().insert(controls::PeerAddr(peer));
                        handle(app.clone(), request)
                    });
                }
                Err(error) => connections.accept_failed(error).await,
            },
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
    reaper.abort();
}
