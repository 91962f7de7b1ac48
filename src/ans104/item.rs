//! The ANS-104 data item: layout, parsing, encoding, id and owner address.

use super::deep_hash::{self, Digest48};
use super::limits::{self, LimitError};
use super::tags::{self, Tag, TagError};
use aws_lc_rs::digest::{SHA256, digest};
use std::cell::RefCell;

/// The signature scheme of an item (field 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureType(pub u16);

impl SignatureType {
    pub const ARWEAVE: Self = Self(1);
    pub const ED25519: Self = Self(2);
    pub const ETHEREUM: Self = Self(3);
    pub const SOLANA: Self = Self(4);

    /// `(signature length, owner length)` per type, as arbundles and the reference define them.
    pub fn lengths(self) -> Option<(usize, usize)> {
        match self.0 {
            1 => Some((512, 512)),
            2 | 4 | 5 => Some((64, 32)),
            3 => Some((65, 65)),
            6 => Some((2052, 1025)),
            7 => Some((65, 42)),
            _ => None,
        }
    }
}

/// Why bytes are not a data item. The display strings are the reference's reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Buffer too short for signature type")]
    TooShortForType,
    #[error("Unsupported signature type {0}")]
    UnknownSignatureType(u16),
    #[error("Buffer too short for signature and public key")]
    TooShortForKeys,
    #[error("target bytes error")]
    Target,
    #[error("anchor bytes error - {0}")]
    Anchor(u8),
    #[error("invalid tag encoding")]
    TagHeader,
    #[error("{0}")]
    Tags(#[from] TagError),
    /// The header declares more tags or tag bytes than ANS-104 allows (new writes only).
    #[error("{0}")]
    Limits(#[from] LimitError),
}

/// A parsed data item, borrowing every field from the bytes it was parsed from.
#[derive(Debug, Clone)]
pub struct DataItem<'a> {
    raw: &'a [u8],
    pub signature_type: SignatureType,
    pub signature: &'a [u8],
    pub owner: &'a [u8],
    pub target: Option<&'a [u8]>,
    pub anchor: Option<&'a [u8]>,
    pub tag_count: u64,
    pub raw_tags: &'a [u8],
    pub tags: Vec<Tag<'a>>,
    pub data: &'a [u8],
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, len: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(len)?;
    let slice = bytes.get(*pos..end)?;
    *pos = end;
    Some(slice)
}

fn read_u64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let slice = take(bytes, pos, 8)?;
    Some(u64::from_le_bytes(slice.try_into().ok()?))
}

fn optional_field<'a>(bytes: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, Option<u8>> {
    let flag = *take(bytes, pos, 1).ok_or(None)?.first().ok_or(None)?;
    match flag {
        0 => Ok(None),
        1 => take(bytes, pos, 32).map(Some).ok_or(None),
        other => Err(Some(other)),
    }
}

/// Which limits a parse applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagLimits {
    /// Stored history, bundles, imports: whatever the header declares.
    None,
    /// A new write: the ANS-104 counts, checked before any tag is decoded.
    Ans104,
}

/// The largest header before the tags: type, the longest signature and owner (type 6),
/// target, anchor and the two tag counts.
const MAX_HEADER_BYTES: usize = 2 + 2052 + 1025 + 33 + 33 + 16;

/// The tag count and tag byte length a body's first bytes declare, read without decoding
/// anything. `None` while `prefix` is too short to tell, or when it is not an item header
/// (the full parse reports why).
pub fn declared_tag_counts(prefix: &[u8]) -> Option<(u64, u64)> {
    let mut pos = 0;
    let type_bytes = take(prefix, &mut pos, 2)?;
    let signature_type = SignatureType(u16::from_le_bytes([type_bytes[0], type_bytes[1]]));
    let (sig_len, owner_len) = signature_type.lengths()?;
    take(prefix, &mut pos, sig_len.checked_add(owner_len)?)?;
    optional_field(prefix, &mut pos).ok()?;
    optional_field(prefix, &mut pos).ok()?;
    let tag_count = read_u64(prefix, &mut pos)?;
    let tag_len = read_u64(prefix, &mut pos)?;
    Some((tag_count, tag_len))
}

