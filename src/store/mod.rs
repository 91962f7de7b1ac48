//! The RocksDB store: the only module that imports `rocksdb`.
//! Writes arrive as whole commits (`write::Commit`) from the sequencer's committer; reads
//! are point lookups and bounded seeks that never scan from the start of a process.

pub mod cf;
mod direct_io;
pub mod keys;
pub mod location;
mod migrate;
pub mod outbox;
pub mod recorded;
pub mod records;
pub mod routes;
pub mod write;

use crate::domain::Id;
use keys::Slot;
use records::{DataOverride, EntryRecord, IdRole, ProcessRecord, StoredEntry};
use rocksdb::{Cache, DB, Direction, IteratorMode, Options, ReadOptions};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

pub use migrate::UpgradeStop;
pub use write::{Change, Commit, LegacyProcess, StagedEntry};

/// The on-disk layout version this build writes; see `schema/rocksdb.md`.
pub const SCHEMA_VERSION: u32 = 3;
const SCHEMA_KEY: &[u8] = b"schema_version";
const BLOCK_HEIGHT_KEY: &[u8] = b"block_height";
const SIGNER_KEY: &[u8] = b"signer_address";
const WRITE_PROBE_KEY: &[u8] = b"write_probe";
const SYNC_AFTER_KEY: &[u8] = b"sync_after";
const SYNC_PRIMARY_KEY: &[u8] = b"sync_primary";
/// How much a disk must take, as one synced file, before a reopen is tried after a fault.
const DISK_PROBE_BYTES: usize = 1 << 20;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("store layout version {found} is newer than this build supports ({supported})")]
    NewerSchema { found: u32, supported: u32 },
    #[error("corrupt {what} record")]
    Corrupt { what: &'static str },
    #[error("an entry lists {0} dedupe hashes; an entry value holds at most 255")]
    TooManyDedupeHashes(usize),
    #[error("the layout upgrade stopped early, as asked (a test of resuming it)")]
    UpgradeStopped,
    #[error("the store is closed: the last reopen failed")]
    Closed,
}

impl StoreError {
    /// Whether this is a fault of the disk or of the store's files (no space, an I/O error,
    /// corruption, a closed instance) rather than something one request did.
    pub fn is_storage_fault(&self) -> bool {
        matches!(self, Self::Rocks(_) | Self::Closed)
    }
}

/// How the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The single writer of this data directory.
    ReadWrite,
    /// A read-only view, safe beside a running writer (as of the moment it opens).
    ReadOnly,
    /// The single writer, tuned for bulk history (`su import-*`): item values go to blob
    /// files (`cf::descriptors`), written once when a memtable is flushed and never rewritten
    /// by compaction, which otherwise copies every item several times over.
    Import,
}

impl OpenMode {
    /// Whether the store is opened for writing.
    pub fn writes(self) -> bool {
        self != OpenMode::ReadOnly
    }
}

/// A handle on the store; cheap to share behind an `Arc`.
///
/// The RocksDB instance inside can be replaced while the handle is shared (`reopen`): after a
/// failed write RocksDB refuses every later write until it is opened again, and rust-rocksdb
/// has no `Resume`. Every method holds a read lock on the instance for its own duration only,
/// so a reopen waits for the reads in progress and pauses new ones while it runs.
pub struct Store {
    db: RwLock<Option<DB>>,
    dir: PathBuf,
    mode: OpenMode,
}

/// The open RocksDB instance, borrowed for one method call.
struct DbGuard<'a>(std::sync::RwLockReadGuard<'a, Option<DB>>);

impl std::ops::Deref for DbGuard<'_> {
    type Target = DB;

    fn deref(&self) -> &DB {
        // `Store::db` hands out a guard only over an open instance.
        self.0
            .as_ref()
            .expect("checked open when the guard was made")
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.dir.display())
    }
}

fn cf<'a>(db: &'a DB, name: &'static str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("every CF in cf::ALL is opened")
}

impl Store {
    /// Opens (creating if needed) the store under `dir`, upgrading an older layout in place
    /// when opened read-write.
    pub fn open(dir: &Path, mode: OpenMode) -> Result<Self, StoreError> {
        Self::open_with(dir, mode, UpgradeStop::Never)
    }

    /// `open`, with a point at which an upgrade stops early (tests of resuming one).
    pub fn open_with(dir: &Path, mode: OpenMode, stop: UpgradeStop) -> Result<Self, StoreError> {
        let store = Self {
            db: RwLock::new(Some(open_db(dir, mode)?)),
            dir: dir.to_path_buf(),
            mode,
        };
        store.check_schema(mode, stop)?;
        Ok(store)
    }

