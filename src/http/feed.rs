//! `GET /~su/log?after=SEQ&limit=N`: the change feed a standby (`su sync`) follows. Every
//! change after a global log sequence, in order, in pages bounded by count and by bytes. It
//! holds nothing that is not public on Arweave; `SU_FEED_TOKEN` restricts it to a bearer token.

use super::error::ApiError;
use super::query::Query;
use super::{App, Body, json_response};
use crate::ans104::b64;
use crate::replication::feed::{FeedChange, FeedPage, MAX_LIMIT, MAX_PAGE_BYTES};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};

/// Changes a page holds when the request names no `limit`.
const DEFAULT_LIMIT: usize = 100;

pub(super) async fn feed(
    app: &App,
    request: &Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if let Some(token) = &app.http.feed_token {
        let expected = format!("Bearer {token}");
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())) {
            return Err(ApiError::Forbidden("the change feed needs SU_FEED_TOKEN"));
        }
    }
    let query = Query::parse(request.uri().query());
    let after = match query.get("after") {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| ApiError::BadRequest("after must be a log sequence number".into()))?,
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit must be a number from 1 to {MAX_LIMIT}"))
            })?,
    };
    let store = app.store.clone();
    let page = tokio::task::spawn_blocking(move || {
        let signer = store.signer_address()?;
        let last_sequence = store.last_sequence()?;
        let changes = store.log_after_bounded(after, limit, MAX_PAGE_BYTES)?;
        Ok::<_, crate::store::StoreError>(FeedPage {
            signer: signer
                .as_ref()
                .map(|address| b64::encode(address))
                .unwrap_or_default(),
            last_sequence,
            changes: changes.iter().map(FeedChange::from_change).collect(),
        })
    })
    .await
    .map_err(|error| ApiError::Internal(error.to_string()))?
    .map_err(|error| ApiError::Internal(error.to_string()))?;
    let body = serde_json::to_vec(&page).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

/// Compares without an early exit, so the token cannot be guessed byte by byte from timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
