//! Value codecs of the entry and process records (fixed width, big-endian).
//! Layout version 2; version-1 values (113-byte entries) still decode, with the defaults they
//! had (standard style, scheduled here, no dedupe hashes).
#![deny(clippy::little_endian_bytes)]

use crate::domain::Id;

/// What a schedule entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Nonce 0 of an AOP-6 process: the Assignment plus the Process item.
    Process = 0,
    /// An Assignment plus a Message item.
    Message = 1,
    /// An Assignment of an existing transaction, without a body.
    AssignmentOnly = 2,
}

impl EntryKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Process),
            1 => Some(Self::Message),
            2 => Some(Self::AssignmentOnly),
            _ => None,
        }
    }

    /// Whether the entry carries a client item (message or process).
    pub fn has_body(self) -> bool {
        !matches!(self, Self::AssignmentOnly)
    }
}

/// How the entry's `assignment` half is rendered (PROTOCOL 1.6.3 and 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenderStyle {
    /// Eras M2–M4 and P2: an SU Assignment item; `show-anchor` applies.
    #[default]
    Standard = 0,
    /// Era M1: the reference's wrapper item carries the schedule tags and plays the
    /// assignment (`assignment_id` names the wrapper); rendered as PROTOCOL 5.3.3 says.
    LegacyWrapper = 1,
}

impl RenderStyle {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Standard),
            1 => Some(Self::LegacyWrapper),
            _ => None,
        }
    }
}

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Scheduled by this SU (or by the primary it replicates): gap-free, chain-linked.
    #[default]
    Scheduled = 0,
    /// Imported history of a reference SU: kept as recorded, legacy anomalies included.
    Imported = 1,
}

/// One schedule entry's fixed head: `kind(1) ‖ timestamp(8) ‖ sequence(8) ‖ assignment(32) ‖
/// message(32) ‖ hash_chain(32) ‖ style(1) ‖ origin(1)`. `message` is the body's id, or the
/// assigned transaction. The stored value appends the entry's dedupe hashes (`StoredEntry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRecord {
    pub kind: EntryKind,
    pub timestamp: u64,
    pub sequence: u64,
    pub assignment_id: Id,
    pub message_id: Id,
    pub hash_chain: [u8; 32],
    pub style: RenderStyle,
    pub origin: Origin,
}

/// The length of a version-1 entry value (no style, origin or dedupe hashes).
const V1_ENTRY_LEN: usize = 113;
/// The fixed head of a version-2 entry value, before the dedupe count.
const HEAD_LEN: usize = 115;

impl EntryRecord {
    fn encode_head(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.assignment_id);
        out.extend_from_slice(&self.message_id);
        out.extend_from_slice(&self.hash_chain);
        out.push(self.style as u8);
        out.push(self.origin as u8);
    }

    /// Decodes the head of a version-1 or version-2 entry value, ignoring the dedupe hashes.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (style, origin) = match bytes.len() {
            V1_ENTRY_LEN => (RenderStyle::Standard, Origin::Scheduled),
            len if len > HEAD_LEN && len == HEAD_LEN + 1 + 48 * usize::from(bytes[HEAD_LEN]) => (
                RenderStyle::from_byte(bytes[113])?,
                match bytes[114] {
                    0 => Origin::Scheduled,
                    1 => Origin::Imported,
                    _ => return None,
                },
            ),
            _ => return None,
        };
        Some(Self {
            kind: EntryKind::from_byte(bytes[0])?,
            timestamp: u64::from_be_bytes(bytes[1..9].try_into().ok()?),
            sequence: u64::from_be_bytes(bytes[9..17].try_into().ok()?),
            assignment_id: bytes[17..49].try_into().ok()?,
            message_id: bytes[49..81].try_into().ok()?,
            hash_chain: bytes[81..113].try_into().ok()?,
            style,
            origin,
        })
    }
}

/// An ordered dedupe hash (SHA-384).
pub type DedupeHash = [u8; 48];

/// A whole entry value: the head plus the dedupe hashes the entry recorded, so every row of
/// the entry can be rebuilt from the entry alone. Version 2: `head(115) ‖ count(1) ‖
/// hash(48) × count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub record: EntryRecord,
    pub dedupe_hashes: Vec<DedupeHash>,
}

