//! Dedupe hashes a source recorded for a process without saying which entry they belong to
//! (the reference's byte store and RocksDB-only store keep them per process): the importer
//! lists the ones no entry lists yet on the process's entries, as the version-1 upgrade does
//! (`migrate`), so every `dedupe` row stays listed by exactly one entry and a replica rebuilt
//! from the change feed gets the same rows.

use super::keys::{self, Slot};
use super::records::{DedupeHash, EntryKind, StoredEntry};
use super::{SIGNER_KEY, Store, StoreError, cf, process_upper_bound};
use crate::domain::Id;
use rocksdb::{ReadOptions, WriteBatch};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The entries of one process that list recorded hashes they did not list before.
#[derive(Debug, Default)]
pub struct RecordedPlan {
    rewrites: BTreeMap<Slot, StoredEntry>,
    /// Assignment-only entries that listed no hash and now list one.
    pub covered_assignments: u64,
    /// Recorded hashes no entry listed.
    pub listed: u64,
}

impl RecordedPlan {
    pub fn is_empty(&self) -> bool {
        self.rewrites.is_empty()
    }
}

/// Gives each hash of `leftover` (in its order) to one entry: the assignment-only entries in
/// nonce order first, then the others, and around again while hashes remain.
pub(super) fn holders(
    leftover: Vec<DedupeHash>,
    assignments: Vec<Slot>,
    others: Vec<Slot>,
) -> HashMap<Slot, Vec<DedupeHash>> {
    assignments
        .into_iter()
        .chain(others)
        .cycle()
        .zip(leftover)
        .fold(HashMap::new(), |mut holders, (slot, hash)| {
            holders.entry(slot).or_default().push(hash);
            holders
        })
}

impl Store {
    /// Which of `process`'s entries list which of `recorded` that no entry lists yet.
    pub fn plan_recorded_hashes(
        &self,
        process: &Id,
        recorded: &[DedupeHash],
    ) -> Result<RecordedPlan, StoreError> {
        let db = self.db()?;
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(process_upper_bound(process));
        let mut iter = db.raw_iterator_cf_opt(cf(&db, cf::ENTRIES), options);
        iter.seek(process);
        let mut listed: HashSet<DedupeHash> = HashSet::new();
        let mut stored: BTreeMap<Slot, StoredEntry> = BTreeMap::new();
        let (mut assignments, mut others) = (Vec::new(), Vec::new());
        while let Some((key, value)) = iter.item() {
            let (_, slot) =
                keys::decode_entry(key).ok_or(StoreError::Corrupt { what: "entry key" })?;
            let entry = StoredEntry::decode(value).ok_or(StoreError::Corrupt { what: "entry" })?;
            listed.extend(entry.dedupe_hashes.iter().copied());
            match entry.record.kind {
                EntryKind::AssignmentOnly => assignments.push(slot),
                _ => others.push(slot),
            }
            stored.insert(slot, entry);
            iter.next();
        }
        iter.status()?;
        let mut leftover: Vec<DedupeHash> = recorded
            .iter()
            .filter(|hash| !listed.contains(*hash))
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        leftover.sort_unstable();
        let mut plan = RecordedPlan {
            listed: leftover.len() as u64,
            ..RecordedPlan::default()
        };
        for (slot, hashes) in holders(leftover, assignments, others) {
            let Some(mut entry) = stored.remove(&slot) else {
                continue;
            };
            if entry.record.kind == EntryKind::AssignmentOnly && entry.dedupe_hashes.is_empty() {
                plan.covered_assignments += 1;
            }
            entry.dedupe_hashes.extend(hashes);
            if entry.dedupe_hashes.len() > StoredEntry::MAX_DEDUPE_HASHES {
                return Err(StoreError::TooManyDedupeHashes(entry.dedupe_hashes.len()));
            }
            plan.rewrites.insert(slot, entry);
        }
        Ok(plan)
    }

    /// Writes the plan with the importer's checkpoint (key, cursor, signer) in one durable
    /// batch (`Store::write_import_batch`): a rerun either finds both or neither.
    pub fn write_recorded_hashes(
        &self,
        process: &Id,
        plan: &RecordedPlan,
        checkpoint: (&[u8], &[u8], Option<&Id>),
    ) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut batch = WriteBatch::default();
        for (slot, entry) in &plan.rewrites {
            batch.put_cf(
                cf(&db, cf::ENTRIES),
                keys::entry_at(process, *slot),
                entry.encode(),
            );
            for hash in &entry.dedupe_hashes {
                batch.put_cf(cf(&db, cf::DEDUPE), keys::dedupe(process, hash), []);
            }
        }
        let (key, cursor, signer) = checkpoint;
        batch.put_cf(cf(&db, cf::CHECKPOINTS), key, cursor);
        if let Some(signer) = signer {
            batch.put_cf(cf(&db, cf::META), SIGNER_KEY, signer);
        }
        self.write_import_batch(&db, batch, true)
    }
}
