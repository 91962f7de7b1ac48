//! The typed write path: a commit of entries becomes one RocksDB WriteBatch. Every row an
//! entry owns is derived here from the entry alone, so the sequencer, the importer and the
//! standby (which replays the change feed) write identical rows for identical entries.

use super::cf;
use super::keys::{self, Slot};
use super::records::{
    DataOverride, DedupeHash, EntryKind, EntryRecord, IdRole, ProcessKind, ProcessRecord,
    StoredEntry, encode_id_value,
};
use crate::domain::Id;
use rocksdb::{DB, WriteBatch};

/// One scheduled entry, signed and ready to store. `record.sequence` is its commit sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedEntry {
    pub process: Id,
    pub nonce: u64,
    /// The rank among imported entries with the same nonce; 0 for everything `su` schedules.
    pub dup: u16,
    pub record: EntryRecord,
    pub assignment: Vec<u8>,
    /// The client item (message or process), stored under `record.message_id`.
    pub body: Option<Vec<u8>>,
    /// The ordered dedupe hashes the entry records for its process (at most one for new
    /// writes: a pushed message's, or an assigned transaction's).
    pub dedupe_hashes: Vec<DedupeHash>,
    /// Queue the entry's items for upload (new writes); imported or replicated history is
    /// not uploaded again.
    pub upload: bool,
}

impl StagedEntry {
    /// The item bytes it carries: its Assignment and its body.
    pub fn item_bytes(&self) -> usize {
        self.assignment.len() + self.body.as_ref().map_or(0, Vec::len)
    }

    pub fn slot(&self) -> Slot {
        Slot {
            nonce: self.nonce,
            dup: self.dup,
        }
    }
}

/// A legacy (era P1) process: its Process item has no nonce and no assignment, so it is
/// not an entry; its record, item and wrapper still travel through the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyProcess {
    pub process: Id,
    /// Its key in `log`.
    pub sequence: u64,
    pub timestamp: u64,
    /// The Process item, stored under the process id.
    pub item: Vec<u8>,
    /// The reference's wrapper item (Block-Height and Timestamp tags).
    pub wrapper_id: Id,
    pub wrapper: Vec<u8>,
}

impl LegacyProcess {
    /// The item bytes it carries: its Process item and the reference's wrapper.
    pub fn item_bytes(&self) -> usize {
        self.item.len() + self.wrapper.len()
    }

    pub fn record(&self) -> ProcessRecord {
        ProcessRecord {
            kind: ProcessKind::Legacy {
                wrapper_id: self.wrapper_id,
            },
            timestamp: self.timestamp,
        }
    }
}

/// One change in commit order: what a `log` row points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Entry(StagedEntry),
    LegacyProcess(LegacyProcess),
}

impl Change {
    pub fn sequence(&self) -> u64 {
        match self {
            Self::Entry(entry) => entry.record.sequence,
            Self::LegacyProcess(process) => process.sequence,
        }
    }
}

/// Entries (and legacy process records) written together in one batch.
#[derive(Debug)]
pub struct Commit {
    pub entries: Vec<StagedEntry>,
    pub legacy_processes: Vec<LegacyProcess>,
    /// `data` values kept from the reference's JSON columns (imports only): process, item,
    /// the value (`records::DataOverride`).
    pub data_overrides: Vec<(Id, Id, DataOverride)>,
    /// Sync the WAL before the write returns: the default; only benches and tests that
    /// build throwaway stores turn it off.
    pub sync: bool,
}

impl Default for Commit {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            legacy_processes: Vec::new(),
            data_overrides: Vec::new(),
            sync: true,
        }
    }
}

impl Commit {
    /// A commit of changes read from a change feed, in their order.
    pub fn from_changes(changes: Vec<Change>, sync: bool) -> Self {
        let mut commit = Self {
            sync,
            ..Self::default()
        };
        commit.entries.reserve(changes.len());
        for change in changes {
            match change {
                Change::Entry(entry) => commit.entries.push(entry),
                Change::LegacyProcess(process) => commit.legacy_processes.push(process),
            }
        }
        commit
    }
}

pub(super) fn build_batch(db: &DB, commit: &Commit) -> WriteBatch {
    let handle = |name| db.cf_handle(name).expect("every CF in cf::ALL is opened");
    let (processes, log) = (handle(cf::PROCESSES), handle(cf::LOG));
    let mut batch = WriteBatch::with_capacity_bytes(batch_bytes(commit));
    let mut random = RandomKeyed::default();
    for entry in &commit.entries {
        put_entry(db, &mut batch, &mut random, entry);
    }
    for legacy in &commit.legacy_processes {
        random.items.push((legacy.process, &legacy.item));
        random.items.push((legacy.wrapper_id, &legacy.wrapper));
        batch.put_cf(processes, legacy.process, legacy.record().encode());
        batch.put_cf(log, keys::log(legacy.sequence), legacy.process);
    }
    if !commit.data_overrides.is_empty() {
        let overrides = handle(cf::DATA_OVERRIDES);
        for (process, item, value) in &commit.data_overrides {
            batch.put_cf(
                overrides,
                keys::data_override(process, item),
                value.encode(),
            );
        }
    }
    random.put_sorted(db, &mut batch);
    batch
}

