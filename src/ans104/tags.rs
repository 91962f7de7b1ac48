//! Avro encoding of ANS-104 tags: an array of `{name: string, value: string}` records.

use std::fmt;

/// One tag, borrowed from the item's raw tag bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

impl fmt::Debug for Tag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// Why a tag block did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("invalid tag encoding")]
    Malformed,
    #[error("invalid tag encoding")]
    CountMismatch { declared: u64, found: u64 },
    #[error("invalid tag encoding")]
    NotUtf8,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn long(&mut self) -> Result<i64, TagError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = *self.bytes.get(self.pos).ok_or(TagError::Malformed)?;
            self.pos += 1;
            if shift >= 64 {
                return Err(TagError::Malformed);
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let decoded = (value >> 1) as i64 ^ -((value & 1) as i64);
        Ok(decoded)
    }

    fn string(&mut self) -> Result<&'a str, TagError> {
        let len = usize::try_from(self.long()?).map_err(|_| TagError::Malformed)?;
        let end = self.pos.checked_add(len).ok_or(TagError::Malformed)?;
        let bytes = self.bytes.get(self.pos..end).ok_or(TagError::Malformed)?;
        self.pos = end;
        std::str::from_utf8(bytes).map_err(|_| TagError::NotUtf8)
    }
}

/// Decodes the raw tag bytes of an item, checking the declared count and that every byte is
/// consumed. Zero bytes mean no tags.
pub fn decode(bytes: &[u8], declared: u64) -> Result<Vec<Tag<'_>>, TagError> {
    if bytes.is_empty() {
        return if declared == 0 {
            Ok(Vec::new())
        } else {
            Err(TagError::CountMismatch { declared, found: 0 })
        };
    }
    // Every record takes at least two bytes, which bounds the allocation by the input.
    if declared > (bytes.len() / 2) as u64 {
        return Err(TagError::CountMismatch { declared, found: 0 });
    }
    let mut reader = Reader { bytes, pos: 0 };
    // Reserve for what new writes may hold; a longer (stored) list grows as it decodes, so
    // the allocation follows the tags actually read, never the count a header declares.
    let mut tags = Vec::with_capacity(declared.min(super::limits::MAX_TAGS) as usize);
    loop {
        let count = reader.long()?;
        if count == 0 {
            break;
        }
        if count < 0 {
            // A negative count is followed by the block's byte size, which we do not need.
            reader.long()?;
        }
        let n_records = count.unsigned_abs();
        if n_records > declared.saturating_sub(tags.len() as u64) {
            return Err(TagError::CountMismatch {
                declared,
                found: tags.len() as u64 + n_records,
            });
        }
        for _ in 0..n_records {
            let name = reader.string()?;
            let value = reader.string()?;
            tags.push(Tag { name, value });
        }
    }
    if reader.pos != bytes.len() {
        return Err(TagError::Malformed);
    }
    if tags.len() as u64 != declared {
        return Err(TagError::CountMismatch {
            declared,
            found: tags.len() as u64,
        });
    }
    Ok(tags)
}

fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Encodes tags the way arbundles and the reference do: one block, then the 0 terminator;
/// no bytes at all for an empty list.
pub fn encode<N: AsRef<[u8]>, V: AsRef<[u8]>>(tags: &[(N, V)]) -> Vec<u8> {
    let mut out = Vec::new();
    if tags.is_empty() {
        return out;
    }
    write_long(&mut out, tags.len() as i64);
    for (name, value) in tags {
        write_bytes(&mut out, name.as_ref());
        write_bytes(&mut out, value.as_ref());
    }
    out.push(0);
    out
}

/// Encodes an empty array as the single terminator byte (used by the dedupe hash).
pub fn encode_or_empty_array<N: AsRef<[u8]>, V: AsRef<[u8]>>(tags: &[(N, V)]) -> Vec<u8> {
    if tags.is_empty() {
        vec![0]
    } else {
        encode(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_spec_example() {
        let bytes = encode(&[("Type", "Process")]);
        assert_eq!(bytes, b"\x02\x08Type\x0eProcess\x00");
        let tags = decode(&bytes, 1).unwrap();
        assert_eq!(
            tags,
            vec![Tag {
                name: "Type",
                value: "Process"
            }]
        );
    }

    #[test]
    fn long_lengths_use_varints() {
        let value = "x".repeat(100);
        let bytes = encode(&[("a", value.as_str())]);
        assert_eq!(&bytes[3..5], &[0xc8, 0x01]);
        assert_eq!(decode(&bytes, 1).unwrap()[0].value, value);
    }

    #[test]
    fn accepts_negative_block_counts_and_several_blocks() {
        // block of -1 records with a byte size, then a block of 1, then the terminator
        let mut bytes = vec![0x01, 0x0c, 0x02, b'a', 0x02, b'b'];
        bytes.extend_from_slice(&[0x02, 0x02, b'c', 0x02, b'd', 0x00]);
        let tags = decode(&bytes, 2).unwrap();
        assert_eq!(
            tags[1],
            Tag {
                name: "c",
                value: "d"
            }
        );
    }

    #[test]
    fn rejects_count_mismatch_trailing_bytes_and_truncation() {
        let bytes = encode(&[("Type", "Process")]);
        assert!(decode(&bytes, 2).is_err());
        assert!(decode(&bytes, 0).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing, 1).is_err());
        assert!(decode(&bytes[..bytes.len() - 2], 1).is_err());
        assert_eq!(decode(&[0], 0).unwrap(), vec![]);
    }

    #[test]
    fn rejects_non_utf8_and_huge_varints() {
        assert_eq!(decode(b"\x02\x02\xff\x02a\x00", 1), Err(TagError::NotUtf8));
        assert!(decode(&[0xff; 12], 1).is_err());
    }
}
