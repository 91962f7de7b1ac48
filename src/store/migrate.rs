//! In-place upgrades of older store layouts, run by `Store::open` in read-write mode.
//!
//! Version 1 → 2 rewrites every entry value into the version-2 layout, which carries the
//! entry's dedupe hashes (so the entry alone rebuilds every row), and records the signer's
//! address. Keys do not change: a version-1 key is a version-2 key of a first entry.
//!
//! Crash-safe: the first, synced write sets the version to 2 together with
//! `meta/upgrade_cursor`, so an older binary refuses the half-upgraded store and the next open
//! of this one resumes. The rewrite of a process is derived from the store alone, so doing it
//! twice gives the same bytes; the cursor remembers the last process finished, and the last,
//! synced write removes it.

use super::keys;
use super::records::{DedupeHash, EntryKind, EntryRecord, StoredEntry};
use super::{ItemReader, SCHEMA_KEY, SIGNER_KEY, Store, StoreError, cf};
use crate::ans104::DataItem;
use crate::ans104::dedupe::{TagOrder, item_dedupe_hash};
use crate::domain::Id;
use rocksdb::{DB, IteratorMode, WriteBatch, WriteOptions};
use std::collections::HashSet;

const CURSOR_KEY: &[u8] = b"upgrade_cursor";
/// The cursor before any process is done (no process id is empty).
const CURSOR_START: &[u8] = b"";
/// Entry values rewritten per batch.
const CHUNK: usize = 4096;

/// Where an upgrade stops early: only tests of resuming an interrupted upgrade set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeStop {
    Never,
    /// Return `StoreError::UpgradeStopped` after this many processes are done.
    AfterProcesses(usize),
    /// Stop after this many entries are rewritten, in the middle of a process: the store is
    /// left with version-1 and version-2 values side by side, as after a crash.
    AfterEntries(u64),
}

fn handle<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("every CF in cf::ALL is opened")
}

/// Whether an upgrade was started and not finished (the cursor is present).
pub(super) fn upgrade_in_progress(db: &DB) -> Result<bool, StoreError> {
    Ok(db.get_cf(handle(db, cf::META), CURSOR_KEY)?.is_some())
}

pub(super) fn upgrade_v1_to_v2(store: &Store, stop: UpgradeStop) -> Result<(), StoreError> {
    let guard = store.db()?;
    let db: &DB = &guard;
    let meta = handle(db, cf::META);
    let resume_after: Option<Id> = match db.get_cf(meta, CURSOR_KEY)? {
        None => {
            let mut batch = WriteBatch::default();
            batch.put_cf(meta, SCHEMA_KEY, 2u32.to_be_bytes());
            batch.put_cf(meta, CURSOR_KEY, CURSOR_START);
            let mut options = WriteOptions::default();
            options.set_sync(true);
            db.write_opt(batch, &options)?;
            None
        }
        Some(bytes) if bytes.is_empty() => None,
        Some(bytes) => Some(keys::id_at(&bytes, 0).ok_or(StoreError::Corrupt {
            what: "upgrade cursor",
        })?),
    };
    tracing::info!(
        resuming_after = resume_after.map(|id| crate::ans104::b64::encode(&id)),
        "upgrading the store layout from version 1 to 2"
    );
    let mut done = 0usize;
    let mut rewritten = 0u64;
    let mut after = resume_after;
    while let Some(process) = store.processes_after(after.as_ref(), 1)?.pop() {
        if stop == UpgradeStop::AfterProcesses(done) {
            return Err(StoreError::UpgradeStopped);
        }
        upgrade_process(store, &process, &mut rewritten, stop)?;
        done += 1;
        after = Some(process);
    }
    let mut batch = WriteBatch::default();
    if db.get_cf(meta, SIGNER_KEY)?.is_none()
        && let Some(address) = latest_signer(db)?
    {
        batch.put_cf(meta, SIGNER_KEY, address);
    }
    batch.put_cf(meta, SCHEMA_KEY, 2u32.to_be_bytes());
    batch.delete_cf(meta, CURSOR_KEY);
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options)?;
    tracing::info!(processes = done, "store layout upgraded to version 2");
    Ok(())
}

/// The ordered dedupe hash a version-1 message entry recorded: its body's, when the body is a
/// pushed message (it has `From-Process`).
fn pushed_message_hash(
    read: &ItemReader<'_>,
    record: &EntryRecord,
) -> Result<Option<DedupeHash>, StoreError> {
    if record.kind != EntryKind::Message {
        return Ok(None);
    }
    let Some(bytes) = read(&record.message_id)? else {
        return Ok(None);
    };
    let Ok(item) = DataItem::parse(&bytes) else {
        return Ok(None);
    };
    Ok(item
        .tag("From-Process")
        .map(|_| item_dedupe_hash(&item, TagOrder::Sorted)))
}