/// Room for every row of `commit`, so the batch's buffer is allocated once: growing it by
/// doubling copied an import's multi-megabyte batches about twice over (BENCHMARKS.md).
fn batch_bytes(commit: &Commit) -> usize {
    /// The keys, small values and RocksDB framing of one entry's other rows, generously.
    const SMALL_ROWS_BYTES: usize = 512;
    let entries: usize = commit
        .entries
        .iter()
        .map(|entry| entry.item_bytes() + SMALL_ROWS_BYTES)
        .sum();
    let legacy: usize = commit
        .legacy_processes
        .iter()
        .map(|legacy| legacy.item_bytes() + SMALL_ROWS_BYTES)
        .sum();
    entries + legacy + commit.data_overrides.len() * SMALL_ROWS_BYTES
}

/// The rows of a batch whose keys start with an id (`items`, `by_id`), which arrive in
/// random order. They go into the batch last, sorted by key: RocksDB inserts each row into
/// a skip list starting from where the row before it landed, so a sorted run costs a short
/// walk per row instead of a search from the top (BENCHMARKS.md, import). The sort is
/// stable, so a key put twice keeps its last value, as it would unsorted.
#[derive(Default)]
struct RandomKeyed<'a> {
    items: Vec<(Id, &'a [u8])>,
    by_id: Vec<(keys::SlotKey<72>, [u8; 9])>,
}

impl RandomKeyed<'_> {
    fn put_sorted(mut self, db: &DB, batch: &mut WriteBatch) {
        let handle = |name| db.cf_handle(name).expect("every CF in cf::ALL is opened");
        self.items.sort_by_key(|row| row.0);
        self.by_id.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let items = handle(cf::ITEMS);
        for (id, bytes) in self.items {
            batch.put_cf(items, id, bytes);
        }
        let by_id = handle(cf::BY_ID);
        for (key, value) in self.by_id {
            batch.put_cf(by_id, key, value);
        }
    }
}

/// Every row of one entry: item bytes, the entry record, both indexes, the process record of
/// a nonce-0 Process entry, its dedupe rows, its `log` row and, for new writes, its uploads.
/// The item and `by_id` rows go to `random`, to be put in key order.
fn put_entry<'a>(
    db: &DB,
    batch: &mut WriteBatch,
    random: &mut RandomKeyed<'a>,
    entry: &'a StagedEntry,
) {
    let handle = |name| db.cf_handle(name).expect("every CF in cf::ALL is opened");
    let (entries, by_time) = (handle(cf::ENTRIES), handle(cf::BY_TIME));
    let (processes, dedupe, log, outbox) = (
        handle(cf::PROCESSES),
        handle(cf::DEDUPE),
        handle(cf::LOG),
        handle(cf::OUTBOX),
    );
    let record = &entry.record;
    let (process, slot, sequence) = (&entry.process, entry.slot(), record.sequence);
    let entry_key = keys::entry_at(process, slot);
    random.items.push((record.assignment_id, &entry.assignment));
    let stored = StoredEntry {
        record: *record,
        dedupe_hashes: entry.dedupe_hashes.clone(),
    };
    batch.put_cf(entries, entry_key, stored.encode());
    batch.put_cf(
        by_time,
        keys::by_time_at(process, record.timestamp, slot),
        [],
    );
    random.by_id.push((
        keys::by_id_at(&record.assignment_id, process, slot),
        encode_id_value(IdRole::Assignment, record.timestamp),
    ));
    let message_role = if record.kind.has_body() {
        IdRole::Body
    } else {
        IdRole::Assigned
    };
    random.by_id.push((
        keys::by_id_at(&record.message_id, process, slot),
        encode_id_value(message_role, record.timestamp),
    ));
    if let Some(body) = &entry.body {
        random.items.push((record.message_id, body));
    }
    if entry.upload {
        if entry.body.is_some() {
            batch.put_cf(
                outbox,
                keys::outbox(sequence, keys::OUTBOX_SLOT_BODY),
                outbox_value(&record.message_id, record.timestamp),
            );
        }
        batch.put_cf(
            outbox,
            keys::outbox(sequence, keys::OUTBOX_SLOT_ASSIGNMENT),
            outbox_value(&record.assignment_id, record.timestamp),
        );
    }
    if record.kind == EntryKind::Process {
        batch.put_cf(
            processes,
            process,
            ProcessRecord::aop6(record.timestamp).encode(),
        );
    }
    for hash in &entry.dedupe_hashes {
        batch.put_cf(dedupe, keys::dedupe(process, hash), []);
    }
    batch.put_cf(log, keys::log(sequence), entry_key);
}

/// `item id(32) ‖ enqueued at, ms(8)`.
pub(super) fn outbox_value(id: &Id, enqueued_ms: u64) -> [u8; 40] {
    let mut value = [0u8; 40];
    value[..32].copy_from_slice(id);
    value[32..].copy_from_slice(&enqueued_ms.to_be_bytes());
    value
}
