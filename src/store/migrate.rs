//! In-place upgrades of older store layouts, run by `Store::open` in read-write mode.
//!
//! Version 1 → 2 rewrites every entry value into the version-2 layout, which carries the
//! entry's dedupe hashes (so the entry alone rebuilds every row), and records the signer's
//! address. Keys do not change: a version-1 key is a version-2 key of a first entry.
//!
//! Crash-safe: the rewrite of a process is derived from the store alone, so doing it twice
//! gives the same bytes; `meta/upgrade_cursor` remembers the last process finished so an
//! interrupted upgrade resumes after it, and the version moves to 2 in the last, synced
//! write, after which the cursor is gone.

use super::keys::{self, Slot};
use super::records::{DedupeHash, EntryKind, StoredEntry};
use super::{SCHEMA_KEY, SIGNER_KEY, StoreError, cf};
use crate::ans104::DataItem;
use crate::ans104::dedupe::{TagOrder, item_dedupe_hash};
use crate::domain::Id;
use rocksdb::{DB, Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions};
use std::collections::HashSet;

const CURSOR_KEY: &[u8] = b"upgrade_cursor";
/// Entry values rewritten per batch.
const CHUNK: usize = 4096;

/// Where an upgrade stops early: only tests of resuming an interrupted upgrade set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeStop {
    Never,
    /// Return `StoreError::UpgradeStopped` after this many processes are done.
    AfterProcesses(usize),
}

fn handle<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("every CF in cf::ALL is opened")
}

pub(super) fn upgrade_v1_to_v2(db: &DB, stop: UpgradeStop) -> Result<(), StoreError> {
    let meta = handle(db, cf::META);
    let resume_after: Option<Id> = db
        .get_cf(meta, CURSOR_KEY)?
        .map(|bytes| keys::id_at(&bytes, 0).ok_or(StoreError::Corrupt { what: "upgrade cursor" }))
        .transpose()?;
    tracing::info!(
        resuming = resume_after.is_some(),
        "upgrading the store layout from version 1 to 2"
    );
    let mut done = 0usize;
    let mut after = resume_after;
    loop {
        let Some(process) = next_process(db, after.as_ref())? else {
            break;
        };
        if stop == UpgradeStop::AfterProcesses(done) {
            return Err(StoreError::UpgradeStopped);
        }
        upgrade_process(db, &process)?;
        done += 1;
        after = Some(process);
    }
    if db.get_cf(meta, SIGNER_KEY)?.is_none()
        && let Some(address) = first_signer(db)?
    {
        db.put_cf(meta, SIGNER_KEY, address)?;
    }
    let mut batch = WriteBatch::default();
    batch.put_cf(meta, SCHEMA_KEY, 2u32.to_be_bytes());
    batch.delete_cf(meta, CURSOR_KEY);
    let mut options = WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options)?;
    tracing::info!(processes = done, "store layout upgraded to version 2");
    Ok(())
}

fn next_process(db: &DB, after: Option<&Id>) -> Result<Option<Id>, StoreError> {
    let start = after.map(|id| {
        let mut key = id.to_vec();
        key.push(0);
        key
    });
    let mode = match &start {
        Some(key) => IteratorMode::From(key, Direction::Forward),
        None => IteratorMode::Start,
    };
    match db.iterator_cf(handle(db, cf::PROCESSES), mode).next() {
        Some(item) => {
            let (key, _) = item?;
            Ok(Some(keys::id_at(&key, 0).ok_or(StoreError::Corrupt {
                what: "process key",
            })?))
        }
        None => Ok(None),
    }
}

/// Calls `visit` with every entry of a process, in key order.
fn for_each_entry(
    db: &DB,
    process: &Id,
    mut visit: impl FnMut(&[u8], StoredEntry) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut options = ReadOptions::default();
    let mut upper = process.to_vec();
    upper.extend_from_slice(&[0xff; 11]);
    options.set_iterate_upper_bound(upper);
    let mut iter = db.raw_iterator_cf_opt(handle(db, cf::ENTRIES), options);
    iter.seek(keys::entry(process, 0));
    while let Some((key, value)) = iter.item() {
        let stored = StoredEntry::decode(value).ok_or(StoreError::Corrupt { what: "entry" })?;
        visit(key, stored)?;
        iter.next();
    }
    Ok(iter.status()?)
}

