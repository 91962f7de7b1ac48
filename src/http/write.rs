//! `POST /`: validate in the reference's order (PROTOCOL 4.1), then hand the verified
//! request to the sequencer and answer once it is durable.

use super::error::ApiError;
use super::query::Query;
use super::{App, Body, MAX_BODY_BYTES, json_response};
use crate::ans104::dedupe::{DedupeInput, TagOrder, dedupe_hash};
use crate::ans104::{DataItem, b64, verify};
use crate::domain::Id;
use crate::sequencer::{DedupeHashes, Receipt, Request as Scheduled};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use std::sync::Arc;
use std::time::Instant;

/// ANS-104 limits enforced on new writes (DECISIONS 5).
const MAX_TAGS: usize = 128;
const MAX_TAG_NAME: usize = 1024;
const MAX_TAG_VALUE: usize = 3072;
const MAX_TAG_BYTES: usize = 4096;

async fn read_body(request: Request<Incoming>) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::TooLarge(MAX_BODY_BYTES))
        }
        Err(error) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {error}"
        ))),
    }
}

/// What the item says, extracted off the async workers.
struct CheckedItem {
    id: Id,
    kind: ItemKind,
    target: Option<Id>,
    owner_address: String,
    from_process: Option<String>,
    has_data_protocol: bool,
    link_tag: Option<String>,
    has_module_and_scheduler: bool,
    on_boot: Option<String>,
    limits_error: Option<String>,
    dedupe: Option<DedupeHashes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Process,
    Message,
}

fn check_item(body: &[u8], accepted: &[u16]) -> Result<CheckedItem, ApiError> {
    let item = DataItem::parse(body).map_err(|error| ApiError::Item(error.to_string()))?;
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
    let limits_error = if item.tags.len() > MAX_TAGS {
        Some(format!(
            "Too many tags: {} (at most {MAX_TAGS})",
            item.tags.len()
        ))
    } else if item.raw_tags.len() > MAX_TAG_BYTES {
        Some(format!(
            "Tags take {} bytes (at most {MAX_TAG_BYTES})",
            item.raw_tags.len()
        ))
    } else {
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
    };
    let from_process = item.tag("From-Process").map(str::to_string);
    let dedupe = from_process.as_ref().map(|_| {
        let tags: Vec<(&str, &str)> = item.tags.iter().map(|tag| (tag.name, tag.value)).collect();
        let input = DedupeInput {
            target: item.target.unwrap_or(&[]),
            anchor: item.anchor.unwrap_or(&[]),
            tags: &tags,
            data: item.data,
        };
        DedupeHashes {
            ordered: dedupe_hash(&input, TagOrder::Sorted),
            unordered: dedupe_hash(&input, TagOrder::AsGiven),
        }
    });
    Ok(CheckedItem {
        id: item.id(),
        kind,
        target: item.target.and_then(|t| t.try_into().ok()),
        owner_address: b64::encode(&item.owner_address()),
        from_process: from_process.clone(),
        has_data_protocol: item.tag_any(&["Data-Protocol", "data-protocol"]).is_some(),
        link_tag,
        has_module_and_scheduler: item.tag("Module").is_some() && item.tag("Scheduler").is_some(),
        on_boot: item.tag("On-Boot").map(str::to_string),
        limits_error,
        dedupe,
    })
}

fn size_check(app: &App, item: Option<&CheckedItem>, body_len: usize) -> Result<(), ApiError> {
    let Some(limit) = &app.settings.size_limit else {
        return Ok(());
    };
    if let Some(item) = item {
        let exempt = item.kind == ItemKind::Process
            || limit.owner_whitelist.contains(&item.owner_address)
            || (item
                .from_process
                .as_ref()
                .is_some_and(|from| limit.from_whitelist.contains(from))
                && limit.from_owner_whitelist.contains(&item.owner_address));
        if exempt {
            return Ok(());
        }
    }
    if body_len > limit.max_bytes {
        return Err(ApiError::BadRequest(format!(
            "Message size exceeds maximum of {} bytes",
            limit.max_bytes
        )));
    }
    Ok(())
}

pub(super) fn respond(
    receipt: &Receipt,
    started: Instant,
) -> Result<hyper::Response<Body>, ApiError> {
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
    Ok(json_response(StatusCode::OK, body))
}

pub(super) async fn write(
    app: &Arc<App>,
    request: Request<Incoming>,
) -> Result<hyper::Response<Body>, ApiError> {
    let started = Instant::now();
    if Instant::now() < app.settings.warmup_until {
        return Err(ApiError::WarmingUp);
    }
    if app.settings.max_block_height_age_secs > 0
        && app
            .block_height
            .age_secs()
            .is_none_or(|age| age > app.settings.max_block_height_age_secs)
    {
        return Err(ApiError::Unavailable(
            "the Arweave block height is stale; writes are paused",
        ));
    }
    let query = Query::parse(request.uri().query());
    let body = read_body(request).await?;
    let process_param = query
        .get("process-id")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let assign_param = query.get("assign").map(str::to_string);

    if let (Some(process), Some(assign)) = (&process_param, &assign_param) {
        size_check(app, None, body.len())?;
        return super::write_assign::assign(app, process, assign, &query, started).await;
    }

    let accepted = app.settings.accepted_signature_types.clone();
    let checked =
        tokio::task::spawn_blocking(move || check_item(&body, &accepted).map(|c| (c, body)))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))?;
    let (item, body) = checked?;
    size_check(app, Some(&item), body.len())?;

    let process = match item.kind {
        ItemKind::Process => item.id,
        ItemKind::Message => item
            .target
            .ok_or_else(|| ApiError::BadRequest("Length mismatch 32 - ".into()))?,
    };
    if process_param.is_some() || assign_param.is_some() {
        return Err(ApiError::BadRequest(
            "If sending assign or process-id, you must send both.".into(),
        ));
    }
    if !item.has_data_protocol {
        return Err(ApiError::BadRequest("Data-Protocol tag not present".into()));
    }
    if let Some(name) = &item.link_tag {
        return Err(ApiError::BadRequest(format!(
            "Tag {name} cannot contain +link"
        )));
    }
    if let Some(reason) = &item.limits_error {
        return Err(ApiError::BadRequest(reason.clone()));
    }
    let scheduled = match item.kind {
        ItemKind::Process => {
            if !item.has_module_and_scheduler {
                return Err(ApiError::BadRequest(
                    "Required Module and Scheduler tags for Process type not present".into(),
                ));
            }
            if let Some(on_boot) = item.on_boot.as_deref().filter(|value| *value != "Data") {
                check_on_boot(app, on_boot).await?;
            }
            Scheduled::Process {
                process,
                item: body.to_vec(),
            }
        }
        ItemKind::Message => Scheduled::Message {
            process,
            message: item.id,
            item: body.to_vec(),
            dedupe: item.dedupe,
        },
    };
    let receipt = app.sequencer.append(scheduled).await?;
    respond(&receipt, started)
}

async fn check_on_boot(app: &App, on_boot: &str) -> Result<(), ApiError> {
    let invalid = || ApiError::BadRequest("Invalid tx id for On-Boot tag".into());
    if !app.gateway.is_online() {
        // Offline (no gateway configured): the transaction cannot be checked; accept it.
        tracing::debug!(on_boot, "no gateway configured; On-Boot not checked");
        return Ok(());
    }
    match app.gateway.exists(on_boot).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(invalid()),
        Err(error) => {
            tracing::warn!(%error, on_boot, "On-Boot check failed");
            Err(invalid())
        }
    }
}
