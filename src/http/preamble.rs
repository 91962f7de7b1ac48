//! The one step every request passes before its handler: per mode and route, it lets the
//! request through or answers it at once. Writes meet the read-only mode, a standby's
//! refusal, the warm-up gate, the IP allow-list and per-IP rate limit, then the mode's own
//! gates (a primary's block height); reads meet the process allow-list. A router's
//! redirects are its handlers.

use super::error::ApiError;
use super::mode::Mode;
use super::query::Query;
use super::route::Route;
use super::{App, Body};
use crate::sequencer::Sequencer;
use hyper::{Request, Response};
use std::time::Instant;

/// What the preamble decided.
pub(super) enum Preamble {
    /// Run the route's handler.
    Continue,
    /// Answer with this, without running the handler.
    Answer(Result<Response<Body>, ApiError>),
}

impl Preamble {
    fn refuse(error: ApiError) -> Self {
        Self::Answer(Err(error))
    }
}

/// Applies the gates of `route` in `app`'s mode, in the reference's order (PROTOCOL 3.2).
pub(super) fn preamble<B>(app: &App, route: &Route, request: &Request<B>) -> Preamble {
    match route {
        Route::Health
        | Route::Metrics
        | Route::Feed
        | Route::ProcessCount
        | Route::Preflight
        | Route::NotFound => Preamble::Continue,
        Route::Write => write_gates(app, request),
        _ => read_gates(app, route, request.uri().query()),
    }
}

/// A write, in this order: `SU_READ_ONLY` (a redirect needs no other check), a standby's
/// refusal, warm-up, the IP allow-list and per-IP rate limit, then the mode's gates.
fn write_gates<B>(app: &App, request: &Request<B>) -> Preamble {
    if let Some(answer) = app.controls.read_only_answer(request) {
        return Preamble::Answer(answer);
    }
    if let Mode::Standby(standby) = &app.mode {
        return redirect_write(&standby.primary, request.uri().query());
    }
    if Instant::now() < app.warmup_until {
        return Preamble::refuse(ApiError::WarmingUp);
    }
    if let Err(error) = app.controls.admit_client(request) {
        return Preamble::refuse(error);
    }
    match &app.mode {
        Mode::Primary(primary) => match block_height_gate(app) {
            Preamble::Continue => storage_gate(&primary.sequencer),
            answer => answer,
        },
        Mode::Router(_) | Mode::Standby(_) => Preamble::Continue,
    }
}

/// A read: the process allow-list (before any redirect, PROTOCOL 8.2), then the mode.
fn read_gates(app: &App, route: &Route, query: Option<&str>) -> Preamble {
    let parsed;
    let process = match route {
        Route::Process(id) | Route::Latest(id) | Route::Stream(id) => Some(id.as_str()),
        // Keyed by `process-id`, as in the reference; without it, by the path's id.
        Route::ById(id) => {
            parsed = Query::parse(query);
            Some(parsed.process_id().unwrap_or(id))
        }
        _ => None,
    };
    if let Some(Err(error)) = process.map(|process| app.controls.check_process_read(process)) {
        return Preamble::refuse(error);
    }
    // A router's redirect is its handler (`http/router.rs`): it may have to ask its SUs.
    Preamble::Continue
}

/// A storage fault: writes answer 503 with its cause until the store takes writes again,
/// before any verification work is spent on them (DECISIONS 16).
fn storage_gate(sequencer: &Sequencer) -> Preamble {
    match sequencer.health().fault() {
        Some(fault) => Preamble::refuse(ApiError::StorageUnavailable(fault.cause)),
        None => Preamble::Continue,
    }
}

/// A standby schedules nothing: a write is sent to its primary with a 307, which keeps the
/// method and the body (clients re-POST, as they do for a router).
fn redirect_write(primary: &str, query: Option<&str>) -> Preamble {
    let location = match query {
        Some(query) => format!("{primary}/?{query}"),
        None => format!("{primary}/"),
    };
    let mut response = Response::new(Body::default());
    *response.status_mut() = hyper::StatusCode::TEMPORARY_REDIRECT;
    match hyper::header::HeaderValue::from_str(&location) {
        Ok(value) => {
            response
                .headers_mut()
                .insert(hyper::header::LOCATION, value);
            Preamble::Answer(Ok(response))
        }
        Err(_) => Preamble::refuse(ApiError::ReadOnly),
    }
}

/// A primary does not sign Assignments before it knows a height from its gateway, nor with
/// one older than `MAX_BLOCK_HEIGHT_AGE_SECS`.
fn block_height_gate(app: &App) -> Preamble {
    // With a gateway configured, never sign `Block-Height` 0: wait for a first height (an
    // offline SU, with no gateway, runs on what it has, as before).
    if app.gateway.is_online() && !app.block_height.is_known() {
        return Preamble::refuse(ApiError::Unavailable(
            "the Arweave block height is not known yet; writes wait for the gateway",
        ));
    }
    let max_age = app.admission.max_block_height_age_secs;
    if max_age > 0 && app.block_height.age_secs().is_none_or(|age| age > max_age) {
        return Preamble::refuse(ApiError::Unavailable(
            "the Arweave block height is stale; writes are paused",
        ));
    }
    Preamble::Continue
}