/// Whether `prefix` is long enough that `declared_tag_counts` has its final answer.
pub fn header_complete(prefix: &[u8]) -> bool {
    prefix.len() >= MAX_HEADER_BYTES || declared_tag_counts(prefix).is_some()
}

impl<'a> DataItem<'a> {
    /// Parses and bounds-checks every field. Does not verify the signature.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(bytes, TagLimits::None)
    }

    /// Parses a new write: like `parse`, but a header declaring more than 128 tags or more
    /// than 4096 tag bytes is refused before any tag is decoded, so the work and memory of
    /// a parse never follow what a client declares.
    pub fn parse_within_limits(bytes: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(bytes, TagLimits::Ans104)
    }

    fn parse_with(bytes: &'a [u8], limits: TagLimits) -> Result<Self, ParseError> {
        let mut pos = 0;
        let type_bytes = take(bytes, &mut pos, 2).ok_or(ParseError::TooShortForType)?;
        let signature_type = SignatureType(u16::from_le_bytes([type_bytes[0], type_bytes[1]]));
        let (sig_len, owner_len) = signature_type
            .lengths()
            .ok_or(ParseError::UnknownSignatureType(signature_type.0))?;
        let signature = take(bytes, &mut pos, sig_len).ok_or(ParseError::TooShortForKeys)?;
        let owner = take(bytes, &mut pos, owner_len).ok_or(ParseError::TooShortForKeys)?;
        let target = optional_field(bytes, &mut pos).map_err(|_| ParseError::Target)?;
        let anchor = optional_field(bytes, &mut pos)
            .map_err(|flag| ParseError::Anchor(flag.unwrap_or(0)))?;
        let tag_count = read_u64(bytes, &mut pos).ok_or(ParseError::TagHeader)?;
        let tag_len = read_u64(bytes, &mut pos).ok_or(ParseError::TagHeader)?;
        if limits == TagLimits::Ans104 {
            limits::check_header(tag_count, tag_len)?;
        }
        let tag_len = usize::try_from(tag_len).map_err(|_| ParseError::TagHeader)?;
        let raw_tags = take(bytes, &mut pos, tag_len).ok_or(ParseError::TagHeader)?;
        let tags = tags::decode(raw_tags, tag_count)?;
        let data = &bytes[pos..];
        Ok(Self {
            raw: bytes,
            signature_type,
            signature,
            owner,
            target,
            anchor,
            tag_count,
            raw_tags,
            tags,
            data,
        })
    }

    /// The bytes this item was parsed from.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// id = SHA256(signature), raw.
    pub fn id(&self) -> [u8; 32] {
        sha256(self.signature)
    }

    /// Owner address = SHA256(owner), raw.
    pub fn owner_address(&self) -> [u8; 32] {
        sha256(self.owner)
    }

    /// The deep hash that the signature covers.
    pub fn signing_message(&self) -> Digest48 {
        signing_message(
            self.signature_type,
            self.owner,
            self.target.unwrap_or(&[]),
            self.anchor.unwrap_or(&[]),
            self.raw_tags,
            self.data,
        )
    }

    /// The first tag with this exact name.
    pub fn tag(&self, name: &str) -> Option<&'a str> {
        self.tags
            .iter()
            .find(|tag| tag.name == name)
            .map(|tag| tag.value)
    }

    /// The first tag whose name is any of `names`, in item order.
    pub fn tag_any(&self, names: &[&str]) -> Option<&'a str> {
        self.tags
            .iter()
            .find(|tag| names.contains(&tag.name))
            .map(|tag| tag.value)
    }

    /// Serialises the item from its fields; byte-identical to the parsed input.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_fields(&Fields {
            signature_type: self.signature_type,
            signature: self.signature,
            owner: self.owner,
            target: self.target,
            anchor: self.anchor,
            tag_count: self.tag_count,
            raw_tags: self.raw_tags,
            data: self.data,
        })
    }
}

/// SHA-256 of a byte string.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// The ANS-104 signing message: the deep hash of the eight blobs.
pub fn signing_message(
    signature_type: SignatureType,
    owner: &[u8],
    target: &[u8],
    anchor: &[u8],
    raw_tags: &[u8],
    data: &[u8],
) -> Digest48 {
    let mut list = signer_prefix(signature_type, owner);
    for blob in [target, anchor, raw_tags, data] {
        list.push_blob(blob);
    }
    list.finish()
}

