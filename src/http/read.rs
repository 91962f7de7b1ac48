//! Read handlers: info, timestamp, health, metrics, schedule pages, nodes, latest, process.
//! Store work runs on blocking threads; nothing here goes through the shards.

use super::error::ApiError;
use super::query::Query;
use super::route::Route;
use super::{App, Body, json_response};
use crate::ans104::b64;
use crate::domain::{Id, format_block_height};
use crate::reads::{self, PageRequest, ReadError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// The default page size (PROTOCOL 5.2).
const DEFAULT_LIMIT: usize = 100;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ReadError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .map_err(ApiError::from)
}

fn ok_json(body: Vec<u8>) -> Result<Response<Body>, ApiError> {
    Ok(json_response(StatusCode::OK, body))
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
        Route::Health => Ok(Response::new(Full::new(Bytes::new()))),
        Route::Metrics => {
            let handle = app.metrics.as_ref().ok_or(ApiError::MetricsDisabled)?;
            crate::telemetry::record_gauges(app);
            let mut response = Response::new(Full::new(Bytes::from(handle.render())));
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
            ok_json(blocking(move || reads::latest(&store, &process, show_anchor)).await?)
        }
        Route::Process(id) => {
            let process = path_id(&id, ReadError::ProcessNotFound)?;
            let store = app.store.clone();
            ok_json(blocking(move || reads::process_record(&store, &process)).await?)
        }
        Route::Write | Route::Feed | Route::Preflight | Route::NotFound => Err(ApiError::NoRoute),
    }
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
        if blocking(move || reads::is_process(&store, &id)).await? {
            return Err(ApiError::ProcessNotAllowed(id_text.to_string()));
        }
    }
    let request = PageRequest {
        mode,
        limit,
        show_anchor,
        max_read_bytes: app.http.max_read_memory,
    };
    let store = app.store.clone();
    let body = blocking(move || {
        // A process id always means its schedule (PROTOCOL 3.6 step 0).
        if reads::is_process(&store, &id)? {
            return reads::page(&store, &id, &request);
        }
        reads::node_by_id(&store, &id, scope.as_ref(), show_anchor)?
            .ok_or(ReadError::MessageOrProcessNotFound)
    })
    .await?;
    ok_json(body)
}
