//! Write stage 3, schedule: an `AdmittedWrite` → `Sequencer::append` → the client's answer,
//! sent only once the entry is durable. Only a primary reaches this stage.

use super::admit::AdmittedWrite;
use crate::ans104::b64;
use crate::http::error::ApiError;
use crate::http::{Body, json_response};
use crate::sequencer::{Receipt, Sequencer};
use hyper::StatusCode;
use std::time::Instant;

/// Hands the write to its process's shard and answers `{"id":…,"timestamp":…}`.
pub(crate) async fn schedule(
    sequencer: &Sequencer,
    admitted: AdmittedWrite,
    started: Instant,
) -> Result<hyper::Response<Body>, ApiError> {
    let receipt = sequencer.append(admitted.request).await?;
    Ok(respond(&receipt, started))
}

fn respond(receipt: &Receipt, started: Instant) -> hyper::Response<Body> {
    if receipt.fresh {
        tracing::info!(
            process = %b64::encode(&receipt.process),
            nonce = receipt.nonce,
            latency_ms = started.elapsed().as_millis() as u64,
            "scheduled"
        );
    }
    let mut body = b"{\"id\":".to_vec();
    crate::render::string(&mut body, &b64::encode(&receipt.id));
    body.extend_from_slice(format!(",\"timestamp\":{}}}", receipt.timestamp).as_bytes());
    json_response(StatusCode::OK, body)
}
