//! Where an import of one process from a running SU starts: after the last entry the store
//! holds of it (a top-up, whichever importer wrote that entry), or at its beginning. The
//! start is written as the pipeline's checkpoint before the pipeline runs, so the pipeline
//! resumes there with the link state of that entry and the store's next log sequence.

use super::cursor::{Cursor, Link, Position, RowKey};
use super::pipeline::checkpoint_key;
use crate::domain::Id;
use crate::store::keys::Slot;
use crate::store::records::Origin;
use crate::store::{Commit, Store, StoreError};

/// Why a process cannot be topped up.
#[derive(Debug, thiserror::Error)]
pub enum TopUpError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Its newest entry was scheduled here (`su serve`): the source's later entries would
    /// fork the schedule.
    #[error(
        "its nonce {0} was scheduled by this store's own SU, not imported; a top-up would fork \
         its schedule"
    )]
    ScheduledHere(u64),
}

/// Where the import of a process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The store holds nothing of it: the process item and every entry are imported.
    Fresh,
    /// The store holds it: entries after its last one (none yet: only a legacy process row)
    /// are imported.
    TopUp { after: Option<Slot> },
}

/// The slot of the process's newest entry (its highest duplicate rank, DECISIONS 9).
fn last_slot(store: &Store, process: &Id) -> Result<Option<(Slot, Link)>, TopUpError> {
    let Some((nonce, mut record)) = store.last_entry(process)? else {
        return Ok(None);
    };
    let mut dup = 0;
    while let Some(next) = store.entry_at(
        process,
        Slot {
            nonce,
            dup: dup + 1,
        },
    )? {
        dup += 1;
        record = next;
    }
    if record.origin != Origin::Imported {
        return Err(TopUpError::ScheduledHere(nonce));
    }
    let slot = Slot { nonce, dup };
    let link = Link {
        slot,
        assignment_id: record.assignment_id,
        hash_chain: record.hash_chain,
        timestamp: record.timestamp,
    };
    Ok(Some((slot, link)))
}

/// Where the import of a process starts, and the checkpoint the pipeline resumes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub start: Start,
    pub cursor: Cursor,
}

/// Plans the import of `process` from a source of `kind`: after the store's last entry of
/// it, with the store's next log sequence and signer.
pub fn plan(store: &Store, process: &Id, kind: u8) -> Result<Plan, TopUpError> {
    let mut cursor = Cursor::new(kind, store.last_sequence()? + 1);
    let signer = store.signer_address()?;
    let start = match last_slot(store, process)? {
        Some((slot, link)) => {
            cursor.process = Some((
                *process,
                Position::Partial {
                    after: Some(RowKey {
                        nonce: slot.nonce as i64,
                        timestamp: link.timestamp as i64,
                        row: i64::from(slot.dup),
                    }),
                    link: Some(link),
                },
            ));
            cursor.signer = signer.map(|address| (link.timestamp, address));
            Start::TopUp { after: Some(slot) }
        }
        None if store.process(process)?.is_some() => {
            cursor.process = Some((
                *process,
                Position::Partial {
                    after: None,
                    link: None,
                },
            ));
            cursor.signer = signer.map(|address| (0, address));
            Start::TopUp { after: None }
        }
        None => {
            cursor.signer = signer.map(|address| (0, address));
            Start::Fresh
        }
    };
    Ok(Plan { start, cursor })
}

/// Writes the plan's cursor as the checkpoint of the source named `identity` (synced), so
/// the pipeline starts there.
pub fn write(store: &Store, plan: &Plan, identity: &str) -> Result<(), TopUpError> {
    let key = checkpoint_key(plan.cursor.source, identity);
    let cursor = plan.cursor.encode();
    store.write_imported(
        &Commit::default(),
        Some((&key[..], cursor.as_slice(), None)),
    )?;
    Ok(())
}
