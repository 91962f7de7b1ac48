//! Router mode's answers (PROTOCOL 7). The placement table is not built yet, so every lookup
//! misses and the router answers with the reference's "not found" errors; once the table
//! exists, a hit becomes a 307 to the owning SU here.

use super::error::ApiError;
use super::mode::Router;
use super::preamble::Preamble;
use super::query::Query;
use super::route::Route;
use super::write::WriteTarget;
use super::write::verify::{ItemKind, parse_and_verify};
use super::{App, Body};
use bytes::Bytes;
use hyper::Response;

fn router_error(message: &str) -> ApiError {
    ApiError::BadRequest(message.to_string())
}

/// Reads are redirected by process: the path's process, or the `process-id` query value.
pub(super) fn redirect_read(_router: &Router, route: &Route, query: Option<&str>) -> Preamble {
    let needs_query = matches!(route, Route::Info | Route::Timestamp | Route::ById(_));
    if needs_query && Query::parse(query).process_id().is_none() {
        return Preamble::Answer(Err(router_error("No process-id query parameter provided")));
    }
    Preamble::Answer(Err(router_error(
        "NotFound(\"Process scheduler not found\")",
    )))
}

/// A write is verified (stage 1) to learn where it belongs, and never admitted or scheduled
/// here.
pub(super) async fn write(
    app: &App,
    _router: &Router,
    target: WriteTarget,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    match target {
        WriteTarget::Assign(_) => Err(router_error("Unable to locate scheduler for process-id")),
        WriteTarget::Item {
            stray_parameter: true,
        } => Err(router_error(
            "If sending assign or process-id, you must send both.",
        )),
        WriteTarget::Item {
            stray_parameter: false,
        } => {
            let item = parse_and_verify(app, body).await?;
            match item.kind {
                ItemKind::Process => Err(router_error("Could not find a scheduler to assign")),
                ItemKind::Message => Err(router_error(
                    "Unable to locate scheduler for message target",
                )),
            }
        }
    }
}
