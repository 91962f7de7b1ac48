//! The SU's own Scheduler-Location publication: `meta/location_publication`, written in one
//! synced batch with the outbox row that carries the signed record, so a restart knows what
//! it queued. What the record says and when to publish belong to `location`.

use super::outbox::{carried_key, encode_carried_value};
use super::{OutboxRow, Store, StoreError, cf, keys};
use crate::domain::Id;
use rocksdb::{WriteBatch, WriteOptions};

const LOCATION_KEY: &[u8] = b"location_publication";
/// Bytes before the URL: outbox key (41), queued at (8), time-to-live (8).
const FIXED_LEN: usize = 41 + 8 + 8;

/// A signed Scheduler-Location record to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLocation {
    pub id: Id,
    /// The signed item, as the bundler gets it.
    pub bytes: Vec<u8>,
    /// Its `Url` tag.
    pub url: String,
    /// Its `Time-To-Live` tag, in milliseconds.
    pub ttl_ms: u64,
    /// When it was signed and queued, Unix milliseconds.
    pub queued_ms: u64,
}

/// The last record this SU queued, as `meta/location_publication` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationPublication {
    /// Its outbox row (`sequence ‖ 3 ‖ id`): queued while this row exists.
    pub outbox_key: Vec<u8>,
    pub id: Id,
    pub url: String,
    pub ttl_ms: u64,
    pub queued_ms: u64,
}

impl LocationPublication {
    /// The outbox row that uploads it.
    pub fn outbox_row(&self) -> OutboxRow {
        OutboxRow {
            key: self.outbox_key.clone(),
            id: self.id,
            enqueued_ms: self.queued_ms,
        }
    }
}

/// `outbox key(41) ‖ queued_ms(8) ‖ ttl_ms(8) ‖ url (UTF-8)`.
fn encode(publication: &LocationPublication) -> Vec<u8> {
    let mut value = Vec::with_capacity(FIXED_LEN + publication.url.len());
    value.extend_from_slice(&publication.outbox_key);
    value.extend_from_slice(&publication.queued_ms.to_be_bytes());
    value.extend_from_slice(&publication.ttl_ms.to_be_bytes());
    value.extend_from_slice(publication.url.as_bytes());
    value
}

fn decode(value: &[u8]) -> Option<LocationPublication> {
    let outbox_key = value.get(..41)?.to_vec();
    Some(LocationPublication {
        id: keys::id_at(&outbox_key, 9)?,
        outbox_key,
        queued_ms: keys::u64_at(value, 41)?,
        ttl_ms: keys::u64_at(value, 49)?,
        url: String::from_utf8(value.get(FIXED_LEN..)?.to_vec()).ok()?,
    })
}

impl Store {
    /// The last Scheduler-Location record this SU queued, if it ever queued one.
    pub fn location_publication(&self) -> Result<Option<LocationPublication>, StoreError> {
        let db = self.db()?;
        match db.get_cf(super::cf(&db, cf::META), LOCATION_KEY)? {
            Some(value) => decode(&value).map(Some).ok_or(StoreError::Corrupt {
                what: "location publication",
            }),
            None => Ok(None),
        }
    }

    /// Queues `record` for upload in a carried outbox row (`last sequence ‖ 3 ‖ id`) and
    /// records it as `meta/location_publication`, in one synced batch: after a crash either
    /// both are there or neither. Safe beside a running sequencer, like `requeue_outbox`.
    pub fn queue_location(
        &self,
        record: &SignedLocation,
    ) -> Result<LocationPublication, StoreError> {
        let sequence = self.last_sequence()?;
        let publication = LocationPublication {
            outbox_key: carried_key(sequence, &record.id).to_vec(),
            id: record.id,
            url: record.url.clone(),
            ttl_ms: record.ttl_ms,
            queued_ms: record.queued_ms,
        };
        let db = self.db()?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            super::cf(&db, cf::OUTBOX),
            &publication.outbox_key,
            encode_carried_value(&record.id, record.queued_ms, &record.bytes),
        );
        batch.put_cf(super::cf(&db, cf::META), LOCATION_KEY, encode(&publication));
        let mut options = WriteOptions::default();
        options.set_sync(true);
        db.write_opt(batch, &options)?;
        Ok(publication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u8) -> SignedLocation {
        SignedLocation {
            id: [id; 32],
            bytes: vec![id, 1, 2, 3],
            url: "https://su.example".into(),
            ttl_ms: 86_400_000,
            queued_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn the_publication_and_its_carried_row_are_written_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), super::super::OpenMode::ReadWrite).unwrap();
        assert_eq!(store.location_publication().unwrap(), None);
        let publication = store.queue_location(&record(7)).unwrap();
        assert_eq!(
            store.location_publication().unwrap().as_ref(),
            Some(&publication)
        );
        assert_eq!(publication.url, "https://su.example");
        assert_eq!(publication.outbox_key[8], keys::OUTBOX_SLOT_CARRIED);
        let row = store.outbox_row(&publication.outbox_key).unwrap().unwrap();
        assert_eq!(row, publication.outbox_row());
        // The row uploads the bytes it carries; there is no `items` row for them.
        let bytes = store.outbox_item(&row.key, &row.id).unwrap();
        assert_eq!(bytes, Some(vec![7, 1, 2, 3]));
        assert_eq!(store.item(&[7; 32]).unwrap(), None);
        // A later record replaces the remembered one; the first row stays queued.
        let later = store.queue_location(&record(8)).unwrap();
        assert_eq!(store.location_publication().unwrap(), Some(later));
        assert_eq!(store.count_outbox().unwrap().0, 2);
        store
            .delete_outbox_rows(std::slice::from_ref(&row.key))
            .unwrap();
        assert_eq!(store.outbox_item(&row.key, &row.id).unwrap(), None);
    }

    #[test]
    fn a_truncated_value_is_corrupt() {
        let publication = LocationPublication {
            outbox_key: carried_key(3, &[1; 32]).to_vec(),
            id: [1; 32],
            url: "http://x".into(),
            ttl_ms: 5,
            queued_ms: 6,
        };
        let bytes = encode(&publication);
        assert_eq!(decode(&bytes), Some(publication));
        assert_eq!(decode(&bytes[..FIXED_LEN - 1]), None);
    }
}
