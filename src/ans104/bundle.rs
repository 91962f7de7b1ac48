//! ANS-104 binary bundles: a header of sizes and ids, then the items back to back.

use super::item::{DataItem, ParseError, sha256};

/// Why bytes are not a well-formed bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle header is truncated")]
    Header,
    #[error("bundle sizes do not add up to the bundle length")]
    Sizes,
    #[error("bundle item {index} does not match its header id")]
    IdMismatch { index: usize },
    #[error("bundle item {index}: {source}")]
    Item { index: usize, source: ParseError },
}

/// A parsed bundle: the items in header order, and their ids (checked against the items).
#[derive(Debug, Clone)]
pub struct Bundle<'a> {
    pub items: Vec<DataItem<'a>>,
    /// `ids[i]` is `items[i].id()`, which parsing computed to check the header.
    pub ids: Vec<[u8; 32]>,
}

fn read_u256_as_u64(field: &[u8]) -> Option<u64> {
    let (low, high) = field.split_at(8);
    if high.iter().any(|&b| b != 0) {
        return None;
    }
    Some(u64::from_le_bytes(low.try_into().ok()?))
}

impl<'a> Bundle<'a> {
    /// Parses a bundle, checking that sizes add up and every header id matches its item.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BundleError> {
        let count = bytes
            .get(..32)
            .and_then(read_u256_as_u64)
            .ok_or(BundleError::Header)?;
        let count = usize::try_from(count).map_err(|_| BundleError::Header)?;
        let header_len = count
            .checked_mul(64)
            .and_then(|n| n.checked_add(32))
            .ok_or(BundleError::Header)?;
        let header = bytes.get(32..header_len).ok_or(BundleError::Header)?;
        let mut items = Vec::with_capacity(count);
        let mut ids = Vec::with_capacity(count);
        let mut offset = header_len;
        for (index, entry) in header.chunks_exact(64).enumerate() {
            let size = read_u256_as_u64(&entry[..32]).ok_or(BundleError::Header)?;
            let size = usize::try_from(size).map_err(|_| BundleError::Sizes)?;
            let end = offset.checked_add(size).ok_or(BundleError::Sizes)?;
            let item_bytes = bytes.get(offset..end).ok_or(BundleError::Sizes)?;
            let item = DataItem::parse(item_bytes)
                .map_err(|source| BundleError::Item { index, source })?;
            let id = sha256(item.signature);
            if id != entry[32..64] {
                return Err(BundleError::IdMismatch { index });
            }
            items.push(item);
            ids.push(id);
            offset = end;
        }
        if offset != bytes.len() {
            return Err(BundleError::Sizes);
        }
        Ok(Self { items, ids })
    }
}

/// Encodes items (raw bytes with their raw ids) as a bundle; 32-byte fields are a `u64le`
/// followed by 24 zero bytes, as the reference writes them.
pub fn encode_bundle(items: &[(&[u8], [u8; 32])]) -> Vec<u8> {
    let total: usize = items.iter().map(|(bytes, _)| bytes.len()).sum();
    let mut out = Vec::with_capacity(32 + 64 * items.len() + total);
    let push_u256 = |out: &mut Vec<u8>, n: u64| {
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&[0u8; 24]);
    };
    push_u256(&mut out, items.len() as u64);
    for (bytes, id) in items {
        push_u256(&mut out, bytes.len() as u64);
        out.extend_from_slice(id);
    }
    for (bytes, _) in items {
        out.extend_from_slice(bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ans104::item::{ItemDraft, SignatureType};

    fn item(seed: u8) -> Vec<u8> {
        ItemDraft {
            signature_type: SignatureType::ARWEAVE,
            owner: vec![seed; 512],
            target: None,
            anchor: None,
            tags: vec![],
            data: vec![seed],
        }
        .finish(&[seed; 512])
    }

    #[test]
    fn round_trips_and_checks_ids() {
        let a = item(1);
        let b = item(2);
        let ids = [sha256(&[1; 512]), sha256(&[2; 512])];
        let bytes = encode_bundle(&[(&a, ids[0]), (&b, ids[1])]);
        let bundle = Bundle::parse(&bytes).unwrap();
        assert_eq!(bundle.items.len(), 2);
        assert_eq!(bundle.items[1].raw(), &b[..]);

        let wrong = encode_bundle(&[(&a, ids[1])]);
        assert_eq!(
            Bundle::parse(&wrong).unwrap_err(),
            BundleError::IdMismatch { index: 0 }
        );
        for len in 0..bytes.len() {
            assert!(Bundle::parse(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn rejects_huge_counts_without_allocating() {
        let mut bytes = vec![0u8; 32];
        bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Bundle::parse(&bytes).unwrap_err(), BundleError::Header);
    }
}
