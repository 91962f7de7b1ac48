//! The importer's checkpoint, `meta/import_cursor` (schema/rocksdb.md): where the source is
//! read up to, the next log sequence, the link state of the process in progress and the
//! running totals, written in the same batch as the rows it covers.
#![deny(clippy::little_endian_bytes)]

use crate::domain::Id;
use crate::store::keys::Slot;

/// The layout version of the cursor value.
const VERSION: u8 = 1;

/// A position in a source's order of one process's entries: (nonce, timestamp, tie-break).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowKey {
    pub nonce: i64,
    pub timestamp: i64,
    /// The source's own tie-break (Postgres `row_id`).
    pub row: i64,
}

/// The last entry written of a process: what the next one links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub slot: Slot,
    pub assignment_id: Id,
    pub hash_chain: [u8; 32],
    pub timestamp: u64,
}

/// How far a process got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Its process row is written; its entries after `after` are not.
    Partial {
        after: Option<RowKey>,
        link: Option<Link>,
    },
    /// Everything of it is written.
    Complete,
}

/// Running totals, kept across resumed runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub processes: u64,
    pub legacy_processes: u64,
    pub entries: u64,
    pub bytes: u64,
    pub signatures: u64,
    /// Entries that do not verify (not imported).
    pub failures: u64,
    /// Duplicate or missing nonces, broken links in imported history (DECISIONS 9).
    pub anomalies: u64,
    /// Columns that disagree with the bytes.
    pub mismatches: u64,
    /// Assignment-only entries without a dedupe hash.
    pub uncovered: u64,
}

impl Totals {
    fn fields(&mut self) -> [&mut u64; 9] {
        [
            &mut self.processes,
            &mut self.legacy_processes,
            &mut self.entries,
            &mut self.bytes,
            &mut self.signatures,
            &mut self.failures,
            &mut self.anomalies,
            &mut self.mismatches,
            &mut self.uncovered,
        ]
    }
}

/// The whole checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The source kind it belongs to (a cursor of another source is refused).
    pub source: u8,
    pub done: bool,
    pub next_sequence: u64,
    /// The process in progress or last completed, with how far it got.
    pub process: Option<(Id, Position)>,
    pub totals: Totals,
    /// The newest SU signature seen: its assignment's timestamp and the signer's address.
    pub signer: Option<(u64, Id)>,
}

impl Cursor {
    pub fn new(source: u8, next_sequence: u64) -> Self {
        Self {
            source,
            done: false,
            next_sequence,
            process: None,
            totals: Totals::default(),
            signer: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, self.source, u8::from(self.done)];
        out.extend_from_slice(&self.next_sequence.to_be_bytes());
        match &self.process {
            None => out.push(0),
            Some((process, Position::Complete)) => {
                out.push(1);
                out.extend_from_slice(process);
            }
            Some((process, Position::Partial { after, link })) => {
                out.push(2);
                out.extend_from_slice(process);
                match after {
                    None => out.push(0),
                    Some(key) => {
                        out.push(1);
                        for value in [key.nonce, key.timestamp, key.row] {
                            out.extend_from_slice(&value.to_be_bytes());
                        }
                    }
                }
                match link {
                    None => out.push(0),
                    Some(link) => {
                        out.push(1);
                        out.extend_from_slice(&link.slot.nonce.to_be_bytes());
                        out.extend_from_slice(&link.slot.dup.to_be_bytes());
                        out.extend_from_slice(&link.assignment_id);
                        out.extend_from_slice(&link.hash_chain);
                        out.extend_from_slice(&link.timestamp.to_be_bytes());
                    }
                }
            }
        }
        let mut totals = self.totals;
        for value in totals.fields() {
            out.extend_from_slice(&value.to_be_bytes());
        }
        match &self.signer {
            None => out.push(0),
            Some((timestamp, address)) => {
                out.push(1);
                out.extend_from_slice(&timestamp.to_be_bytes());
                out.extend_from_slice(address);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.u8()? != VERSION {
            return None;
        }
        let source = reader.u8()?;
        let done = reader.u8()? == 1;
        let next_sequence = reader.u64()?;
        let process = match reader.u8()? {
            0 => None,
            1 => Some((reader.id()?, Position::Complete)),
            2 => {
                let process = reader.id()?;
                let after = match reader.u8()? {
                    0 => None,
                    _ => Some(RowKey {
                        nonce: reader.u64()? as i64,
                        timestamp: reader.u64()? as i64,
                        row: reader.u64()? as i64,
                    }),
                };
                let link = match reader.u8()? {
                    0 => None,
                    _ => Some(Link {
                        slot: Slot {
                            nonce: reader.u64()?,
                            dup: u16::from_be_bytes(reader.take(2)?.try_into().ok()?),
                        },
                        assignment_id: reader.id()?,
                        hash_chain: reader.id()?,
                        timestamp: reader.u64()?,
                    }),
                };
                Some((process, Position::Partial { after, link }))
            }
            _ => return None,
        };
        let mut totals = Totals::default();
        for value in totals.fields() {
            *value = reader.u64()?;
        }
        let signer = match reader.u8()? {
            0 => None,
            _ => Some((reader.u64()?, reader.id()?)),
        };
        (reader.at == bytes.len()).then_some(Self {
            source,
            done,
            next_sequence,
            process,
            totals,
            signer,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn id(&mut self) -> Option<Id> {
        self.take(32)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_round_trips() {
        let link = Link {
            slot: Slot { nonce: 7, dup: 2 },
            assignment_id: [3; 32],
            hash_chain: [4; 32],
            timestamp: 1_700_000_000_000,
        };
        let mut cursor = Cursor::new(1, 42);
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        cursor.totals.entries = 9;
        cursor.totals.uncovered = 3;
        cursor.signer = Some((5, [9; 32]));
        for position in [
            Position::Complete,
            Position::Partial {
                after: None,
                link: None,
            },
            Position::Partial {
                after: Some(RowKey {
                    nonce: 7,
                    timestamp: 8,
                    row: -1,
                }),
                link: Some(link),
            },
        ] {
            cursor.process = Some(([1; 32], position));
            let bytes = cursor.encode();
            assert_eq!(Cursor::decode(&bytes), Some(cursor));
            assert_eq!(Cursor::decode(&bytes[..bytes.len() - 1]), None);
        }
    }
}
