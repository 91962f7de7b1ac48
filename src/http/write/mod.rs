//! `POST /` in three stages with typed hand-offs: parse and verify (`verify`: body →
//! `VerifiedItem`), admit (`admit`, `assign`: → `AdmittedWrite`) and schedule (`schedule`:
//! → `Sequencer::append` → answer). A primary runs all three; a router stops after the
//! first, and a standby is refused by the preamble before any of them.

pub(crate) mod admit;
pub(crate) mod assign;
pub(crate) mod schedule;
pub(crate) mod verify;

use super::body::BodyLimits;
use super::error::ApiError;
use super::mode::Mode;
use super::query::Query;
use super::{App, Body, MAX_BODY_BYTES};
use assign::AssignTarget;
use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;
use std::time::Instant;

/// What the query makes of a `POST /`.
pub(crate) enum WriteTarget {
    /// Both `process-id` and `assign`: schedule an existing transaction; the body is ignored.
    Assign(AssignTarget),
    /// The body is a Process or Message item. `stray_parameter`: only one of the two was sent.
    Item { stray_parameter: bool },
}

impl WriteTarget {
    fn from_query(query: &Query) -> Self {
        let process = query.get("process-id").filter(|value| !value.is_empty());
        let assign = query.get("assign");
        match (process, assign) {
            (Some(process), Some(transaction)) => Self::Assign(AssignTarget {
                process: process.to_string(),
                transaction: transaction.to_string(),
            }),
            (process, assign) => Self::Item {
                stray_parameter: process.is_some() || assign.is_some(),
            },
        }
    }
}

/// The body, at most `MAX_BODY_BYTES` (413 beyond), within the connection limits' body
/// timeout and minimum rate (408 otherwise). With `item_header`, a body whose item header
/// declares more tags or tag bytes than ANS-104 allows is refused as soon as the header is
/// in, without reading the rest (hyper then closes the connection after the answer).
async fn read_body(
    request: Request<Incoming>,
    app: &App,
    item_header: bool,
) -> Result<Bytes, ApiError> {
    let limits = BodyLimits::new(MAX_BODY_BYTES, &app.http.connections);
    let mut check = |received: &[u8]| verify::check_declared_tags(received);
    let head_check: Option<super::body::HeadCheck<'_>> =
        if item_header { Some(&mut check) } else { None };
    Ok(super::body::read(request, limits, head_check).await?)
}

/// Serves `POST /` after the preamble let it through.
pub(super) async fn write(
    app: &App,
    request: Request<Incoming>,
) -> Result<hyper::Response<Body>, ApiError> {
    let started = Instant::now();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
    let query = Query::parse(request.uri().query());
    let target = WriteTarget::from_query(&query);
    let item_header = matches!(target, WriteTarget::Item { .. });
    let body = read_body(request, app, item_header).await?;
    match &app.mode {
        Mode::Primary(primary) => {
            let admitted = admit(app, &target, &query, body).await?;
            schedule::schedule(&primary.sequencer, admitted, started).await
        }
        Mode::Router(router) => {
            super::router::write(app, router, target, body, &path_and_query).await
        }
        // The preamble refuses writes on a standby; this arm only keeps the match total.
        Mode::Standby(_) => Err(ApiError::ReadOnly),
    }
}

/// Stages 1 and 2: everything a write must pass before it may be scheduled.
async fn admit(
    app: &App,
    target: &WriteTarget,
    query: &Query,
    body: Bytes,
) -> Result<admit::AdmittedWrite, ApiError> {
    match target {
        WriteTarget::Assign(assign) => {
            assign::admit_assignment(app, assign, query, body.len()).await
        }
        WriteTarget::Item { stray_parameter } => {
            let item = verify::parse_and_verify(app, body).await?;
            admit::admit_item(app, item, *stray_parameter).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(query: &str) -> WriteTarget {
        WriteTarget::from_query(&Query::parse(Some(query)))
    }

    #[test]
    fn the_query_decides_between_an_item_and_an_assignment() {
        let is_item = |query: &str, stray: bool| {
            assert!(
                matches!(target(query), WriteTarget::Item { stray_parameter } if stray_parameter == stray),
                "{query}"
            );
        };
        is_item("", false);
        is_item("process-id=", false);
        is_item("process-id=P", true);
        is_item("assign=T", true);
        is_item("assign=", true);
        is_item("process-id=&assign=T", true);
        match target("process-id=P&assign=T") {
            WriteTarget::Assign(assign) => {
                assert_eq!(
                    (assign.process.as_str(), assign.transaction.as_str()),
                    ("P", "T")
                );
            }
            WriteTarget::Item { .. } => panic!("expected an assignment"),
        }
    }
}
