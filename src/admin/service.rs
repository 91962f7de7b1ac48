//! Answers admin requests against the store and, when one runs in this process, the upload
//! engine. `su serve` and the stand-alone commands share it, so a command behaves the same
//! whether it reaches a running server or opens a stopped store itself.

use super::{AdminError, Request, Response, reupload};
use crate::ans104::b64;
use crate::outbox::{self, Outbox, RowStatus, rows::Key};
use crate::store::{OutboxRow, Store, StoreError};
use crate::upstream::Gateway;
use std::sync::Arc;

/// What admin requests act on.
#[derive(Debug, Clone)]
pub struct Service {
    pub store: Arc<Store>,
    /// The engine delivering uploads in this process, if any.
    pub outbox: Option<Outbox>,
    pub gateway: Gateway,
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, AdminError> {
    Ok(tokio::task::spawn_blocking(work).await??)
}

fn parse_keys(keys: &[String]) -> Result<Vec<Key>, AdminError> {
    keys.iter()
        .map(|text| {
            outbox::decode_key(text)
                .ok_or_else(|| AdminError::BadRequest(format!("{text:?} is not a hex row key")))
        })
        .collect()
}

impl Service {
    /// Answers one request; failures become `Response::Error`.
    pub async fn handle(&self, request: Request) -> Response {
        let result = match request {
            Request::OutboxList { limit } => self.list(limit).await,
            Request::OutboxRetry { id } => self.retry(id).await,
            Request::OutboxDrop { target } => self.drop_rows(&target).await,
            Request::OutboxStatus { keys } => self.status(&keys).await,
            Request::Reupload { process, since } => self.reupload(&process, since).await,
            Request::Backup { to } => self.backup(to).await,
        };
        result.unwrap_or_else(|error| Response::Error {
            message: error.to_string(),
        })
    }

    async fn list(&self, limit: usize) -> Result<Response, AdminError> {
        let store = self.store.clone();
        let live = self.outbox.is_some();
        let (rows, counted) = blocking(move || {
            let rows = store.scan_outbox_after(&[], limit)?.rows;
            let total = if live {
                None
            } else {
                Some(store.count_outbox()?.0)
            };
            Ok((rows, total))
        })
        .await?;
        let mut views: Vec<_> = rows.iter().map(outbox::view_of).collect();
        let total = match (&self.outbox, counted) {
            (Some(engine), _) => {
                let states: std::collections::HashMap<Key, _> =
                    engine.snapshot().await?.into_iter().collect();
                for (row, view) in rows.iter().zip(views.iter_mut()) {
                    if let Some(state) = states.get(&row.key) {
                        *view = state.clone();
                    }
                }
                engine.depth().await?
            }
            (None, total) => total.unwrap_or_default(),
        };
        Ok(Response::Rows {
            total,
            rows: views,
            live,
        })
    }

    async fn retry(&self, id: Option<String>) -> Result<Response, AdminError> {
        let id = id
            .map(|text| {
                b64::decode_id(&text)
                    .ok_or_else(|| AdminError::BadRequest(format!("{text:?} is not an item id")))
            })
            .transpose()?;
        let Some(engine) = &self.outbox else {
            // A stopped store keeps no backoff: every row is tried as soon as `su serve` starts.
            return Ok(Response::Retried {
                keys: Vec::new(),
                live: false,
            });
        };
        let keys = engine.retry(id).await?;
        Ok(Response::Retried {
            keys: keys.iter().map(|key| outbox::encode_key(key)).collect(),
            live: true,
        })
    }

    async fn drop_rows(&self, target: &str) -> Result<Response, AdminError> {
        let keys: Vec<Key> = match (b64::decode_id(target), outbox::decode_key(target)) {
            (Some(id), _) => {
                let store = self.store.clone();
                blocking(move || store.outbox_rows_of(&id))
                    .await?
                    .into_iter()
                    .map(|row: OutboxRow| row.key)
                    .collect()
            }
            (None, Some(key)) => vec![key],
            (None, None) => {
                return Err(AdminError::BadRequest(format!(
                    "{target:?} is neither an item id nor a hex row key"
                )));
            }
        };
        let rows = match &self.outbox {
            Some(engine) => engine.drop_rows(keys).await?,
            None => {
                for key in &keys {
                    tracing::warn!(key = %outbox::encode_key(key), "outbox row dropped by an operator");
                }
                let store = self.store.clone();
                blocking(move || store.delete_outbox_rows(&keys)).await?
            }
        };
        Ok(Response::Dropped { rows })
    }

    async fn status(&self, keys: &[String]) -> Result<Response, AdminError> {
        let keys = parse_keys(keys)?;
        let statuses = match &self.outbox {
            Some(engine) => engine.status(keys).await?,
            None => {
                let store = self.store.clone();
                blocking(move || {
                    let mut statuses = Vec::with_capacity(keys.len());
                    for key in &keys {
                        statuses.push(match store.outbox_row(key)? {
                            Some(_) => RowStatus::Queued {
                                attempts: 0,
                                last_error: None,
                            },
                            None => RowStatus::Gone,
                        });
                    }
                    Ok(statuses)
                })
                .await?
            }
        };
        Ok(Response::Status { statuses })
    }

    async fn backup(&self, to: String) -> Result<Response, AdminError> {
        let path = std::path::PathBuf::from(&to);
        if !path.is_absolute() {
            return Err(AdminError::BadRequest(format!(
                "the backup directory must be an absolute path: {to}"
            )));
        }
        if path.exists() {
            return Err(AdminError::BadRequest(format!(
                "{to} already exists: a backup goes to a new directory"
            )));
        }
        let store = self.store.clone();
        let started = std::time::Instant::now();
        let copy = path.clone();
        let sequence = blocking(move || {
            let sequence = store.last_sequence()?;
            store.checkpoint(&copy)?;
            Ok(sequence)
        })
        .await?;
        let (files, bytes) = directory_size(&path)?;
        tracing::info!(
            to,
            files,
            bytes,
            sequence,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "backup written"
        );
        Ok(Response::BackedUp {
            to,
            files,
            bytes,
            sequence,
        })
    }

    async fn reupload(&self, process: &str, since: Option<u64>) -> Result<Response, AdminError> {
        let (candidates, unknown) =
            reupload::select(&self.store, &self.gateway, process, since).await?;
        let known = candidates - unknown.len();
        let rows = if unknown.is_empty() {
            Vec::new()
        } else {
            match &self.outbox {
                Some(engine) => engine.enqueue(unknown).await?,
                None => {
                    let store = self.store.clone();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    blocking(move || store.requeue_outbox(&unknown, now)).await?
                }
            }
        };
        tracing::info!(
            process,
            candidates,
            known,
            queued = rows.len(),
            "reupload queued"
        );
        Ok(Response::Requeued {
            candidates,
            known,
            keys: rows
                .iter()
                .map(|row| outbox::encode_key(&row.key))
                .collect(),
            delivering: self.outbox.is_some(),
        })
    }
}

/// Files and bytes directly inside `dir` (a checkpoint has no subdirectories).
fn directory_size(dir: &std::path::Path) -> std::io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let metadata = entry?.metadata()?;
        if metadata.is_file() {
            files += 1;
            bytes += metadata.len();
        }
    }
    Ok((files, bytes))
}