impl StoredEntry {
    /// At most this many dedupe hashes per entry (the count is one byte).
    pub const MAX_DEDUPE_HASHES: usize = 255;

    /// Encodes the value. More than `MAX_DEDUPE_HASHES` hashes cannot be listed; no writer
    /// produces them (new writes record at most one, the upgrade spreads hashes one per
    /// entry), and `build_batch` refuses such an entry rather than drop any.
    pub fn encode(&self) -> Vec<u8> {
        let count = self.dedupe_hashes.len().min(Self::MAX_DEDUPE_HASHES);
        let mut out = Vec::with_capacity(HEAD_LEN + 1 + 48 * count);
        self.record.encode_head(&mut out);
        out.push(count as u8);
        for hash in &self.dedupe_hashes[..count] {
            out.extend_from_slice(hash);
        }
        out
    }

    /// Decodes a version-1 (113 bytes, no hashes) or version-2 value.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let record = EntryRecord::decode(bytes)?;
        if bytes.len() == V1_ENTRY_LEN {
            return Some(Self {
                record,
                dedupe_hashes: Vec::new(),
            });
        }
        let count = usize::from(bytes[HEAD_LEN]);
        let hashes = &bytes[HEAD_LEN + 1..];
        if hashes.len() != 48 * count {
            return None;
        }
        Some(Self {
            record,
            dedupe_hashes: hashes
                .chunks_exact(48)
                .map(|chunk| chunk.try_into().expect("48-byte chunk"))
                .collect(),
        })
    }

    /// Whether the value is in the version-1 layout (the upgrade rewrites those).
    pub fn is_v1(bytes: &[u8]) -> bool {
        bytes.len() == V1_ENTRY_LEN
    }
}

/// How an id relates to the entry a `by_id` key points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRole {
    /// The id of the entry's body (message or process item).
    Body = 0,
    /// The transaction an assignment-only entry assigns.
    Assigned = 1,
    /// The entry's Assignment.
    Assignment = 2,
}

/// The `by_id` value: `role(1) ‖ timestamp(8)`.
pub fn encode_id_value(role: IdRole, timestamp: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = role as u8;
    out[1..].copy_from_slice(&timestamp.to_be_bytes());
    out
}

pub fn decode_id_value(bytes: &[u8]) -> Option<(IdRole, u64)> {
    let role = match bytes.first()? {
        0 => IdRole::Body,
        1 => IdRole::Assigned,
        2 => IdRole::Assignment,
        _ => return None,
    };
    Some((role, u64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?)))
}

/// The `data` value the reference's Postgres store kept in a JSON column for an old row, where
/// it differs from what the item's bytes render (PROTOCOL 9.2, guidance 2; DECISIONS 2): the
/// reference served that value, so `su` serves it too. A `data_overrides` value: `0` for JSON
/// `null`, or `1` followed by the string's UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOverride {
    Null,
    Text(String),
}

impl DataOverride {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Null => vec![0],
            Self::Text(text) => {
                let mut out = Vec::with_capacity(1 + text.len());
                out.push(1);
                out.extend_from_slice(text.as_bytes());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (0, []) => Some(Self::Null),
            (1, text) => Some(Self::Text(String::from_utf8(text.to_vec()).ok()?)),
            _ => None,
        }
    }

    /// The bytes it renders beyond the item's own (for bounding a rendering).
    pub fn extra_bytes(&self) -> usize {
        match self {
            Self::Null => 0,
            Self::Text(text) => text.len(),
        }
    }
}

/// What kind of process a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    /// AOP-6: its nonce-0 entry holds its Assignment and the Process item.
    Aop6,
    /// Legacy (era P1, `ENABLE_PROCESS_ASSIGNMENT` off): the Process item has no nonce and no
    /// assignment; the reference's wrapper item (Block-Height and Timestamp tags) is kept.
    Legacy { wrapper_id: Id },
}

/// A process record: `kind(1) ‖ timestamp(8)`, plus `wrapper id(32)` for a legacy process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRecord {
    pub kind: ProcessKind,
    pub timestamp: u64,
}