/// Signers whose chains a thread keeps (an owner is at most 1,025 bytes, so about 18 KiB);
/// all are dropped when a new one would pass this, whoever sends the items.
const SIGNERS_PER_THREAD: usize = 16;
/// The blobs of a signing message: "dataitem", "1", the type, the owner, target, anchor,
/// tags and data.
const SIGNING_BLOBS: usize = 8;

thread_local! {
    /// (type, owner, chain through the owner), searched in order, since it is this short.
    static SIGNER_PREFIXES: RefCell<Vec<(SignatureType, Vec<u8>, deep_hash::ListHasher)>> =
        const { RefCell::new(Vec::new()) };
}

/// The signing message's deep-hash chain through its first four blobs ("dataitem", "1", the
/// signature type, the owner), which every item of one signer shares. Each thread keeps the
/// chains of the signers it saw last: a schedule's signers are few (its SU, its clients),
/// and a 512-byte owner costs eight SHA-384 compressions to chain (BENCHMARKS.md, import).
fn signer_prefix(signature_type: SignatureType, owner: &[u8]) -> deep_hash::ListHasher {
    SIGNER_PREFIXES.with(|prefixes| {
        let mut prefixes = prefixes.borrow_mut();
        if let Some((_, _, prefix)) = prefixes
            .iter()
            .find(|(kept_type, kept_owner, _)| *kept_type == signature_type && kept_owner == owner)
        {
            return *prefix;
        }
        let mut prefix = deep_hash::ListHasher::new(SIGNING_BLOBS);
        prefix.push_blob(b"dataitem");
        prefix.push_blob(b"1");
        prefix.push_blob(signature_type.0.to_string().as_bytes());
        prefix.push_blob(owner);
        if prefixes.len() >= SIGNERS_PER_THREAD {
            prefixes.clear();
        }
        prefixes.push((signature_type, owner.to_vec(), prefix));
        prefix
    })
}

struct Fields<'a> {
    signature_type: SignatureType,
    signature: &'a [u8],
    owner: &'a [u8],
    target: Option<&'a [u8]>,
    anchor: Option<&'a [u8]>,
    tag_count: u64,
    raw_tags: &'a [u8],
    data: &'a [u8],
}

fn encode_fields(fields: &Fields<'_>) -> Vec<u8> {
    let len = 2
        + fields.signature.len()
        + fields.owner.len()
        + 2
        + fields.target.map_or(0, <[u8]>::len)
        + fields.anchor.map_or(0, <[u8]>::len)
        + 16
        + fields.raw_tags.len()
        + fields.data.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&fields.signature_type.0.to_le_bytes());
    out.extend_from_slice(fields.signature);
    out.extend_from_slice(fields.owner);
    for optional in [fields.target, fields.anchor] {
        match optional {
            Some(bytes) => {
                out.push(1);
                out.extend_from_slice(bytes);
            }
            None => out.push(0),
        }
    }
    out.extend_from_slice(&fields.tag_count.to_le_bytes());
    out.extend_from_slice(&(fields.raw_tags.len() as u64).to_le_bytes());
    out.extend_from_slice(fields.raw_tags);
    out.extend_from_slice(fields.data);
    out
}

/// An unsigned item being built by the SU: compute its signing message, sign, then finish.
#[derive(Debug, Clone)]
pub struct ItemDraft {
    pub signature_type: SignatureType,
    pub owner: Vec<u8>,
    pub target: Option<[u8; 32]>,
    pub anchor: Option<[u8; 32]>,
    pub tags: Vec<(String, String)>,
    pub data: Vec<u8>,
}

impl ItemDraft {
    fn raw_tags(&self) -> Vec<u8> {
        tags::encode(&self.tags)
    }

    /// The message to sign.
    pub fn signing_message(&self) -> Digest48 {
        signing_message(
            self.signature_type,
            &self.owner,
            self.target.as_ref().map_or(&[][..], |t| &t[..]),
            self.anchor.as_ref().map_or(&[][..], |a| &a[..]),
            &self.raw_tags(),
            &self.data,
        )
    }

