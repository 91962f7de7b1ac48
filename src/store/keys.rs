//! Key codecs: fixed-width binary keys, numbers big-endian so byte order is numeric order.
#![deny(clippy::little_endian_bytes)]

use crate::domain::Id;

/// `process(32) ‖ nonce(8)`.
pub fn entry(process: &Id, nonce: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(process);
    key[32..].copy_from_slice(&nonce.to_be_bytes());
    key
}

/// `process(32) ‖ timestamp(8) ‖ nonce(8)`.
pub fn by_time(process: &Id, timestamp: u64, nonce: u64) -> [u8; 48] {
    let mut key = [0u8; 48];
    key[..32].copy_from_slice(process);
    key[32..40].copy_from_slice(&timestamp.to_be_bytes());
    key[40..].copy_from_slice(&nonce.to_be_bytes());
    key
}

/// `id(32) ‖ process(32) ‖ nonce(8)`.
pub fn by_id(id: &Id, process: &Id, nonce: u64) -> [u8; 72] {
    let mut key = [0u8; 72];
    key[..32].copy_from_slice(id);
    key[32..64].copy_from_slice(process);
    key[64..].copy_from_slice(&nonce.to_be_bytes());
    key
}

/// `process(32) ‖ hash(48)`.
pub fn dedupe(process: &Id, hash: &[u8; 48]) -> [u8; 80] {
    let mut key = [0u8; 80];
    key[..32].copy_from_slice(process);
    key[32..].copy_from_slice(hash);
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
        fn time_keys_sort_by_timestamp(a in any::<u64>(), b in any::<u64>(), n in any::<u64>()) {
            let process = [1u8; 32];
            prop_assert_eq!(by_time(&process, a, n).cmp(&by_time(&process, b, n)), a.cmp(&b));
        }
    }

    #[test]
    fn decoders_do_not_panic_on_short_keys() {
        assert_eq!(u64_at(&[1, 2, 3], 0), None);
        assert_eq!(id_at(&[0; 31], 0), None);
        assert_eq!(u64_at(&entry(&[0; 32], 7), 32), Some(7));
    }
}
