//! The local admin interface: operator commands (`su outbox`, `su reupload`, `su backup`) that work on a
//! stopped store and beside a running `su serve`, which a second process cannot open.
//! `su serve` listens on `<SU_DATA_DIR>/admin.sock` (mode 0600); the protocol is one JSON
//! request per line, answered by one JSON response line. A new command adds one variant.

pub mod client;
mod reupload;
pub mod server;
pub mod service;

use crate::outbox::{RowStatus, RowView};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The socket's file name inside the data dir.
pub const SOCKET_NAME: &str = "admin.sock";

/// Where `su serve` listens for admin requests.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// One operator request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The first `limit` rows in key order, and the total.
    OutboxList { limit: usize },
    /// End the backoff of every waiting row, or of the rows uploading one item id.
    OutboxRetry { id: Option<String> },
    /// Delete the rows of an item id (base64url) or one row by its hex key.
    OutboxDrop { target: String },
    /// Where each row (hex keys) stands.
    OutboxStatus { keys: Vec<String> },
    /// Re-queue a process's items and Assignments (timestamp after `since`) that GraphQL
    /// does not know.
    Reupload { process: String, since: Option<u64> },
    /// Write a consistent copy of the store (a checkpoint) to `to`, an absolute path that
    /// does not exist yet.
    Backup { to: String },
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Rows {
        total: u64,
        rows: Vec<RowView>,
        /// Whether attempts and errors come from a running engine.
        live: bool,
    },
    Retried {
        keys: Vec<String>,
        live: bool,
    },
    Dropped {
        rows: usize,
    },
    Status {
        statuses: Vec<RowStatus>,
    },
    Requeued {
        /// Items and Assignments of the process in range.
        candidates: usize,
        /// Those GraphQL already knows (not re-queued).
        known: usize,
        /// Keys of the rows queued, hex.
        keys: Vec<String>,
        /// Whether an engine is delivering them now.
        delivering: bool,
    },
    BackedUp {
        to: String,
        /// Files and bytes in the copy.
        files: u64,
        bytes: u64,
        /// The store's last log sequence when the copy began: the copy holds at least it.
        sequence: u64,
    },
    Error {
        message: String,
    },
}

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("gateway: {0}")]
    Gateway(#[from] crate::upstream::GatewayError),
    #[error("admin socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("admin protocol: {0}")]
    Protocol(#[from] serde_json::Error),
    #[error("the server closed the admin connection")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_line_each() {
        let request = Request::OutboxDrop {
            target: "abc".into(),
        };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(line, r#"{"request":"outbox_drop","target":"abc"}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), request);
        let list: Request = serde_json::from_str(r#"{"request":"outbox_list","limit":5}"#).unwrap();
        assert_eq!(list, Request::OutboxList { limit: 5 });
    }
}
