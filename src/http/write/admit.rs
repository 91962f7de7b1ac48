//! Write stage 2, admit: a `VerifiedItem` (or an assignment request) → `AdmittedWrite`, by
//! the reference's validation order (PROTOCOL 4.1) and the size limit (4.5). The per-signer
//! rate limit and the process allow-list (`http::controls`) apply here, and gateway checks
//! that decide admission (On-Boot) run here, before anything reaches a shard.

use super::verify::{ItemKind, VerifiedItem};
use crate::ans104::b64;
use crate::config::AdmissionConfig;
use crate::http::App;
use crate::http::error::ApiError;
use crate::sequencer::Request as Scheduled;
use crate::upstream::router_check::Verdict;

/// A write that passed every check and only waits for its place in a schedule.
pub(crate) struct AdmittedWrite {
    pub(crate) request: Scheduled,
}

/// The size limit of PROTOCOL 4.5. `item` is `None` for an assignment, which no whitelist
/// exempts.
pub(crate) fn check_size(
    admission: &AdmissionConfig,
    item: Option<&VerifiedItem>,
    body_len: usize,
) -> Result<(), ApiError> {
    let Some(limit) = &admission.size_limit else {
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

/// The process an item is scheduled in: a Process starts its own, a Message names its target.
pub(crate) fn process_of(item: &VerifiedItem) -> Result<[u8; 32], ApiError> {
    match item.kind {
        ItemKind::Process => Ok(item.id),
        ItemKind::Message => item
            .target
            .ok_or_else(|| ApiError::BadRequest("Length mismatch 32 - ".into())),
    }
}

/// Validates a Process or Message in the reference's order, after the signer's rate limit.
/// `stray_parameter` is true when only one of `process-id` and `assign` was sent.
pub(crate) async fn admit_item(
    app: &App,
    item: VerifiedItem,
    stray_parameter: bool,
) -> Result<AdmittedWrite, ApiError> {
    app.controls.admit_owner(&item.owner_address)?;
    check_size(&app.admission, Some(&item), item.body.len())?;
    let process = process_of(&item)?;
    app.controls.check_process_write(&process)?;
    if stray_parameter {
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
    let request = match item.kind {
        ItemKind::Process => {
            app.controls.check_spawn()?;
            if !item.has_module_and_scheduler {
                return Err(ApiError::BadRequest(
                    "Required Module and Scheduler tags for Process type not present".into(),
                ));
            }
            check_router(app, &item.id).await?;
            if let Some(on_boot) = item.on_boot.as_deref().filter(|value| *value != "Data") {
                check_on_boot(app, on_boot).await?;
            }
            Scheduled::Process {
                process,
                item: item.body.to_vec(),
            }
        }
        ItemKind::Message => Scheduled::Message {
            process,
            message: item.id,
            item: item.body.to_vec(),
            dedupe: item.dedupe,
        },
    };
    Ok(AdmittedWrite { request })
}

/// `ENABLE_ROUTER_CHECK` (PROTOCOL 10.5): a spawn the router placed on another SU is refused;
/// one it placed here, or nowhere, goes on.
async fn check_router(app: &App, process: &crate::domain::Id) -> Result<(), ApiError> {
    let crate::http::Mode::Primary(primary) = &app.mode else {
        return Ok(());
    };
    let Some(check) = &primary.router_check else {
        return Ok(());
    };
    match check.check(&b64::encode(process)).await {
        Ok(Verdict::Here) => Ok(()),
        Ok(Verdict::Elsewhere) => Err(ApiError::BadRequest(
            "Process does not belong on this SU".into(),
        )),
        Err(error) => {
            tracing::warn!(%error, "router check failed");
            Err(ApiError::BadRequest("Unable to check router".into()))
        }
    }
}

/// `On-Boot` names a transaction that must exist: only a 43-character base64url id is ever
/// sent to a gateway (a value like `../info?x=` would choose the gateway path).
async fn check_on_boot(app: &App, on_boot: &str) -> Result<(), ApiError> {
    let invalid = || ApiError::BadRequest("Invalid tx id for On-Boot tag".into());
    if b64::decode_id(on_boot).is_none() {
        return Err(invalid());
    }
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