    /// The open instance, for the duration of one method.
    fn db(&self) -> Result<DbGuard<'_>, StoreError> {
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            return Err(StoreError::Closed);
        }
        Ok(DbGuard(guard))
    }

    /// Closes the RocksDB instance and opens it again read-write, clearing a background error
    /// (a failed write, a full disk). Waits for the reads in progress. If the read-write open
    /// fails, a read-only instance takes its place so reads go on, and the error is returned:
    /// call again later. Every write that returned before is there: RocksDB replays its WAL.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        // Only one instance of a DB may be open in a process: close the old one first.
        drop(slot.take());
        match open_db(&self.dir, OpenMode::ReadWrite) {
            Ok(db) => {
                *slot = Some(db);
                Ok(())
            }
            Err(error) => {
                match open_db(&self.dir, OpenMode::ReadOnly) {
                    Ok(db) => *slot = Some(db),
                    Err(read_only) => tracing::error!(
                        error = %read_only,
                        "the store cannot be opened even read-only; reads fail until it can"
                    ),
                }
                Err(error)
            }
        }
    }

    /// Whether the store's directory takes a synced file of 1 MiB now (after a full disk or an
    /// I/O error, before a reopen is worth trying). The file is removed again.
    pub fn probe_disk(&self) -> std::io::Result<()> {
        use std::io::Write;
        let path = self.dir.join("write-probe.tmp");
        let result = std::fs::File::create(&path).and_then(|mut file| {
            file.write_all(&vec![0u8; DISK_PROBE_BYTES])?;
            file.sync_all()
        });
        let _ = std::fs::remove_file(&path);
        result
    }

    /// Whether the store takes a synced write now: one small `meta` row (`write_probe`).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64);
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(cf(&db, cf::META), WRITE_PROBE_KEY, now_ms.to_be_bytes());
        db.write_opt(batch, &options)?;
        Ok(())
    }

    /// Writes a consistent point-in-time copy of the store to `to`, which must not exist: a
    /// RocksDB checkpoint (memtables flushed, SST files hard-linked when `to` is on the same
    /// filesystem and copied otherwise, then synced). The copy holds the store only: no wallet,
    /// no socket. Every write that returned before the call began is in it.
    pub fn checkpoint(&self, to: &Path) -> Result<(), StoreError> {
        let db = self.db()?;
        rocksdb::checkpoint::Checkpoint::new(&*db)?.create_checkpoint(to)?;
        Ok(())
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_schema(&self, mode: OpenMode, stop: UpgradeStop) -> Result<(), StoreError> {
        let db = self.db()?;
        let meta = cf(&db, cf::META);
        match db.get_cf(meta, SCHEMA_KEY)? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        what: "schema version",
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                // Version 1 values still decode, so a read-only view of a version-1 store (or
                // of one whose upgrade was interrupted) works; a read-write open upgrades it
                // first, or finishes the upgrade.
                if mode.writes() && (found == 1 || migrate::upgrade_in_progress(&db)?) {
                    migrate::upgrade_v1_to_v2(self, stop)?;
                }
                // Version 3 only adds the `data_overrides` CF, which opening created empty.
                if mode.writes() && found < SCHEMA_VERSION {
                    let mut options = rocksdb::WriteOptions::default();
                    options.set_sync(true);
                    db.put_cf_opt(meta, SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes(), &options)?;
                }
            }
            None if mode.writes() => {
                let mut options = rocksdb::WriteOptions::default();
                options.set_sync(true);
                let mut batch = rocksdb::WriteBatch::default();
                batch.put_cf(meta, SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes());
                db.write_opt(batch, &options)?;
            }
            None => {}
        }
        Ok(())
    }

    /// The entry at `(process, nonce)`.
    pub fn entry(&self, process: &Id, nonce: u64) -> Result<Option<EntryRecord>, StoreError> {
        let db = self.db()?;
        let value = db.get_pinned_cf(cf(&db, cf::ENTRIES), keys::entry(process, nonce))?;
        value
            .map(|bytes| EntryRecord::decode(&bytes).ok_or(StoreError::Corrupt { what: "entry" }))
            .transpose()
    }

    /// The entry record at a slot (a duplicate of an imported nonce has `dup > 0`).
    pub fn entry_at(&self, process: &Id, slot: Slot) -> Result<Option<EntryRecord>, StoreError> {
        let db = self.db()?;
        let value = db.get_pinned_cf(cf(&db, cf::ENTRIES), keys::entry_at(process, slot))?;
        value
            .map(|bytes| EntryRecord::decode(&bytes).ok_or(StoreError::Corrupt { what: "entry" }))
            .transpose()
    }

    /// The whole stored entry at a slot (with its dedupe hashes).
    pub fn stored_entry(
        &self,
        process: &Id,
        slot: Slot,
    ) -> Result<Option<StoredEntry>, StoreError> {
        let db = self.db()?;
        let value = db.get_pinned_cf(cf(&db, cf::ENTRIES), keys::entry_at(process, slot))?;
        value
            .map(|bytes| StoredEntry::decode(&bytes).ok_or(StoreError::Corrupt { what: "entry" }))
            .transpose()
    }

    /// The entry with the highest nonce of a process: one reverse seek.
    pub fn last_entry(&self, process: &Id) -> Result<Option<(u64, EntryRecord)>, StoreError> {
        let db = self.db()?;
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(keys::entry(process, 0).to_vec());
        let mut iter = db.raw_iterator_cf_opt(cf(&db, cf::ENTRIES), options);
        // Past every key of the process, duplicates of the last nonce included.
        let mut last = keys::entry(process, u64::MAX).to_vec();
        last.extend_from_slice(&[0xff, 0xff]);
        iter.seek_for_prev(last);
        match iter.item() {
            Some((key, value)) if key.starts_with(process) => {
                let nonce =
                    keys::u64_at(key, 32).ok_or(StoreError::Corrupt { what: "entry key" })?;
                let record =
                    EntryRecord::decode(value).ok_or(StoreError::Corrupt { what: "entry" })?;
                Ok(Some((nonce, record)))
            }
            _ => {
                iter.status()?;
                Ok(None)
            }
        }
    }

    /// The process record, if this SU hosts the process.
    pub fn process(&self, process: &Id) -> Result<Option<ProcessRecord>, StoreError> {
        let db = self.db()?;
        let value = db.get_pinned_cf(cf(&db, cf::PROCESSES), process)?;
        value
            .map(|bytes| {
                ProcessRecord::decode(&bytes).ok_or(StoreError::Corrupt { what: "process" })
            })
            .transpose()
    }

    /// The `data` value kept from the reference's JSON columns for `item` as rendered in
    /// `process`, if the import kept one (`cf::DATA_OVERRIDES`). A read-only view of a store
    /// older than version 3 has no such CF: nothing is kept there.
    pub fn data_override(
        &self,
        process: &Id,
        item: &Id,
    ) -> Result<Option<DataOverride>, StoreError> {
        let db = self.db()?;
        let Some(handle) = db.cf_handle(cf::DATA_OVERRIDES) else {
            return Ok(None);
        };
        let value = db.get_pinned_cf(handle, keys::data_override(process, item))?;
        value
            .map(|bytes| {
                DataOverride::decode(&bytes).ok_or(StoreError::Corrupt {
                    what: "data override",
                })
            })
            .transpose()
    }

    /// Raw item bytes by id.
    pub fn item(&self, id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db()?;
        Ok(db.get_cf(cf(&db, cf::ITEMS), id)?)
    }

    /// Runs `read` on an item's bytes where they lie (block cache or memtable), without
    /// copying them; `None` when there is no such item.
    pub fn with_item<T>(
        &self,
        id: &Id,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StoreError> {
        let db = self.db()?;
        let value = db.get_pinned_cf(cf(&db, cf::ITEMS), id)?;
        Ok(value.map(|bytes| read(&bytes)))
    }

    /// Whether a dedupe hash is recorded for the process.
    pub fn has_dedupe(&self, process: &Id, hash: &[u8; 48]) -> Result<bool, StoreError> {
        let db = self.db()?;
        Ok(db
            .get_pinned_cf(cf(&db, cf::DEDUPE), keys::dedupe(process, hash))?
            .is_some())
    }

    /// Up to `max` entries that an id names, optionally only in one process, in key order
    /// (by process, then nonce).
    pub fn find_id(
        &self,
        id: &Id,
        process: Option<&Id>,
        max: usize,
    ) -> Result<Vec<IdHit>, StoreError> {
        let (start, end) = match process {
            Some(process) => (
                keys::by_id(id, process, 0).to_vec(),
                keys::by_id(id, process, u64::MAX).to_vec(),
            ),
            None => (
                keys::by_id(id, &[0; 32], 0).to_vec(),
                keys::by_id(id, &[0xff; 32], u64::MAX).to_vec(),
            ),
        };
        let mut hits = Vec::new();
        if max == 0 {
            return Ok(hits);
        }
        self.scan_id_rows(start, end, |hit| {
            hits.push(hit);
            hits.len() < max
        })?;
        Ok(hits)
    }

    /// The first row, in key order, that names `id` in `process` at a nonce in `nonces` and
    /// whose role `accept` takes. It reads only that process's rows of the id, from the
    /// first nonce of the range, and stops at the first match.
    pub fn find_id_in(
        &self,
        id: &Id,
        process: &Id,
        nonces: std::ops::RangeInclusive<u64>,
        accept: impl Fn(IdRole) -> bool,
    ) -> Result<Option<IdHit>, StoreError> {
        let start = keys::by_id(id, process, *nonces.start()).to_vec();
        let end = keys::by_id(id, process, *nonces.end()).to_vec();
        let mut found = None;
        self.scan_id_rows(start, end, |hit| {
            if accept(hit.role) {
                found = Some(hit);
                return false;
            }
            true
        })?;
        Ok(found)
    }

    /// Visits the `by_id` rows from `start` through `end` and its duplicates, in key order,
    /// while `visit` returns true.
    fn scan_id_rows(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        mut visit: impl FnMut(IdHit) -> bool,
    ) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut options = ReadOptions::default();
        // Past the last key and its duplicates.
        let mut upper = end;
        upper.extend_from_slice(&[0xff, 0xff, 0]);
        options.set_iterate_upper_bound(upper);
        let iter = db.iterator_cf_opt(
            cf(&db, cf::BY_ID),
            options,
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            let corrupt = || StoreError::Corrupt { what: "id index" };
            let process = keys::id_at(&key, 32).ok_or_else(corrupt)?;
            let nonce = keys::u64_at(&key, 64).ok_or_else(corrupt)?;
            let dup = keys::dup_after(&key, 72).ok_or_else(corrupt)?;
            let (role, timestamp) = records::decode_id_value(&value).ok_or_else(corrupt)?;
            let hit = IdHit {
                process,
                slot: Slot { nonce, dup },
                role,
                timestamp,
            };
            if !visit(hit) {
                break;
            }
        }
        Ok(())
    }

    /// Whether the index keys of one entry are present (for `su verify`).
    pub fn entry_indexed(
        &self,
        process: &Id,
        slot: Slot,
        record: &EntryRecord,
    ) -> Result<bool, StoreError> {
        let db = self.db()?;
        let by_time = cf(&db, cf::BY_TIME);
        let by_id = cf(&db, cf::BY_ID);
        Ok(db
            .get_pinned_cf(by_time, keys::by_time_at(process, record.timestamp, slot))?
            .is_some()
            && db
                .get_pinned_cf(by_id, keys::by_id_at(&record.assignment_id, process, slot))?
                .is_some()
            && db
                .get_pinned_cf(by_id, keys::by_id_at(&record.message_id, process, slot))?
                .is_some())
    }

    /// How many timestamp-index keys a process has (for `su verify`: one per entry).
    pub fn time_index_len(&self, process: &Id) -> Result<u64, StoreError> {
        let db = self.db()?;
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(process_upper_bound(process));
        let mut iter = db.raw_iterator_cf_opt(cf(&db, cf::BY_TIME), options);
        iter.seek(keys::by_time(process, 0, 0));
        let mut count = 0;
        while iter.valid() {
            count += 1;
            iter.next();
        }
        iter.status()?;
        Ok(count)
    }

    /// The smallest nonce whose timestamp is greater than `after`, if any.
    pub fn first_nonce_after(&self, process: &Id, after: u64) -> Result<Option<u64>, StoreError> {
        let db = self.db()?;
        let Some(start) = after.checked_add(1) else {
            return Ok(None);
        };
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(process_upper_bound(process));
        let mut iter = db.raw_iterator_cf_opt(cf(&db, cf::BY_TIME), options);
        iter.seek(keys::by_time(process, start, 0));
        match iter.key() {
            Some(key) if key.starts_with(process) => Ok(keys::u64_at(key, 40)),
            _ => {
                iter.status()?;
                Ok(None)
            }
        }
    }

    /// Entries of a process with nonces in `first..=last` (duplicates of a nonce included),
    /// in key order, read under one snapshot. `visit` returns `false` to stop early.
    pub fn scan_entries<E: From<StoreError>>(
        &self,
        process: &Id,
        first: u64,
        last: u64,
        mut visit: impl FnMut(Slot, EntryRecord, &ItemReader<'_>) -> Result<bool, E>,
    ) -> Result<(), E> {
        let db = self.db()?;
        if first > last {
            return Ok(());
        }
        let snapshot = db.snapshot();
        let mut options = ReadOptions::default();
        options.set_snapshot(&snapshot);
        let mut upper = keys::entry(process, last).to_vec();
        upper.extend_from_slice(&[0xff, 0xff, 0]);
        options.set_iterate_upper_bound(upper);
        let mut iter = db.raw_iterator_cf_opt(cf(&db, cf::ENTRIES), options);
        let items = cf(&db, cf::ITEMS);
        let read_item =
            |id: &Id| -> Result<Option<Vec<u8>>, StoreError> { Ok(snapshot.get_cf(items, id)?) };
        iter.seek(keys::entry(process, first));
        while let Some((key, value)) = iter.item() {
            let (_, slot) =
                keys::decode_entry(key).ok_or(StoreError::Corrupt { what: "entry key" })?;
            let record = EntryRecord::decode(value).ok_or(StoreError::Corrupt { what: "entry" })?;
            if !visit(slot, record, &read_item)? {
                return Ok(());
            }
            iter.next();
        }
        iter.status().map_err(StoreError::from)?;
        Ok(())
    }

    /// Every process id, in key order, starting after `after`.
    pub fn processes_after(&self, after: Option<&Id>, max: usize) -> Result<Vec<Id>, StoreError> {
        let db = self.db()?;
        let start = after.map(|id| {
            let mut key = id.to_vec();
            key.push(0);
            key
        });
        let mode = match &start {
            Some(key) => IteratorMode::From(key, Direction::Forward),
            None => IteratorMode::Start,
        };
        let mut out = Vec::new();
        for item in db.iterator_cf(cf(&db, cf::PROCESSES), mode).take(max) {
            let (key, _) = item?;
            out.push(keys::id_at(&key, 0).ok_or(StoreError::Corrupt {
                what: "process key",
            })?);
        }
        Ok(out)
    }

    /// The highest commit sequence stored, 0 on an empty store.
    pub fn last_sequence(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        let mut iter = db.raw_iterator_cf(cf(&db, cf::LOG));
        iter.seek_to_last();
        match iter.key() {
            Some(key) => keys::u64_at(key, 0).ok_or(StoreError::Corrupt { what: "log key" }),
            None => {
                iter.status()?;
                Ok(0)
            }
        }
    }

    /// Up to `max` changes after log sequence `after`, in commit order, read under one
    /// snapshot: each with everything needed to rebuild its rows (the change feed).
    pub fn log_after(&self, after: u64, max: usize) -> Result<Vec<Change>, StoreError> {
        self.log_after_bounded(after, max, usize::MAX)
    }

    /// `log_after`, stopping early (after at least one change) once the item bytes read reach
    /// `max_bytes`.
    pub fn log_after_bounded(
        &self,
        after: u64,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let db = self.db()?;
        let mut bytes = 0usize;
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let snapshot = db.snapshot();
        let mut options = ReadOptions::default();
        options.set_snapshot(&snapshot);
        let mut iter = db.raw_iterator_cf_opt(cf(&db, cf::LOG), options);
        let corrupt = |what| StoreError::Corrupt { what };
        let item = |id: &Id| -> Result<Vec<u8>, StoreError> {
            snapshot
                .get_cf(cf(&db, cf::ITEMS), id)?
                .ok_or(corrupt("item named by the log"))
        };
        let mut changes = Vec::new();
        iter.seek(keys::log(start));
        while let Some((key, value)) = iter.item() {
            if changes.len() >= max || (!changes.is_empty() && bytes >= max_bytes) {
                break;
            }
            let sequence = keys::u64_at(key, 0).ok_or(corrupt("log key"))?;
            if value.len() == 32 {
                let process = keys::id_at(value, 0).ok_or(corrupt("log"))?;
                let record = snapshot
                    .get_cf(cf(&db, cf::PROCESSES), process)?
                    .and_then(|bytes| ProcessRecord::decode(&bytes))
                    .ok_or(corrupt("process named by the log"))?;
                let records::ProcessKind::Legacy { wrapper_id } = record.kind else {
                    return Err(corrupt("log row of a legacy process"));
                };
                changes.push(Change::LegacyProcess(LegacyProcess {
                    process,
                    sequence,
                    timestamp: record.timestamp,
                    item: item(&process)?,
                    wrapper_id,
                    wrapper: item(&wrapper_id)?,
                }));
                bytes += change_bytes(changes.last());
            } else {
                let (process, slot) = keys::decode_entry(value).ok_or(corrupt("log"))?;
                let stored = snapshot
                    .get_cf(cf(&db, cf::ENTRIES), value)?
                    .and_then(|bytes| StoredEntry::decode(&bytes))
                    .ok_or(corrupt("entry named by the log"))?;
                let record = stored.record;
                if record.sequence != sequence {
                    return Err(corrupt("entry whose sequence disagrees with the log"));
                }
                changes.push(Change::Entry(StagedEntry {
                    process,
                    nonce: slot.nonce,
                    dup: slot.dup,
                    record,
                    assignment: item(&record.assignment_id)?,
                    body: match record.kind.has_body() {
                        true => Some(item(&record.message_id)?),
                        false => None,
                    },
                    dedupe_hashes: stored.dedupe_hashes,
                    upload: false,
                }));
                bytes += change_bytes(changes.last());
            }
            iter.next();
        }
        iter.status()?;
        Ok(changes)
    }

    /// The address (SHA-256 of the owner) of the wallet that signs this store's
    /// assignments: recorded when the first wallet is bound, or when the store was upgraded,
    /// imported or replicated.
    pub fn signer_address(&self) -> Result<Option<Id>, StoreError> {
        let db = self.db()?;
        match db.get_cf(cf(&db, cf::META), SIGNER_KEY)? {
            Some(bytes) => Ok(Some(keys::id_at(&bytes, 0).ok_or(StoreError::Corrupt {
                what: "signer address",
            })?)),
            None => Ok(None),
        }
    }

    /// The URL of the primary this store follows or last followed (`su sync`), if any.
    pub fn sync_primary(&self) -> Result<Option<String>, StoreError> {
        let db = self.db()?;
        match db.get_cf(cf(&db, cf::META), SYNC_PRIMARY_KEY)? {
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| StoreError::Corrupt {
                    what: "sync primary",
                }),
            None => Ok(None),
        }
    }

    /// Records the URL of the primary a standby follows.
    pub fn put_sync_primary(&self, url: &str) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(cf(&db, cf::META), SYNC_PRIMARY_KEY, url.as_bytes());
        Ok(db.write_opt(batch, &options)?)
    }

    /// Forgets the primary a promoted standby followed (`su serve`, once it has said so).
    pub fn clear_sync_primary(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_cf(cf(&db, cf::META), SYNC_PRIMARY_KEY);
        Ok(db.write_opt(batch, &options)?)
    }

    /// Records the signer's address (synced: the identity check depends on it).
    pub fn put_signer_address(&self, address: &Id) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(true);
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(cf(&db, cf::META), SIGNER_KEY, address);
        Ok(db.write_opt(batch, &options)?)
    }

    /// The layout version recorded in `meta` (the current one for a new store).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let db = self.db()?;
        match db.get_cf(cf(&db, cf::META), SCHEMA_KEY)? {
            Some(bytes) => <[u8; 4]>::try_from(bytes.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    what: "schema version",
                }),
            None => Ok(SCHEMA_VERSION),
        }
    }

    /// Every dedupe hash recorded for a process (for `su verify`).
    pub fn dedupe_hashes(&self, process: &Id) -> Result<Vec<records::DedupeHash>, StoreError> {
        let db = self.db()?;
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(process_upper_bound(process));
        let mut iter = db.raw_iterator_cf_opt(cf(&db, cf::DEDUPE), options);
        iter.seek(process);
        let mut hashes = Vec::new();
        while let Some(key) = iter.key() {
            hashes.push(
                key.get(32..80)
                    .and_then(|hash| hash.try_into().ok())
                    .ok_or(StoreError::Corrupt { what: "dedupe key" })?,
            );
            iter.next();
        }
        iter.status()?;
        Ok(hashes)
    }

    /// Whether the `log` row at `sequence` names this entry (for `su verify`).
    pub fn log_names(&self, sequence: u64, process: &Id, slot: Slot) -> Result<bool, StoreError> {
        let db = self.db()?;
        Ok(db
            .get_pinned_cf(cf(&db, cf::LOG), keys::log(sequence))?
            .is_some_and(|value| value.as_ref() == keys::entry_at(process, slot).as_ref()))
    }

    /// Rewrites this store in the version-1 layout (tests of the upgrade; see `migrate`).
    #[doc(hidden)]
    pub fn rewrite_as_version_1(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        migrate::downgrade_to_v1(&db)
    }

    /// Every row of every column family, in key order (tests that compare two stores).
    pub fn dump(&self) -> Result<Vec<DumpRow>, StoreError> {
        let db = self.db()?;
        let mut rows = Vec::new();
        for name in cf::ALL {
            let Some(handle) = db.cf_handle(name) else {
                continue;
            };
            for item in db.iterator_cf(handle, IteratorMode::Start) {
                let (key, value) = item?;
                rows.push((name, key.to_vec(), value.to_vec()));
            }
        }
        Ok(rows)
    }

    /// The persisted block height, if any.
    pub fn block_height(&self) -> Result<Option<u64>, StoreError> {
        let db = self.db()?;
        match db.get_cf(cf(&db, cf::META), BLOCK_HEIGHT_KEY)? {
            Some(bytes) => Ok(Some(keys::u64_at(&bytes, 0).ok_or(
                StoreError::Corrupt {
                    what: "block height",
                },
            )?)),
            None => Ok(None),
        }
    }

    /// Persists the block height (not synced: losing it only means a slightly older height).
    pub fn put_block_height(&self, height: u64) -> Result<(), StoreError> {
        let db = self.db()?;
        Ok(db.put_cf(cf(&db, cf::META), BLOCK_HEIGHT_KEY, height.to_be_bytes())?)
    }

    /// Up to `max` outbox rows in key order, starting at `from`.
    pub fn outbox_rows(&self, from: &[u8], max: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let db = self.db()?;
        let iter = db.iterator_cf(
            cf(&db, cf::OUTBOX),
            IteratorMode::From(from, Direction::Forward),
        );
        let mut rows = Vec::new();
        for item in iter.take(max) {
            let (key, value) = item?;
            let corrupt = || StoreError::Corrupt { what: "outbox row" };
            let id = keys::id_at(&value, 0).ok_or_else(corrupt)?;
            let enqueued_ms = keys::u64_at(&value, 32).ok_or_else(corrupt)?;
            rows.push(OutboxRow {
                key: key.to_vec(),
                id,
                enqueued_ms,
            });
        }
        Ok(rows)
    }

    /// How many uploads are queued (a full scan of the outbox: for tests and `su verify`).
    pub fn outbox_len(&self) -> Result<usize, StoreError> {
        let db = self.db()?;
        let mut count = 0;
        for item in db.iterator_cf(cf(&db, cf::OUTBOX), IteratorMode::Start) {
            item?;
            count += 1;
        }
        Ok(count)
    }

    /// An integer RocksDB property summed over every CF (for metrics).
    pub fn property_sum(&self, name: &str) -> u64 {
        let Ok(db) = self.db() else { return 0 };
        cf::ALL
            .iter()
            .filter_map(|&name_cf| db.cf_handle(name_cf))
            .filter_map(|handle| db.property_int_value_cf(handle, name).ok().flatten())
            .sum()
    }

    /// Flushes every memtable to SST files, so the next open replays no WAL (clean shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        for name in cf::ALL {
            db.flush_cf(cf(&db, name))?;
        }
        Ok(())
    }

    /// Ends an import's run: flushes every CF, then compacts each CF that holds more L0 files
    /// than `su serve` lets stand (the bulk profile lets them pile up, BENCHMARKS.md), so the
    /// store is handed over as the serving profile would keep it. A CF within the serving
    /// trigger is left alone, so a small top-up of a large store does not rewrite it.
    pub fn finish_import(&self) -> Result<(), StoreError> {
        self.flush()?;
        let db = self.db()?;
        for name in cf::ALL {
            let handle = cf(&db, name);
            let level0 = db
                .property_int_value_cf(handle, "rocksdb.num-files-at-level0")?
                .unwrap_or(0);
            if level0 > cf::SERVE_L0_COMPACTION_TRIGGER {
                db.compact_range_cf(handle, None::<&[u8]>, None::<&[u8]>);
            }
        }
        Ok(())
    }

    /// Flushes and compacts every column family fully (offline tools and benchmarks).
    pub fn compact(&self) -> Result<(), StoreError> {
        self.flush()?;
        let db = self.db()?;
        for name in cf::ALL {
            db.compact_range_cf(cf(&db, name), None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// A standby's position in its primary's change feed: the last log sequence applied.
    pub fn sync_after(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        match db.get_cf(cf(&db, cf::META), SYNC_AFTER_KEY)? {
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt { what: "sync_after" }),
            None => Ok(0),
        }
    }

    /// A standby applies one page of its primary's changes: their rows and its new position
    /// (`meta/sync_after`), in one synced batch, so a crash leaves either all or none.
    pub fn write_replicated(&self, commit: &Commit, applied: u64) -> Result<(), StoreError> {
        self.write_with(commit, Some(applied))
    }

    /// Writes one commit as a single WriteBatch (synced when `commit.sync`).
    pub fn write(&self, commit: &Commit) -> Result<(), StoreError> {
        self.write_with(commit, None)
    }

    /// An importer's checkpoint row (`checkpoints` CF), if that import ever wrote one.
    pub fn import_checkpoint(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db()?;
        Ok(db.get_cf(cf(&db, cf::CHECKPOINTS), key)?)
    }

    /// The importer writes one batch of history; with `checkpoint` (key, cursor, signer), the
    /// batch also records the importer's cursor and, when given, the signer's address, so the
    /// cursor names exactly the rows written before it. Sync only at checkpoints
    /// (`commit.sync`).
    pub fn write_imported(
        &self,
        commit: &Commit,
        checkpoint: Option<(&[u8], &[u8], Option<&Id>)>,
    ) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut batch = write::build_batch(&db, commit);
        if let Some((key, cursor, signer)) = checkpoint {
            batch.put_cf(cf(&db, cf::CHECKPOINTS), key, cursor);
            if let Some(signer) = signer {
                batch.put_cf(cf(&db, cf::META), SIGNER_KEY, signer);
            }
        }
        self.write_import_batch(&db, batch, commit.sync)
    }

    /// Writes one importer batch; `durable` makes it and every batch before it durable
    /// before returning. Opened for import (`OpenMode::Import`), batches skip the WAL (the
    /// importer writes every item once more to the WAL otherwise) and durability comes from
    /// an atomic flush of every CF: the files on disk always hold a prefix of the batches
    /// written, as a WAL replay would. Otherwise the batch goes through the WAL, synced when
    /// `durable`.
    pub(crate) fn write_import_batch(
        &self,
        db: &DB,
        batch: rocksdb::WriteBatch,
        durable: bool,
    ) -> Result<(), StoreError> {
        let mut options = rocksdb::WriteOptions::default();
        if self.mode == OpenMode::Import {
            options.disable_wal(true);
            db.write_opt(batch, &options)?;
            if durable {
                let handles: Vec<_> = cf::ALL.iter().map(|&name| cf(db, name)).collect();
                let mut flush = rocksdb::FlushOptions::default();
                flush.set_wait(true);
                db.flush_cfs_opt(&handles, &flush)?;
            }
        } else {
            options.set_sync(durable);
            db.write_opt(batch, &options)?;
        }
        Ok(())
    }

    fn write_with(&self, commit: &Commit, sync_after: Option<u64>) -> Result<(), StoreError> {
        let db = self.db()?;
        if let Some(entry) = commit
            .entries
            .iter()
            .find(|entry| entry.dedupe_hashes.len() > StoredEntry::MAX_DEDUPE_HASHES)
        {
            return Err(StoreError::TooManyDedupeHashes(entry.dedupe_hashes.len()));
        }
        let mut batch = write::build_batch(&db, commit);
        if let Some(applied) = sync_after {
            batch.put_cf(cf(&db, cf::META), SYNC_AFTER_KEY, applied.to_be_bytes());
        }
        let mut options = rocksdb::WriteOptions::default();
        options.set_sync(commit.sync);
        db.write_opt(batch, &options)?;
        Ok(())
    }
}