    /// Signs the draft as an Ethereum (type 3) item with the secp256k1 key whose secret is
    /// `secret`, setting its signature type and owner (the uncompressed public key). For
    /// tests and tools: the SU itself signs only with its Arweave wallet.
    pub fn finish_ethereum(mut self, secret: &[u8; 32]) -> Vec<u8> {
        let key = k256::ecdsa::SigningKey::from_slice(secret)
            .expect("a test secret is a valid secp256k1 scalar");
        self.signature_type = SignatureType::ETHEREUM;
        self.owner = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let signature = super::verify::sign_ethereum(&key, &self.signing_message());
        self.finish(&signature)
    }

    /// Assembles the item with a placeholder signature unique to `seed`, for synthetic stores
    /// in tests and benchmarks: it parses and has a real id, but its signature never verifies.
    /// Its bytes are pseudorandom, as a real signature's are, so a store that compresses
    /// (Postgres's TOAST, say) treats it as it would a real one. Returns `(item bytes, raw id)`.
    pub fn finish_with_placeholder(&self, seed: u64) -> (Vec<u8>, [u8; 32]) {
        let length = self
            .signature_type
            .lengths()
            .map_or(512, |(signature, _)| signature);
        let mut signature = Vec::with_capacity(length + 32);
        let mut counter = 0u64;
        while signature.len() < length {
            let mut block = [0u8; 16];
            block[..8].copy_from_slice(&seed.to_be_bytes());
            block[8..].copy_from_slice(&counter.to_be_bytes());
            signature.extend_from_slice(&sha256(&block));
            counter += 1;
        }
        signature.truncate(length);
        (self.finish(&signature), sha256(&signature))
    }

