//! `su-loadgen --fake-bundler PORT`: a local bundler for outbox measurements. It answers every
//! `POST /tx/arweave` after a fixed delay, serves requests concurrently over keep-alive,
//! refuses (503) during an optional outage at start, and prints one line per second.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How the fake bundler behaves.
pub struct Settings {
    pub port: u16,
    pub delay: Duration,
    /// Answer 503 for this long after the first request.
    pub outage: Duration,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    /// Microseconds from the end of the outage to the first accepted upload (+1; 0 = none).
    first_after_outage_us: AtomicU64,
}

struct State {
    settings: Settings,
    counters: Counters,
    first_request: std::sync::OnceLock<Instant>,
}

async fn answer(state: Arc<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let first = *state.first_request.get_or_init(Instant::now);
    let _ = request.into_body().collect().await;
    tokio::time::sleep(state.settings.delay).await;
    let recovery = first + state.settings.outage;
    let now = Instant::now();
    let (status, body) = if now < recovery {
        state.counters.refused.fetch_add(1, Ordering::Relaxed);
        (StatusCode::SERVICE_UNAVAILABLE, "{\"error\":\"outage\"}")
    } else {
        state.counters.accepted.fetch_add(1, Ordering::Relaxed);
        if !state.settings.outage.is_zero() {
            let micros = now.duration_since(recovery).as_micros() as u64 + 1;
            let _ = state.counters.first_after_outage_us.compare_exchange(
                0,
                micros,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        (StatusCode::OK, "{\"id\":\"ok\"}")
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Serves until killed.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.port)).await?;
        println!(
            "fake bundler on {} (delay {:?}, outage {:?})",
            listener.local_addr()?,
            settings.delay,
            settings.outage
        );
        let state = Arc::new(State {
            settings,
            counters: Counters::default(),
            first_request: std::sync::OnceLock::new(),
        });
        let reporter = state.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut previous = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let accepted = reporter.counters.accepted.load(Ordering::Relaxed);
                let first = reporter
                    .counters
                    .first_after_outage_us
                    .load(Ordering::Relaxed);
                let recovery = if first == 0 {
                    String::new()
                } else {
                    format!(
                        " first_accept_after_outage_ms={:.0}",
                        (first - 1) as f64 / 1000.0
                    )
                };
                println!(
                    "t={:.0}s accepted={accepted} (+{}/s) refused={}{recovery}",
                    started.elapsed().as_secs_f64(),
                    accepted - previous,
                    reporter.counters.refused.load(Ordering::Relaxed),
                );
                previous = accepted;
            }
        });
        loop {
            let (stream, _) = listener.accept().await?;
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(state, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