/// The write buffer of each file an import's flushes and compactions write.
const IMPORT_WRITE_BUFFER: u64 = 4 << 20;
/// The readahead of each file an import's compactions read.
const IMPORT_COMPACTION_READAHEAD: usize = 256 << 10;

/// Opens the RocksDB instance under `dir` with every CF of this layout.
fn open_db(dir: &Path, mode: OpenMode) -> Result<DB, StoreError> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.increase_parallelism(2);
    options.set_db_write_buffer_size(64 << 20);
    options.set_max_total_wal_size(128 << 20);
    options.set_keep_log_file_num(4);
    if mode == OpenMode::Import {
        // Import batches skip the WAL; a flush of one CF alone could then put a later batch's
        // rows on disk without an earlier batch's rows of another CF.
        options.set_atomic_flush(true);
        // Flushes write every imported item once into files nothing reads while the import
        // runs: direct writes spare the kernel's copy into the page cache, and large
        // buffers make them few (direct_io.rs; measured in BENCHMARKS.md).
        options.set_writable_file_max_buffer_size(IMPORT_WRITE_BUFFER);
        // A bulk compaction reads up to `BULK_L0_COMPACTION_TRIGGER` L0 files at once: with
        // direct reads, RocksDB's default readahead (2 MiB per file) would hold 128 MiB.
        options.set_compaction_readahead_size(IMPORT_COMPACTION_READAHEAD);
        // The compaction at the end of an import (`finish_import`) runs on every core.
        options.set_max_subcompactions(2);
        // Two flushes at once: a flush waits on the disk for most of its time, and with one
        // the writer stalled on full memtables (BENCHMARKS.md). Both limits are set, as
        // RocksDB takes them only together; `max_background_jobs` would give two flushes
        // only with six compactions.
        #[allow(deprecated)]
        {
            options.set_max_background_flushes(2);
            options.set_max_background_compactions(2);
        }
        if direct_io::supported(dir) {
            options.set_use_direct_io_for_flush_and_compaction(true);
        } else {
            tracing::info!(
                dir = %dir.display(),
                "the data dir's file system takes no direct writes: the import writes through \
                 the page cache"
            );
        }
    }
    let cache = Cache::new_lru_cache(64 << 20);
    let db = match mode {
        OpenMode::ReadWrite => {
            DB::open_cf_descriptors(&options, dir, cf::descriptors(&cache, cf::Profile::Serve))?
        }
        OpenMode::Import => {
            DB::open_cf_descriptors(&options, dir, cf::descriptors(&cache, cf::Profile::Bulk))?
        }
        OpenMode::ReadOnly => {
            // A store of an older layout may lack CFs added since (version 1 has no
            // `routes` or `checkpoints`); a read-only open cannot create them, so it opens
            // the ones that exist and reads the others as empty.
            let existing = DB::list_cf(&options, dir).unwrap_or_default();
            let descriptors = cf::descriptors(&cache, cf::Profile::Serve)
                .into_iter()
                .zip(cf::ALL)
                .filter(|(_, name)| existing.iter().any(|found| found == name))
                .map(|(descriptor, _)| descriptor)
                .collect::<Vec<_>>();
            DB::open_cf_descriptors_read_only(&options, dir, descriptors, false)?
        }
    };
    Ok(db)
}

