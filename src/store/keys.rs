//! Key codecs: binary keys, numbers big-endian so byte order is numeric order.
#![deny(clippy::little_endian_bytes)]

use crate::domain::Id;

/// Where an entry sits in its process's schedule: its nonce and, for the rare imported
/// duplicate of a nonce (DECISIONS 9), its rank among the entries with that nonce. Everything
/// `su` schedules itself has `dup == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Slot {
    pub nonce: u64,
    pub dup: u16,
}

impl Slot {
    pub fn nonce(nonce: u64) -> Self {
        Self { nonce, dup: 0 }
    }
}

/// A key that is `N` bytes, or `N + 2` when it ends with a duplicate rank.
#[derive(Clone, Copy)]
pub struct SlotKey<const N: usize> {
    bytes: [u8; 74],
    len: usize,
}

impl<const N: usize> SlotKey<N> {
    fn new(head: [u8; N], dup: u16) -> Self {
        let mut bytes = [0u8; 74];
        bytes[..N].copy_from_slice(&head);
        let mut len = N;
        // A rank of 0 adds nothing, so a first entry's key is the short key, and its
        // duplicates sort right after it and before the next nonce.
        if dup > 0 {
            bytes[N..N + 2].copy_from_slice(&dup.to_be_bytes());
            len += 2;
        }
        Self { bytes, len }
    }
}

impl<const N: usize> AsRef<[u8]> for SlotKey<N> {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Reads the duplicate rank that follows a key's first `n` bytes (0 when there is none).
pub fn dup_after(key: &[u8], n: usize) -> Option<u16> {
    match key.len().checked_sub(n)? {
        0 => Some(0),
        2 => Some(u16::from_be_bytes(key[n..n + 2].try_into().ok()?)),
        _ => None,
    }
}

/// `process(32) ‖ nonce(8)`.
pub fn entry(process: &Id, nonce: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(process);
    key[32..].copy_from_slice(&nonce.to_be_bytes());
    key
}

/// `process(32) ‖ nonce(8)`, then `‖ dup(2)` for a duplicate.
pub fn entry_at(process: &Id, slot: Slot) -> SlotKey<40> {
    SlotKey::new(entry(process, slot.nonce), slot.dup)
}

/// Decodes an `entries` key into its process and slot.
pub fn decode_entry(key: &[u8]) -> Option<(Id, Slot)> {
    Some((
        id_at(key, 0)?,
        Slot {
            nonce: u64_at(key, 32)?,
            dup: dup_after(key, 40)?,
        },
    ))
}

/// `process(32) ‖ timestamp(8) ‖ nonce(8)`.
pub fn by_time(process: &Id, timestamp: u64, nonce: u64) -> [u8; 48] {
    let mut key = [0u8; 48];
    key[..32].copy_from_slice(process);
    key[32..40].copy_from_slice(&timestamp.to_be_bytes());
    key[40..].copy_from_slice(&nonce.to_be_bytes());
    key
}

/// `process(32) ‖ timestamp(8) ‖ nonce(8)`, then `‖ dup(2)` for a duplicate.
pub fn by_time_at(process: &Id, timestamp: u64, slot: Slot) -> SlotKey<48> {
    SlotKey::new(by_time(process, timestamp, slot.nonce), slot.dup)
}

/// `id(32) ‖ process(32) ‖ nonce(8)`.
pub fn by_id(id: &Id, process: &Id, nonce: u64) -> [u8; 72] {
    let mut key = [0u8; 72];
    key[..32].copy_from_slice(id);
    key[32..64].copy_from_slice(process);
    key[64..].copy_from_slice(&nonce.to_be_bytes());
    key
}

/// `id(32) ‖ process(32) ‖ nonce(8)`, then `‖ dup(2)` for a duplicate.
pub fn by_id_at(id: &Id, process: &Id, slot: Slot) -> SlotKey<72> {
    SlotKey::new(by_id(id, process, slot.nonce), slot.dup)
}

/// `process(32) ‖ hash(48)`.
pub fn dedupe(process: &Id, hash: &[u8; 48]) -> [u8; 80] {
    let mut key = [0u8; 80];
    key[..32].copy_from_slice(process);
    key[32..].copy_from_slice(hash);
    key
}

/// `process(32) ‖ item(32)`: the process whose rendering the override belongs to, and the
/// item (the Process item, or an era-M1 message) whose `data` it replaces.
pub fn data_override(process: &Id, item: &Id) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(process);
    key[32..].copy_from_slice(item);
    key
}

/// `sequence(8)`.
pub fn log(sequence: u64) -> [u8; 8] {
    sequence.to_be_bytes()
}

