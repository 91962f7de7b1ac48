//! What the HTTP layer asks a shard to schedule, and what it gets back.

use crate::domain::Id;

/// The signer-independent dedupe hashes of a pushed message or AOP-1 assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeHashes {
    pub ordered: [u8; 48],
    pub unordered: [u8; 48],
}

/// A verified request to schedule something in a process.
#[derive(Debug, Clone)]
pub enum Request {
    /// A verified Process item (AOP-6: it becomes nonce 0 of its own schedule).
    Process { process: Id, item: Vec<u8> },
    /// A verified Message item for `process`.
    Message {
        process: Id,
        message: Id,
        item: Vec<u8>,
        dedupe: Option<DedupeHashes>,
    },
    /// An assignment of an existing transaction.
    Assign {
        process: Id,
        transaction: Id,
        exclude: Vec<String>,
        dedupe: Option<DedupeHashes>,
    },
}

impl Request {
    /// The process whose schedule this request extends.
    pub fn process(&self) -> &Id {
        match self {
            Self::Process { process, .. }
            | Self::Message { process, .. }
            | Self::Assign { process, .. } => process,
        }
    }
}

/// What a scheduled (or already scheduled) request answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The id the client gets back: process, message or assignment id.
    pub id: Id,
    pub process: Id,
    pub nonce: u64,
    pub timestamp: u64,
    pub assignment_id: Id,
    /// False when the request repeated an item that was already scheduled.
    pub fresh: bool,
}

/// Why a request was not scheduled. Nothing is stored and no nonce is used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("NotFound(\"Process not found\")")]
    ProcessNotFound,
    #[error("MessageExists(\"Deep hash already exists\")")]
    DeepHashExists,
}

/// Why `append` failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the scheduler is busy, retry shortly")]
    Busy,
    #[error("the scheduler has stopped")]
    Stopped,
    #[error("{0}")]
    Rejected(#[from] Rejection),
    /// Writes are unavailable (a storage fault); the cause is reported to the client.
    #[error("writes are unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}
