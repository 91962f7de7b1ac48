//! The reference's signer-independent "deep hash" used to detect re-pushed messages.

use super::deep_hash::{self, Digest48};
use super::tags;

/// Which tag order the dedupe hash uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOrder {
    /// Tags sorted by name, then value (raw UTF-8 bytes): what new records store.
    Sorted,
    /// Tags in item order: what records made before ordered hashing hold.
    AsGiven,
}

/// The inputs of a dedupe hash: for posted items their own fields, for AOP-1 assignments the
/// gateway's view of the transaction.
pub struct DedupeInput<'a> {
    pub target: &'a [u8],
    pub anchor: &'a [u8],
    pub tags: &'a [(&'a str, &'a str)],
    pub data: &'a [u8],
}

/// The inputs of a dedupe hash whose data was already hashed as a blob
/// (`deep_hash::blob`, or `BlobHasher` over a download), so the data need not be held.
pub struct HashedDedupeInput<'a> {
    pub target: &'a [u8],
    pub anchor: &'a [u8],
    pub tags: &'a [(&'a str, &'a str)],
    pub data_hash: Digest48,
}

impl<'a> DedupeInput<'a> {
    fn hashed(&self) -> HashedDedupeInput<'a> {
        HashedDedupeInput {
            target: self.target,
            anchor: self.anchor,
            tags: self.tags,
            data_hash: deep_hash::blob(self.data),
        }
    }
}

/// The dedupe hash of a posted item, from its own fields.
pub fn item_dedupe_hash(item: &super::DataItem<'_>, order: TagOrder) -> Digest48 {
    let tags: Vec<(&str, &str)> = item.tags.iter().map(|tag| (tag.name, tag.value)).collect();
    let input = DedupeInput {
        target: item.target.unwrap_or(&[]),
        anchor: item.anchor.unwrap_or(&[]),
        tags: &tags,
        data: item.data,
    };
    dedupe_hash(&input, order)
}

/// Both dedupe hashes of a posted item, `(sorted, as given)`, hashing its data once.
pub fn item_dedupe_hashes(item: &super::DataItem<'_>) -> (Digest48, Digest48) {
    let tags: Vec<(&str, &str)> = item.tags.iter().map(|tag| (tag.name, tag.value)).collect();
    let input = DedupeInput {
        target: item.target.unwrap_or(&[]),
        anchor: item.anchor.unwrap_or(&[]),
        tags: &tags,
        data: item.data,
    }
    .hashed();
    (
        dedupe_hash_of_hashed(&input, TagOrder::Sorted),
        dedupe_hash_of_hashed(&input, TagOrder::AsGiven),
    )
}

/// `DH(["dataitem","1","1","",target,anchor,T,data])`, with `Pushed-For` tags dropped.
pub fn dedupe_hash(input: &DedupeInput<'_>, order: TagOrder) -> Digest48 {
    dedupe_hash_of_hashed(&input.hashed(), order)
}

/// `dedupe_hash` with the data's blob hash given.
pub fn dedupe_hash_of_hashed(input: &HashedDedupeInput<'_>, order: TagOrder) -> Digest48 {
    let mut kept: Vec<(&str, &str)> = input
        .tags
        .iter()
        .copied()
        .filter(|(name, _)| *name != "Pushed-For")
        .collect();
    if order == TagOrder::Sorted {
        kept.sort_by(|a, b| {
            a.0.as_bytes()
                .cmp(b.0.as_bytes())
                .then(a.1.as_bytes().cmp(b.1.as_bytes()))
        });
    }
    let raw_tags = if input.tags.is_empty() {
        Vec::new()
    } else {
        tags::encode_or_empty_array(&kept)
    };
    let fixed: [&[u8]; 7] = [
        b"dataitem",
        b"1",
        b"1",
        b"",
        input.target,
        input.anchor,
        &raw_tags,
    ];
    let mut children = fixed.map(deep_hash::blob).to_vec();
    children.push(input.data_hash);
    deep_hash::list_of_blob_hashes(&children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pushed_for_tags_encode_as_empty_array() {
        let with_pushed_for = [("Pushed-For", "x")];
        let input = DedupeInput {
            target: b"",
            anchor: b"",
            tags: &with_pushed_for,
            data: b"",
        };
        let no_tags = DedupeInput {
            target: b"",
            anchor: b"",
            tags: &[],
            data: b"",
        };
        assert_ne!(
            dedupe_hash(&input, TagOrder::Sorted),
            dedupe_hash(&no_tags, TagOrder::Sorted)
        );
    }

    #[test]
    fn a_hashed_data_blob_gives_the_same_hashes() {
        let tags = [("B", "1"), ("A", "2"), ("Pushed-For", "x")];
        let input = DedupeInput {
            target: b"t",
            anchor: b"a",
            tags: &tags,
            data: b"payload",
        };
        let hashed = HashedDedupeInput {
            target: b"t",
            anchor: b"a",
            tags: &tags,
            data_hash: deep_hash::blob(b"payload"),
        };
        for order in [TagOrder::Sorted, TagOrder::AsGiven] {
            assert_eq!(
                dedupe_hash(&input, order),
                dedupe_hash_of_hashed(&hashed, order)
            );
        }
    }

    #[test]
    fn sorted_ignores_order() {
        let a = [("B", "1"), ("A", "2")];
        let b = [("A", "2"), ("B", "1")];
        let ia = DedupeInput {
            target: b"t",
            anchor: b"",
            tags: &a,
            data: b"d",
        };
        let ib = DedupeInput {
            target: b"t",
            anchor: b"",
            tags: &b,
            data: b"d",
        };
        assert_eq!(
            dedupe_hash(&ia, TagOrder::Sorted),
            dedupe_hash(&ib, TagOrder::Sorted)
        );
        assert_ne!(
            dedupe_hash(&ia, TagOrder::AsGiven),
            dedupe_hash(&ib, TagOrder::AsGiven)
        );
    }
}
