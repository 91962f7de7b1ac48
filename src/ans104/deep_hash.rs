//! The Arweave deep hash (SHA-384 over a tree of blobs), as ANS-104 signs it.

use aws_lc_rs::digest::{Context, SHA384};
use std::sync::LazyLock;

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

/// Blob lengths below this have their `SHA384("blob" ‖ len)` computed once, at first use.
const CACHED_TAG_LENGTHS: usize = 1024;

/// `SHA384("blob" ‖ len)` of the lengths below `CACHED_TAG_LENGTHS` (48 KiB): most blobs of
/// a data item are short (its type, targets, anchors, tags), and on CPUs without SHA-512
/// instructions each of these costs a whole compression (BENCHMARKS.md, import).
static TAG_HASHES: LazyLock<Vec<Digest48>> = LazyLock::new(|| {
    (0..CACHED_TAG_LENGTHS as u64)
        .map(compute_tag_hash)
        .collect()
});

/// `DH` of the empty blob (an item without a target or an anchor).
static EMPTY_BLOB: LazyLock<Digest48> = LazyLock::new(|| BlobHasher::new().finish());

fn compute_tag_hash(len: u64) -> Digest48 {
    sha384(&[itoa_buffer(b"blob", len).as_slice()])
}

/// `SHA384("blob" ‖ len)`.
fn tag_hash(len: u64) -> Digest48 {
    match usize::try_from(len) {
        Ok(short) if short < CACHED_TAG_LENGTHS => TAG_HASHES[short],
        _ => compute_tag_hash(len),
    }
}

/// `DH(blob)` = SHA384(SHA384("blob" ‖ len) ‖ SHA384(blob)).
pub fn blob(bytes: &[u8]) -> Digest48 {
    if bytes.is_empty() {
        return *EMPTY_BLOB;
    }
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
        let tag_hash = tag_hash(self.len);
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
    let mut list = ListHasher::new(children.len());
    for child_hash in children {
        list.push_hash(child_hash);
    }
    list.finish()
}

/// `DH(list of blobs)` built child by child. A copy taken part way is the state of every list
/// that starts with the same children (what `item::signing_message` keeps per signer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHasher {
    acc: Digest48,
}

impl ListHasher {
    /// A list that will hold `len` children.
    pub fn new(len: usize) -> Self {
        Self {
            acc: sha384(&[itoa_buffer(b"list", len as u64).as_slice()]),
        }
    }

    /// Adds the next child by its blob hash.
    pub fn push_hash(&mut self, child_hash: &Digest48) {
        self.acc = sha384(&[&self.acc, child_hash]);
    }

    /// Adds the next child, a blob.
    pub fn push_blob(&mut self, child: &[u8]) {
        self.push_hash(&blob(child));
    }

    /// The list's deep hash (after all `len` children).
    pub fn finish(self) -> Digest48 {
        self.acc
    }
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
    fn cached_tag_hashes_match_computed_ones() {
        for len in [0, 1, 32, 512, CACHED_TAG_LENGTHS as u64 - 1] {
            assert_eq!(tag_hash(len), sha384(&[format!("blob{len}").as_bytes()]));
        }
        let long = CACHED_TAG_LENGTHS as u64;
        assert_eq!(tag_hash(long), sha384(&[format!("blob{long}").as_bytes()]));
        let uncached = sha384(&[&sha384(&[b"blob0"]), &sha384(&[b""])]);
        assert_eq!(blob(b""), uncached);
    }

    #[test]
    fn a_list_hasher_copied_part_way_goes_on_like_the_whole_list() {
        let parts: [&[u8]; 4] = [b"dataitem", b"1", b"", b"tail"];
        let mut prefix = ListHasher::new(parts.len());
        prefix.push_blob(parts[0]);
        prefix.push_blob(parts[1]);
        for _ in 0..2 {
            let mut list = prefix;
            list.push_blob(parts[2]);
            list.push_blob(parts[3]);
            assert_eq!(list.finish(), list_of_blobs(&parts));
        }
    }

    #[test]
    fn blob_depends_on_length_and_content() {
        assert_ne!(blob(b""), blob(b"\0"));
        assert_ne!(blob(b"a"), blob(b"b"));
    }
}
