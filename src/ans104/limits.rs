//! The ANS-104 limits on tags (DECISIONS 5): at most 128 tags, at most 4096 bytes of encoded
//! tags, non-empty names of at most 1024 bytes, values of at most 3072 bytes. New writes and
//! the SU's own Assignments obey them; stored history is read without them.

/// At most this many tags.
pub const MAX_TAGS: u64 = 128;
/// At most this many bytes of Avro-encoded tags (the item's tag-bytes field).
pub const MAX_TAG_BYTES: u64 = 4096;
/// A tag name takes at most this many bytes.
pub const MAX_TAG_NAME: usize = 1024;
/// A tag value takes at most this many bytes.
pub const MAX_TAG_VALUE: usize = 3072;

/// The first limit a tag list breaks; the display strings are what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("Too many tags: {0} (at most {max})", max = MAX_TAGS)]
    TooManyTags(u64),
    #[error("Tags take {0} bytes (at most {max})", max = MAX_TAG_BYTES)]
    TagBytes(u64),
    #[error("Tag names must not be empty")]
    EmptyName,
    #[error("Tag name longer than {max} bytes", max = MAX_TAG_NAME)]
    LongName,
    #[error("Tag {0} has a value longer than {max} bytes", max = MAX_TAG_VALUE)]
    LongValue(String),
}

/// Checks the two counts an item's header declares, before any tag is decoded.
pub fn check_header(tag_count: u64, tag_bytes: u64) -> Result<(), LimitError> {
    if tag_count > MAX_TAGS {
        return Err(LimitError::TooManyTags(tag_count));
    }
    if tag_bytes > MAX_TAG_BYTES {
        return Err(LimitError::TagBytes(tag_bytes));
    }
    Ok(())
}

/// Checks each decoded tag's name and value (the counts are `check_header`'s job).
pub fn check_tags<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), LimitError> {
    for (name, value) in tags {
        if name.is_empty() {
            return Err(LimitError::EmptyName);
        }
        if name.len() > MAX_TAG_NAME {
            return Err(LimitError::LongName);
        }
        if value.len() > MAX_TAG_VALUE {
            return Err(LimitError::LongValue(name.to_string()));
        }
    }
    Ok(())
}

/// Checks a tag list the SU is about to sign: counts, encoded size, names and values.
pub fn check_draft_tags<N: AsRef<str>, V: AsRef<str>>(tags: &[(N, V)]) -> Result<(), LimitError> {
    let bytes: Vec<(&[u8], &[u8])> = tags
        .iter()
        .map(|(name, value)| (name.as_ref().as_bytes(), value.as_ref().as_bytes()))
        .collect();
    let encoded = super::tags::encode(&bytes);
    check_header(tags.len() as u64, encoded.len() as u64)?;
    check_tags(
        tags.iter()
            .map(|(name, value)| (name.as_ref(), value.as_ref())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_counts_are_checked_against_both_limits() {
        assert_eq!(check_header(128, 4096), Ok(()));
        assert_eq!(check_header(129, 10), Err(LimitError::TooManyTags(129)));
        assert_eq!(
            check_header(5_000_000, 10 << 20),
            Err(LimitError::TooManyTags(5_000_000))
        );
        assert_eq!(check_header(1, 4097), Err(LimitError::TagBytes(4097)));
        assert_eq!(
            LimitError::TooManyTags(129).to_string(),
            "Too many tags: 129 (at most 128)"
        );
        assert_eq!(
            LimitError::TagBytes(4097).to_string(),
            "Tags take 4097 bytes (at most 4096)"
        );
    }

    #[test]
    fn names_and_values_are_checked() {
        let long_name = "n".repeat(1025);
        let long_value = "v".repeat(3073);
        assert_eq!(check_tags([("a", "")]), Ok(()));
        assert_eq!(check_tags([("", "x")]), Err(LimitError::EmptyName));
        assert_eq!(
            check_tags([(long_name.as_str(), "x")]),
            Err(LimitError::LongName)
        );
        assert_eq!(
            check_tags([("a", long_value.as_str())]),
            Err(LimitError::LongValue("a".into()))
        );
    }

    #[test]
    fn drafts_are_measured_as_encoded() {
        let many: Vec<(String, String)> = (0..129)
            .map(|n| ("Exclude".into(), n.to_string()))
            .collect();
        assert_eq!(check_draft_tags(&many), Err(LimitError::TooManyTags(129)));
        let big: Vec<(String, String)> = (0..2)
            .map(|_| ("Exclude".to_string(), "x".repeat(2100)))
            .collect();
        assert!(matches!(
            check_draft_tags(&big),
            Err(LimitError::TagBytes(_))
        ));
        assert_eq!(check_draft_tags(&[("Exclude", "")]), Ok(()));
    }
}