/// `sequence(8) ‖ slot(1)`.
pub fn outbox(sequence: u64, slot: u8) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&sequence.to_be_bytes());
    key[8] = slot;
    key
}

/// Reads a big-endian u64 at `offset`; `None` when the key is too short.
pub fn u64_at(key: &[u8], offset: usize) -> Option<u64> {
    let bytes = key.get(offset..offset + 8)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Reads a 32-byte id at `offset`.
pub fn id_at(key: &[u8], offset: usize) -> Option<Id> {
    key.get(offset..offset + 32)?.try_into().ok()
}

/// A standalone outbox row (an item queued again, whose bytes are in `items`):
/// `sequence(8) ‖ 2 ‖ item id(32)`, where `sequence` is the last log sequence when it was queued.
pub fn outbox_standalone(sequence: u64, id: &Id) -> [u8; 41] {
    let mut key = [0u8; 41];
    key[..9].copy_from_slice(&outbox(sequence, OUTBOX_SLOT_STANDALONE));
    key[9..].copy_from_slice(id);
    key
}

/// An outbox row that carries its item's bytes in its value (an item stored nowhere else,
/// the SU's Scheduler-Location record): `sequence(8) ‖ 3 ‖ item id(32)`.
pub fn outbox_carried(sequence: u64, id: &Id) -> [u8; 41] {
    let mut key = [0u8; 41];
    key[..9].copy_from_slice(&outbox(sequence, OUTBOX_SLOT_CARRIED));
    key[9..].copy_from_slice(id);
    key
}

/// Outbox slots: the entry's body, its Assignment, a standalone item, a carried item.
pub const OUTBOX_SLOT_BODY: u8 = 0;
pub const OUTBOX_SLOT_ASSIGNMENT: u8 = 1;
pub const OUTBOX_SLOT_STANDALONE: u8 = 2;
pub const OUTBOX_SLOT_CARRIED: u8 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn entry_keys_sort_by_process_then_nonce(a in any::<u64>(), b in any::<u64>()) {
            let process = [9u8; 32];
            prop_assert_eq!(entry(&process, a).cmp(&entry(&process, b)), a.cmp(&b));
        }

        #[test]
        fn slot_keys_sort_by_nonce_then_rank(
            a in any::<u64>(), da in any::<u16>(), b in any::<u64>(), db in any::<u16>()
        ) {
            let process = [9u8; 32];
            let (sa, sb) = (Slot { nonce: a, dup: da }, Slot { nonce: b, dup: db });
            let (ka, kb) = (entry_at(&process, sa), entry_at(&process, sb));
            prop_assert_eq!(ka.as_ref().cmp(kb.as_ref()), sa.cmp(&sb));
            prop_assert_eq!(decode_entry(ka.as_ref()), Some((process, sa)));
            let (ta, tb) = (by_time_at(&process, 5, sa), by_time_at(&process, 5, sb));
            prop_assert_eq!(ta.as_ref().cmp(tb.as_ref()), sa.cmp(&sb));
            let (ia, ib) = (by_id_at(&[1; 32], &process, sa), by_id_at(&[1; 32], &process, sb));
            prop_assert_eq!(ia.as_ref().cmp(ib.as_ref()), sa.cmp(&sb));
        }

        #[test]
        fn time_keys_sort_by_timestamp(a in any::<u64>(), b in any::<u64>(), n in any::<u64>()) {
            let process = [1u8; 32];
            prop_assert_eq!(by_time(&process, a, n).cmp(&by_time(&process, b, n)), a.cmp(&b));
        }
    }

    #[test]
    fn first_entries_keep_the_version_1_key() {
        let process = [3u8; 32];
        assert_eq!(
            entry_at(&process, Slot::nonce(7)).as_ref(),
            &entry(&process, 7)
        );
        assert_eq!(
            entry_at(&process, Slot { nonce: 7, dup: 1 }).as_ref().len(),
            42
        );
        assert_eq!(
            by_id_at(&[1; 32], &process, Slot { nonce: 7, dup: 1 })
                .as_ref()
                .len(),
            74
        );
    }

    #[test]
    fn decoders_do_not_panic_on_short_keys() {
        assert_eq!(u64_at(&[1, 2, 3], 0), None);
        assert_eq!(id_at(&[0; 31], 0), None);
        assert_eq!(u64_at(&entry(&[0; 32], 7), 32), Some(7));
        assert_eq!(decode_entry(&[0; 41]), None);
        assert_eq!(decode_entry(&[0; 12]), None);
        assert_eq!(dup_after(&[0; 3], 40), None);
    }
}
