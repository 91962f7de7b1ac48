//! The change feed's wire format: `GET /~su/log?after=SEQ&limit=N` answers a `FeedPage`, the
//! primary's changes after a global log sequence, in order, each carrying everything needed to
//! rebuild its rows (store layout v2): the stored entry value byte for byte, and the items.
//! Bytes travel as base64url without padding, like every id on the wire.

use crate::ans104::b64;
use crate::domain::Id;
use crate::store::records::{ProcessRecord, StoredEntry};
use crate::store::{Change, LegacyProcess, StagedEntry};
use serde::{Deserialize, Serialize};

/// Most changes one page may hold; a smaller `limit` is honoured.
pub const MAX_LIMIT: usize = 1000;
/// A page stops early once the item bytes it holds reach this.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// One page of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPage {
    /// The address of the wallet that signs the primary's assignments.
    pub signer: String,
    /// The primary's last log sequence when the page was read (for lag).
    pub last_sequence: u64,
    pub changes: Vec<FeedChange>,
}

/// One change: a schedule entry, or a legacy (era P1) process record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedChange {
    Entry {
        sequence: u64,
        process: String,
        nonce: u64,
        dup: u16,
        /// The `entries` value (`StoredEntry`, schema/rocksdb.md).
        entry: String,
        assignment: String,
        body: Option<String>,
    },
    LegacyProcess {
        sequence: u64,
        process: String,
        /// The `processes` value (`ProcessRecord`).
        record: String,
        item: String,
        wrapper: String,
    },
}

/// Why a feed page cannot be turned back into changes.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("change {sequence}: {field} is not valid base64url")]
    Encoding { sequence: u64, field: &'static str },
    #[error("change {sequence}: {what}")]
    Malformed { sequence: u64, what: &'static str },
}

impl FeedChange {
    /// The wire form of a stored change.
    pub fn from_change(change: &Change) -> Self {
        match change {
            Change::Entry(entry) => Self::Entry {
                sequence: entry.record.sequence,
                process: b64::encode(&entry.process),
                nonce: entry.nonce,
                dup: entry.dup,
                entry: b64::encode(
                    &StoredEntry {
                        record: entry.record,
                        dedupe_hashes: entry.dedupe_hashes.clone(),
                    }
                    .encode(),
                ),
                assignment: b64::encode(&entry.assignment),
                body: entry.body.as_deref().map(b64::encode),
            },
            Change::LegacyProcess(process) => Self::LegacyProcess {
                sequence: process.sequence,
                process: b64::encode(&process.process),
                record: b64::encode(&process.record().encode()),
                item: b64::encode(&process.item),
                wrapper: b64::encode(&process.wrapper),
            },
        }
    }

    pub fn sequence(&self) -> u64 {
        match self {
            Self::Entry { sequence, .. } | Self::LegacyProcess { sequence, .. } => *sequence,
        }
    }

    /// The change it carries, decoded but not yet verified. Replicated entries are never
    /// uploaded again (`upload = false`).
    pub fn to_change(&self) -> Result<Change, FeedError> {
        let sequence = self.sequence();
        let bytes = |field: &'static str, text: &str| {
            b64::decode(text).ok_or(FeedError::Encoding { sequence, field })
        };
        let id = |field: &'static str, text: &str| -> Result<Id, FeedError> {
            b64::decode_id(text).ok_or(FeedError::Encoding { sequence, field })
        };
        let malformed = |what| FeedError::Malformed { sequence, what };
        match self {
            Self::Entry {
                process,
                nonce,
                dup,
                entry,
                assignment,
                body,
                ..
            } => {
                let stored = StoredEntry::decode(&bytes("entry", entry)?)
                    .ok_or(malformed("the entry value does not decode"))?;
                if stored.record.sequence != sequence {
                    return Err(malformed("the entry's sequence disagrees with the change"));
                }
                if stored.record.kind.has_body() != body.is_some() {
                    return Err(malformed("the entry's kind disagrees with its body"));
                }
                Ok(Change::Entry(StagedEntry {
                    process: id("process", process)?,
                    nonce: *nonce,
                    dup: *dup,
                    record: stored.record,
                    assignment: bytes("assignment", assignment)?,
                    body: body
                        .as_deref()
                        .map(|body| bytes("body", body))
                        .transpose()?,
                    dedupe_hashes: stored.dedupe_hashes,
                    upload: false,
                }))
            }
            Self::LegacyProcess {
                process,
                record,
                item,
                wrapper,
                ..
            } => {
                let record = ProcessRecord::decode(&bytes("record", record)?)
                    .ok_or(malformed("the process record does not decode"))?;
                let crate::store::records::ProcessKind::Legacy { wrapper_id } = record.kind else {
                    return Err(malformed("a legacy process change without a legacy record"));
                };
                Ok(Change::LegacyProcess(LegacyProcess {
                    process: id("process", process)?,
                    sequence,
                    timestamp: record.timestamp,
                    item: bytes("item", item)?,
                    wrapper_id,
                    wrapper: bytes("wrapper", wrapper)?,
                }))
            }
        }
    }
}
