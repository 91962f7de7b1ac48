//! The `outbox` CF beyond the committer's inserts: forward scans past a cursor, the one
//! count at start, batch deletes, and standalone rows re-queued by an operator.
//! Keys are `sequence(8) ‖ slot(1)` (committer), `sequence(8) ‖ 2 ‖ id(32)` (standalone) or
//! `sequence(8) ‖ 3 ‖ id(32)` (carried: the value holds the item's bytes too); any other key
//! length is tolerated: its value still names the item to upload.

use super::{OutboxRow, Store, StoreError, cf, keys};
use crate::domain::Id;
use rocksdb::{ReadOptions, WriteBatch, WriteOptions};

/// The slot byte of a standalone (re-queued) row.
pub const STANDALONE_SLOT: u8 = keys::OUTBOX_SLOT_STANDALONE;

/// The slot byte of a row that carries its item's bytes (an item stored nowhere else).
pub const CARRIED_SLOT: u8 = keys::OUTBOX_SLOT_CARRIED;

/// Where a row sits in commit order, when its key has a known shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxPlace {
    pub sequence: u64,
    /// `0` body, `1` Assignment, `2` standalone, `3` carried.
    pub slot: u8,
}

/// Decodes the sequence and slot of a 9- or 41-byte key; `None` for other shapes.
pub fn decode_outbox_key(key: &[u8]) -> Option<OutboxPlace> {
    match key.len() {
        9 | 41 => Some(OutboxPlace {
            sequence: keys::u64_at(key, 0)?,
            slot: key[8],
        }),
        _ => None,
    }
}

/// `sequence(8) ‖ 2 ‖ id(32)`.
pub fn standalone_key(sequence: u64, id: &Id) -> [u8; 41] {
    keys::outbox_standalone(sequence, id)
}

/// `sequence(8) ‖ 3 ‖ id(32)`.
pub fn carried_key(sequence: u64, id: &Id) -> [u8; 41] {
    keys::outbox_carried(sequence, id)
}

/// The value of a carried row: `id(32) ‖ enqueued_ms(8) ‖ item bytes`.
pub(super) fn encode_carried_value(id: &Id, enqueued_ms: u64, bytes: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(40 + bytes.len());
    value.extend_from_slice(id);
    value.extend_from_slice(&enqueued_ms.to_be_bytes());
    value.extend_from_slice(bytes);
    value
}

fn is_carried(key: &[u8]) -> bool {
    decode_outbox_key(key).is_some_and(|place| place.slot == CARRIED_SLOT)
}

fn decode_row(key: &[u8], value: &[u8]) -> Option<OutboxRow> {
    Some(OutboxRow {
        key: key.to_vec(),
        id: keys::id_at(value, 0)?,
        enqueued_ms: keys::u64_at(value, 32)?,
    })
}

/// What a forward scan found: decodable rows, and the keys of rows whose value is corrupt.
#[derive(Debug, Default)]
pub struct OutboxScan {
    pub rows: Vec<OutboxRow>,
    pub corrupt: Vec<Vec<u8>>,
    /// The greatest key visited (rows and corrupt ones), to continue from.
    pub last_key: Option<Vec<u8>>,
}

impl Store {
    /// Up to `max` rows with keys strictly greater than `after` (all rows when `after` is
    /// empty), in key order. A corrupt value is reported, not fatal, so one bad row cannot
    /// stop the queue.
    pub fn scan_outbox_after(&self, after: &[u8], max: usize) -> Result<OutboxScan, StoreError> {
        let db = self.db()?;
        let mut iter = db.raw_iterator_cf_opt(super::cf(&db, cf::OUTBOX), ReadOptions::default());
        if after.is_empty() {
            iter.seek_to_first();
        } else {
            iter.seek(after);
            if iter.key() == Some(after) {
                iter.next();
            }
        }
        let mut scan = OutboxScan::default();
        while let Some((key, value)) = iter.item() {
            if scan.rows.len() + scan.corrupt.len() >= max {
                break;
            }
            match decode_row(key, value) {
                Some(row) => scan.rows.push(row),
                None => scan.corrupt.push(key.to_vec()),
            }
            scan.last_key = Some(key.to_vec());
            iter.next();
        }
        iter.status()?;
        Ok(scan)
    }

