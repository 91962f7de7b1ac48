//! `su reupload`'s selection: the items and Assignments of one process's entries with a
//! timestamp after `since`, minus the ids GraphQL already knows.

use super::AdminError;
use crate::ans104::b64;
use crate::domain::Id;
use crate::store::{Store, StoreError};
use crate::upstream::Gateway;
use std::sync::Arc;

/// Ids stored for a process's entries after `since`: each entry's body (when it has one),
/// then its Assignment, in nonce order.
pub(super) fn stored_ids(
    store: &Store,
    process: &Id,
    since: Option<u64>,
) -> Result<Vec<Id>, StoreError> {
    let first = match since {
        None => 0,
        Some(since) => match store.first_nonce_after(process, since)? {
            Some(nonce) => nonce,
            None => return Ok(Vec::new()),
        },
    };
    let mut ids = Vec::new();
    store.scan_entries::<StoreError>(process, first, u64::MAX, |_, record, _| {
        if record.kind.has_body() {
            ids.push(record.message_id);
        }
        ids.push(record.assignment_id);
        Ok(true)
    })?;
    Ok(ids)
}

/// The candidates and the subset GraphQL does not know.
pub(super) async fn select(
    store: &Arc<Store>,
    gateway: &Gateway,
    process: &str,
    since: Option<u64>,
) -> Result<(usize, Vec<Id>), AdminError> {
    let process_id = b64::decode_id(process)
        .ok_or_else(|| AdminError::BadRequest(format!("{process:?} is not a process id")))?;
    let candidates = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            if store.process(&process_id)?.is_none() {
                return Ok(None);
            }
            stored_ids(&store, &process_id, since).map(Some)
        })
        .await??
    }
    .ok_or_else(|| AdminError::BadRequest(format!("process {process} is not hosted here")))?;
    let encoded: Vec<String> = candidates.iter().map(|id| b64::encode(id)).collect();
    let known = gateway.known_ids(&encoded).await?;
    let unknown = candidates
        .iter()
        .zip(&encoded)
        .filter(|(_, text)| !known.contains(*text))
        .map(|(id, _)| *id)
        .collect();
    Ok((candidates.len(), unknown))
}
