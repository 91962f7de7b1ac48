//! Write stage 1, parse and verify: request body → `VerifiedItem`, on the blocking pool.
//! It reads the facts the later stages need and decides nothing about admission, so a
//! router can run it to learn where an item belongs.

use crate::ans104::dedupe::item_dedupe_hashes;
use crate::ans104::item::{ParseError, declared_tag_counts, header_complete};
use crate::ans104::{DataItem, b64, limits, verify};
use crate::domain::Id;
use crate::http::App;
use crate::http::error::ApiError;
use crate::sequencer::DedupeHashes;
use bytes::Bytes;

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
/// async worker, and at most `VERIFY_CONCURRENCY` run at once (the others wait their turn).
pub(crate) async fn parse_and_verify(app: &App, body: Bytes) -> Result<VerifiedItem, ApiError> {
    let accepted = app.admission.accepted_signature_types.clone();
    let permit = app
        .budgets
        .verify
        .clone()
        .acquire_owned()
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let verified = verify_item(body, &accepted);
        drop(permit);
        verified
    })
    .await
    .map_err(|error| ApiError::Internal(error.to_string()))?
}

/// What the first bytes of a body say about an item's tags, before the rest has arrived:
/// `Ok(true)` once the header was read and keeps the ANS-104 counts, `Ok(false)` while it is
/// incomplete, and the client's error when it declares too many tags or tag bytes.
pub(crate) fn check_declared_tags(prefix: &[u8]) -> Result<bool, ApiError> {
    match declared_tag_counts(prefix) {
        Some((count, bytes)) => limits::check_header(count, bytes)
            .map(|()| true)
            .map_err(|error| ApiError::BadRequest(error.to_string())),
        None => Ok(header_complete(prefix)),
    }
}

fn parse_error(error: ParseError) -> ApiError {
    match error {
        ParseError::Limits(limit) => ApiError::BadRequest(limit.to_string()),
        other => ApiError::Item(other.to_string()),
    }
}

/// Parses the item, checks its signature type and signature, and reads its `Type` tag.
/// A header declaring more tags or tag bytes than ANS-104 allows is refused before any tag
/// is decoded; the dedupe hashes are computed only for an item whose tags keep the limits.
fn verify_item(body: Bytes, accepted: &[u16]) -> Result<VerifiedItem, ApiError> {
    let item = DataItem::parse_within_limits(&body).map_err(parse_error)?;
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
    let limits_error = limits::check_tags(item.tags.iter().map(|tag| (tag.name, tag.value)))
        .err()
        .map(|error| error.to_string());
    // An item over the limits is refused in admission; its hashes would be wasted work.
    let dedupe = match (&from_process, &limits_error) {
        (Some(_), None) => Some(pushed_message_hashes(&item)),
        _ => None,
    };
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
        limits_error,
        dedupe,
    })
}

fn pushed_message_hashes(item: &DataItem<'_>) -> DedupeHashes {
    let (ordered, unordered) = item_dedupe_hashes(item);
    DedupeHashes { ordered, unordered }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ans104::{ItemDraft, SignatureType};

    /// A type-3 item, which a test can sign without generating an RSA key.
    fn signed(tags: &[(&str, &str)]) -> Bytes {
        let draft = ItemDraft {
            signature_type: SignatureType::ETHEREUM,
            owner: Vec::new(),
            target: Some([4; 32]),
            anchor: None,
            tags: tags
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            data: b"d".to_vec(),
        };
        Bytes::from(draft.finish_ethereum(&[9; 32]))
    }

    #[test]
    fn dedupe_hashes_wait_for_the_limits() {
        let pushed = [("Type", "Message"), ("From-Process", "p")];
        let item = verify_item(signed(&pushed), &[3]).unwrap();
        assert!(item.limits_error.is_none());
        assert!(item.dedupe.is_some());
        let long = "v".repeat(3073);
        let over = [
            ("Type", "Message"),
            ("From-Process", "p"),
            ("Memo", long.as_str()),
        ];
        let item = verify_item(signed(&over), &[3]).unwrap();
        assert_eq!(
            item.limits_error.as_deref(),
            Some("Tag Memo has a value longer than 3072 bytes")
        );
        assert!(
            item.dedupe.is_none(),
            "no hashes for an item admission refuses"
        );
    }

    #[test]
    fn declared_counts_are_judged_as_soon_as_the_header_is_in() {
        let many: Vec<(String, String)> = (0..129).map(|n| ("T".into(), n.to_string())).collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let body = signed(&pairs);
        // type 2 + signature 65 + owner 65 + target 33 + anchor flag 1, then the counts.
        let header = 2 + 65 + 65 + 33 + 1 + 16;
        assert!(matches!(
            check_declared_tags(&body[..header - 1]),
            Ok(false)
        ));
        let error = check_declared_tags(&body[..header]).unwrap_err();
        assert_eq!(error.to_string(), "Too many tags: 129 (at most 128)");
        let error = verify_item(body, &[3]).err().unwrap();
        assert_eq!(error.to_string(), "Too many tags: 129 (at most 128)");
        let fine = signed(&[("Type", "Message")]);
        assert!(matches!(check_declared_tags(&fine[..header]), Ok(true)));
        assert!(
            matches!(check_declared_tags(&[0xff; 5000]), Ok(true)),
            "not an item: give up"
        );
    }
}