/// The item bytes a change carries (for the byte bound of a feed page).
fn change_bytes(change: Option<&Change>) -> usize {
    match change {
        Some(Change::Entry(entry)) => entry.item_bytes(),
        Some(Change::LegacyProcess(process)) => process.item_bytes(),
        None => 0,
    }
}

/// One row of `Store::dump`: the CF name, the key and the value.
pub type DumpRow = (&'static str, Vec<u8>, Vec<u8>);

/// An upper bound past every key of `process` in a CF keyed by process first.
fn process_upper_bound(process: &Id) -> Vec<u8> {
    let mut upper = process.to_vec();
    upper.extend_from_slice(&[0xff; 43]);
    upper
}

/// One queued upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub key: Vec<u8>,
    pub id: Id,
    pub enqueued_ms: u64,
}

/// Reads item bytes by id (under the snapshot of a scan).
pub type ItemReader<'a> = dyn Fn(&Id) -> Result<Option<Vec<u8>>, StoreError> + 'a;

/// One `by_id` hit: where an id appears and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdHit {
    pub process: Id,
    pub slot: Slot,
    pub role: IdRole,
    pub timestamp: u64,
}

#[cfg(test)]
mod finish_import_tests {
    use super::{OpenMode, Store, cf};

    fn level0(store: &Store, name: &'static str) -> u64 {
        let db = store.db().unwrap();
        db.property_int_value_cf(cf(&db, name), "rocksdb.num-files-at-level0")
            .unwrap()
            .unwrap()
    }

