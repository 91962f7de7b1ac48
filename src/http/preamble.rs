//! The one step every request passes before its handler: per mode and route, it lets the
//! request through or answers it at once. Today it holds the warm-up gate and the stale
//! block-height gate of a primary's writes, a standby's refusal of writes and a router's
//! answers; IP and process allow-lists add one arm each here.

use super::error::ApiError;
use super::mode::Mode;
use super::route::Route;
use super::{App, Body};
use crate::sequencer::Sequencer;
use hyper::Response;
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
pub(super) fn preamble(app: &App, route: &Route, query: Option<&str>) -> Preamble {
    if matches!(
        route,
        Route::Health | Route::Metrics | Route::Feed | Route::Preflight | Route::NotFound
    ) {
        return Preamble::Continue;
    }
    match (&app.mode, route) {
        (Mode::Primary(primary), Route::Write) => match primary_write_gates(app) {
            Preamble::Continue => storage_gate(&primary.sequencer),
            answer => answer,
        },
        (Mode::Primary(_), _) => Preamble::Continue,
        (Mode::Standby(standby), Route::Write) => redirect_write(&standby.primary, query),
        (Mode::Standby(_), _) => Preamble::Continue,
        (Mode::Router(_), Route::Write) => warm_up_gate(app),
        (Mode::Router(router), route) => super::router::redirect_read(router, route, query),
    }
}

/// A storage fault: writes answer 503 with its cause until the store takes writes again,
/// before any verification work is spent on them (DECISIONS 16).
fn storage_gate(sequencer: &Sequencer) -> Preamble {
    match sequencer.health().fault() {
        Some(fault) => Preamble::refuse(ApiError::StorageUnavailable(fault.cause)),
        None => Preamble::Continue,
    }
}

/// `WARMUP_DELAY`: writes answer 503 for a while after start.
fn warm_up_gate(app: &App) -> Preamble {
    if Instant::now() < app.warmup_until {
        return Preamble::refuse(ApiError::WarmingUp);
    }
    Preamble::Continue
}

/// Warm-up, then the block height: a primary does not sign Assignments before it knows a
/// height from its gateway, nor with one older than `MAX_BLOCK_HEIGHT_AGE_SECS`.
fn primary_write_gates(app: &App) -> Preamble {
    if let Preamble::Answer(answer) = warm_up_gate(app) {
        return Preamble::Answer(answer);
    }
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

/// A standby schedules nothing: a write is sent to its primary with a 307, which keeps the
/// method and the body (clients re-POST, as they do for a router).
fn redirect_write(primary: &str, query: Option<&str>) -> Preamble {
    let location = match query {
        Some(query) => format!("{primary}/?{query}"),
        None => format!("{primary}/"),
    };
    let mut response = Response::new(super::Body::default());
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