impl ProcessRecord {
    pub fn aop6(timestamp: u64) -> Self {
        Self {
            kind: ProcessKind::Aop6,
            timestamp,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(41);
        match self.kind {
            ProcessKind::Aop6 => {
                out.push(0);
                out.extend_from_slice(&self.timestamp.to_be_bytes());
            }
            ProcessKind::Legacy { wrapper_id } => {
                out.push(1);
                out.extend_from_slice(&self.timestamp.to_be_bytes());
                out.extend_from_slice(&wrapper_id);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let timestamp = u64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?);
        let kind = match (bytes.first()?, bytes.len()) {
            (0, 9) => ProcessKind::Aop6,
            (1, 41) => ProcessKind::Legacy {
                wrapper_id: bytes[9..41].try_into().ok()?,
            },
            _ => return None,
        };
        Some(Self { kind, timestamp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> EntryRecord {
        EntryRecord {
            kind: EntryKind::AssignmentOnly,
            timestamp: 42,
            sequence: 7,
            assignment_id: [1; 32],
            message_id: [2; 32],
            hash_chain: [3; 32],
            style: RenderStyle::LegacyWrapper,
            origin: Origin::Imported,
        }
    }

    #[test]
    fn entry_round_trip_and_garbage() {
        for hashes in [vec![], vec![[7u8; 48]], vec![[8u8; 48], [9u8; 48]]] {
            let stored = StoredEntry {
                record: record(),
                dedupe_hashes: hashes,
            };
            let bytes = stored.encode();
            assert_eq!(bytes.len(), 116 + 48 * stored.dedupe_hashes.len());
            assert_eq!(StoredEntry::decode(&bytes), Some(stored.clone()));
            assert_eq!(EntryRecord::decode(&bytes), Some(record()));
            assert!(!StoredEntry::is_v1(&bytes));
            // A count that disagrees with the length is corrupt, for the head alone too.
            assert_eq!(StoredEntry::decode(&bytes[..bytes.len() - 1]), None);
            if !stored.dedupe_hashes.is_empty() {
                assert_eq!(EntryRecord::decode(&bytes[..bytes.len() - 48]), None);
            }
        }
        assert_eq!(EntryRecord::decode(&[9; 113]), None);
        assert_eq!(EntryRecord::decode(&[0; 5]), None);
        assert_eq!(EntryRecord::decode(&[0; 114]), None);
        assert_eq!(EntryRecord::decode(&[0; 115]), None);
        assert_eq!(
            decode_id_value(&encode_id_value(IdRole::Assigned, 5)),
            Some((IdRole::Assigned, 5))
        );
    }

    #[test]
    fn version_1_entries_decode_with_their_defaults() {
        // The version-1 layout: the first 113 bytes of the head, nothing after.
        let mut v1 = Vec::new();
        let scheduled = EntryRecord {
            style: RenderStyle::Standard,
            origin: Origin::Scheduled,
            kind: EntryKind::Message,
            ..record()
        };
        scheduled.encode_head(&mut v1);
        v1.truncate(113);
        assert!(StoredEntry::is_v1(&v1));
        assert_eq!(
            StoredEntry::decode(&v1),
            Some(StoredEntry {
                record: scheduled,
                dedupe_hashes: vec![]
            })
        );
    }

    #[test]
    fn process_records_of_both_kinds() {
        let aop6 = ProcessRecord::aop6(5);
        assert_eq!(aop6.encode().len(), 9);
        assert_eq!(ProcessRecord::decode(&aop6.encode()), Some(aop6));
        let legacy = ProcessRecord {
            kind: ProcessKind::Legacy {
                wrapper_id: [4; 32],
            },
            timestamp: 6,
        };
        assert_eq!(legacy.encode().len(), 41);
        assert_eq!(ProcessRecord::decode(&legacy.encode()), Some(legacy));
        assert_eq!(ProcessRecord::decode(&[1; 9]), None);
        assert_eq!(ProcessRecord::decode(&[0; 41]), None);
        assert_eq!(ProcessRecord::decode(&[2; 9]), None);
    }
}