    /// Assembles the signed item bytes.
    pub fn finish(&self, signature: &[u8]) -> Vec<u8> {
        let raw_tags = self.raw_tags();
        encode_fields(&Fields {
            signature_type: self.signature_type,
            signature,
            owner: &self.owner,
            target: self.target.as_ref().map(|t| &t[..]),
            anchor: self.anchor.as_ref().map(|a| &a[..]),
            tag_count: self.tags.len() as u64,
            raw_tags: &raw_tags,
            data: &self.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let draft = ItemDraft {
            signature_type: SignatureType::ARWEAVE,
            owner: vec![7; 512],
            target: Some([1; 32]),
            anchor: None,
            tags: vec![("Type".into(), "Message".into())],
            data: b"hello".to_vec(),
        };
        draft.finish(&[9; 512])
    }

    #[test]
    fn signing_messages_match_the_whole_deep_hash_whichever_signers_are_kept() {
        // More signers than a thread keeps, each seen twice, of two signature types.
        for round in 0..2 {
            for signer in 0..(2 * SIGNERS_PER_THREAD as u8 + 3) {
                let (signature_type, owner) = match signer % 2 {
                    0 => (SignatureType::ARWEAVE, vec![signer; 512]),
                    _ => (SignatureType::ETHEREUM, vec![signer; 65]),
                };
                let data = [round, signer];
                let whole = deep_hash::list_of_blobs(&[
                    b"dataitem",
                    b"1",
                    signature_type.0.to_string().as_bytes(),
                    &owner,
                    &[1; 32],
                    b"",
                    b"tags",
                    &data,
                ]);
                let message =
                    signing_message(signature_type, &owner, &[1; 32], b"", b"tags", &data);
                assert_eq!(message, whole, "signer {signer}, round {round}");
                let kept = SIGNER_PREFIXES.with(|prefixes| prefixes.borrow().len());
                assert!(kept <= SIGNERS_PER_THREAD, "{kept} signers kept");
            }
        }
    }

    #[test]
    fn placeholder_items_parse_with_distinct_ids_but_never_verify() {
        let draft = ItemDraft {
            signature_type: SignatureType::ARWEAVE,
            owner: vec![7; 512],
            target: None,
            anchor: None,
            tags: vec![],
            data: vec![],
        };
        let (first, first_id) = draft.finish_with_placeholder(1);
        let (_, second_id) = draft.finish_with_placeholder(2);
        assert_ne!(first_id, second_id);
        let item = DataItem::parse(&first).unwrap();
        assert_eq!(item.id(), first_id);
        assert!(crate::ans104::verify::verify(&item).is_err());
    }

    #[test]
    fn round_trips() {
        let bytes = sample();
        let item = DataItem::parse(&bytes).unwrap();
        assert_eq!(item.target, Some(&[1u8; 32][..]));
        assert_eq!(item.anchor, None);
        assert_eq!(item.tag("Type"), Some("Message"));
        assert_eq!(item.data, b"hello");
        assert_eq!(item.to_bytes(), bytes);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        let data_start = bytes.len() - 5;
        for len in 0..data_start {
            assert!(
                DataItem::parse(&bytes[..len]).is_err(),
                "prefix of {len} bytes parsed"
            );
        }
    }

    #[test]
    fn rejects_bad_presence_flags() {
        let mut bytes = sample();
        bytes[1026] = 2;
        assert_eq!(DataItem::parse(&bytes).unwrap_err(), ParseError::Target);
        let mut bytes = sample();
        bytes[1026 + 33] = 3;
        assert_eq!(DataItem::parse(&bytes).unwrap_err(), ParseError::Anchor(3));
    }

    proptest::proptest! {
        /// The CI-sized fuzz run: arbitrary bytes never panic the item or bundle parsers,
        /// and whatever parses re-serialises to the same bytes.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1400)) {
            if let Ok(item) = DataItem::parse(&bytes) {
                proptest::prop_assert_eq!(item.to_bytes(), bytes.clone());
            }
            let _ = crate::ans104::Bundle::parse(&bytes);
        }

        #[test]
        fn mutated_items_never_panic(index in 0usize..1200, value in proptest::prelude::any::<u8>()) {
            let mut bytes = sample();
            let index = index % bytes.len();
            bytes[index] = value;
            if let Ok(item) = DataItem::parse(&bytes) {
                let _ = crate::ans104::verify::verify(&item);
            }
        }
    }

    /// A header declaring millions of empty tags: `parse` would decode them, a new write is
    /// refused from the header alone.
    fn tag_bomb(n_tags: u64) -> Vec<u8> {
        let mut bytes = sample();
        let header_end = 2 + 512 + 512 + 33 + 1;
        bytes.truncate(header_end);
        bytes.extend_from_slice(&n_tags.to_le_bytes());
        let tag_bytes = encode_empty_tags(n_tags);
        bytes.extend_from_slice(&(tag_bytes.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&tag_bytes);
        bytes
    }

    fn encode_empty_tags(n_tags: u64) -> Vec<u8> {
        let mut out = Vec::new();
        // One block of n records (zigzag varint), each an empty name and an empty value.
        let mut z = n_tags << 1;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.resize(out.len() + 2 * n_tags as usize, 0);
        out.push(0);
        out
    }

    #[test]
    fn new_writes_are_refused_from_the_declared_counts() {
        let bomb = tag_bomb(200_000);
        assert_eq!(DataItem::parse(&bomb).unwrap().tags.len(), 200_000);
        assert_eq!(
            DataItem::parse_within_limits(&bomb).unwrap_err(),
            ParseError::Limits(LimitError::TooManyTags(200_000))
        );
        assert_eq!(declared_tag_counts(&bomb[..1100]), Some((200_000, 400_004)));
        assert!(header_complete(&bomb[..1100]));
        assert_eq!(declared_tag_counts(&bomb[..1000]), None);
        assert!(!header_complete(&bomb[..1000]));
        let mut lying = tag_bomb(3);
        let count_at = 2 + 512 + 512 + 33 + 1 + 8;
        lying[count_at..count_at + 8].copy_from_slice(&10_000u64.to_le_bytes());
        assert_eq!(
            DataItem::parse_within_limits(&lying).unwrap_err(),
            ParseError::Limits(LimitError::TagBytes(10_000))
        );
        let fine = sample();
        assert_eq!(DataItem::parse_within_limits(&fine).unwrap().tags.len(), 1);
    }

    #[test]
    fn rejects_unknown_signature_type() {
        let mut bytes = sample();
        bytes[0] = 99;
        assert_eq!(
            DataItem::parse(&bytes).unwrap_err(),
            ParseError::UnknownSignatureType(99)
        );
    }
}
