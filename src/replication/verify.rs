//! What a standby checks before it applies a change from its primary: every item's signature
//! and id, that every assignment is signed by the primary's wallet, that every hash-chain link
//! follows from the entry before it (held here, or earlier in the same page), and that nothing
//! contradicts what the standby already holds (a fork). History the primary imported is
//! applied as recorded, legacy anomalies included (DECISIONS 9).

use crate::ans104::{DataItem, b64, verify};
use crate::domain::{self, Id};
use crate::store::records::{EntryRecord, Origin};
use crate::store::{Change, StagedEntry, Store, StoreError};
use std::collections::HashMap;

/// Why a change is refused. `Fork` and `Invalid` stop the standby: it never follows a primary
/// whose history contradicts its own or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "fork at process {process} nonce {nonce}: the primary's assignment {theirs} differs from the one held here ({ours})"
    )]
    Fork {
        process: String,
        nonce: u64,
        theirs: String,
        ours: String,
    },
    #[error("change {sequence} (process {process} nonce {nonce}): {what}")]
    Invalid {
        sequence: u64,
        process: String,
        nonce: u64,
        what: String,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What to do with a verified change.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Apply,
    /// The standby holds exactly this already (a page fetched again after a crash).
    AlreadyHeld,
}

/// Checks the changes of one page in order, remembering the tips the page itself advances.
pub struct Verifier<'a> {
    store: &'a Store,
    signer: Id,
    tips: HashMap<Id, (u64, EntryRecord)>,
}

impl<'a> Verifier<'a> {
    pub fn new(store: &'a Store, signer: Id) -> Self {
        Self {
            store,
            signer,
            tips: HashMap::new(),
        }
    }

    pub fn check(&mut self, change: &Change) -> Result<Verdict, VerifyError> {
        match change {
            Change::Entry(entry) => self.check_entry(entry),
            Change::LegacyProcess(process) => {
                if let Some(held) = self.store.process(&process.process)? {
                    if held == process.record() {
                        return Ok(Verdict::AlreadyHeld);
                    }
                    return Err(VerifyError::Fork {
                        process: b64::encode(&process.process),
                        nonce: 0,
                        theirs: "a legacy process record".into(),
                        ours: "a different record".into(),
                    });
                }
                Ok(Verdict::Apply)
            }
        }
    }

    fn check_entry(&mut self, entry: &StagedEntry) -> Result<Verdict, VerifyError> {
        let invalid = |what: String| VerifyError::Invalid {
            sequence: entry.record.sequence,
            process: b64::encode(&entry.process),
            nonce: entry.nonce,
            what,
        };
        if let Some(held) = self.store.entry_at(&entry.process, entry.slot())? {
            if held.assignment_id == entry.record.assignment_id {
                return Ok(Verdict::AlreadyHeld);
            }
            return Err(VerifyError::Fork {
                process: b64::encode(&entry.process),
                nonce: entry.nonce,
                theirs: b64::encode(&entry.record.assignment_id),
                ours: b64::encode(&held.assignment_id),
            });
        }
        if entry.record.origin == Origin::Scheduled {
            let assignment = checked_item(&entry.assignment, &entry.record.assignment_id)
                .map_err(|what| invalid(format!("assignment: {what}")))?;
            if assignment.owner_address() != self.signer {
                return Err(invalid(format!(
                    "the assignment is signed by {}, not by the primary's wallet {}",
                    b64::encode(&assignment.owner_address()),
                    b64::encode(&self.signer)
                )));
            }
            if let Some(body) = &entry.body {
                checked_item(body, &entry.record.message_id)
                    .map_err(|what| invalid(format!("item: {what}")))?;
            }
            if entry.dup != 0 {
                return Err(invalid("a scheduled entry with a duplicate rank".into()));
            }
            let expected = match entry.nonce {
                0 => domain::seed_hash_chain(&entry.process),
                nonce => {
                    let previous = match self.tips.get(&entry.process) {
                        Some((held, record)) if *held == nonce - 1 => Some(*record),
                        _ => self.store.entry(&entry.process, nonce - 1)?,
                    };
                    let previous = previous.ok_or_else(|| {
                        invalid(format!("nonce {} is not held: out of order", nonce - 1))
                    })?;
                    domain::next_hash_chain(&previous.assignment_id, &previous.hash_chain)
                }
            };
            if expected != entry.record.hash_chain {
                return Err(invalid(
                    "the hash chain does not follow from the previous entry".into(),
                ));
            }
        }
        self.tips.insert(entry.process, (entry.nonce, entry.record));
        Ok(Verdict::Apply)
    }
}

/// Parses and verifies an item and checks its id.
fn checked_item<'b>(bytes: &'b [u8], id: &Id) -> Result<DataItem<'b>, String> {
    let item = DataItem::parse(bytes).map_err(|error| error.to_string())?;
    verify::verify(&item).map_err(|error| error.to_string())?;
    if item.id() != *id {
        return Err(format!(
            "its id is {}, not {}",
            b64::encode(&item.id()),
            b64::encode(id)
        ));
    }
    Ok(item)
}
