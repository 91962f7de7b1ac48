//! Value codecs of the entry and process records (fixed width, big-endian).
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

/// One schedule entry: `kind(1) ‖ timestamp(8) ‖ sequence(8) ‖ assignment(32) ‖ message(32) ‖
/// hash_chain(32)`, 113 bytes. `message` is the body's id, or the assigned transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRecord {
    pub kind: EntryKind,
    pub timestamp: u64,
    pub sequence: u64,
    pub assignment_id: Id,
    pub message_id: Id,
    pub hash_chain: [u8; 32],
}

impl EntryRecord {
    pub const LEN: usize = 113;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.kind as u8;
        out[1..9].copy_from_slice(&self.timestamp.to_be_bytes());
        out[9..17].copy_from_slice(&self.sequence.to_be_bytes());
        out[17..49].copy_from_slice(&self.assignment_id);
        out[49..81].copy_from_slice(&self.message_id);
        out[81..113].copy_from_slice(&self.hash_chain);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN {
            return None;
        }
        Some(Self {
            kind: EntryKind::from_byte(bytes[0])?,
            timestamp: u64::from_be_bytes(bytes[1..9].try_into().ok()?),
            sequence: u64::from_be_bytes(bytes[9..17].try_into().ok()?),
            assignment_id: bytes[17..49].try_into().ok()?,
            message_id: bytes[49..81].try_into().ok()?,
            hash_chain: bytes[81..113].try_into().ok()?,
        })
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

/// A process record: `kind(1) ‖ timestamp(8)`. Kind 0 = AOP-6 (its nonce-0 entry holds the
/// process item and assignment). Other kinds are reserved for imported legacy processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRecord {
    pub timestamp: u64,
}

impl ProcessRecord {
    pub fn encode(&self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[1..].copy_from_slice(&self.timestamp.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 9 || bytes[0] != 0 {
            return None;
        }
        Some(Self {
            timestamp: u64::from_be_bytes(bytes[1..].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_garbage() {
        let record = EntryRecord {
            kind: EntryKind::AssignmentOnly,
            timestamp: 42,
            sequence: 7,
            assignment_id: [1; 32],
            message_id: [2; 32],
            hash_chain: [3; 32],
        };
        assert_eq!(EntryRecord::decode(&record.encode()), Some(record));
        assert_eq!(EntryRecord::decode(&[9; 113]), None);
        assert_eq!(EntryRecord::decode(&[0; 5]), None);
        assert_eq!(
            decode_id_value(&encode_id_value(IdRole::Assigned, 5)),
            Some((IdRole::Assigned, 5))
        );
    }
}
