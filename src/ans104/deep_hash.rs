//! The Arweave deep hash (SHA-384 over a tree of blobs), as ANS-104 signs it.

use aws_lc_rs::digest::{Context, SHA384};

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
    let mut hasher = BlobHasher::new();
    hasher.update(bytes);
    hasher.finish()
}

/// `DH(blob)` of a blob that arrives in chunks (a download), without holding it: the
/// length enters the hash only at the end, so nothing needs to be known in advance.
pub struct BlobHasher {
    body: Context,
    len: u64,
}

impl Default for BlobHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl BlobHasher {
    pub fn new() -> Self {
        Self {
            body: Context::new(&SHA384),
            len: 0,
        }
    }

    /// Feeds the next chunk of the blob.
    pub fn update(&mut self, chunk: &[u8]) {
        self.body.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blob's deep hash.
    pub fn finish(self) -> Digest48 {
        let tag = itoa_buffer(b"blob", self.len);
        let tag_hash = sha384(&[tag.as_slice()]);
        let mut body = [0u8; 48];
        body.copy_from_slice(self.body.finish().as_ref());
        sha384(&[&tag_hash, &body])
    }
}

/// `DH(list of blobs)`: the accumulator chain over each child's blob hash.
pub fn list_of_blobs(children: &[&[u8]]) -> Digest48 {
    let hashes: Vec<Digest48> = children.iter().map(|child| blob(child)).collect();
    list_of_blob_hashes(&hashes)
}

/// `DH(list of blobs)` from the children's blob hashes (`blob` or `BlobHasher`).
pub fn list_of_blob_hashes(children: &[Digest48]) -> Digest48 {
    let tag = itoa_buffer(b"list", children.len() as u64);
    let mut acc = sha384(&[tag.as_slice()]);
    for child_hash in children {
        acc = sha384(&[&acc, child_hash]);
    }
    acc
}

fn itoa_buffer(prefix: &[u8], n: u64) -> Vec<u8> {
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
    fn chunked_blobs_hash_like_whole_ones() {
        let data: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8).collect();
        let mut hasher = BlobHasher::new();
        for chunk in data.chunks(4093) {
            hasher.update(chunk);
        }
        assert_eq!(hasher.len(), data.len() as u64);
        assert_eq!(hasher.finish(), blob(&data));
        assert_eq!(BlobHasher::new().finish(), blob(b""));
        let parts: [&[u8]; 3] = [b"a", b"", &data];
        let hashes = parts.map(blob);
        assert_eq!(list_of_blob_hashes(&hashes), list_of_blobs(&parts));
    }

    #[test]
    fn blob_depends_on_length_and_content() {
        assert_ne!(blob(b""), blob(b"\0"));
        assert_ne!(blob(b"a"), blob(b"b"));
    }
}