    /// How many rows the outbox holds and its greatest key: one pass, once at start.
    pub fn count_outbox(&self) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        let db = self.db()?;
        let mut iter = db.raw_iterator_cf(super::cf(&db, cf::OUTBOX));
        iter.seek_to_first();
        let mut count = 0;
        let mut last = None;
        while let Some(key) = iter.key() {
            count += 1;
            last = Some(key.to_vec());
            iter.next();
        }
        iter.status()?;
        Ok((count, last))
    }

    /// The row under `key`, if it is still queued.
    pub fn outbox_row(&self, key: &[u8]) -> Result<Option<OutboxRow>, StoreError> {
        let db = self.db()?;
        let value = db.get_pinned_cf(super::cf(&db, cf::OUTBOX), key)?;
        Ok(value.and_then(|value| decode_row(key, &value)))
    }

    /// The bytes the row under `key` uploads: those it carries (slot 3), else the item stored
    /// under `id`. `None` when the row or the item is gone.
    pub fn outbox_item(&self, key: &[u8], id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        if !is_carried(key) {
            return self.item(id);
        }
        let db = self.db()?;
        let value = db.get_pinned_cf(super::cf(&db, cf::OUTBOX), key)?;
        Ok(value.and_then(|value| value.get(40..).map(<[u8]>::to_vec)))
    }

    /// Every queued row that uploads `id` (a full scan: an operator's tool).
    pub fn outbox_rows_of(&self, id: &Id) -> Result<Vec<OutboxRow>, StoreError> {
        let mut out = Vec::new();
        let mut after = Vec::new();
        loop {
            let scan = self.scan_outbox_after(&after, 4096)?;
            out.extend(scan.rows.into_iter().filter(|row| &row.id == id));
            match scan.last_key {
                Some(key) => after = key,
                None => return Ok(out),
            }
        }
    }

    /// Deletes rows in one batch (not synced: a lost delete is one more upload); returns
    /// how many of them existed.
    pub fn delete_outbox_rows(&self, keys: &[Vec<u8>]) -> Result<usize, StoreError> {
        let db = self.db()?;
        let outbox = super::cf(&db, cf::OUTBOX);
        let mut batch = WriteBatch::default();
        let mut existing = 0;
        for key in keys {
            if db.get_pinned_cf(outbox, key)?.is_some() {
                existing += 1;
            }
            batch.delete_cf(outbox, key);
        }
        db.write(batch)?;
        Ok(existing)
    }

    /// Queues standalone rows `last sequence ‖ 2 ‖ id` (one synced write) and returns them.
    /// They sort after every row committed so far and can never collide with a
    /// committer's key, so this is safe beside a running sequencer.
    pub fn requeue_outbox(
        &self,
        ids: &[Id],
        enqueued_ms: u64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let db = self.db()?;
        let sequence = self.last_sequence()?;
        let outbox = super::cf(&db, cf::OUTBOX);
        let mut batch = WriteBatch::default();
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let key = standalone_key(sequence, id);
            let mut value = [0u8; 40];
            value[..32].copy_from_slice(id);
            value[32..].copy_from_slice(&enqueued_ms.to_be_bytes());
            batch.put_cf(outbox, key, value);
            rows.push(OutboxRow {
                key: key.to_vec(),
                id: *id,
                enqueued_ms,
            });
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        db.write_opt(batch, &options)?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_both_shapes_decode_and_others_do_not() {
        let place = decode_outbox_key(&keys::outbox(7, 1)).unwrap();
        assert_eq!((place.sequence, place.slot), (7, 1));
        let place = decode_outbox_key(&standalone_key(9, &[4; 32])).unwrap();
        assert_eq!((place.sequence, place.slot), (9, STANDALONE_SLOT));
        let place = decode_outbox_key(&carried_key(9, &[4; 32])).unwrap();
        assert_eq!((place.sequence, place.slot), (9, CARRIED_SLOT));
        assert_eq!(decode_outbox_key(&[1, 2, 3]), None);
    }

    #[test]
    fn standalone_rows_sort_after_their_sequence_and_before_the_next() {
        let row = standalone_key(5, &[0xff; 32]);
        assert!(keys::outbox(5, 1).as_slice() < row.as_slice());
        assert!(row.as_slice() < keys::outbox(6, 0).as_slice());
        let carried = carried_key(5, &[0; 32]);
        assert!(row.as_slice() < carried.as_slice());
        assert!(carried.as_slice() < keys::outbox(6, 0).as_slice());
    }

    #[test]
    fn scans_continue_past_a_cursor_and_report_corrupt_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), super::super::OpenMode::ReadWrite).unwrap();
        let rows = store
            .requeue_outbox(&[[1; 32], [2; 32], [3; 32]], 10)
            .unwrap();
        {
            let db = store.db().unwrap();
            let outbox = super::super::cf(&db, cf::OUTBOX);
            db.put_cf(outbox, [9u8; 5], [1u8; 3]).unwrap();
        }
        assert_eq!(store.count_outbox().unwrap().0, 4);
        let first = store.scan_outbox_after(&[], 2).unwrap();
        assert_eq!(first.rows, rows[..2]);
        let rest = store
            .scan_outbox_after(first.last_key.as_deref().unwrap(), 10)
            .unwrap();
        assert_eq!(rest.rows, rows[2..]);
        assert_eq!(rest.corrupt, vec![vec![9u8; 5]]);
        assert_eq!(store.outbox_rows_of(&[2; 32]).unwrap(), rows[1..2]);
        let deleted = store
            .delete_outbox_rows(&[rows[0].key.clone(), vec![0; 9]])
            .unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(store.outbox_row(&rows[0].key).unwrap(), None);
    }
}