/// The ordered dedupe hash a version-1 message entry recorded: its body's, when the body is a
/// pushed message (it has `From-Process`).
fn pushed_message_hash(db: &DB, stored: &StoredEntry) -> Result<Option<DedupeHash>, StoreError> {
    if stored.record.kind != EntryKind::Message {
        return Ok(None);
    }
    let Some(bytes) = db.get_cf(handle(db, cf::ITEMS), stored.record.message_id)? else {
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
/// hash; the hashes the gateway gave for assignments cannot be recomputed offline, so the
/// process's remaining recorded hashes go to its first assignment-only entry (nonce 0 when it
/// has none): the process's set of hashes, which is all the dedupe check reads, is unchanged.
fn upgrade_process(db: &DB, process: &Id) -> Result<(), StoreError> {
    let mut recorded: HashSet<DedupeHash> = HashSet::new();
    let mut iter = db.raw_iterator_cf(handle(db, cf::DEDUPE));
    iter.seek(process);
    while let Some((key, _)) = iter.item() {
        if !key.starts_with(process) {
            break;
        }
        let hash: DedupeHash = key[32..]
            .try_into()
            .map_err(|_| StoreError::Corrupt { what: "dedupe key" })?;
        recorded.insert(hash);
        iter.next();
    }
    iter.status()?;

    let mut attributed: HashSet<DedupeHash> = HashSet::new();
    let mut first_assignment: Option<Slot> = None;
    for_each_entry(db, process, |key, stored| {
        if let Some(hash) = pushed_message_hash(db, &stored)?
            && recorded.contains(&hash)
        {
            attributed.insert(hash);
        }
        if stored.record.kind == EntryKind::AssignmentOnly && first_assignment.is_none() {
            first_assignment = keys::decode_entry(key).map(|(_, slot)| slot);
        }
        Ok(())
    })?;
    let mut leftover: Vec<DedupeHash> = recorded.difference(&attributed).copied().collect();
    leftover.sort_unstable();
    let holder = first_assignment.unwrap_or_default();

    let entries = handle(db, cf::ENTRIES);
    let mut batch = WriteBatch::default();
    let mut in_batch = 0usize;
    let mut pending_error = None;
    for_each_entry(db, process, |key, stored| {
        let slot = keys::decode_entry(key)
            .map(|(_, slot)| slot)
            .ok_or(StoreError::Corrupt { what: "entry key" })?;
        let mut hashes = Vec::new();
        if let Some(hash) = pushed_message_hash(db, &stored)?
            && attributed.contains(&hash)
        {
            hashes.push(hash);
        }
        if slot == holder {
            hashes.extend(leftover.iter().copied());
        }
        let upgraded = StoredEntry {
            record: stored.record,
            dedupe_hashes: hashes,
        };
        batch.put_cf(entries, key, upgraded.encode());
        in_batch += 1;
        if in_batch == CHUNK {
            if let Err(error) = db.write(std::mem::take(&mut batch)) {
                pending_error = Some(error);
            }
            in_batch = 0;
        }
        Ok(())
    })?;
    if let Some(error) = pending_error {
        return Err(error.into());
    }
    batch.put_cf(handle(db, cf::META), CURSOR_KEY, process);
    db.write(batch)?;
    Ok(())
}

/// The owner address of the first stored assignment, if the store holds any.
fn first_signer(db: &DB) -> Result<Option<Id>, StoreError> {
    let Some(item) = db.iterator_cf(handle(db, cf::ENTRIES), IteratorMode::Start).next() else {
        return Ok(None);
    };
    let (_, value) = item?;
    let stored = StoredEntry::decode(&value).ok_or(StoreError::Corrupt { what: "entry" })?;
    let Some(bytes) = db.get_cf(handle(db, cf::ITEMS), stored.record.assignment_id)? else {
        return Ok(None);
    };
    Ok(DataItem::parse(&bytes).ok().map(|item| item.owner_address()))
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
