//! Write stage 1, parse and verify: request body → `VerifiedItem`, on the blocking pool.
//! It reads the facts the later stages need and decides nothing about admission, so a
//! router can run it to learn where an item belongs.

use crate::ans104::dedupe::{TagOrder, item_dedupe_hash};
use crate::ans104::{DataItem, b64, verify};
use crate::domain::Id;
use crate::http::error::ApiError;
use crate::sequencer::DedupeHashes;
use bytes::Bytes;

/// ANS-104 limits enforced on new writes (DECISIONS 5).
const MAX_TAGS: usize = 128;
const MAX_TAG_NAME: usize = 1024;
const MAX_TAG_VALUE: usize = 3072;
const MAX_TAG_BYTES: usize = 4096;

/// A parsed item whose signature verified, with what the item says; it owns its bytes.
pub(crate) struct VerifiedItem {
    pub(crate) body: Bytes,
    pub(crate) id: Id,
    pub(crate) kind: ItemKind,
    pub(crate) target: Option<Id>,
    pub(crate) owner_address: String,
    pub(crate) from_process: Option<String>,
    pub(crate) has_data_protocol: bool,
    /// The name of the first tag whose name or value ends in `+link`.
    pub(crate) link_tag: Option<String>,
    pub(crate) has_module_and_scheduler: bool,
    pub(crate) on_boot: Option<String>,
    /// The first ANS-104 limit the tags break, as the client is told.
    pub(crate) limits_error: Option<String>,
    /// Both dedupe hashes of a pushed message (one with `From-Process`).
    pub(crate) dedupe: Option<DedupeHashes>,
}

/// The `Type` tag of an item `POST /` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemKind {
    Process,
    Message,
}

/// Runs `verify_item` on the blocking pool: parsing and signature checks never run on an
/// async worker.
pub(crate) async fn parse_and_verify(
    body: Bytes,
    accepted_signature_types: &[u16],
) -> Result<VerifiedItem, ApiError> {
    let accepted = accepted_signature_types.to_vec();
    tokio::task::spawn_blocking(move || verify_item(body, &accepted))
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
}

/// Parses the item, checks its signature type and signature, and reads its `Type` tag.
fn verify_item(body: Bytes, accepted: &[u16]) -> Result<VerifiedItem, ApiError> {
    let item = DataItem::parse(&body).map_err(|error| ApiError::Item(error.to_string()))?;
    if !accepted.contains(&item.signature_type.0) {
        return Err(ApiError::Item(format!(
            "Unsupported signature type {}",
            item.signature_type.0
        )));
    }
    verify::verify(&item).map_err(|error| ApiError::Item(error.to_string()))?;
    let kind = match item.tag_any(&["Type", "type"]) {
        None => return Err(ApiError::BadRequest("Type tag not present".into())),
        Some("Process") => ItemKind::Process,
        Some("Message") => ItemKind::Message,
        Some(_) => return Err(ApiError::BadRequest("Unsupported Type tag value".into())),
    };
    let link_tag = item
        .tags
        .iter()
        .find(|tag| tag.name.ends_with("+link") || tag.value.ends_with("+link"))
        .map(|tag| tag.name.to_string());
    let from_process = item.tag("From-Process").map(str::to_string);
    let dedupe = from_process.as_ref().map(|_| pushed_message_hashes(&item));
    Ok(VerifiedItem {
        // A `Bytes` clone shares the buffer the item borrows from.
        body: body.clone(),
        id: item.id(),
        kind,
        target: item.target.and_then(|t| t.try_into().ok()),
        owner_address: b64::encode(&item.owner_address()),
        from_process,
        has_data_protocol: item.tag_any(&["Data-Protocol", "data-protocol"]).is_some(),
        link_tag,
        has_module_and_scheduler: item.tag("Module").is_some() && item.tag("Scheduler").is_some(),
        on_boot: item.tag("On-Boot").map(str::to_string),
        limits_error: limits_error(&item),
        dedupe,
    })
}

fn pushed_message_hashes(item: &DataItem<'_>) -> DedupeHashes {
    DedupeHashes {
        ordered: item_dedupe_hash(item, TagOrder::Sorted),
        unordered: item_dedupe_hash(item, TagOrder::AsGiven),
    }
}

/// The first ANS-104 limit the item's tags break, worded for the client.
fn limits_error(item: &DataItem<'_>) -> Option<String> {
    if item.tags.len() > MAX_TAGS {
        return Some(format!(
            "Too many tags: {} (at most {MAX_TAGS})",
            item.tags.len()
        ));
    }
    if item.raw_tags.len() > MAX_TAG_BYTES {
        return Some(format!(
            "Tags take {} bytes (at most {MAX_TAG_BYTES})",
            item.raw_tags.len()
        ));
    }
    item.tags.iter().find_map(|tag| {
        if tag.name.is_empty() {
            Some("Tag names must not be empty".to_string())
        } else if tag.name.len() > MAX_TAG_NAME {
            Some(format!("Tag name longer than {MAX_TAG_NAME} bytes"))
        } else if tag.value.len() > MAX_TAG_VALUE {
            Some(format!(
                "Tag {} has a value longer than {MAX_TAG_VALUE} bytes",
                tag.name
            ))
        } else {
            None
        }
    })
}
