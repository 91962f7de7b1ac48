//! Write stage 2 for `POST /?process-id=P&assign=T[&base-layer][&exclude=a,b]`: admit the
//! assignment of an existing transaction (AOP-1, or AOP-2 with `base-layer`). There is no
//! item to verify; the gateway I/O happens here, before the request reaches a shard.

use super::admit::{AdmittedWrite, check_size};
use crate::ans104::{DataItem, b64, limits};
use crate::domain::{AssignmentFields, assignment_tags};
use crate::http::App;
use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::sequencer::{DedupeHashes, Rejection, Request as Scheduled};
use crate::upstream::{GatewayError, assigned};

/// Confirmations a base-layer assignment needs when the process names no `Settlement-Depth`.
const DEFAULT_SETTLEMENT_DEPTH: u64 = 20;

fn builder(reason: impl Into<String>) -> ApiError {
    ApiError::Builder(reason.into())
}

/// The process's `Settlement-Depth` tag, parsed, or the default.
async fn settlement_depth(app: &App, process: [u8; 32]) -> Result<u64, ApiError> {
    let store = app.store.clone();
    let tag = tokio::task::spawn_blocking(move || -> Result<Option<String>, ApiError> {
        let Some(record) = store
            .entry(&process, 0)
            .map_err(|e| ApiError::Internal(e.to_string()))?
        else {
            return Ok(None);
        };
        let Some(bytes) = store
            .item(&record.message_id)
            .map_err(|e| ApiError::Internal(e.to_string()))?
        else {
            return Ok(None);
        };
        let item = DataItem::parse(&bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(item.tag("Settlement-Depth").map(str::to_string))
    })
    .await
    .map_err(|error| ApiError::Internal(error.to_string()))??;
    Ok(tag
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(DEFAULT_SETTLEMENT_DEPTH))
}

fn gateway_error(error: GatewayError) -> ApiError {
    match error {
        GatewayError::NotFound => builder("Transaction not found"),
        GatewayError::NotConfigured => builder("Transaction not found (no gateway is configured)"),
        GatewayError::Busy => ApiError::Unavailable("too many transaction downloads in progress"),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// The Assignment of `exclude` must keep the ANS-104 limits: it is measured with the widest
/// values its other tags can take (20-digit nonce and timestamp), so it fits whatever slot
/// the shard gives it.
fn check_exclude(
    process: [u8; 32],
    transaction: [u8; 32],
    exclude: &[String],
) -> Result<(), ApiError> {
    let widest = AssignmentFields {
        process,
        nonce: u64::MAX,
        hash_chain: [0; 32],
        block_height: u64::MAX,
        timestamp: u64::MAX,
        message: Some(transaction),
        exclude: exclude.to_vec(),
    };
    limits::check_draft_tags(&assignment_tags(&widest)).map_err(|error| {
        ApiError::BadRequest(format!("exclude makes the Assignment too large: {error}"))
    })
}

/// The dedupe hashes of an AOP-1 transaction, from GraphQL and `/raw`.
async fn transaction_hashes(app: &App, transaction: &str) -> Result<DedupeHashes, ApiError> {
    let hashes = assigned::transaction_hashes(&app.gateway, transaction)
        .await
        .map_err(gateway_error)?;
    Ok(DedupeHashes {
        ordered: hashes.ordered,
        unordered: hashes.unordered,
    })
}

/// The two query values that make a `POST /` an assignment.
pub(crate) struct AssignTarget {
    pub(crate) process: String,
    pub(crate) transaction: String,
}

/// Validates an assignment in the reference's order: size, hosted process, transaction id,
/// then (our addition) that `exclude` keeps the Assignment within the ANS-104 limits, then
/// the gateway (confirmations for `base-layer`, otherwise the dedupe hashes).
pub(crate) async fn admit_assignment(
    app: &App,
    target: &AssignTarget,
    query: &Query,
    body_len: usize,
) -> Result<AdmittedWrite, ApiError> {
    check_size(&app.admission, None, body_len)?;
    let (process_text, transaction_text) = (target.process.as_str(), target.transaction.as_str());
    app.controls.check_process_write_text(process_text)?;
    let not_found = || ApiError::Rejected(Rejection::ProcessNotFound);
    let process = b64::decode_id(process_text).ok_or_else(not_found)?;
    let store = app.store.clone();
    let known = tokio::task::spawn_blocking(move || store.process(&process))
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .is_some();
    if !known {
        return Err(not_found());
    }
    if transaction_text.len() != 43 {
        return Err(builder("assign param must be 43 characters"));
    }
    let transaction = b64::decode_id(transaction_text)
        .ok_or_else(|| builder("assign param must be a base64url id"))?;
    let exclude: Vec<String> = match query.get("exclude") {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => Vec::new(),
    };
    check_exclude(process, transaction, &exclude)?;
    let dedupe = if query.has("base-layer") {
        let depth = settlement_depth(app, process).await?;
        let confirmations = app
            .gateway
            .confirmations(transaction_text)
            .await
            .map_err(gateway_error)?;
        if confirmations < depth {
            return Err(builder("Not enough confirmations to assign"));
        }
        None
    } else {
        Some(transaction_hashes(app, transaction_text).await?)
    };
    Ok(AdmittedWrite {
        request: Scheduled::Assign {
            process,
            transaction,
            exclude,
            dedupe,
        },
    })
}
