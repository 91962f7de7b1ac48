//! What the gateway says about an assigned transaction (AOP-1, PROTOCOL 4.6.2 and 4.6.3):
//! its two dedupe hashes, from its GraphQL metadata and its `/raw` data (streamed into the
//! deep hash, never held whole), and whether it is a base-layer transaction. The write path
//! uses it for new assignments, the importer for imported ones.

use super::gateway::{Gateway, GatewayError};
use crate::ans104::b64;
use crate::ans104::dedupe::{HashedDedupeInput, TagOrder, dedupe_hash_of_hashed};
use crate::ans104::deep_hash::Digest48;

/// The ordered and the as-given dedupe hash of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionHashes {
    pub ordered: Digest48,
    pub unordered: Digest48,
}

/// The dedupe hashes of `transaction` (b64u id): GraphQL gives its recipient, anchor and
/// tags, `/raw` its data. An absent recipient or anchor counts as an empty blob.
pub async fn transaction_hashes(
    gateway: &Gateway,
    transaction: &str,
) -> Result<TransactionHashes, GatewayError> {
    let metadata = gateway.transaction(transaction).await?;
    let data_hash = gateway.raw_blob_hash(transaction).await?;
    let decode = |value: &Option<String>| -> Vec<u8> {
        value
            .as_deref()
            .filter(|v| !v.is_empty())
            .and_then(b64::decode)
            .unwrap_or_default()
    };
    let target = decode(&metadata.recipient);
    let anchor = decode(&metadata.anchor);
    let tags: Vec<(&str, &str)> = metadata
        .tags
        .iter()
        .map(|tag| (tag.name.as_str(), tag.value.as_str()))
        .collect();
    let input = HashedDedupeInput {
        target: &target,
        anchor: &anchor,
        tags: &tags,
        data_hash,
    };
    Ok(TransactionHashes {
        ordered: dedupe_hash_of_hashed(&input, TagOrder::Sorted),
        unordered: dedupe_hash_of_hashed(&input, TagOrder::AsGiven),
    })
}

/// Whether `transaction` is a base-layer (L1) transaction: `GET /tx/{id}/status` answers
/// 2xx (with confirmations, or "Pending" for one not yet mined). A 404 means it is not: a
/// bundled data item. Base-layer assignments never get a dedupe record (4.6.3).
pub async fn is_base_layer(gateway: &Gateway, transaction: &str) -> Result<bool, GatewayError> {
    match gateway.confirmations(transaction).await {
        Ok(_) | Err(GatewayError::Json(_)) => Ok(true),
        Err(GatewayError::Status(status)) if status == reqwest::StatusCode::NOT_FOUND => Ok(false),
        Err(GatewayError::NotFound) => Ok(false),
        Err(other) => Err(other),
    }
}
