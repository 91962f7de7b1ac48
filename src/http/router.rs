//! Router mode's answers (PROTOCOL 7): every request but `/health` and `/metrics` is sent
//! with a 307 to the SU that holds its process, at `<su url><path and query>`; a process no
//! SU holds gets the reference's JSON errors (PROTOCOL 3.9). Where a process lives is the
//! business of `crate::router`; this file only picks the key and writes the answer.

use super::error::ApiError;
use super::query::Query;
use super::route::Route;
use super::write::WriteTarget;
use super::write::verify::{ItemKind, parse_and_verify};
use super::{App, Body};
use crate::ans104::b64;
use crate::router::{Router, RouterError};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use std::sync::Arc;

const NOT_FOUND: &str = "NotFound(\"Process scheduler not found\")";

fn router_error(message: &str) -> ApiError {
    ApiError::BadRequest(message.to_string())
}

impl From<RouterError> for ApiError {
    fn from(error: RouterError) -> Self {
        Self::Internal(error.to_string())
    }
}

/// A 307 to `su` with the request's path and query, unchanged.
fn redirect(
    su: &str,
    path_and_query: &str,
    label: &'static str,
) -> Result<Response<Body>, ApiError> {
    let location = HeaderValue::from_str(&format!("{su}{path_and_query}"))
        .map_err(|_| ApiError::Internal(format!("unusable Location for {su}")))?;
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    response.headers_mut().insert(header::LOCATION, location);
    metrics::counter!("su_router_redirects_total", "route" => label, "su" => su.to_string())
        .increment(1);
    Ok(response)
}

/// Where the process named by `key` lives; a key that is not an id is unknown.
async fn locate(router: &Arc<Router>, key: &str) -> Result<Option<String>, ApiError> {
    match b64::decode_id(key) {
        Some(process) => Ok(router.locate(&process).await?),
        None => Ok(None),
    }
}

/// A read (or `GET /`, `/timestamp`), redirected by its process: the `process-id` query
/// value, else the path's id (`/{id}`, `/processes/{id}`, `/{id}/latest`,
/// `/{id}/stream`).
pub(super) async fn read(
    router: &Arc<Router>,
    route: &Route,
    path_and_query: &str,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let parsed = Query::parse(query);
    let (key, label) = match route {
        Route::Info | Route::Timestamp => {
            let label = if *route == Route::Info {
                "info"
            } else {
                "timestamp"
            };
            match parsed.process_id() {
                Some(process) => (process, label),
                None => return Err(router_error("No process-id query parameter provided")),
            }
        }
        Route::ById(id) => (parsed.process_id().unwrap_or(id), "by_id"),
        Route::Process(id) => (id.as_str(), "process"),
        Route::Latest(id) => (id.as_str(), "latest"),
        Route::Stream(id) => (id.as_str(), "stream"),
        _ => return Err(ApiError::NoRoute),
    };
    match locate(router, key).await? {
        Some(su) => redirect(&su, path_and_query, label),
        None => Err(router_error(NOT_FOUND)),
    }
}

/// A write: an assignment by its `process-id`; an item is verified (stage 1) to learn its
/// process: a Process is placed (PROTOCOL 7.2), a Message goes where its target lives.
pub(super) async fn write(
    app: &App,
    router: &Arc<Router>,
    target: WriteTarget,
    body: Bytes,
    path_and_query: &str,
) -> Result<Response<Body>, ApiError> {
    match target {
        WriteTarget::Assign(assign) => match locate(router, &assign.process).await? {
            Some(su) => redirect(&su, path_and_query, "assign"),
            None => Err(router_error("Unable to locate scheduler for process-id")),
        },
        WriteTarget::Item {
            stray_parameter: true,
        } => Err(router_error(
            "If sending assign or process-id, you must send both.",
        )),
        WriteTarget::Item {
            stray_parameter: false,
        } => {
            let item = match parse_and_verify(app, body).await {
                Ok(item) => item,
                Err(ApiError::BadRequest(message))
                    if message == "Type tag not present"
                        || message == "Unsupported Type tag value" =>
                {
                    return Err(router_error("Cannot redirect data item, invalid Type Tag"));
                }
                Err(error) => return Err(error),
            };
            match item.kind {
                ItemKind::Process => match router.place(&item.id, &item.owner_address).await? {
                    Some(placement) => redirect(placement.url(), path_and_query, "spawn"),
                    None => Err(router_error("Could not find a scheduler to assign")),
                },
                ItemKind::Message => {
                    let located = match &item.target {
                        Some(process) => router.locate(process).await?,
                        None => None,
                    };
                    match located {
                        Some(su) => redirect(&su, path_and_query, "message"),
                        None => Err(router_error(
                            "Unable to locate scheduler for message target",
                        )),
                    }
                }
            }
        }
    }
}
