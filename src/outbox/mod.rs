//! The durable upload outbox: every scheduled item and assignment is queued in the same
//! batch as its entry, and the engine delivers them to the bundler, many at a time, each row
//! with its own capped backoff, until the bundler answers 2xx or an operator drops the row.
//! It does not decide what is queued (the committer and `su reupload` do).

mod engine;
pub mod rows;
pub mod upload;

use crate::config::UpstreamConfig;
use crate::domain::Id;
use crate::store::{OutboxRow, Store};
use rows::Key;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Where and how uploads go.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub bundler_url: String,
    pub cache_url: Option<String>,
    pub timeout: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// Pause between scans when the outbox has nothing new.
    pub idle: Duration,
}

impl OutboxConfig {
    /// The outbox settings, when a bundler is configured.
    pub fn from_upstream(upstream: &UpstreamConfig) -> Option<Self> {
        Some(Self {
            bundler_url: upstream.upload_node_url.clone()?,
            cache_url: upstream.cache_url.clone(),
            timeout: Duration::from_secs(upstream.timeout_secs.max(1)),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(upstream.upload_backoff_max_secs.max(1)),
            concurrency: upstream.upload_concurrency.max(1),
            idle: Duration::from_millis(200),
        })
    }
}

/// Why the outbox could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("the upload engine has stopped")]
    Stopped,
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("cannot build the upload client: {0}")]
    Client(#[from] reqwest::Error),
}

/// One row as an operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowView {
    /// The stored key, hex.
    pub key: String,
    pub id: String,
    pub sequence: Option<u64>,
    pub slot: Option<u8>,
    pub enqueued_ms: u64,
    /// Uploads started in this run (0 on a stopped store).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub in_flight: bool,
    /// Seconds until the next attempt, when the row is backing off.
    pub retry_in_secs: Option<f64>,
}

/// Where one row stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowStatus {
    /// No longer queued: accepted by the bundler (or dropped).
    Gone,
    Queued {
        attempts: u32,
        last_error: Option<String>,
    },
}

/// A store write that adds one row (with whatever must be written in its batch).
pub type RowWrite =
    Box<dyn FnOnce(&Store) -> Result<OutboxRow, crate::store::StoreError> + Send + 'static>;

pub(crate) enum Command {
    Snapshot(oneshot::Sender<Vec<(Key, RowView)>>),
    Retry(Option<Id>, oneshot::Sender<Vec<Key>>),
    Drop(Vec<Key>, oneshot::Sender<Result<usize, OutboxError>>),
    Enqueue(
        Vec<Id>,
        oneshot::Sender<Result<Vec<OutboxRow>, OutboxError>>,
    ),
    AddRow(RowWrite, oneshot::Sender<Result<OutboxRow, OutboxError>>),
    Status(
        Vec<Key>,
        oneshot::Sender<Result<Vec<RowStatus>, OutboxError>>,
    ),
    Depth(oneshot::Sender<u64>),
}

/// A handle on a running engine; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("outbox::Command")
    }
}

impl Outbox {
    /// Starts the engine; it runs until `shutdown` fires.
    pub async fn start(
        store: Arc<Store>,
        config: OutboxConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), OutboxError> {
        let (commands, receiver) = mpsc::channel(64);
        let engine = engine::Engine::new(store, config, receiver)?;
        let task = tokio::spawn(engine.run(shutdown));
        Ok((Self { commands }, task))
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, OutboxError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| OutboxError::Stopped)?;
        answer.await.map_err(|_| OutboxError::Stopped)
    }

    /// The engine's view of the rows in its window (attempts, last error, backoff).
    pub async fn snapshot(&self) -> Result<Vec<(Key, RowView)>, OutboxError> {
        self.ask(Command::Snapshot).await
    }

    /// Ends the backoff of every waiting row, or of the rows uploading `id`; returns them.
    pub async fn retry(&self, id: Option<Id>) -> Result<Vec<Key>, OutboxError> {
        self.ask(|reply| Command::Retry(id, reply)).await
    }

    /// Deletes rows (an operator's decision); returns how many existed.
    pub async fn drop_rows(&self, keys: Vec<Key>) -> Result<usize, OutboxError> {
        self.ask(|reply| Command::Drop(keys, reply)).await?
    }

    /// Queues standalone rows for these items (see `Store::requeue_outbox`).
    pub async fn enqueue(&self, ids: Vec<Id>) -> Result<Vec<OutboxRow>, OutboxError> {
        self.ask(|reply| Command::Enqueue(ids, reply)).await?
    }

    /// Runs `write`, a store write that adds one row, on the engine's own turn, so the row
    /// cannot fall behind the engine's cursor unseen, and takes the row into the queue.
    pub async fn add_row(&self, write: RowWrite) -> Result<OutboxRow, OutboxError> {
        self.ask(|reply| Command::AddRow(write, reply)).await?
    }

    /// Where each of these rows stands.
    pub async fn status(&self, keys: Vec<Key>) -> Result<Vec<RowStatus>, OutboxError> {
        self.ask(|reply| Command::Status(keys, reply)).await?
    }

    /// Rows queued in the store, from the engine's counter.
    pub async fn depth(&self) -> Result<u64, OutboxError> {
        self.ask(Command::Depth).await
    }
}

/// Lowercase hex of a key, as operators see and type it.
pub fn encode_key(key: &[u8]) -> String {
    key.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Parses `encode_key`'s output.
pub fn decode_key(text: &str) -> Option<Key> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// The operator's view of a stored row, without engine state.
pub fn view_of(row: &OutboxRow) -> RowView {
    let place = crate::store::outbox::decode_outbox_key(&row.key);
    RowView {
        key: encode_key(&row.key),
        id: crate::ans104::b64::encode(&row.id),
        sequence: place.map(|p| p.sequence),
        slot: place.map(|p| p.slot),
        enqueued_ms: row.enqueued_ms,
        attempts: 0,
        last_error: None,
        in_flight: false,
        retry_in_secs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_hex() {
        let key = vec![0, 1, 0xab, 0xff];
        assert_eq!(encode_key(&key), "0001abff");
        assert_eq!(decode_key("0001abff"), Some(key));
        assert_eq!(decode_key("0g"), None);
        assert_eq!(decode_key("abc"), None);
    }
}