    /// Writes `rounds` durable import batches, each a row in `name` (one L0 file each).
    fn write_rounds(store: &Store, name: &'static str, rounds: u8) {
        let db = store.db().unwrap();
        for round in 0..rounds {
            let mut batch = rocksdb::WriteBatch::default();
            batch.put_cf(cf(&db, name), [round; 72], [round]);
            store.write_import_batch(&db, batch, true).unwrap();
        }
    }

    #[test]
    fn finishing_an_import_compacts_only_the_cfs_past_the_serving_trigger() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), OpenMode::Import).unwrap();
        let past = cf::SERVE_L0_COMPACTION_TRIGGER as u8 + 2;
        write_rounds(&store, cf::BY_ID, past);
        write_rounds(&store, cf::LOG, 2);
        assert_eq!(level0(&store, cf::BY_ID), u64::from(past));
        store.finish_import().unwrap();
        assert_eq!(level0(&store, cf::BY_ID), 0);
        assert_eq!(
            level0(&store, cf::LOG),
            2,
            "a CF within the trigger is left alone"
        );
        let db = store.db().unwrap();
        for round in 0..past {
            let value = db.get_cf(cf(&db, cf::BY_ID), [round; 72]).unwrap();
            assert_eq!(value, Some(vec![round]));
        }
    }
}
