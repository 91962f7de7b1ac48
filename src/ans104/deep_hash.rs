//! The Arweave deep hash (SHA-384 over a tree of blobs), as ANS-104 signs it.

use aws_lc_rs::digest::{Context, SHA384, digest};

/// A 48-byte deep-hash digest.
pub type Digest48 = [u8; 48];

fn sha384(parts: &[&[u8]]) -> Digest48 {
    let mut context = Context::new(&SHA384);
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; 48];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// `DH(blob)` = SHA384(SHA384("blob" ‖ len) ‖ SHA384(blob)).
pub fn blob(bytes: &[u8]) -> Digest48 {
    let tag = itoa_buffer(b"blob", bytes.len());
    let tag_hash = sha384(&[tag.as_slice()]);
    let mut body = [0u8; 48];
    body.copy_from_slice(digest(&SHA384, bytes).as_ref());
    sha384(&[&tag_hash, &body])
}

/// `DH(list of blobs)`: the accumulator chain over each child's blob hash.
pub fn list_of_blobs(children: &[&[u8]]) -> Digest48 {
    let tag = itoa_buffer(b"list", children.len());
    let mut acc = sha384(&[tag.as_slice()]);
    for child in children {
        let child_hash = blob(child);
        acc = sha384(&[&acc, &child_hash]);
    }
    acc
}

fn itoa_buffer(prefix: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 20);
    out.extend_from_slice(prefix);
    out.extend_from_slice(n.to_string().as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_is_hash_of_list0() {
        assert_eq!(list_of_blobs(&[]), sha384(&[b"list0"]));
    }

    #[test]
    fn blob_depends_on_length_and_content() {
        assert_ne!(blob(b""), blob(b"\0"));
        assert_ne!(blob(b"a"), blob(b"b"));
    }
}
