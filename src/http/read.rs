//! Read handlers: info, timestamp, health, metrics, schedule pages, nodes, latest, process.
//! Store work runs on blocking threads; nothing here goes through the shards. Rendered
//! responses hold their share of the read budget until hyper has sent and dropped them.

use super::error::ApiError;
use super::query::Query;
use super::route::Route;
use super::{App, Body, json_response};
use crate::ans104::b64;
use crate::domain::{Id, format_block_height};
use crate::reads::{self, PageRequest, ReadError, Reservation};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use std::sync::Arc;

/// The default page size (PROTOCOL 5.2).
const DEFAULT_LIMIT: usize = 100;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ok_json(body: Vec<u8>) -> Result<Response<Body>, ApiError> {
    Ok(json_response(StatusCode::OK, body))
}

/// Rendered JSON and the read budget it holds; the budget goes back when hyper drops the
/// body, once it is sent.
struct Rendered {
    json: Vec<u8>,
    _reservation: Reservation,
}

impl AsRef<[u8]> for Rendered {
    fn as_ref(&self) -> &[u8] {
        &self.json
    }
}

/// Times a read asks again after waiting for the budget (the first node of a page can only
/// be as large as it was; more attempts would mean the store changed under it).
const BUDGET_ATTEMPTS: usize = 4;

/// Runs a rendering read on the blocking pool within the shared read budget. When the
/// budget has no room for its first node, nothing is held while the read waits (at most
/// `READ_QUEUE_MILLIS`) for that much, then it runs again; past the wait, 503.
async fn budgeted(
    app: &App,
    work: impl Fn(&mut Reservation) -> Result<Vec<u8>, ReadError> + Send + Sync + 'static,
) -> Result<Response<Body>, ApiError> {
    let (json, reservation) = budgeted_json(app, work).await?;
    Ok(rendered_response(json, reservation))
}

/// The JSON of a budgeted read and the reservation that covers it.
pub(super) async fn budgeted_json(
    app: &App,
    work: impl Fn(&mut Reservation) -> Result<Vec<u8>, ReadError> + Send + Sync + 'static,
) -> Result<(Vec<u8>, Reservation), ApiError> {
    let work = Arc::new(work);
    let mut reservation = app.budgets.read.reservation();
    for _ in 0..BUDGET_ATTEMPTS {
        let run = work.clone();
        let (result, held) = tokio::task::spawn_blocking(move || {
            let result = run(&mut reservation);
            (result, reservation)
        })
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?;
        reservation = held;
        match result {
            Ok(json) => return Ok((json, reservation)),
            Err(ReadError::NeedsMemory(bytes)) => {
                drop(reservation);
                reservation = app
                    .budgets
                    .read
                    .reserve(bytes, app.budgets.read_wait)
                    .await
                    .ok_or(ReadError::NeedsMemory(bytes))?;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::from(ReadError::NeedsMemory(0)))
}

/// A 200 with rendered JSON whose budget goes back once hyper has sent it.
pub(super) fn rendered_response(json: Vec<u8>, reservation: Reservation) -> Response<Body> {
    let body = Bytes::from_owner(Rendered {
        json,
        _reservation: reservation,
    });
    let mut response = Response::new(Body::full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An id from the path; anything that is not a 43-character id cannot be stored here.
fn path_id(text: &str, missing: ReadError) -> Result<Id, ApiError> {
    b64::decode_id(text).ok_or(ApiError::Read(missing))
}

pub(super) async fn read(
    app: &App,
    route: Route,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let query = Query::parse(query);
    match route {
        Route::Info => {
            let address = app.mode.address().ok_or(ApiError::NoRoute)?;
            let mut body = b"{\"address\":".to_vec();
            crate::render::string(&mut body, &address);
            body.extend_from_slice(format!(",\"timestamp\":\"{}\"}}", now_ms()).as_bytes());
            ok_json(body)
        }
        Route::Timestamp => ok_json(
            format!(
                "{{\"block_height\":\"{}\",\"timestamp\":\"{}\"}}",
                format_block_height(app.block_height.get()),
                now_ms()
            )
            .into_bytes(),
        ),
        Route::Health => Ok(Response::new(Body::full(Bytes::new()))),
        Route::Metrics => {
            let handle = app.metrics.as_ref().ok_or(ApiError::MetricsDisabled)?;
            crate::telemetry::record_gauges(app);
            let mut response = Response::new(Body::full(Bytes::from(handle.render())));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(response)
        }
        Route::ById(id) => by_id(app, &id, &query).await,
        Route::Latest(id) => {
            let process = path_id(&id, ReadError::LatestNotAvailable)?;
            let store = app.store.clone();
            let show_anchor = query.has("show-anchor");
            budgeted(app, move |reservation| {
                reads::latest_within(&store, &process, show_anchor, reservation)
            })
            .await
        }
        Route::Process(id) => {
            let process = path_id(&id, ReadError::ProcessNotFound)?;
            let store = app.store.clone();
            budgeted(app, move |reservation| {
                reads::process_record_within(&store, &process, reservation)
            })
            .await
        }
        Route::Write
        | Route::Feed
        | Route::ProcessCount
        | Route::Stream(_)
        | Route::Preflight
        | Route::NotFound => Err(ApiError::NoRoute),
    }
}

/// `GET /~su/process-count`: `{"processes":N}`, how many processes this SU holds (a router's
/// health check and load figure; README "Router mode").
pub(super) async fn process_count(app: &App) -> Result<Response<Body>, ApiError> {
    let store = app.store.clone();
    let count = tokio::task::spawn_blocking(move || store.process_count())
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    ok_json(format!("{{\"processes\":{count}}}").into_bytes())
}

async fn by_id(app: &App, id_text: &str, query: &Query) -> Result<Response<Body>, ApiError> {
    let id = path_id(id_text, ReadError::MessageOrProcessNotFound)?;
    let (mode, limit) = query.page(DEFAULT_LIMIT, app.http.max_limit)?;
    let show_anchor = query.has("show-anchor");
    let scope = match query.process_id() {
        Some(text) => {
            Some(b64::decode_id(text).ok_or(ApiError::Read(ReadError::MessageOrProcessNotFound))?)
        }
        None => None,
    };
    // The preamble checked the process allow-list against `process-id`; a path that names
    // another process is that process's schedule, so it is checked too.
    if scope.is_some_and(|scope| scope != id) && app.controls.refuses_read(&id) {
        let store = app.store.clone();
        let is_process = tokio::task::spawn_blocking(move || reads::is_process(&store, &id))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))??;
        if is_process {
            return Err(ApiError::ProcessNotAllowed(id_text.to_string()));
        }
    }
    let request = PageRequest {
        mode,
        limit,
        show_anchor,
        max_read_bytes: app.http.max_read_memory,
    };
    if let Some(wait) = query.wait()? {
        let store = app.store.clone();
        let is_process = tokio::task::spawn_blocking(move || reads::is_process(&store, &id))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))??;
        if is_process {
            return super::live::waiting_page(app, id, request, wait).await;
        }
    }
    let store = app.store.clone();
    budgeted(app, move |reservation| {
        // A process id always means its schedule (PROTOCOL 3.6 step 0).
        if reads::is_process(&store, &id)? {
            return reads::page_within(&store, &id, &request, reservation);
        }
        reads::node_by_id_within(&store, &id, scope.as_ref(), show_anchor, reservation)?
            .ok_or(ReadError::MessageOrProcessNotFound)
    })
    .await
}
