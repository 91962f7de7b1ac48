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

/// `DH(["dataitem","1","1","",target,anchor,T,data])`, with `Pushed-For` tags dropped.
pub fn dedupe_hash(input: &DedupeInput<'_>, order: TagOrder) -> Digest48 {
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
    deep_hash::list_of_blobs(&[
        b"dataitem",
        b"1",
        b"1",
        b"",
        input.target,
        input.anchor,
        &raw_tags,
        input.data,
    ])
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
