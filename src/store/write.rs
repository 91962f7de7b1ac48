//! The typed write path: a commit of staged entries becomes one RocksDB WriteBatch.

use super::records::{EntryKind, EntryRecord, IdRole, ProcessRecord, encode_id_value};
use super::{cf, keys};
use crate::domain::Id;
use rocksdb::{DB, WriteBatch};

/// One scheduled entry, signed and ready to store. `record.sequence` is its commit sequence.
#[derive(Debug, Clone)]
pub struct StagedEntry {
    pub process: Id,
    pub nonce: u64,
    pub record: EntryRecord,
    pub assignment: Vec<u8>,
    /// The client item (message or process), stored under `record.message_id`.
    pub body: Option<Vec<u8>>,
    /// The ordered dedupe hash to record for the process.
    pub dedupe_hash: Option<[u8; 48]>,
}

/// Entries written together in one batch.
#[derive(Debug, Default)]
pub struct Commit {
    pub entries: Vec<StagedEntry>,
    /// Sync the WAL before the write returns (always, outside benches and tests of it).
    pub sync: bool,
}

pub(super) fn build_batch(db: &DB, commit: &Commit) -> WriteBatch {
    let handle = |name| db.cf_handle(name).expect("every CF in cf::ALL is opened");
    let (items, entries, by_time, by_id) = (
        handle(cf::ITEMS),
        handle(cf::ENTRIES),
        handle(cf::BY_TIME),
        handle(cf::BY_ID),
    );
    let (processes, dedupe, log, outbox) = (
        handle(cf::PROCESSES),
        handle(cf::DEDUPE),
        handle(cf::LOG),
        handle(cf::OUTBOX),
    );
    let mut batch = WriteBatch::default();
    for entry in &commit.entries {
        let record = &entry.record;
        let (process, nonce, sequence) = (&entry.process, entry.nonce, record.sequence);
        batch.put_cf(items, record.assignment_id, &entry.assignment);
        batch.put_cf(entries, keys::entry(process, nonce), record.encode());
        batch.put_cf(by_time, keys::by_time(process, record.timestamp, nonce), []);
        batch.put_cf(
            by_id,
            keys::by_id(&record.assignment_id, process, nonce),
            encode_id_value(IdRole::Assignment, record.timestamp),
        );
        let message_role = if record.kind.has_body() {
            IdRole::Body
        } else {
            IdRole::Assigned
        };
        batch.put_cf(
            by_id,
            keys::by_id(&record.message_id, process, nonce),
            encode_id_value(message_role, record.timestamp),
        );
        if let Some(body) = &entry.body {
            batch.put_cf(items, record.message_id, body);
            batch.put_cf(
                outbox,
                keys::outbox(sequence, 0),
                outbox_value(&record.message_id, record.timestamp),
            );
        }
        batch.put_cf(
            outbox,
            keys::outbox(sequence, 1),
            outbox_value(&record.assignment_id, record.timestamp),
        );
        if record.kind == EntryKind::Process {
            batch.put_cf(
                processes,
                process,
                ProcessRecord {
                    timestamp: record.timestamp,
                }
                .encode(),
            );
        }
        if let Some(hash) = &entry.dedupe_hash {
            batch.put_cf(dedupe, keys::dedupe(process, hash), []);
        }
        let mut log_value = [0u8; 40];
        log_value[..32].copy_from_slice(process);
        log_value[32..].copy_from_slice(&nonce.to_be_bytes());
        batch.put_cf(log, keys::log(sequence), log_value);
    }
    batch
}

/// `item id(32) ‖ enqueued at, ms(8)`.
fn outbox_value(id: &Id, enqueued_ms: u64) -> [u8; 40] {
    let mut value = [0u8; 40];
    value[..32].copy_from_slice(id);
    value[32..].copy_from_slice(&enqueued_ms.to_be_bytes());
    value
}