/// Rewrites one process's entries in the version-2 layout. A pushed message carries its own
/// hash. The hashes the gateway gave for assignments of existing transactions cannot be
/// recomputed offline; each such assignment recorded one, so the process's remaining hashes
/// go one per assignment-only entry, in nonce order (any beyond those, which version 1 never
/// wrote, one per entry from nonce 0). Which assignment carries which hash is not known, but
/// the process's set of hashes, all the dedupe check reads, is unchanged, and every hash is
/// listed by exactly one entry.
fn upgrade_process(
    store: &Store,
    process: &Id,
    rewritten: &mut u64,
    stop: UpgradeStop,
) -> Result<(), StoreError> {
    let guard = store.db()?;
    let db: &DB = &guard;
    let recorded: HashSet<DedupeHash> = store.dedupe_hashes(process)?.into_iter().collect();
    let mut attributed: HashSet<DedupeHash> = HashSet::new();
    let (mut assignments, mut others) = (Vec::new(), Vec::new());
    store.scan_entries(process, 0, u64::MAX, |slot, record, read| {
        if let Some(hash) = pushed_message_hash(read, &record)?
            && recorded.contains(&hash)
        {
            attributed.insert(hash);
        }
        match record.kind {
            EntryKind::AssignmentOnly => assignments.push(slot),
            _ => others.push(slot),
        }
        Ok::<_, StoreError>(true)
    })?;
    let mut leftover: Vec<DedupeHash> = recorded.difference(&attributed).copied().collect();
    leftover.sort_unstable();
    let holders = super::recorded::holders(leftover, assignments, others);

    let entries = handle(db, cf::ENTRIES);
    let mut batch = WriteBatch::default();
    let mut in_batch = 0usize;
    let mut stopped = false;
    store.scan_entries(process, 0, u64::MAX, |slot, record, read| {
        let mut hashes = Vec::new();
        if let Some(hash) = pushed_message_hash(read, &record)?
            && attributed.contains(&hash)
        {
            hashes.push(hash);
        }
        if let Some(held) = holders.get(&slot) {
            hashes.extend(held.iter().copied());
        }
        let upgraded = StoredEntry {
            record,
            dedupe_hashes: hashes,
        };
        batch.put_cf(entries, keys::entry_at(process, slot), upgraded.encode());
        in_batch += 1;
        *rewritten += 1;
        if stop == UpgradeStop::AfterEntries(*rewritten) {
            stopped = true;
            db.write(std::mem::take(&mut batch))?;
            return Ok(false);
        }
        if in_batch == CHUNK {
            db.write(std::mem::take(&mut batch))?;
            in_batch = 0;
        }
        Ok::<_, StoreError>(true)
    })?;
    if stopped {
        return Err(StoreError::UpgradeStopped);
    }
    batch.put_cf(handle(db, cf::META), CURSOR_KEY, process);
    db.write(batch)?;
    Ok(())
}

/// The owner address of the most recent assignment (the highest log sequence): the wallet
/// the store was last served with, if the store holds any entry.
fn latest_signer(db: &DB) -> Result<Option<Id>, StoreError> {
    let mut log = db.raw_iterator_cf(handle(db, cf::LOG));
    log.seek_to_last();
    // The newest row that names an entry (a legacy process's row names only a process).
    let entry_key = loop {
        match log.value() {
            Some(value) if value.len() == 32 => log.prev(),
            Some(value) => break value.to_vec(),
            None => {
                log.status()?;
                return Ok(None);
            }
        }
    };
    let Some(value) = db.get_cf(handle(db, cf::ENTRIES), &entry_key)? else {
        return Ok(None);
    };
    let stored = StoredEntry::decode(&value).ok_or(StoreError::Corrupt { what: "entry" })?;
    let Some(bytes) = db.get_cf(handle(db, cf::ITEMS), stored.record.assignment_id)? else {
        return Ok(None);
    };
    Ok(DataItem::parse(&bytes)
        .ok()
        .map(|item| item.owner_address()))
}

/// Rewrites a version-2 store into the version-1 layout it was upgraded from: entry values
/// cut to their first 113 bytes, no signer address, version 1. Only tests use it, to build
/// version-1 stores to upgrade; version 1 is otherwise written by no code of this build.
pub(super) fn downgrade_to_v1(db: &DB) -> Result<(), StoreError> {
    let entries = handle(db, cf::ENTRIES);
    let meta = handle(db, cf::META);
    let mut batch = WriteBatch::default();
    for item in db.iterator_cf(entries, IteratorMode::Start) {
        let (key, value) = item?;
        batch.put_cf(entries, &key, &value[..value.len().min(113)]);
    }
    batch.delete_cf(meta, SIGNER_KEY);
    batch.put_cf(meta, SCHEMA_KEY, 1u32.to_be_bytes());
    Ok(db.write(batch)?)
}
